"""Streaming figures for docs/performance.md: epoch cost, torch loaders, a file over the budget.

Three measurements, each ratio taken side by side in one run (variants interleaved, the
median of ``--repeats`` kept), on one torch thread:

1. ``epoch``: one training epoch of a small CNN on the boxes-64 preset (10,000 train images),
   batches from the streaming path (whole chunks, shuffle buffer) vs the same uint8 tensors
   already in memory; also the loaders alone (no model).
2. ``loaders``: one pass over ``--items`` random training indices of boxes-64 in a
   ``DataLoader`` (batch 64): ``cnnbench.torch.H5Dataset`` with 0 and 2 workers, and
   ``StreamingDataset`` with 0 and 2 workers, against a per-item h5py ``Dataset`` written
   the way users write it (open the file in ``__getitem__``, read one image).
3. ``big``: a boxes file of ``--big-train`` 64x64 RGB images (over 1 GB of uint8 images)
   trained for one epoch under ``--budget`` (256 MB by default) in a child process, run and
   recorded like ``cnnbench bench``; its peak RSS (VmHWM) against the budget. The file and
   the database are deleted afterwards.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_stream.py [--only epoch,loaders,big]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

import cnnbench
from cnnbench.bench.protocol import Split, StreamSplit, scale_01
from cnnbench.data.streaming import ChunkReader, buffer_rows, parse_bytes, split_nbytes
from cnnbench.torch import H5Dataset, StreamingDataset


def small_cnn(channels: int = 3, outputs: int = 2) -> nn.Module:
    """Two strided convs, global pooling, a linear head: ~3k parameters."""
    return nn.Sequential(nn.Conv2d(channels, 8, 5, stride=2, padding=2), nn.ReLU(),
                         nn.Conv2d(8, 16, 5, stride=2, padding=2), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, outputs))


def load_text() -> str:
    return "load average %.1f %.1f %.1f" % os.getloadavg()


# -- 1. epoch: streamed vs in memory ----------------------------------------------------------

def epoch_seconds(split, model, *, train: bool, seed: int, epoch: int) -> float:
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for x, y in split.epoch_batches(64, gen, seed, epoch):
        if train:
            loss = nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - start


def bench_epoch(path: Path, repeats: int, budget: int) -> None:
    ds = cnnbench.open_dataset(path)
    arrays = ds.load("train", ["images", "targets"])
    targets = torch.from_numpy(arrays["targets"])
    memory = Split("train", torch.from_numpy(arrays["images"]), targets, scale_01)
    reader = ChunkReader(ds, "train", ["images"])
    stream = StreamSplit("train", reader, targets, scale_01, torch.device("cpu"), buffer_rows(reader, budget))
    print(f"\n## epoch: boxes-64 train ({len(memory)} images, {reader.n_chunks} chunks of {reader.chunk_rows}), "
          f"batch 64, stream buffer {stream.buffer_size} samples ({budget / 2**20:.0f} MiB budget)")
    for train in (False, True):
        times = {"memory": [], "stream": []}
        for r in range(repeats):
            for name, split in (("memory", memory), ("stream", stream)):
                torch.manual_seed(0)
                times[name].append(epoch_seconds(split, small_cnn(), train=train, seed=0, epoch=r))
        m, s = statistics.median(times["memory"]), statistics.median(times["stream"])
        what = "one training epoch, small CNN" if train else "loader alone (batches, to float)"
        print(f"{what}: in memory {m:.2f} s, streamed {s:.2f} s, ratio {s / m:.3f} "
              f"(runs: {fmt(times['memory'])} / {fmt(times['stream'])}; {load_text()})")


def fmt(values) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


# -- 2. torch loaders -------------------------------------------------------------------------

class NaiveH5(torch.utils.data.Dataset):
    """What users write first: open the file for every item, read one image and its target."""

    def __init__(self, path):
        self.path = path
        with h5py.File(path, "r") as f:
            self.n = len(f["train/images"])

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        with h5py.File(self.path, "r") as f:
            image, target = f["train/images"][i], f["train/targets"][i]
        return torch.from_numpy(image).permute(2, 0, 1).float() / 255, torch.from_numpy(target)


def pass_seconds(loader) -> tuple[float, int]:
    start, n = time.perf_counter(), 0
    for x, _ in loader:
        n += len(x)
    return time.perf_counter() - start, n


def bench_loaders(path: Path, items: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    subset = rng.choice(cnnbench.open_dataset(path).split_size("train"), size=items, replace=False).tolist()
    variants = {
        "per-item h5py Dataset, 0 workers": lambda: DataLoader(Subset(NaiveH5(path), subset), batch_size=64),
        "H5Dataset, 0 workers": lambda: DataLoader(Subset(H5Dataset(path), subset), batch_size=64),
        "H5Dataset, 2 workers": lambda: DataLoader(Subset(H5Dataset(path), subset), batch_size=64, num_workers=2),
    }
    times = {k: [] for k in variants}
    for _ in range(repeats):
        for name, make in variants.items():
            seconds, n = pass_seconds(make())
            assert n == items
            times[name].append(seconds)
    # The streaming dataset reads the whole split (it has no random subset): per image.
    stream = {}
    for workers in (0, 2):
        runs = []
        for r in range(repeats):
            seconds, n = pass_seconds(DataLoader(StreamingDataset(path, batch_size=64, epoch=r),
                                                 batch_size=None, num_workers=workers))
            runs.append(seconds / n * items)
        stream[f"StreamingDataset, {workers} workers (whole split, scaled to {items} images)"] = runs
    naive = statistics.median(times["per-item h5py Dataset, 0 workers"])
    print(f"\n## loaders: {items} random boxes-64 train images, batch 64, median of {repeats} ({load_text()})")
    print("| loader | seconds | images/s | vs per-item h5py |\n|---|---|---|---|")
    for name, runs in {**times, **stream}.items():
        m = statistics.median(runs)
        print(f"| {name} | {m:.2f} | {items / m:,.0f} | {naive / m:.1f}x faster |")


# -- 3. a file over the budget ----------------------------------------------------------------

CHILD = textwrap.dedent("""
    import json, resource, sys, time, torch
    torch.set_num_threads(1)
    import cnnbench
    sys.path.insert(0, {scripts!r})
    from bench_stream import small_cnn

    def rss(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024

    def make(info):
        return small_cnn(info.channels, info.num_outputs)

    before = rss("VmRSS:")
    start = time.perf_counter()
    result = cnnbench.run({path!r}, make, name="small-cnn", epochs=1, device="cpu", memory_budget={budget})
    cnnbench.record(result, db={db!r})
    model = sum(p.numel() * p.element_size() for p in result.recipe.model.parameters())
    print(json.dumps({{"before": before, "peak": rss("VmHWM:"), "seconds": time.perf_counter() - start,
                      "model_bytes": model, "rmse": result.record.metrics["rmse"],
                      "loader": result.record.config.get("loader")}}))
""")


def bench_big(folder: Path, n_train: int, budget: int) -> None:
    import json

    path, db = folder / "boxes-big.h5", folder / "board.sqlite"
    start = time.perf_counter()
    ds = cnnbench.generate(path, "boxes", size=64, n_train=n_train, n_val=1000, n_test=1000, seed=1)
    made = time.perf_counter() - start
    sizes = split_nbytes(ds)
    images = sum(np.prod(ds.shapes[s]["images"]) for s in ds.shapes)
    print(f"\n## big: boxes 64x64 RGB, {n_train} train + 1000 val + 1000 test, {images / 1e9:.2f} GB of "
          f"uint8 images ({sum(sizes.values()) / 1e9:.2f} GB of arrays, {path.stat().st_size / 1e9:.2f} GB "
          f"on disk, generated in {made:.0f} s), budget {budget / 2**20:.0f} MiB, fingerprint "
          f"{ds.fingerprint[:12]}")
    try:
        code = CHILD.format(scripts=str(Path(__file__).parent), path=str(path), budget=budget, db=str(db))
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        got = json.loads(out.stdout.strip().splitlines()[-1])
        recorded = len(cnnbench.boards(path, db=db)[0].entries)
        mib = 2**20
        print(f"one epoch streamed ({got['loader']}) in {got['seconds']:.0f} s, test rmse {got['rmse']:.3f} px; "
              f"recorded ({recorded} board rows). RSS after imports {got['before'] / mib:.0f} MiB, peak "
              f"{got['peak'] / mib:.0f} MiB = budget {budget / mib:.0f} MiB + {(got['peak'] - budget) / mib:.0f} MiB "
              f"(model {got['model_bytes'] / 1024:.0f} KiB); {load_text()}")
    finally:
        path.unlink(missing_ok=True)
        db.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="epoch,loaders,big", help="comma-separated: epoch, loaders, big")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--items", type=int, default=2000, help="images per loader pass")
    parser.add_argument("--budget", default="256MiB", help="memory budget of the big run")
    parser.add_argument("--big-train", type=int, default=88000, help="train images of the big file")
    parser.add_argument("--folder", default=None, help="where boxes-64 and the big file go (default: a temp folder)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    only = set(args.only.split(","))
    print(f"# bench_stream, {time.strftime('%Y-%m-%d %H:%M')}: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch {torch.__version__}, "
          f"h5py {h5py.__version__}, numpy {np.__version__}, 1 torch thread; {load_text()}")
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        folder = Path(tmp)
        if only & {"epoch", "loaders"}:
            # Cached (and its fingerprint checked) under --folder when given.
            boxes = cnnbench.load_preset("boxes-64", None, root=args.folder or folder)
            print(f"boxes-64: fingerprint {boxes.fingerprint[:12]}")
            if "epoch" in only:
                bench_epoch(boxes.path, args.repeats, parse_bytes(args.budget))
            if "loaders" in only:
                bench_loaders(boxes.path, args.items, args.repeats)
        if "big" in only:
            bench_big(folder, args.big_train, parse_bytes(args.budget))


if __name__ == "__main__":
    main()
