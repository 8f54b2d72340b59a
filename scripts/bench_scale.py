"""Past one machine: generation's wall time and peak memory by size, shards vs one process.

Every figure is one fresh ``python -m cnnbench`` process (OMP_NUM_THREADS=1, --workers 1),
timed by the wall clock; its peak resident memory is the kernel's ``ru_maxrss`` for that
child (``os.wait4``). The dataset is boxes-64's spec (64x64x3, one 8 px square) with N
images in all: 80 % train, 10 % val, 10 % test. Prints markdown rows for docs/performance.md.

    .venv/bin/python scripts/bench_scale.py generate --images 1000 10000 100000
    .venv/bin/python scripts/bench_scale.py generate --images 1000000   # long: ~25 min, 2 loaded cores
    .venv/bin/python scripts/bench_scale.py shards --images 100000 --shards 2
    .venv/bin/python scripts/bench_scale.py ddp --preset boxes-64 --baseline boxes-cnn-fixed

``ddp`` times one training epoch of a baseline (the protocol's batches, forward, backward,
optimizer step; no val scoring) in one process and in 2 gloo processes started by torchrun
(``ddp-worker`` is what each process runs), and the communication share of a DDP step: a
second epoch whose steps alternate between synchronised and ``DistributedDataParallel.no_sync()``
(gradients not all-reduced), each step between two barriers; share = 1 - mean no-sync step /
mean synchronised step. Alternating steps cancels the drift of a shared machine's load.
"""

from __future__ import annotations

import argparse
import contextlib
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


def bench_ddp(preset: str, baseline: str, processes: list[int], folder: Path, data: str | None,
              budget: str | None) -> None:
    header()
    path = Path(data) if data else folder / f"{preset}.h5"
    if not data:
        subprocess.run(cnnbench("generate", "--preset", preset, "--out", path, "-q"), check=True)
    how = f"streamed (--memory-budget {budget})" if budget else "in memory"
    print(f"{baseline} on {path.name} (fingerprint {fingerprint(path)}), train split {how}, "
          "OMP_NUM_THREADS=1, 1 torch thread per process, gloo\n")
    print("| processes | training epoch s | steps | per step ms | alternating: synced / no-sync step ms "
          "| communication share | peak RSS MB (per process) | load before, after |")
    print("|---|---|---|---|---|---|---|---|")
    for n in processes:
        before = os.getloadavg()[0]
        out = folder / f"ddp{n}.json"
        worker = [str(Path(__file__).resolve()), "ddp-worker", str(path), baseline, str(out), budget or ""]
        if n == 1:
            cmd = [sys.executable, *worker]
        else:
            import socket

            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            cmd = [str(Path(sys.executable).with_name("torchrun")), "--nproc-per-node", str(n),
                   "--master-port", str(port), *worker]
        began = time.perf_counter()
        proc = start(cmd)
        rss = wait(proc)  # torchrun's own; the workers report theirs
        wall = time.perf_counter() - began
        import json

        r = json.loads(out.read_text())
        nosync = f"{r['sync_ms']:.0f} / {r['nosync_ms']:.0f}" if r["nosync_ms"] else "-"
        share = f"{1 - r['nosync_ms'] / r['sync_ms']:.0%}" if r["nosync_ms"] else "-"
        print(f"| {n} | {r['epoch_s']:.1f} | {r['steps']} | {1000 * r['epoch_s'] / r['steps']:.0f} | {nosync} | "
              f"{share} | {', '.join(f'{m:.0f}' for m in r['rss_mb'])} | {before:.1f}, {os.getloadavg()[0]:.1f} |"
              f"  <!-- wall {wall:.0f} s, launcher RSS {rss:.0f} MB -->", flush=True)


