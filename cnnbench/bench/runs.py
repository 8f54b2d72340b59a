"""Training baselines on one dataset and recording each run: the one run loop.

``cnnbench bench``, ``cnnbench suite`` and Python (:func:`run_baselines`,
:func:`cnnbench.bench.suite.run_suite`) all train through :func:`run_many`: each baseline
with its training seeds, the split arrays read once for all, each run recorded on the board
as soon as it ends (an interruption loses only the runs under way).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from ..atomic import check_output_path
from ..baselines import Baseline, applicable, get_baseline
from ..board.records import RunRecord
from ..board.store import Leaderboard, resolve_db_path
from ..data.h5file import Dataset, open_dataset
from ..data.streaming import DEFAULT_MEMORY_BUDGET
from ..errors import ParamError
from .distributed import is_writer

# progress(label) -> a context manager whose value is called after each epoch of that run
# as (epoch, epochs, metric_name, val_value); the CLI passes its progress bar.
RunProgress = Callable[[str], AbstractContextManager]


def as_seeds(seeds) -> list[int]:
    """Training seeds from an int, a text like ``"0-9"`` or ``"0,3,5"``, or an iterable of ints."""
    from .protocol import parse_seeds

    if isinstance(seeds, (str, int)) and not isinstance(seeds, bool):
        return parse_seeds(str(seeds))
    try:
        items = list(seeds)
    except TypeError:
        raise ParamError(f"seeds: {seeds!r} is not a seed, a seed list or a text like '0-9'") from None
    if not items or any(isinstance(s, bool) or not isinstance(s, int) for s in items):
        raise ParamError(f"seeds: {seeds!r} must hold at least one integer seed")
    return parse_seeds(",".join(map(str, items)))


def choose_baselines(ds: Dataset, names: Iterable[str] | None = None) -> list[Baseline]:
    """The named baselines, each once (refused if one does not apply to the dataset); without
    names, every baseline that applies and whose input size fits the images."""
    if names:
        # Each once, also when named by a former name and its new one.
        chosen = list({b.name: b for b in map(get_baseline, names)}.values())
        wrong = [b for b in chosen if not b.applies_to(ds.family, ds.task)]
        if wrong:
            raise ParamError(f"baseline {wrong[0].name!r} does not apply to {ds.family} "
                             f"({ds.task}); see cnnbench baselines")
        return chosen
    shape = ds.shapes["train"]["images"][1:]
    return [b for b in applicable(ds.family, ds.task) if b.fits(shape)]


def seeds_for(baseline: Baseline, seeds: list[int]) -> list[int]:
    """Closed-form fits (reference predictors) do not depend on the training seed: one run."""
    return seeds[:1] if baseline.source == "reference" else seeds


def plot_paths(ds: Dataset, folder: str | os.PathLike, name: str, seed: int) -> list[Path]:
    """The PNGs one run's plots go to: learning curves, and for regression the scatter."""
    stem = f"{Path(ds.path).stem}_{name}_seed{seed}"
    folder = Path(folder)
    return [folder / f"{stem}_curves.png"] + ([folder / f"{stem}_scatter.png"] if ds.task == "regression" else [])


def _plots(result, ds: Dataset, folder: Path) -> None:
    from ..board.plots import learning_curves, scatter

    folder.mkdir(parents=True, exist_ok=True)
    r = result.record
    paths = plot_paths(ds, folder, r.name, r.seed)
    learning_curves(r, paths[0])
    if r.task == "regression":
        scatter(result.test_predicted, result.test_targets, paths[1], f"{r.name} seed {r.seed}", ds.target_names)


@dataclass(frozen=True)
class RunItem:
    """One run to make: a baseline with one training seed on one opened dataset."""

    ds: Dataset
    baseline: Baseline
    seed: int


def items_for(ds: Dataset, runs: list[tuple[Baseline, list[int]]]) -> list[RunItem]:
    """Each (baseline, seeds) pair as runs, in order (one seed for reference predictors)."""
    return [RunItem(ds, b, seed) for b, seeds in runs for seed in seeds_for(b, seeds)]


