"""What is in a dataset file: the summary behind ``cnnbench info``."""

from __future__ import annotations

import os

import numpy as np

from .h5file import SPLITS, Dataset, open_dataset
from .shards import shard_info


def _target_stats(dataset: Dataset, targets: np.ndarray) -> dict:
    if dataset.task == "classification":
        # open_dataset has checked every id is within 0..num_classes-1.
        counts = np.bincount(targets, minlength=dataset.num_classes)
        return {"class_counts": {name: int(c) for name, c in zip(dataset.target_names, counts)}}
    stats = {}
    for k, name in enumerate(dataset.target_names):
        column = targets[:, k].astype(np.float64)
        stats[name] = {"mean": float(column.mean()), "std": float(column.std()),
                       "min": float(column.min()), "max": float(column.max())}
    return {"target_stats": stats}


def describe_dataset(path: str | os.PathLike) -> dict:
    """A JSON-ready description of a dataset file (reads only the targets, not the images)."""
    dataset = open_dataset(path)
    splits = {}
    for split in SPLITS:
        entry = {"n": dataset.split_size(split),
                 "arrays": {name: list(shape) for name, shape in dataset.shapes[split].items()}}
        if "targets" in dataset.shapes[split] and entry["n"]:  # a shard may hold no rows of a split
            entry.update(_target_stats(dataset, dataset.load(split, ["targets"])["targets"]))
        splits[split] = entry
    return {
        "path": str(dataset.path),
        "family": dataset.family,
        "task": dataset.task,
        "targets": dataset.target_names,
        "fingerprint": dataset.fingerprint,
        "format_version": dataset.format_version,
        "cnnbench_version": dataset.cnnbench_version,
        "public": dataset.public,
        "file_bytes": os.path.getsize(dataset.path),
        "optimum": dataset.optimum,
        "spec": dataset.spec,
        "splits": splits,
        "shard": shard_info(dataset),
    }


def format_description(info: dict) -> str:
    """The human-readable form of :func:`describe_dataset`."""
    lines = [
        f"{info['path']}",
        f"  family       {info['family']} ({info['task']})",
        f"  preset       {info['spec'].get('preset', '-')}",
        f"  fingerprint  {info['fingerprint']}",
        f"  file size    {info['file_bytes'] / 1e6:.2f} MB",
    ]
    opt = info["optimum"]
    if opt:
        kind = "exact" if opt["exact"] else "estimated"
        lines.append(f"  optimum      {opt['metric']} {opt['value']:.4g} ({kind}: {opt['why']})")
    else:
        lines.append("  optimum      unknown")
    if info["public"]:
        lines.append("  public copy  test targets withheld")
    shard = info.get("shard")
    if shard:
        rows = ", ".join(f"{s} {a}-{b}" for s, (a, b) in shard["rows"].items() if b > a)
        lines.append(f"  shard        {shard['index']}/{shard['count']}: rows {rows} of the whole file; "
                     f"fingerprint is the shard's own; merge all {shard['count']} to use it (cnnbench merge)")
    # A file written by other code (a family cnnbench does not generate) may lack these.
    params = ", ".join(f"{k}={v}" for k, v in info["spec"].get("params", {}).items()) or "-"
    seed = "withheld (public copy)" if info["spec"].get("seed_withheld") else info["spec"].get("seed", "-")
    lines.append(f"  seed         {seed}")
    lines.append(f"  params       {params}")
    for split, entry in info["splits"].items():
        shape = "x".join(map(str, entry["arrays"]["images"]))
        lines.append(f"  {split:<5} {entry['n']:>7} images {shape}")
        if "class_counts" in entry:
            counts = ", ".join(f"{k}: {v}" for k, v in entry["class_counts"].items())
            lines.append(f"        classes  {counts}")
        for name, s in entry.get("target_stats", {}).items():
            lines.append(f"        {name:<8} mean {s['mean']:.4g}  std {s['std']:.4g}  "
                         f"range [{s['min']:.4g}, {s['max']:.4g}]")
    return "\n".join(lines)
