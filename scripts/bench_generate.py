"""Generation throughput: images/s for each registered family's small instance and each preset.

Times drawing (rendering) only, one process, the first ``--samples`` training samples of
each spec; HDF5 compression and writing are not included. Prints a markdown table.

    .venv/bin/python scripts/bench_generate.py [--samples 512] [--family patches]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time

import numpy as np

from cnnbench.families import FAMILIES
from cnnbench.generate import BLOCK_SIZE, block_rng, build_spec, plan_rng
from cnnbench.presets import all_presets


def time_draw(spec, samples: int) -> tuple[float, tuple]:
    """Seconds to draw the first ``samples`` training samples (in BLOCK_SIZE blocks)."""
    family = FAMILIES[spec.family]
    n = min(samples, spec.sizes["train"])
    plan = family.plan(spec.params, "train", spec.sizes["train"], plan_rng(spec.seed, "train")) \
        if family.plan else None
    start = time.perf_counter()
    shape = None
    for block, lo in enumerate(range(0, n, BLOCK_SIZE)):
        hi = min(n, lo + BLOCK_SIZE)
        out = family.draw(spec.params, "train", lo, hi, block_rng(spec.seed, "train", block), plan)
        shape = out["images"].shape[1:]
    return time.perf_counter() - start, n, shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=512, help="training samples timed per spec")
    parser.add_argument("--family", help="only this family")
    args = parser.parse_args()

    rows = []
    for name, family in sorted(FAMILIES.items()):
        if args.family in (None, name):
            spec = build_spec(name, {"n_train": args.samples, **family.small})
            rows.append((f"{name} (small)", name, spec))
    for name, preset in all_presets().items():
        if args.family in (None, preset.family):
            rows.append((name, preset.family, preset.spec()))

    print(f"Machine: {platform.processor() or platform.machine()}, {platform.system()}, "
          f"numpy {np.__version__}, one process; {datetime.date.today().isoformat()}\n")
    print("| spec | family | image (H, W, C) | samples | seconds | images/s |")
    print("|---|---|---|---|---|---|")
    for label, family, spec in rows:
        seconds, n, shape = time_draw(spec, args.samples)
        print(f"| {label} | {family} | {shape} | {n} | {seconds:.2f} | {n / seconds:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