def _label(item: RunItem) -> str:
    ds = item.ds
    return f"{Path(ds.path).stem if ds.path else ds.family}: {item.baseline.name} seed {item.seed}"


def runs_in_workers(items: list[RunItem], workers: int, device: str) -> bool:
    """Worker processes only where they can help and cannot change a result's meaning: several
    runs, on CPU, from files a worker can open, and not under torchrun."""
    from .distributed import world_size
    from .protocol import resolve_device

    return (workers > 1 and len(items) > 1 and world_size() == 1
            and resolve_device(device).type == "cpu" and all(i.ds.path for i in items))


def run_items(items: list[RunItem], board: Leaderboard, *, workers: int = 1, epochs: int | None = None,
              device: str = "auto", memory_budget=DEFAULT_MEMORY_BUDGET,
              plot_dir: str | os.PathLike | None = None, progress: RunProgress | None = None,
              on_record: Callable[[RunRecord], None] | None = None,
              before: Callable[[RunItem], None] | None = None) -> list[RunRecord]:
    """Train and record each run, each as soon as it ends; report them (``on_record``, plots,
    the returned list) in order.

    ``workers`` > 1 runs that many at once in worker processes with one torch thread each
    (:mod:`cnnbench.bench.parallel`), the longest expected first (:mod:`cnnbench.bench.cost`):
    the records are those of ``workers=1`` with one torch thread, reported in the same order;
    the board stores each as its run ends, so an interruption loses only the runs under way
    (the board's rows are then in the order the runs ended, which no ranking depends on).
    ``before(item)`` is called before a run starts (one worker) or before its record is
    reported (several).
    """
    if runs_in_workers(items, workers, device):
        return _run_parallel(items, board, workers, epochs=epochs, device=device,
                             memory_budget=memory_budget, plot_dir=plot_dir, progress=progress,
                             on_record=on_record, before=before)
    from .protocol import prepare_data, run  # torch, only when something trains

    records, arrays = [], {}
    for item in items:
        ds = item.ds
        if id(ds) not in arrays:  # each file's arrays read once (in memory, or streamed)
            arrays.clear()
            arrays[id(ds)] = prepare_data(ds, memory_budget)
        if before is not None:
            before(item)
        with (progress(_label(item)) if progress is not None else nullcontext()) as on_epoch:
            result = run(ds, item.baseline.make, name=item.baseline.name, seed=item.seed, epochs=epochs,
                         device=device, source=item.baseline.source, progress=on_epoch, arrays=arrays[id(ds)])
        if not is_writer():  # under torchrun: rank 0 records and reports
            continue
        board.add(result.record, ds)
        _report(result, ds, records, plot_dir, on_record)
    return records


def _report(result, ds: Dataset, records: list, plot_dir, on_record) -> None:
    """One stored run's record: kept for the caller, its plots written, ``on_record`` told."""
    records.append(result.record)
    if plot_dir is not None:
        _plots(result, ds, Path(plot_dir))
    if on_record is not None:
        on_record(result.record)


def _run_parallel(items, board, workers, *, epochs, device, memory_budget, plot_dir, progress,
                  on_record, before) -> list[RunRecord]:
    from .cost import estimated_seconds
    from .parallel import Job, run_jobs

    jobs = [Job(str(i.ds.path), i.baseline.name, i.seed, epochs, "cpu", memory_budget) for i in items]
    guesses: dict = {}  # one per (dataset, baseline): seeds cost the same
    for i in items:
        key = (id(i.ds), i.baseline.name)
        if key not in guesses:
            guesses[key] = estimated_seconds(i.ds, i.baseline, epochs)
    costs = [guesses[(id(i.ds), i.baseline.name)] for i in items]
    bars: dict[int, object] = {}
    records: list[RunRecord] = []

    def on_start(index):
        if progress is not None:
            context = progress(_label(items[index]))
            bars[index] = (context, context.__enter__())

    def on_progress(index, args):
        if index in bars and bars[index][1] is not None:
            bars[index][1](*args)

    def on_finish(index):
        if index in bars:
            bars.pop(index)[0].__exit__(None, None, None)

    def on_result(index, done):  # stored at once: job order can hold it back until the end
        board.add(done.record, items[index].ds)

    def on_done(index, done):
        if before is not None:
            before(items[index])
        _report(done, items[index].ds, records, plot_dir, on_record)

    try:
        run_jobs(jobs, workers, costs=costs, on_start=on_start, on_progress=on_progress, on_finish=on_finish,
                 on_result=on_result, on_done=on_done)
    finally:
        for index in list(bars):
            on_finish(index)
    return records


