"""Turning a spec into a dataset file: validation, deterministic blocks, optional workers.

Randomness: every block of ``BLOCK_SIZE`` samples draws from its own
``numpy.random.default_rng([seed, split, stream, block])``. A block's bytes therefore depend
only on the spec and its index: the same file results whatever the number of workers, and
each split has its own streams, so changing ``n_test`` leaves ``train`` unchanged.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np

from ..atomic import check_output_path, signals_allowed
from .families import SPLITS, Optimum, get_family
from .h5file import DatasetWriter
from .params import COMMON_PARAMS, resolve

# Part of the format: changing it changes every dataset's bytes.
BLOCK_SIZE = 1024
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
_BLOCK_STREAM, _PLAN_STREAM = 0, 1


def block_rng(seed: int, split: str, block: int) -> np.random.Generator:
    """The generator for one block of one split; fixed-length keys so no two keys collide."""
    return np.random.default_rng([seed, SPLIT_IDS[split], _BLOCK_STREAM, block])


def plan_rng(seed: int, split: str) -> np.random.Generator:
    """The generator for a family's once-per-split plan (e.g. a permutation of positions)."""
    return np.random.default_rng([seed, SPLIT_IDS[split], _PLAN_STREAM, 0])


@dataclass(frozen=True)
class Spec:
    """A validated dataset specification: everything needed to regenerate a file."""

    family: str
    seed: int
    sizes: dict  # split -> number of rows written
    params: dict  # the family's own parameters, validated, defaults filled in
    preset: str | None = None
    # split -> number of samples the spec records as n_train, n_val, n_test: the requested
    # sizes (or a layout's own). ``sizes`` can be larger: augmented copies add rows to train.
    # None: the same as ``sizes``.
    samples: dict | None = field(default=None)

    def as_dict(self) -> dict:
        recorded = self.samples or self.sizes
        out = {"family": self.family, "seed": self.seed,
               **{f"n_{s}": recorded[s] for s in SPLITS},
               "params": self.params, "block_size": BLOCK_SIZE}
        if self.preset:
            out["preset"] = self.preset
        return out

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)


def build_spec(family_name: str, given: dict, preset: str | None = None) -> Spec:
    """Validate ``given`` (common and family parameters, as text or values) into a Spec."""
    family = get_family(family_name)
    given = dict(given)
    common = resolve(COMMON_PARAMS, {p.name: given.pop(p.name, None) for p in COMMON_PARAMS})
    params = resolve(family.params, given, family.check)
    samples = family.split_sizes(params, {s: common[f"n_{s}"] for s in SPLITS})
    return Spec(family_name, common["seed"], family.rows(params, samples), params, preset, samples)


def spec_from_dict(spec: dict) -> Spec:
    """Rebuild a Spec from a file's ``spec`` attribute (JSON lists become ranges again)."""
    given = {k: spec[k] for k in ("seed", "n_train", "n_val", "n_test")}
    given.update(spec["params"])
    return build_spec(spec["family"], given, spec.get("preset"))


def _draw_block(family_name: str, params: dict, seed: int, split: str, block: int,
                start: int, stop: int, plan) -> dict:
    family = get_family(family_name)
    out = family.draw(params, split, start, stop, block_rng(seed, split, block), plan)
    assert out["images"].dtype == np.uint8 and out["images"].ndim == 4, "family bug: images"
    return out


def _blocks(n: int) -> Iterator[tuple[int, int, int]]:
    for block, start in enumerate(range(0, n, BLOCK_SIZE)):
        yield block, start, min(n, start + BLOCK_SIZE)


