"""One dataset generated in shards by several processes or machines, and merged back.

Blocks of ``BLOCK_SIZE`` samples are already the unit of the random streams (see
:mod:`cnnbench.data.generate`), so a shard is a run of blocks: the blocks of every split are
numbered one after the other (train, then val, then test) and shard ``I`` of ``N`` takes
the contiguous run ``[I * B // N, (I + 1) * B // N)`` of the ``B`` blocks. Its samples are
exactly the whole file's samples at those positions, whatever machine drew them.

A shard file is a valid cnnbench file (``cnnbench info`` describes it) with two additions:
the root attribute ``shard`` (JSON: index, count, block and row ranges per split) and,
where the optimum is an oracle's estimate over the test split, the root array
``shard_oracle`` (the oracle's per-sample scores of its test rows, so the merge computes
the same estimate as one process would). Its ``fingerprint`` is over its own arrays. The
commands that score (``bench``, ``evaluate``, ``submit``, ``export-public``) refuse it.

:func:`merge` checks that the files are the ``N`` distinct shards of one spec, verifies
each against its fingerprint while reading it once, and writes either a copy (arrays and
fingerprint identical to ``cnnbench generate`` without ``--shard``) or an HDF5 virtual
dataset file that maps the shards' rows without copying them (same fingerprint).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..atomic import atomic_path, check_output_path
from ..errors import FormatError, ParamError
from .families import SPLITS, get_family
from .generate import BLOCK_SIZE, Spec, _draw_block, iter_split, oracle_optimum, plan_rng, root_attrs, spec_from_dict
from .h5file import (
    FORMAT_VERSION,
    Dataset,
    DatasetWriter,
    fingerprint_from,
    fingerprint_line,
    identity,
    open_dataset,
)

SHARD_ATTR = "shard"
ORACLE_ARRAY = "shard_oracle"
# The root attributes a shard shares with the whole file, in the writer's order.
_SHARED_ATTRS = ("family", "task", "spec", "optimum")


@dataclass(frozen=True)
class ShardPlan:
    """Which blocks (and so which rows) of each split shard ``index`` of ``count`` holds."""

    index: int
    count: int
    blocks: dict  # split -> range of block indices
    rows: dict  # split -> (start, stop) rows of the whole file

    def as_dict(self) -> dict:
        return {"index": self.index, "count": self.count, "block_size": BLOCK_SIZE,
                "blocks": {s: [r.start, r.stop] for s, r in self.blocks.items()},
                "rows": {s: list(r) for s, r in self.rows.items()}}

    def n_rows(self, split: str) -> int:
        start, stop = self.rows[split]
        return stop - start

    def total_rows(self) -> int:
        return sum(self.n_rows(s) for s in SPLITS)


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N), shards numbered 0..N-1 (as Slurm array and Kubernetes indices are)."""
    parts = str(text).split("/")
    try:
        index, count = (int(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        index = count = None
    if index is None:
        raise ParamError(f"shard {text!r}: expected I/N, e.g. 0/4 (shard I of N, I from 0)")
    if count < 1:
        raise ParamError(f"shard {text}: N must be at least 1")
    if not 0 <= index < count:
        raise ParamError(f"shard {text}: I must be in 0..{count - 1} (shards are numbered from 0)")
    return index, count


def block_counts(spec: Spec) -> dict[str, int]:
    return {s: -(-spec.sizes[s] // BLOCK_SIZE) for s in SPLITS}


def plan_shard(spec: Spec, index: int, count: int) -> ShardPlan:
    """Shard ``index`` of ``count``: a contiguous run of the blocks of all splits in order."""
    counts = block_counts(spec)
    total = sum(counts.values())
    if count > total:
        per_split = ", ".join(f"{s} {counts[s]}" for s in SPLITS)
        raise ParamError(f"shard {index}/{count}: this dataset has only {total} blocks of "
                         f"{BLOCK_SIZE} samples ({per_split}); use at most {total} shards")
    first, stop = index * total // count, (index + 1) * total // count
    blocks, rows, offset = {}, {}, 0
    for split in SPLITS:
        lo = min(max(first - offset, 0), counts[split])
        hi = min(max(stop - offset, 0), counts[split])
        blocks[split] = range(lo, hi)
        rows[split] = (min(lo * BLOCK_SIZE, spec.sizes[split]), min(hi * BLOCK_SIZE, spec.sizes[split]))
        offset += counts[split]
    return ShardPlan(index, count, blocks, rows)


def _uses_oracle(spec: Spec) -> bool:
    family = get_family(spec.family)
    return family.optimum(spec.params) is None and family.oracle is not None


def _no_rows(spec: Spec, split: str) -> dict:
    """Empty arrays with a split's dtypes and trailing shapes (one sample drawn to learn them)."""
    family = get_family(spec.family)
    plan = family.plan(spec.params, split, spec.sizes[split], plan_rng(spec.seed, split)) if family.plan else None
    sample = _draw_block(spec.family, spec.params, spec.seed, split, 0, 0, 1, plan)
    return {name: array[:0] for name, array in sample.items()}


def write_shard(spec: Spec, out: str | os.PathLike, index: int, count: int, *, force: bool = False,
                workers: int = 1, progress: Callable[[int], None] | None = None) -> str:
    """Generate shard ``index`` of ``count`` of ``spec`` into ``out`` atomically; return its fingerprint."""
    plan = plan_shard(spec, index, count)
    check_output_path(out, force)
    family = get_family(spec.family)
    attrs = {**root_attrs(spec), SHARD_ATTR: json.dumps(plan.as_dict(), sort_keys=True)}
    names = {"targets": {"names": family.target_names(spec.params)}}
    oracle_scores = [] if _uses_oracle(spec) else None
    with DatasetWriter(out, attrs, force=force) as writer:
        for split in SPLITS:
            first = plan.rows[split][0]
            if not plan.n_rows(split):
                writer.create_split(split, 0, _no_rows(spec, split), names)
                continue
            with closing(iter_split(spec, split, workers, plan.blocks[split])) as blocks:
                for start, arrays in blocks:
                    if start == first:
                        writer.create_split(split, plan.n_rows(split), arrays, names)
                    writer.write(split, start - first, arrays)
                    if split == "test" and oracle_scores is not None:
                        oracle_scores.append(family.oracle(spec.params, arrays))
                    if progress is not None:
                        progress(len(arrays["images"]))
        if oracle_scores is not None:
            scores = np.concatenate(oracle_scores) if oracle_scores else np.zeros(0)
            writer.add_root_array(ORACLE_ARRAY, scores)
        fingerprint = writer.fingerprint()
    return fingerprint


# -- reading shards -------------------------------------------------------------------------

def shard_info(ds: Dataset) -> dict | None:
    """The ``shard`` attribute of a file (index, count, blocks, rows), or None for a whole file."""
    raw = ds.attrs.get(SHARD_ATTR)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (TypeError, json.JSONDecodeError):
        raise FormatError(f"{ds.path}: its shard attribute is not valid JSON") from None


def refuse_shard(ds: Dataset) -> None:
    """Scoring needs the whole dataset: refuse a shard with the command that makes one."""
    info = shard_info(ds)
    if info is not None:
        raise FormatError(f"{ds.path}: is shard {info['index']}/{info['count']} of a dataset, not a whole "
                          f"dataset; merge its {info['count']} shards first (cnnbench merge SHARDS... --out FILE)")


@dataclass(frozen=True)
class _Shard:
    ds: Dataset
    plan: dict


def _first_difference(a: dict, b: dict, prefix: str = "") -> str:
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
                return _first_difference(a[key], b[key], f"{prefix}{key}.")
            return f"{prefix}{key}"
    return ""


def open_shards(paths) -> list[_Shard]:
    """Open and check the shards to merge; return them in index order.

    Refused, one line each: no files, a whole file among them, a file given twice, shards
    of different specs (seeds named apart) or shard counts, a missing or duplicated index,
    and a shard whose layout or arrays are not what its spec and index say.
    """
    if not paths:
        raise ParamError("give the shard files to merge")
    seen: dict[Path, str] = {}
    shards = []
    for path in paths:
        real = Path(path).resolve()
        if real in seen:
            raise ParamError(f"{path}: given twice")
        seen[real] = str(path)
        ds = open_dataset(path)
        plan = shard_info(ds)
        if plan is None:
            raise ParamError(f"{path}: not a shard but a whole dataset (nothing to merge)")
        shards.append(_Shard(ds, plan))
    first = shards[0]
    for other in shards[1:]:
        a, b = first.ds, other.ds
        if a.spec != b.spec:
            what = _first_difference(a.spec, b.spec)
            if what == "seed":
                raise ParamError(f"shards of different seeds: {a.path} has seed {a.spec.get('seed')}, "
                                 f"{b.path} seed {b.spec.get('seed')}")
            raise ParamError(f"shards of different specs: {a.path} and {b.path} differ in {what}")
        if first.plan["count"] != other.plan["count"]:
            raise ParamError(f"shards of different splittings: {a.path} is shard {first.plan['index']}/"
                             f"{first.plan['count']}, {b.path} shard {other.plan['index']}/{other.plan['count']}")
    count = first.plan["count"]
    by_index: dict[int, _Shard] = {}
    for shard in shards:
        index = shard.plan["index"]
        if index in by_index:
            raise ParamError(f"shard {index}/{count} given twice: {by_index[index].ds.path} and {shard.ds.path}")
        by_index[index] = shard
    missing = [i for i in range(count) if i not in by_index]
    if missing:
        raise ParamError(f"shard{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} of {count} "
                         f"missing (given: {', '.join(map(str, sorted(by_index)))})")
    spec = spec_from_dict(first.ds.spec)
    for index, shard in sorted(by_index.items()):
        expected = plan_shard(spec, index, count)
        if shard.plan != json.loads(json.dumps(expected.as_dict())):
            raise FormatError(f"{shard.ds.path}: its shard layout is not the one its spec gives shard "
                              f"{index}/{count} (written by another cnnbench version?)")
        for split in SPLITS:
            if shard.ds.split_size(split) != expected.n_rows(split):
                raise FormatError(f"{shard.ds.path}: split {split} has {shard.ds.split_size(split)} rows, "
                                  f"its shard layout says {expected.n_rows(split)} (truncated?)")
            if shard.ds.shapes[split].keys() != first.ds.shapes[split].keys():
                raise FormatError(f"{shard.ds.path}: split {split} does not hold the same arrays as "
                                  f"{first.ds.path}")
    return [by_index[i] for i in range(count)]


class _Fingerprint:
    """The fingerprint of arrays read in order, block by block (see docs/format.md)."""

    def __init__(self):
        self.hashes: dict[tuple[str, str], hashlib._Hash] = {}
        self.meta: dict[tuple[str, str], tuple] = {}

    def update(self, split: str, name: str, array: np.ndarray) -> None:
        key = (split, name)
        if key not in self.hashes:
            self.hashes[key] = hashlib.sha256()
            self.meta[key] = (array.dtype, array.shape[1:], 0)
        dtype, trailing, rows = self.meta[key]
        self.meta[key] = (dtype, trailing, rows + len(array))
        self.hashes[key].update(np.ascontiguousarray(array).tobytes())

    def hexdigest(self, ident: dict) -> str:
        """The fingerprint of these arrays under ``ident`` (:func:`cnnbench.data.h5file.identity`)."""
        lines = []
        for split in SPLITS:
            for name in sorted(n for s, n in self.hashes if s == split):
                dtype, trailing, rows = self.meta[(split, name)]
                lines.append(fingerprint_line(split, name, dtype, (rows,) + trailing,
                                              self.hashes[(split, name)].hexdigest()))
        return fingerprint_from(ident, lines)


def _read_blocks(shards: list[_Shard], files: list[h5py.File]) -> Iterator[tuple[str, int, dict]]:
    """Yield ``(split, start row in the whole file, arrays)`` block by block, in file order.

    Each shard's arrays are hashed on the way; a shard whose hash is not its recorded
    fingerprint is refused once it has been read (before the merged file is renamed into place).
    """
    hashes = [_Fingerprint() for _ in shards]
    for split in SPLITS:
        for shard, f, digest in zip(shards, files, hashes):
            group, (first, stop) = f[split], shard.plan["rows"][split]
            names = sorted(group)
            for name in names if first == stop else ():  # an empty split still has its arrays
                digest.update(split, name, group[name][()])
            for lo in range(0, stop - first, BLOCK_SIZE):
                arrays = {}
                for name in names:
                    try:
                        arrays[name] = group[name][lo:lo + BLOCK_SIZE]
                    except OSError:
                        raise FormatError(f"{shard.ds.path}: array {split}/{name} cannot be read "
                                          "(truncated or corrupt?)") from None
                    digest.update(split, name, arrays[name])
                yield split, first + lo, arrays
    for shard, digest in zip(shards, hashes):
        if digest.hexdigest(shard.ds.identity) != shard.ds.fingerprint:
            raise FormatError(f"{shard.ds.path}: its arrays do not match its recorded fingerprint "
                              f"{shard.ds.fingerprint[:12]} (modified or corrupt; generate shard "
                              f"{shard.plan['index']}/{shard.plan['count']} again)")


def _merged_attrs(shards: list[_Shard], files: list[h5py.File]) -> dict:
    """The whole file's root attributes: the shards' shared ones, with the oracle's optimum
    computed over every shard's test rows in order, as one process computes it."""
    ds = shards[0].ds
    attrs = {key: ds.attrs[key] for key in _SHARED_ATTRS}
    if ORACLE_ARRAY in files[0]:
        scores = np.concatenate([f[ORACLE_ARRAY][()] for f in files])
        attrs["optimum"] = json.dumps(oracle_optimum(ds.task, scores).as_dict())
    return attrs


def merge(paths, out: str | os.PathLike, *, force: bool = False, virtual: bool = False,
          progress: Callable[[int], None] | None = None) -> str:
    """Merge the shards at ``paths`` into the whole dataset at ``out``; return its fingerprint.

    ``virtual``: ``out`` maps the shards' arrays (HDF5 virtual datasets, source files named
    relative to ``out``'s folder) instead of copying them; the shards must stay beside it.
    """
    out = check_output_path(out, force)
    shards = open_shards(paths)
    if any(out.resolve() == s.ds.path.resolve() for s in shards):
        raise ParamError(f"out {str(out)!r} is one of the shards")
    files = [h5py.File(s.ds.path, "r") for s in shards]
    try:
        attrs = _merged_attrs(shards, files)
        target_names = {"targets": {"names": shards[0].ds.target_names}}
        if virtual:
            return _write_virtual(shards, files, out, attrs, target_names, progress)
        sizes = {s: sum(sh.ds.split_size(s) for sh in shards) for s in SPLITS}
        # Arrays created in the family's order, as generate creates them: the same file bytes.
        order = list(_no_rows(spec_from_dict(shards[0].ds.spec), "train"))
        with DatasetWriter(out, attrs, force=force) as writer:
            for split, start, arrays in _read_blocks(shards, files):
                arrays = {name: arrays[name] for name in sorted(arrays, key=_position(order))}
                if start == 0:
                    writer.create_split(split, sizes[split], arrays, target_names)
                writer.write(split, start, arrays)
                if progress is not None:
                    progress(len(arrays["images"]))
            return writer.fingerprint()
    finally:
        for f in files:
            f.close()


def _position(order: list[str]):
    return lambda name: (order.index(name) if name in order else len(order), name)


def _write_virtual(shards, files, out: Path, attrs: dict, array_attrs: dict, progress) -> str:
    whole = _Fingerprint()
    for split, _, arrays in _read_blocks(shards, files):  # verifies the shards, hashes the whole
        for name, array in arrays.items():
            whole.update(split, name, array)
        if progress is not None:
            progress(len(arrays["images"]))
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w", track_order=True) as f:
            f.attrs["format_version"] = FORMAT_VERSION
            for key, value in attrs.items():
                f.attrs[key] = value
            fingerprint = whole.hexdigest(identity(attrs["family"], attrs["task"], json.loads(attrs["spec"]),
                                                   json.loads(attrs["optimum"]), shards[0].ds.target_names))
            f.attrs["fingerprint"] = fingerprint
            f.attrs["cnnbench_version"] = __version__
            for split in SPLITS:
                group = f.create_group(split)
                for name in sorted(files[0][split]):
                    template = files[0][split][name]
                    n = sum(sh.ds.split_size(split) for sh in shards)
                    layout = h5py.VirtualLayout(shape=(n,) + template.shape[1:], dtype=template.dtype)
                    for shard in shards:
                        first, stop = shard.plan["rows"][split]
                        if stop > first:
                            # Relative to out's folder: the shards and the file move together.
                            source = os.path.relpath(shard.ds.path.resolve(), out.resolve().parent)
                            layout[first:stop] = h5py.VirtualSource(
                                source, f"{split}/{name}", shape=(stop - first,) + template.shape[1:],
                                dtype=template.dtype)
                    ds = group.create_virtual_dataset(name, layout)
                    for key, value in array_attrs.get(name, {}).items():
                        ds.attrs[key] = value
    return fingerprint