def run_many(ds: Dataset, runs: list[tuple[Baseline, list[int]]], board: Leaderboard, *,
             epochs: int | None = None, device: str = "auto", memory_budget=DEFAULT_MEMORY_BUDGET,
             plot_dir: str | os.PathLike | None = None, progress: RunProgress | None = None,
             on_record: Callable[[RunRecord], None] | None = None, workers: int = 1) -> list[RunRecord]:
    """Train and record each (baseline, seeds) on ``ds``; the split arrays are read once for all.

    Each run is added to ``board`` as soon as it ends, its plots written to ``plot_dir`` if
    given, then ``on_record(record)`` is called. Under torchrun only rank 0 records. Returns
    the records, in run order. ``workers``: as :func:`run_items`.
    """
    return run_items(items_for(ds, runs), board, workers=workers, epochs=epochs, device=device,
                     memory_budget=memory_budget, plot_dir=plot_dir, progress=progress,
                     on_record=on_record)


def run_baselines(dataset, baselines: Iterable[str] | None = None, seeds=0, *,
                  db: str | os.PathLike | None = None, epochs: int | None = None, device: str = "auto",
                  memory_budget=DEFAULT_MEMORY_BUDGET, plot_dir: str | os.PathLike | None = None,
                  force: bool = False, progress: RunProgress | None = None,
                  on_record: Callable[[RunRecord], None] | None = None, workers: int = 1) -> list[RunRecord]:
    """Train baselines on a dataset under the protocol and record every run, as ``cnnbench bench``.

    Parameters
    ----------
    dataset : a dataset file's path or an opened :class:`~cnnbench.data.h5file.Dataset`
    baselines : baseline names (``cnnbench baselines``); default every one that applies and
        fits the images
    seeds : training seeds: an int, a list, or a text such as ``"0-9"`` or ``"0,3,5"``; one
        recorded run per seed (one for reference predictors)
    db : the leaderboard file (default ``$CNNBENCH_DB``, else the user's data folder)
    epochs, device, memory_budget : as :func:`cnnbench.run`
    plot_dir : write each run's learning curves (and, for regression, predicted-vs-true) PNGs here
    force : overwrite existing plot files (every one is checked before any training)
    progress : ``progress(label)`` -> a context manager whose value is called after each
        epoch as ``(epoch, epochs, metric_name, val_value)``
    on_record : called with each :class:`~cnnbench.board.records.RunRecord` once recorded
    workers : runs at once, each in its own process with one torch thread (CPU only); the
        records equal those of ``workers=1`` with one torch thread

    Returns
    -------
    list of RunRecord : the recorded runs, in run order.
    """
    seed_list = as_seeds(seeds)
    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    chosen = choose_baselines(ds, list(baselines) if baselines is not None else None)
    if plot_dir is not None:
        Path(plot_dir).mkdir(parents=True, exist_ok=True)
        for b in chosen:  # every plot checked before any run: a refusal costs no training
            for seed in seeds_for(b, seed_list):
                for plot in plot_paths(ds, plot_dir, b.name, seed):
                    check_output_path(plot, force)
    with Leaderboard(resolve_db_path(db)) as board:
        return run_many(ds, [(b, seed_list) for b in chosen], board, epochs=epochs, device=device,
                        memory_budget=memory_budget, plot_dir=plot_dir, progress=progress,
                        on_record=on_record, workers=workers)