def _worker_init(parent: int) -> None:
    """Make a pool worker die with the generation, whatever stops it.

    Ctrl-C reaches the whole process group: workers ignore it and the parent, unwinding,
    terminates them. SIGTERM (what ``Pool.terminate`` sends) gets its default action, even
    where a forked worker inherited the parent's handler. On Linux a worker is also sent
    SIGTERM when the parent dies without unwinding (SIGKILL), instead of being orphaned.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl: best effort
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _pool_context():
    """fork on Linux: the workers' parent is then this process, which ``_worker_init``'s
    parent-death checks rely on (under forkserver, Python 3.14's default there, it would be
    the fork server). Elsewhere the platform's default (spawn)."""
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def iter_split(spec: Spec, split: str, workers: int = 1,
               blocks: range | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(start, arrays)`` for each block of a split, in order.

    ``blocks``: only these block indices (a shard's, see :mod:`cnnbench.data.shards`); the plan is
    still the whole split's, so each block's samples are those of the whole file.

    With ``workers > 1`` blocks are drawn by a process pool; leaving the generator early
    (an exception, Ctrl-C, SIGTERM unwinding as SystemExit, or ``close()``) terminates the
    workers at once rather than waiting for the blocks in flight.
    """
    family = get_family(spec.family)
    n = spec.sizes[split]
    plan = family.plan(spec.params, split, n, plan_rng(spec.seed, split)) if family.plan else None
    jobs = [(spec.family, spec.params, spec.seed, split, b, lo, hi, plan) for b, lo, hi in _blocks(n)
            if blocks is None or b in blocks]
    if not jobs:
        return
    if workers <= 1 or len(jobs) == 1:
        for job in jobs:
            # Drawing runs no h5py code: a signal held by the writer may stop it at once.
            with signals_allowed():
                arrays = _draw_block(*job)
            yield job[5], arrays
        return
    # Pool.__exit__ calls terminate(): the workers are killed, not waited for.
    with _pool_context().Pool(workers, initializer=_worker_init, initargs=(os.getpid(),)) as pool:
        # Keep a bounded number of blocks in flight so memory stays flat on big splits.
        pending = deque(pool.apply_async(_draw_block, job) for job in jobs[: 2 * workers])
        for i, job in enumerate(jobs):
            result = _wait(pending.popleft())
            if i + 2 * workers < len(jobs):
                pending.append(pool.apply_async(_draw_block, jobs[i + 2 * workers]))
            yield job[5], result


def _wait(result):
    """A worker's block; a signal (held by the writer) stops the wait at once."""
    with signals_allowed():
        return result.get()


def first_samples(spec: Spec, split: str, k: int) -> dict[str, np.ndarray]:
    """The first ``k`` samples of a split's first block, drawn as a block of ``k`` samples.

    Cheap (k samples, not a block of 1024), but not the file's bytes: a block's random draws
    depend on its length. For comparing what two seeds give, not for checking a file.
    """
    family = get_family(spec.family)
    n = spec.sizes[split]
    plan = family.plan(spec.params, split, n, plan_rng(spec.seed, split)) if family.plan else None
    return _draw_block(spec.family, spec.params, spec.seed, split, 0, 0, min(k, n), plan)


def generate_arrays(spec: Spec, split: str) -> dict[str, np.ndarray]:
    """One split's arrays in memory, without writing a file (for tests and notebooks)."""
    parts = [arrays for _, arrays in iter_split(spec, split)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def write_dataset(spec: Spec, out: str | os.PathLike, *, force: bool = False, workers: int = 1,
                  progress: Callable[[int], None] | None = None) -> str:
    """Generate ``spec`` into ``out`` atomically; return the fingerprint.

    ``progress`` is called with the number of samples just written.
    """
    check_output_path(out, force)
    family = get_family(spec.family)
    optimum = family.optimum(spec.params)
    attrs = root_attrs(spec)
    target_names = family.target_names(spec.params)
    oracle_scores = []
    with DatasetWriter(out, attrs, force=force) as writer:
        for split in SPLITS:
            # closing(): an interruption in this loop's body stops the split's workers now,
            # not when the suspended generator is garbage-collected.
            with closing(iter_split(spec, split, workers)) as blocks:
                for start, arrays in blocks:
                    if start == 0:
                        writer.create_split(split, spec.sizes[split], arrays,
                                            {"targets": {"names": target_names}})
                    writer.write(split, start, arrays)
                    if split == "test" and optimum is None and family.oracle is not None:
                        oracle_scores.append(family.oracle(spec.params, arrays))
                    if progress is not None:
                        progress(len(arrays["images"]))
        if oracle_scores:
            writer.attrs["optimum"] = json.dumps(
                oracle_optimum(family.task, np.concatenate(oracle_scores)).as_dict())
        fingerprint = writer.fingerprint()
    return fingerprint


def root_attrs(spec: Spec) -> dict:
    """The root attributes a generated file starts with (the writer adds version and fingerprint)."""
    family = get_family(spec.family)
    optimum = family.optimum(spec.params)
    return {"family": spec.family, "task": family.task, "spec": spec.to_json(),
            "optimum": json.dumps(optimum.as_dict() if optimum else None)}


def oracle_optimum(task: str, per_sample: np.ndarray) -> Optimum:
    """Aggregate an oracle's per-sample scores over the test split into an estimated optimum."""
    why = "an oracle given every recorded nuisance factor but the target, on the test split"
    if task == "classification":
        return Optimum("accuracy", float(per_sample.mean()), False, why)
    return Optimum("rmse", float(np.sqrt(per_sample.mean())), False, why)


def total_samples(spec: Spec) -> int:
    return sum(spec.sizes.values())
