"""cnnbench's performance, side by side with what it is measured against, in one run.

    .venv/bin/python benchmarks/bench.py                 # everything (draw, presets, files: 20 min of wall clock on 2 busy cores)
    .venv/bin/python benchmarks/bench.py --only draw,files
    .venv/bin/python benchmarks/bench.py --only train --train-images 512 --epochs 2

Prints markdown tables (docs/performance.md holds the last output), each figure beside its
comparison measured in the same run, so a busy machine slows both sides alike:

- ``draw``: for each family at its canonical size (boxes-64, lines-16, patches-64), images/s
  drawn by cnnbench (one 1024-image block, one process), by the per-image Pillow/numpy loop
  a user would write for a comparable picture, and by ``np.copyto`` of the same bytes (the
  memory-copy bound); the ratios; then every preset's drawing throughput.
- ``files``: end to end ``write_dataset`` (draw, compress, write, rename) and reading every
  array back, for the canonical presets; and for each family the HDF5 filters cnnbench could
  use (none, lzf, gzip levels 1, 4 and 9) with their write and read throughput and file size.
- ``train``: for each CNN baseline, training images/s through the protocol
  (``cnnbench.bench.protocol.run``: val scored every epoch, best weights kept, test scored once)
  beside a bare torch loop over the same tensors, model, optimizer and batches (training
  steps only; and training plus the same val and test passes).

Rounds are interleaved and the best of each is kept: the floor a shared machine lets through.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import PIL
import torch
from PIL import Image, ImageDraw

from cnnbench import __version__
from cnnbench.data.families import FAMILIES
from cnnbench.data.generate import BLOCK_SIZE, block_rng, build_spec, plan_rng, write_dataset
from cnnbench.data.h5file import CHUNK_BYTES, COMPRESSION, open_dataset
from cnnbench.data.presets import all_presets, get_preset

CANONICAL = {"boxes": "boxes-64", "lines": "lines-16", "patches": "patches-64"}


# ---------------------------------------------------------------------------------------------
# The machine


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}; {os.cpu_count()} CPUs; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), h5py {h5py.__version__} (HDF5 "
            f"{h5py.version.hdf5_version}), Pillow {PIL.__version__}; cnnbench {__version__}")


def load() -> str:
    try:
        return "load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


# The clock: "cpu" (this process's CPU time, the default) or "wall". On a machine shared with
# other jobs the wall clock measures the sharing as much as the code; the CPU time of a
# single-threaded process does not (on an idle machine the two agree).
CLOCK = {"cpu": time.process_time, "wall": time.perf_counter}
clock = time.process_time


def best_of(rounds: int, fn) -> float:
    """The fastest of ``rounds`` calls, in seconds of ``clock``."""
    best = float("inf")
    for _ in range(rounds):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best


# ---------------------------------------------------------------------------------------------
# Drawing: cnnbench, the loop a user writes, and the copy bound


def draw_block(spec, n: int = BLOCK_SIZE) -> dict:
    family = FAMILIES[spec.family]
    n = min(n, spec.sizes["train"])
    plan = family.plan(spec.params, "train", spec.sizes["train"], plan_rng(spec.seed, "train")) \
        if family.plan else None
    return family.draw(spec.params, "train", 0, n, block_rng(spec.seed, "train", 0), plan)


def pillow_boxes(n: int, supersample: int) -> np.ndarray:
    """A white 8x8 square on black at a random place, 64x64 RGB, one image at a time.

    ``supersample`` 1: integer corners (crisp, no sub-pixel position); 4: drawn at 4x and
    box-downsampled, so the position is sub-pixel like cnnbench's anti-aliased squares.
    """
    rng = np.random.default_rng(0)
    out = np.empty((n, 64, 64, 3), np.uint8)
    s = supersample
    for i in range(n):
        x, y = rng.uniform(3.5, 59.5, 2)
        image = Image.new("RGB", (64 * s, 64 * s))
        x0, y0 = round((x - 4 + 0.5) * s), round((y - 4 + 0.5) * s)
        ImageDraw.Draw(image).rectangle([x0, y0, x0 + 8 * s - 1, y0 + 8 * s - 1], fill=(255, 255, 255))
        if s > 1:
            image = image.resize((64, 64), Image.BOX)
        out[i] = np.asarray(image)
    return out


def pillow_lines(n: int) -> np.ndarray:
    """lines-16 by hand: a partial row or column, Gaussian noise std 20, one image at a time."""
    rng = np.random.default_rng(0)
    out = np.empty((n, 16, 16, 1), np.uint8)
    for i in range(n):
        image = Image.new("L", (16, 16))
        length = int(rng.integers(8, 17))
        at, offset = int(rng.integers(0, 16)), int(rng.integers(0, 17 - length))
        end = offset + length - 1
        ImageDraw.Draw(image).line([offset, at, end, at] if i % 2 else [at, offset, at, end], fill=255)
        noisy = np.asarray(image, dtype=np.float64) + rng.normal(0, 20, (16, 16))
        out[i, ..., 0] = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return out


def pillow_patches(n: int) -> np.ndarray:
    """A simpler patches-like scene by hand: bench, rim, coloured well and a mark, drawn at
    250 px, rotated, box-downsampled to 64 px, then gamma and noise; one image at a time."""
    rng = np.random.default_rng(0)
    out = np.empty((n, 64, 64, 3), np.uint8)
    for i in range(n):
        image = Image.new("RGB", (250, 250), (140, 128, 107))
        draw = ImageDraw.Draw(image)
        draw.ellipse([52, 52, 197, 197], fill=(89, 89, 89))
        well = tuple(int(v) for v in rng.integers(60, 230, 3))
        draw.ellipse([60, 60, 189, 189], fill=well)
        draw.ellipse([70, 110, 85, 125], fill=(20, 20, 20))
        image = image.rotate(float(rng.uniform(0, 360)), resample=Image.BILINEAR)
        small = np.asarray(image.resize((64, 64), Image.BOX), dtype=np.float32) / 255
        small = small ** rng.uniform(0.8, 1.25) + rng.normal(0, 0.01, small.shape)
        out[i] = np.rint(np.clip(small, 0, 1) * 255).astype(np.uint8)
    return out


def draw_section(rounds: int) -> None:
    print("## Drawing: cnnbench beside a per-image loop and the memory-copy bound\n")
    print(f"images/s, best of {rounds} interleaved rounds; one process; cnnbench draws one "
          f"{BLOCK_SIZE}-image block (as `generate` does per block); the copy bound is "
          "`np.copyto` of a block of the same bytes.\n")
    loops = {
        "boxes": [("Pillow loop, integer corners", lambda: pillow_boxes(256, 1), 256),
                  ("Pillow loop at 4x, box-downsampled (sub-pixel)", lambda: pillow_boxes(128, 4), 128)],
        "lines": [("Pillow + numpy noise loop", lambda: pillow_lines(1024), 1024)],
        "patches": [("Pillow loop, simpler scene at 250 px, rotated, box-downsampled", lambda: pillow_patches(32), 32)],
    }
    specs = {f: get_preset(p).spec() for f, p in CANONICAL.items()}
    buffers = {}
    for family, spec in specs.items():
        images = draw_block(spec)["images"]
        buffers[family] = (np.ones_like(images), np.empty_like(images))
    best: dict[tuple, float] = {}
    for _ in range(rounds):
        for family, spec in specs.items():
            key = (family, "cnnbench")
            best[key] = min(best.get(key, float("inf")), best_of(1, lambda: draw_block(spec)))
            src, dst = buffers[family]
            key = (family, "copy")
            best[key] = min(best.get(key, float("inf")), best_of(3, lambda: np.copyto(dst, src)))
            for label, fn, _ in loops[family]:
                key = (family, label)
                best[key] = min(best.get(key, float("inf")), best_of(1, fn))
    print("| family (preset) | image | cnnbench | per-image loop | loop | copy bound | cnnbench / loop | copy / cnnbench |")
    print("|---|---|---|---|---|---|---|---|")
    for family, spec in specs.items():
        n = len(buffers[family][0])
        ours = n / best[(family, "cnnbench")]
        copy = n / best[(family, "copy")]
        for label, _, m in loops[family]:
            theirs = m / best[(family, label)]
            print(f"| {family} ({CANONICAL[family]}) | {buffers[family][0].shape[1:]} | {ours:,.0f} | "
                  f"{label} | {theirs:,.0f} | {copy:,.0f} | {ours / theirs:.1f}x | {copy / ours:.1f}x |")
    print()


def presets_section(rounds: int) -> None:
    print("## Drawing throughput of every preset\n")
    print(f"One {BLOCK_SIZE}-image block of train (fewer where the split is smaller), best of "
          f"{rounds}; images/s and MB/s of uint8 pixels.\n")
    print("| preset | image (H, W, C) | images/s | MB/s |")
    print("|---|---|---|---|")
    for name, preset in all_presets().items():
        spec = preset.spec()
        images = draw_block(spec)["images"]
        seconds = best_of(rounds, lambda: draw_block(spec))
        print(f"| {name} | {images.shape[1:]} | {len(images) / seconds:,.0f} | "
              f"{images.nbytes / seconds / 1e6:,.0f} |", flush=True)
    print()


# ---------------------------------------------------------------------------------------------
# Files


FILTERS = {
    "none": {},
    "lzf": {"compression": "lzf", "shuffle": True},
    "gzip 1": {"compression": "gzip", "compression_opts": 1, "shuffle": True},
    "gzip 4": {"compression": "gzip", "compression_opts": 4, "shuffle": True},
    "gzip 9": {"compression": "gzip", "compression_opts": 9, "shuffle": True},
}


def write_with(path: Path, arrays: dict, options: dict) -> None:
    """The arrays as one split, chunked as cnnbench's writer chunks them, with ``options``."""
    with h5py.File(path, "w") as f:
        group = f.create_group("train")
        for name, array in arrays.items():
            rows = int(max(1, min(len(array), CHUNK_BYTES // max(1, array[:1].nbytes))))
            ds = group.create_dataset(name, shape=array.shape, dtype=array.dtype,
                                      chunks=(rows,) + array.shape[1:], **options)
            for start in range(0, len(array), BLOCK_SIZE):  # block by block, as generation writes
                ds[start:start + BLOCK_SIZE] = array[start:start + BLOCK_SIZE]


def read_all(path: Path) -> None:
    with h5py.File(path, "r") as f:
        for ds in f["train"].values():
            ds[()]


def files_section(rounds: int, folder: Path) -> None:
    print("## Files: generation end to end, and reading back\n")
    print("`write_dataset` of the whole preset (draw, compress, write, rename; one process) and "
          f"reading every array of every split (what a training run reads once); best of {rounds}.\n")
    print("| preset | images | file MB | generate s | images/s | read s | read images/s |")
    print("|---|---|---|---|---|---|---|")
    for preset in CANONICAL.values():
        spec = get_preset(preset).spec()
        path = folder / f"{preset}.h5"
        seconds = best_of(rounds, lambda: write_dataset(spec, path, force=True))
        ds = open_dataset(path)
        reading = best_of(rounds, lambda: [ds.load(s) for s in ("train", "val", "test")])
        n = sum(spec.sizes.values())
        print(f"| {preset} | {n:,} | {path.stat().st_size / 1e6:.1f} | {seconds:.2f} | {n / seconds:,.0f} | "
              f"{reading:.2f} | {n / reading:,.0f} |", flush=True)
    print(f"\ncnnbench writes with {COMPRESSION} in chunks of about {CHUNK_BYTES >> 20} MiB.\n")

    print("### HDF5 filters, per family\n")
    print("The first 4,096 training samples of each canonical preset (every array), written "
          "block by block with cnnbench's chunking; MB/s of uncompressed bytes; best of "
          f"{rounds}. `shuffle` is on for every filter (it only regroups multi-byte values).\n")
    print("| preset | filter | file MB (of raw MB) | write MB/s | read MB/s |")
    print("|---|---|---|---|---|")
    for preset in CANONICAL.values():
        spec = build_spec(get_preset(preset).family, {**get_preset(preset).params, "n_train": 4096})
        family = FAMILIES[spec.family]
        blocks = [family.draw(spec.params, "train", lo, min(4096, lo + BLOCK_SIZE),
                              block_rng(spec.seed, "train", b), None)
                  for b, lo in enumerate(range(0, 4096, BLOCK_SIZE))]
        arrays = {k: np.concatenate([blk[k] for blk in blocks]) for k in blocks[0]}
        raw = sum(a.nbytes for a in arrays.values())
        for label, options in FILTERS.items():
            path = folder / "filter.h5"
            writing = best_of(rounds, lambda: write_with(path, arrays, options))
            reading = best_of(rounds, lambda: read_all(path))
            print(f"| {preset} | {label} | {path.stat().st_size / 1e6:.1f} ({raw / 1e6:.1f}) | "
                  f"{raw / writing / 1e6:,.0f} | {raw / reading / 1e6:,.0f} |", flush=True)
    print()


# ---------------------------------------------------------------------------------------------
# Training: the protocol beside a bare loop


TRAINED = {  # each CNN baseline on the canonical preset of the family it is meant for
    "lines-cnn-as-asked": "lines-16", "lines-cnn-fixed": "lines-16",
    "boxes-cnn-as-asked": "boxes-64", "boxes-cnn-fixed": "boxes-64",
    "coordconv-cnnbench": "boxes-64", "plain-cnn": "boxes-64",
    "patches-vgg-as-asked": "patches-64", "patches-vgg-advised": "patches-64", "resnet": "patches-64",
    "p4cnn": "patches-64", "classify-regress": "patches-64",
}


def bare_loop(baseline, info, arrays, task: str, epochs: int, evaluate: bool) -> float:
    """The same recipe trained by hand: seconds for ``epochs`` epochs over the same tensors.

    ``evaluate``: also one pass over val after each epoch and one over test at the end (what
    anyone does to choose and report an epoch), without the protocol's bookkeeping.
    """
    import torch.nn.functional as F

    from cnnbench.bench.protocol import adam, as_recipe

    torch.manual_seed(0)
    recipe = as_recipe(baseline.make(info), info)
    model = recipe.model
    images = {s: torch.from_numpy(arrays[s]["images"]) for s in arrays}
    targets = torch.from_numpy(np.asarray(arrays["train"]["targets"]))
    if task == "classification":
        targets = targets.long()
    else:
        targets = (targets - targets.mean(0)) / targets.std(0)
    optimizer = (recipe.optimizer or adam(1e-3))(model.parameters())
    loss_fn = recipe.loss or (F.cross_entropy if task == "classification" else F.mse_loss)
    generator = torch.Generator().manual_seed(0)
    start = clock()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(targets), generator=generator)
        for lo in range(0, len(order), recipe.batch_size):
            idx = order[lo:lo + recipe.batch_size]
            x = recipe.preprocess(images["train"][idx])
            if recipe.augment is not None:
                x = recipe.augment(x, generator)
            loss = loss_fn(model(x), targets[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if evaluate:
            model.eval()
            with torch.no_grad():
                for lo in range(0, len(images["val"]), 512):
                    model(recipe.preprocess(images["val"][lo:lo + 512]))
    if evaluate:
        with torch.no_grad():
            for lo in range(0, len(images["test"]), 512):
                model(recipe.preprocess(images["test"][lo:lo + 512]))
    return clock() - start


def train_section(rounds: int, folder: Path, n_train: int, epochs: int, only: list[str] | None = None) -> None:
    from cnnbench.baselines import get_baseline

    from cnnbench.bench.protocol import DataInfo, load_splits, run

    n_eval = max(1, n_train // 5)  # the presets' 5:1:1 splits
    print("## Training: the protocol beside a bare torch loop\n")
    print(f"Each CNN baseline on its family's canonical preset regenerated with {n_train} train, "
          f"{n_eval} val and {n_eval} test images, {epochs} epochs, its own recipe (optimizer, "
          "batch size, preprocessing, augmentation); training images/s = train images x epochs "
          f"/ seconds; best of {rounds}. *protocol*: `cnnbench.bench.protocol.run` with the splits in memory "
          "(val scored every epoch, best weights kept, test scored once). *bare*: the same steps by "
          "hand, training only; *bare + eval*: plus one val pass per epoch and one test pass.\n")
    print("| baseline | preset | protocol img/s | bare img/s | bare + eval img/s | protocol / bare | protocol / bare + eval |")
    print("|---|---|---|---|---|---|---|")
    files = {}
    for name, preset in TRAINED.items():
        if only and name not in only:
            continue
        if preset not in files:
            p = get_preset(preset)
            spec = build_spec(p.family, {**p.params, "n_train": n_train, "n_val": n_eval, "n_test": n_eval})
            files[preset] = folder / f"train-{preset}.h5"
            write_dataset(spec, files[preset], force=True)
        ds = open_dataset(files[preset])
        arrays = load_splits(ds)
        baseline = get_baseline(name)
        info = DataInfo.from_dataset(ds)
        # Untimed first: torch's first calls of a model's ops (kernel selection, allocations)
        # would otherwise land on whichever side is timed first.
        run(ds, baseline.make, name=name, epochs=1, device="cpu", arrays=arrays)
        protocol = best_of(rounds, lambda: run(ds, baseline.make, name=name, epochs=epochs, device="cpu",
                                               arrays=arrays))
        bare = min(bare_loop(baseline, info, arrays, ds.task, epochs, False) for _ in range(rounds))
        bare_eval = min(bare_loop(baseline, info, arrays, ds.task, epochs, True) for _ in range(rounds))
        speed = lambda s: n_train * epochs / s  # noqa: E731
        print(f"| {name} | {preset} | {speed(protocol):,.0f} | {speed(bare):,.0f} | {speed(bare_eval):,.0f} | "
              f"{protocol / bare:.2f}x | {protocol / bare_eval:.2f}x |", flush=True)
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="draw,presets,files,train",
                        help="comma-separated sections: draw, presets, files, train")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best is kept")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the training section")
    parser.add_argument("--train-images", type=int, default=1024, help="training images per baseline")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per training measurement")
    parser.add_argument("--baselines", default=None,
                        help="comma-separated CNN baselines for the training section [default: all of them]")
    parser.add_argument("--clock", choices=sorted(CLOCK), default="cpu",
                        help="cpu: this process's CPU time (stable on a shared machine); wall")
    args = parser.parse_args()
    global clock
    clock = CLOCK[args.clock]
    sections = set(args.only.split(","))
    unknown = sections - {"draw", "presets", "files", "train"}
    if unknown:
        sys.exit(f"Error: unknown section {sorted(unknown)[0]!r}")
    only = args.baselines.split(",") if args.baselines else None
    if only and set(only) - set(TRAINED):
        sys.exit(f"Error: {sorted(set(only) - set(TRAINED))[0]!r} is not one of {', '.join(TRAINED)}")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    print(f"Machine: {machine()}.")
    print(f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}; at the start: {load()}; "
          f"times are {'CPU time of this process' if args.clock == 'cpu' else 'wall clock'}; "
          f"torch threads {args.threads}.\n")
    with tempfile.TemporaryDirectory() as tmp:
        if "draw" in sections:
            draw_section(args.rounds)
        if "presets" in sections:
            presets_section(args.rounds)
        if "files" in sections:
            files_section(args.rounds, Path(tmp))
        if "train" in sections:
            train_section(args.rounds, Path(tmp), args.train_images, args.epochs, only)
    print(f"At the end: {load()}; {time.perf_counter() - started:.0f} s in all.")


if __name__ == "__main__":
    main()
