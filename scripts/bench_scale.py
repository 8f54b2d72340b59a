"""Past one machine: generation's wall time and peak memory by size, shards vs one process.

Every figure is one fresh ``python -m cnnbench`` process (OMP_NUM_THREADS=1, --workers 1),
timed by the wall clock; its peak resident memory is the kernel's ``ru_maxrss`` for that
child (``os.wait4``). The dataset is boxes-64's spec (64x64x3, one 8 px square) with N
images in all: 80 % train, 10 % val, 10 % test. Prints markdown rows for docs/performance.md.

    .venv/bin/python scripts/bench_scale.py generate --images 1000 10000 100000
    .venv/bin/python scripts/bench_scale.py generate --images 1000000   # long: ~25 min, 2 loaded cores
    .venv/bin/python scripts/bench_scale.py shards --images 100000 --shards 2
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BOXES_64 = ["boxes", "--size", "64", "--channels", "3", "--box-size", "8", "--seed", "0"]


def sizes(n: int) -> list[str]:
    val = n // 10
    return ["--n-train", str(n - 2 * val), "--n-val", str(val), "--n-test", str(val)]


def cnnbench(*args) -> list[str]:
    return [sys.executable, "-m", "cnnbench", *map(str, args)]


def start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL)


def wait(proc: subprocess.Popen) -> float:
    """Wait for ``proc``; its peak RSS in MB (exits on failure)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(proc.args)}")
    return usage.ru_maxrss / 1024


def timed(*procs_cmds: list[str]) -> tuple[float, list[float]]:
    """Run the commands at once; wall seconds until all end, and each one's peak RSS (MB)."""
    began = time.perf_counter()
    procs = [start(c) for c in procs_cmds]
    rss = [wait(p) for p in procs]
    return time.perf_counter() - began, rss


def fingerprint(path: Path) -> str:
    from cnnbench.data.h5file import open_dataset

    return open_dataset(path).fingerprint[:12]


def header() -> None:
    print(f"<!-- {datetime.datetime.now().isoformat(timespec='minutes')}, {os.cpu_count()} CPUs, "
          f"load average before: {os.getloadavg()[0]:.1f} -->")


def bench_generate(images: list[int], folder: Path) -> None:
    header()
    print("| images | wall s | images/s | peak RSS MB | file MB | fingerprint | load before, after |")
    print("|---|---|---|---|---|---|---|")
    for n in images:
        out = folder / f"boxes-{n}.h5"
        before = os.getloadavg()[0]
        wall, (rss,) = timed(cnnbench("generate", *BOXES_64, *sizes(n), "--out", out, "-q", "--force"))
        print(f"| {n:,} | {wall:.1f} | {n / wall:,.0f} | {rss:.0f} | {out.stat().st_size / 1e6:.1f} | "
              f"{fingerprint(out)} | {before:.1f}, {os.getloadavg()[0]:.1f} |", flush=True)
        out.unlink()


def bench_shards(n: int, count: int, folder: Path) -> None:
    header()
    whole = folder / "whole.h5"
    one, (rss_one,) = timed(cnnbench("generate", *BOXES_64, *sizes(n), "--out", whole, "-q", "--force"))
    parts = [folder / f"part{i}.h5" for i in range(count)]
    sharded, rss = timed(*[cnnbench("generate", *BOXES_64, *sizes(n), "--shard", f"{i}/{count}",
                                    "--out", p, "-q", "--force") for i, p in enumerate(parts)])
    merged = folder / "merged.h5"
    merge, (rss_merge,) = timed(cnnbench("merge", *parts, "--out", merged, "-q", "--force"))
    virtual = folder / "virtual.h5"
    vmerge, (rss_virtual,) = timed(cnnbench("merge", *parts, "--out", virtual, "--virtual", "-q", "--force"))
    same = fingerprint(whole) == fingerprint(merged) == fingerprint(virtual)
    print(f"boxes-64 spec, {n:,} images, fingerprint {fingerprint(whole)} (all three equal: {same})\n")
    print("| how | wall s | peak RSS MB (per process) | speed-up vs 1 process |")
    print("|---|---|---|---|")
    print(f"| 1 process | {one:.1f} | {rss_one:.0f} | 1.00 |")
    print(f"| {count} shard processes at once | {sharded:.1f} | {', '.join(f'{r:.0f}' for r in rss)} | "
          f"{one / sharded:.2f} |")
    print(f"| merge (copy) | {merge:.1f} | {rss_merge:.0f} | |")
    print(f"| merge --virtual | {vmerge:.1f} | {rss_virtual:.0f} | |")
    print(f"| {count} shards + merge (copy) | {sharded + merge:.1f} | | {one / (sharded + merge):.2f} |")
    print(f"| {count} shards + merge --virtual | {sharded + vmerge:.1f} | | {one / (sharded + vmerge):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    gen = sub.add_parser("generate", help="wall time and peak RSS by dataset size")
    gen.add_argument("--images", type=int, nargs="+", default=[1000, 10000, 100000])
    sh = sub.add_parser("shards", help="N shard processes at once vs one process, plus merge")
    sh.add_argument("--images", type=int, default=100000)
    sh.add_argument("--shards", type=int, default=2)
    for p in (gen, sh):
        p.add_argument("--dir", default=None, help="scratch folder [default: a temporary one]")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        if args.what == "generate":
            bench_generate(args.images, Path(tmp))
        else:
            bench_shards(args.images, args.shards, Path(tmp))


if __name__ == "__main__":
    main()