def ddp_worker(path: str, baseline: str, out: str, budget: str) -> None:
    """One process of ``ddp`` (alone, or one rank under torchrun): time a training epoch."""
    import json
    import resource

    import torch
    import torch.distributed as tdist
    from cnnbench.baselines import get_baseline

    from cnnbench.bench import distributed, protocol
    from cnnbench.data.h5file import open_dataset
    from cnnbench.data.streaming import ChunkReader, parse_bytes

    torch.set_num_threads(1)
    ds = open_dataset(path)
    data = protocol.prepare_data(ds, budget or protocol.DEFAULT_MEMORY_BUDGET)
    raw = data.targets["train"] if budget else data["train"]["targets"]
    info = protocol.DataInfo.from_dataset(ds)
    recipe = protocol.build_recipe(get_baseline(baseline).make, info, 0)
    scaler = protocol.TargetScaler.fit(raw, recipe.target_scaling) if ds.task == "regression" else None
    targets = torch.from_numpy(scaler.forward(raw) if scaler else raw)
    cpu = torch.device("cpu")
    if budget:  # each rank reads its lanes' rows from the file
        split = protocol.StreamSplit("train", ChunkReader(ds, "train", ["images"]), targets, recipe.preprocess,
                                     cpu, parse_bytes(budget))
    else:
        split = protocol.Split("train", torch.from_numpy(data["train"]["images"]), targets, recipe.preprocess)
    dist = distributed.context()
    model = recipe.model if dist is None else dist.wrap(recipe.model, cpu)
    optimizer = protocol.build_optimizer(recipe, recipe.model)
    loss_fn = protocol.loss_function(recipe, ds.task)

    def epoch(sync: bool | None) -> tuple[float, int, list]:
        """Wall seconds and steps of an epoch; ``sync=None``: alternate, timing each step."""
        shuffle, gen = protocol.training_generators(0, cpu, recipe.augment is not None)
        if dist is None:
            batches = ((x if recipe.augment is None else recipe.augment(x, gen), y, 1.0, len(x))
                       for x, y in split.epoch_batches(recipe.batch_size, shuffle, 0, 1))
        else:
            batches = dist.train_batches(split, recipe.batch_size, shuffle, 0, 1, recipe.augment, gen)
            tdist.barrier()
        began, steps, each = time.perf_counter(), 0, []
        for x, y, weight, _ in batches:
            synced = sync if sync is not None else steps % 2 == 0
            if sync is None:
                tdist.barrier()
                t0 = time.perf_counter()
            with (model.no_sync() if dist is not None and not synced else contextlib.nullcontext()):
                loss = loss_fn(model(x), y) * weight
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            optimizer.step()
            if sync is None:
                tdist.barrier()
                each.append((synced, time.perf_counter() - t0))
            steps += 1
        if dist is not None:
            tdist.barrier()
        return time.perf_counter() - began, steps, each

    model.train()
    epoch_s, steps, _ = epoch(sync=True)
    sync_ms = nosync_ms = None
    if dist is not None:
        each = epoch(sync=None)[2]
        sync_ms = 1000 * sum(t for s, t in each if s) / sum(1 for s, _ in each if s)
        nosync_ms = 1000 * sum(t for s, t in each if not s) / sum(1 for s, _ in each if not s)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_all = [rss] if dist is None else dist.gather([(dist.rank, torch.tensor([rss]))])
    if distributed.is_writer():
        Path(out).write_text(json.dumps({"epoch_s": epoch_s, "steps": steps, "sync_ms": sync_ms,
                                         "nosync_ms": nosync_ms,
                                         "rss_mb": [float(r) for r in rss_all]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    gen = sub.add_parser("generate", help="wall time and peak RSS by dataset size")
    gen.add_argument("--images", type=int, nargs="+", default=[1000, 10000, 100000])
    sh = sub.add_parser("shards", help="N shard processes at once vs one process, plus merge")
    sh.add_argument("--images", type=int, default=100000)
    sh.add_argument("--shards", type=int, default=2)
    dd = sub.add_parser("ddp", help="a training epoch in 1 and 2 gloo processes, and the all-reduce's share")
    dd.add_argument("--preset", default="boxes-64")
    dd.add_argument("--baseline", default="boxes-cnn-fixed")
    dd.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    dd.add_argument("--data", default=None, help="an existing file instead of generating the preset")
    dd.add_argument("--memory-budget", default=None, help="stream the train split under this budget")
    wk = sub.add_parser("ddp-worker", help="(internal) one process of ddp")
    for name in ("path", "baseline", "out", "budget"):
        wk.add_argument(name)
    for p in (gen, sh, dd):
        p.add_argument("--dir", default=None, help="scratch folder [default: a temporary one]")
    args = parser.parse_args()
    if args.what == "ddp-worker":
        ddp_worker(args.path, args.baseline, args.out, args.budget)
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        if args.what == "generate":
            bench_generate(args.images, Path(tmp))
        elif args.what == "shards":
            bench_shards(args.images, args.shards, Path(tmp))
        else:
            bench_ddp(args.preset, args.baseline, args.processes, Path(tmp), args.data, args.memory_budget)


if __name__ == "__main__":
    main()
