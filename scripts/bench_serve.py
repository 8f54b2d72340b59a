"""`cnnbench serve` throughput: accepted submissions/s and latency percentiles over HTTP.

Sets up a throw-away board folder on one preset (generated with a secret seed, references
recorded), issues ``--tokens`` tokens, starts ``cnnbench serve`` as its own process and posts
``--submissions`` predictions files (class ids or values for the whole test split, as a
participant would, through the same client as ``cnnbench submit --server``) from
``--concurrency`` threads, no daily limit. Prints one markdown table row per run.

The store is the folder's SQLite file, or with ``--db postgresql://...`` that (empty)
PostgreSQL database; ``--servers N`` starts N separate server processes on N ports over the
same store and sends the submissions to them in turn, as a load balancer would.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_serve.py [--preset lines-16] [--submissions 200]
        [--concurrency 10] [--format npy|csv|h5] [--workers 1] [--servers 1] [--db postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np

from cnnbench.board.store import db_exists, display
from cnnbench.data.h5file import open_dataset
from cnnbench.serve.boards import BoardDir, init_board_dir
from cnnbench.serve.client import submit_remote


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _predictions(folder: BoardDir, board: str, fmt: str, out: Path) -> Path:
    ds = open_dataset(folder.board_path(board) / "full.h5")
    n = ds.split_size("test")
    rng = np.random.default_rng(0)
    if ds.task == "classification":
        values = rng.integers(0, ds.num_classes, n)
    else:
        shape = ds.shapes["train"]["targets"][1:]
        values = rng.normal(size=(n,) + tuple(shape)) * 4 + 30
    path = out / f"predictions.{fmt}"
    if fmt == "npy":
        np.save(path, values)
    elif fmt == "csv":
        np.savetxt(path, values.reshape(n, -1), delimiter=",")
    else:
        with h5py.File(path, "w") as f:
            f["predictions"] = values
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="lines-16")
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=10)
    parser.add_argument("--format", choices=("npy", "csv", "h5"), default="npy")
    parser.add_argument("--workers", type=int, default=1, help="processes of each server (its --workers)")
    parser.add_argument("--servers", type=int, default=1, help="separate servers (ports) sharing the store")
    parser.add_argument("--db", default=None, help="an empty PostgreSQL database for the store (its URL)")
    args = parser.parse_args()
    if args.db and db_exists(args.db):
        parser.error(f"--db {display(args.db)} holds a leaderboard already: give an empty database")

    with tempfile.TemporaryDirectory(prefix="cnnbench-bench-serve-") as tmp:
        folder = BoardDir(Path(tmp) / "boards")
        init_board_dir(folder.path, presets=[args.preset], database=args.db)
        config = json.loads(folder.config_path.read_text())
        config["daily_limit"] = None
        folder.config_path.write_text(json.dumps(config))
        with folder.store() as store:
            tokens = [store.add_token(f"p{i}") for i in range(args.tokens)]
        fingerprint = open_dataset(folder.board_path(args.preset) / "full.h5").fingerprint
        path = _predictions(folder, args.preset, args.format, Path(tmp))
        urls, servers = [], []
        try:
            for _ in range(args.servers):
                port = _free_port()
                urls.append(f"http://127.0.0.1:{port}")
                servers.append(subprocess.Popen(
                    [sys.executable, "-c", "from cnnbench.cli import main; main()", "serve", str(folder.path),
                     "--port", str(port), "-q", "--workers", str(args.workers)], stderr=subprocess.DEVNULL))
            for url in urls:
                for _ in range(600):
                    try:
                        urllib.request.urlopen(url + "/api", timeout=2).read()
                        break
                    except OSError:
                        time.sleep(0.1)

            def one(i: int) -> float:
                start = time.perf_counter()
                submit_remote(urls[i % len(urls)], tokens[i % len(tokens)], args.preset, path, f"m{i}")
                return time.perf_counter() - start

            for i in range(len(urls)):
                one(-1 - i)  # warm-up of each server (first connections, first page of the store)
            started = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                latencies = sorted(pool.map(one, range(1, args.submissions + 1)))
            wall = time.perf_counter() - started
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
    p50, p95 = (latencies[int(q * (len(latencies) - 1))] * 1000 for q in (0.5, 0.95))
    store = "postgresql" if args.db else "sqlite"
    print("| preset | format | store | submissions | concurrency | servers x workers | submissions/s | p50 ms "
          "| p95 ms | fingerprint |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    print(f"| {args.preset} | {args.format} | {store} | {args.submissions} | {args.concurrency} | "
          f"{args.servers} x {args.workers} | {args.submissions / wall:.1f} | {p50:.0f} | {p95:.0f} | "
          f"{fingerprint[:12]} (secret seed, new each run) |")
    print(f"\n{platform.python_version()}, {os.cpu_count()} CPUs visible, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, load average {os.getloadavg()[0]:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
