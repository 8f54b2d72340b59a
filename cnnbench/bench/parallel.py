"""Several protocol runs at once, one process per CPU core, each with one torch thread.

Why processes and not torch threads: most of the suite's runs are small models (a 2-filter
CNN on 3x3 images, ridge, a 256-unit MLP) whose steps are too short for torch's intra-op
threads to pay off; on a busy machine two threads even slow a tiny model by orders of
magnitude (they spin waiting for each other). One run per core, one thread each, keeps every
core busy whatever the model size.

Determinism: a run's result depends only on its dataset, recipe, seed and the number of
torch threads, never on which worker ran it or in which order, so ``workers=N`` gives the
same records as ``workers=1`` with one torch thread. Results are handed back in job order.

Workers are started with ``spawn`` (a fresh interpreter): forking a process whose OpenMP
thread pool has run can deadlock the child. Each worker reads a dataset's arrays once and
keeps the last one, so a suite's runs on one preset share one read per worker.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass

from ..errors import CnnbenchError


@dataclass(frozen=True)
class Job:
    """One run: a baseline (by registered name) with one training seed on one dataset file."""

    path: str
    baseline: str
    seed: int
    epochs: int | None = None
    device: str = "cpu"
    memory_budget: object = None


@dataclass
class Done:
    """What a worker sends back: the record and what plots need (never the model)."""

    record: object
    test_predicted: object
    test_targets: object


def default_workers() -> int:
    """One worker per core this process may use (Linux affinity, else the CPU count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------------------------
# The worker side

_progress_queue = None
_cache: dict = {}


def _init_worker(progress_queue) -> None:
    import torch

    global _progress_queue
    _progress_queue = progress_queue
    torch.set_num_threads(1)


def _arrays(job: Job):
    """The dataset and its prepared arrays, read once per worker for consecutive jobs."""
    from ..data.h5file import open_dataset
    from .protocol import DEFAULT_MEMORY_BUDGET, prepare_data

    key = (job.path, job.memory_budget)
    if key not in _cache:
        _cache.clear()  # one dataset at a time: memory stays bounded by the largest
        ds = open_dataset(job.path)
        budget = DEFAULT_MEMORY_BUDGET if job.memory_budget is None else job.memory_budget
        _cache[key] = (ds, prepare_data(ds, budget))
    return _cache[key]


def _run_job(index: int, job: Job):
    """Run one job; a cnnbench error comes back as (class name, message), not a pickle."""
    from ..baselines import get_baseline
    from .protocol import run

    try:
        ds, arrays = _arrays(job)
        baseline = get_baseline(job.baseline)

        def progress(*args):
            if _progress_queue is not None:
                _progress_queue.put((index, args))

        result = run(ds, baseline.make, name=baseline.name, seed=job.seed, epochs=job.epochs,
                     device=job.device, source=baseline.source, progress=progress, arrays=arrays)
    except CnnbenchError as exc:
        return index, None, (type(exc).__name__, str(exc))
    return index, Done(result.record, result.test_predicted, result.test_targets), None


def _reraise(error: tuple[str, str]):
    from .. import errors

    cls = getattr(errors, error[0], CnnbenchError)
    try:
        exc = cls(error[1])
    except TypeError:  # a class whose constructor takes other arguments
        exc = CnnbenchError(error[1])
    raise exc


# --------------------------------------------------------------------------------------------
# The parent side


def run_jobs(jobs: Sequence[Job], workers: int, *, costs: Sequence[float] | None = None,
             on_start: Callable[[int], None] | None = None,
             on_progress: Callable[[int, tuple], None] | None = None,
             on_finish: Callable[[int], None] | None = None,
             on_result: Callable[[int, Done], None] | None = None,
             on_done: Callable[[int, Done], None] | None = None) -> list[Done]:
    """Run ``jobs`` on ``workers`` processes; ``on_done`` is called in job order.

    ``costs``: each job's expected time, in any unit; the costliest start first (longest
    processing time first), so that a long run does not start last and keep one core busy
    while the others idle. Only the start order changes, never a record or the order
    ``on_done`` sees. ``on_start(i)`` when job i is handed to a worker, ``on_progress(i,
    args)`` with the protocol's per-epoch progress arguments, ``on_finish(i)`` as soon as
    job i has ended and ``on_result(i, done)`` as soon as it has succeeded (both in any
    order: the place to save a result that must survive an interruption, since with the
    costliest first, job order can hold results back until the end). The first error (in
    job order) stops the jobs after it and is raised here, once every job before it has run
    and been handed to ``on_done`` (jobs after it that were already running keep their
    workers until they end).
    """
    if workers < 1:
        raise CnnbenchError(f"workers: {workers} must be at least 1")
    ctx = multiprocessing.get_context("spawn")
    progress_queue = ctx.Queue()
    finished: dict[int, Done] = {}
    results: list[Done] = []
    next_to_hand = 0
    error = None
    pending: dict = {}
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(progress_queue,))
    try:
        # Submit at most `workers` jobs ahead, so on_start means "running", not "queued".
        todo = start_order(len(jobs), costs)
        todo.reverse()

        def submit_more():
            while todo and len(pending) < workers:
                i = todo.pop()
                pending[pool.submit(_run_job, i, jobs[i])] = i
                if on_start:
                    on_start(i)

        def needed() -> bool:  # after an error, only the jobs before it still count
            return any(i < error[0] for i in pending.values()) or bool(todo)

        submit_more()
        while pending and (error is None or needed()):
            done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            _drain(progress_queue, on_progress)
            for future in done:
                index = pending.pop(future)
                if on_finish:
                    on_finish(index)
                _, result, failure = future.result()
                if failure is not None:
                    if error is None or index < error[0]:
                        error = (index, failure)
                    todo[:] = [i for i in todo if i < error[0]]
                else:
                    finished[index] = result
                    if on_result:
                        on_result(index, result)
            while next_to_hand in finished and (error is None or next_to_hand < error[0]):
                result = finished.pop(next_to_hand)
                results.append(result)
                if on_done:
                    on_done(next_to_hand, result)
                next_to_hand += 1
            submit_more()
    finally:
        # After an error or a Ctrl-C, the jobs still running are abandoned, not awaited
        # (a run can take minutes).
        if pending:
            _terminate(pool)
        pool.shutdown(wait=True, cancel_futures=True)
        progress_queue.close()
    if error is not None:
        _reraise(error[1])
    return results


def start_order(count: int, costs: Sequence[float] | None) -> list[int]:
    """Job indices, costliest first (ties, and no costs at all, keep job order; a cost that is
    not a finite number counts as 0)."""
    if costs is None:
        return list(range(count))
    if len(costs) != count:
        raise CnnbenchError(f"costs: {len(costs)} given for {count} jobs")

    def cost(i: int) -> float:
        try:
            value = float(costs[i])
        except (TypeError, ValueError):
            return 0.0
        return value if math.isfinite(value) else 0.0

    return sorted(range(count), key=lambda i: -cost(i))


def _terminate(pool: ProcessPoolExecutor) -> None:
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _drain(progress_queue, on_progress) -> None:
    deadline = time.monotonic() + 0.1
    while time.monotonic() < deadline:
        try:
            index, args = progress_queue.get_nowait()
        except queue.Empty:
            return
        if on_progress:
            on_progress(index, args)
