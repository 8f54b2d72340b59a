"""The benchmark suite: generate the canonical presets, run their baselines, check the figures.

``cnnbench suite`` and ``cnnbench.run_suite`` are :func:`run_suite`. The plan (which presets,
which baselines, how many training seeds) is decided here; the runs go through
:func:`cnnbench.bench.runs.run_many` like any other; the figures the benchmark promises (see
``docs/results.md``) are checked from the records the suite produced, never typed in.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import __version__
from ..atomic import check_output_path, write_text
from ..baselines import Baseline, applicable, get_baseline
from ..board.ranking import same_score
from ..board.records import COLLAPSE_RULE, PRIMARY_METRIC, RunRecord
from ..board.store import Leaderboard, resolve_db_path
from ..data.generate import write_dataset
from ..data.h5file import FORMAT_VERSION, format_version_of, open_dataset
from ..data.optimum import Optimum
from ..data.presets import Preset, all_presets
from ..data.streaming import DEFAULT_MEMORY_BUDGET
from ..errors import CnnbenchError, ParamError
from .runs import RunProgress, as_seeds, items_for, run_items, runs_in_workers

RUNGS = ("easy", "medium", "hard")


@dataclass
class Step:
    """One preset and the baselines to run on it, each with its training seeds."""

    preset: Preset
    runs: list[tuple[Baseline, list[int]]] = field(default_factory=list)


def choose_presets(full: bool, rungs: list[str] | None = None, names: list[str] | None = None) -> list[Preset]:
    """The presets a suite runs.

    Named presets if ``names``; else every preset of the given ``rungs``; else, with
    ``full``, every preset but the medium rungs (they run on request, ``--rungs medium``)
    plus the quick ones; else the quick presets (the three questions' own tasks).
    """
    presets = all_presets()
    if names:
        unknown = [n for n in names if n not in presets]
        if unknown:
            raise ParamError(f"unknown preset {unknown[0]!r} (known: {', '.join(presets)})")
        chosen = [presets[n] for n in names]
    else:
        chosen = [p for p in presets.values() if p.quick or (full and p.rung != "medium")]
    if rungs:
        bad = [r for r in rungs if r not in RUNGS]
        if bad:
            raise ParamError(f"rungs: {bad[0]!r} is not one of {', '.join(RUNGS)}")
        chosen = [p for p in (chosen if names else presets.values()) if p.rung in rungs]
    return chosen


def plan(presets: list[Preset], full: bool, seeds: list[int] | None = None,
         baselines: list[str] | None = None) -> list[Step]:
    """Which baselines run where: quick baselines by default, every applicable one with ``full``.

    With ``full``, a baseline that names its ``suite`` presets runs only on those (the
    expensive ones go where their figures need them). Seeds: ``seeds`` for every run if
    given, else each baseline's ``seeds`` on its ``seed_presets`` (the training seeds its
    figure needs; 10 for the questions' recipes as asked on their datasets) and one elsewhere.
    """
    from ..data.families import get_family

    steps = []
    for preset in presets:
        family = get_family(preset.family)
        if baselines:
            chosen = [get_baseline(n) for n in baselines]
            chosen = [b for b in chosen if b.applies_to(family.name, family.task)]
        else:
            chosen = applicable(family.name, family.task, quick_only=not full)
            if full:
                chosen = [b for b in chosen if b.suite is None or preset.name in b.suite]
        if not full and not baselines:  # the quick suite keeps to the runs that take seconds
            chosen = [b for b in chosen if b.quick_max_inputs is None or b.quick_on(image_shape(preset))]
        step = Step(preset)
        for b in chosen:
            n = b.seeds if preset.name in b.seed_presets else 1
            if not full and b.quick_seeds is not None:
                n = min(n, b.quick_seeds)
            step.runs.append((b, list(seeds) if seeds else list(range(n))))
        steps.append(step)
    return steps


def image_shape(preset: Preset) -> tuple:
    """The (H, W, C) of a preset's images, from one drawn sample (no file)."""
    from ..data.generate import build_spec, generate_arrays

    spec = preset.spec()
    one = build_spec(spec.family, {**spec.params, "n_train": 1, "n_val": 1, "n_test": 1}, preset.name)
    return generate_arrays(one, "train")["images"].shape[1:]


def dataset_path(preset: Preset, data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / f"{preset.name}.h5"


def _reusable(path: Path, preset: Preset) -> tuple[bool, str | None]:
    """Whether the file at ``path`` is the preset's (reuse it) and, if not, why replacing it
    needs --force (None: a stale copy of this preset, replaced freely)."""
    spec = preset.spec()
    try:
        found = open_dataset(path).spec
    except CnnbenchError:
        # Written by an older cnnbench (another format version): a stale copy, made again.
        version = format_version_of(path)
        if isinstance(version, int) and not isinstance(version, bool) and version < FORMAT_VERSION:
            return False, None
        return False, "is not a readable cnnbench dataset"
    if found == json.loads(spec.to_json()):  # compared as JSON gives them back (tuples are lists)
        return True, None
    if found.get("preset") == preset.name and found.get("seed") == spec.seed:
        return False, None  # the preset's own file from before its parameters changed
    return False, f"holds another dataset than preset {preset.name} with its published seed"


def check_data_dir(presets: list[Preset], data_dir: str | os.PathLike, force: bool) -> None:
    """Refuse, before any work, to replace a --data-dir file that is not a stale copy of its preset."""
    for preset in presets:
        path = dataset_path(preset, data_dir)
        if path.exists() and not force:
            reuse, why = _reusable(path, preset)
            if not reuse and why:
                raise ParamError(f"{path} {why}; move it away or pass force=True to replace it")


def ensure_dataset(preset: Preset, data_dir: str | os.PathLike,
                   progress: Callable[[int], None] | None = None) -> tuple[Path, bool]:
    """``data_dir/<preset>.h5``, generated unless a file with the same spec is there.

    Returns the path and whether it was (re)generated. :func:`check_data_dir` decides first
    whether a file there may be replaced.
    """
    folder = Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = dataset_path(preset, data_dir)
    if path.exists() and _reusable(path, preset)[0]:
        return path, False
    write_dataset(preset.spec(), path, force=True, progress=progress)
    return path, True


# --------------------------------------------------------------------------------------------
# Running it


@dataclass
class SuiteResult:
    """What :func:`run_suite` did: the plan, the recorded runs, the datasets and their optima."""

    steps: list[Step]
    records: list[RunRecord]
    fingerprints: list[str]  # the datasets run, in order, each once
    optimum: dict[str, Optimum | None]  # by preset name
    wall_s: float  # the whole suite, generation included
    db: Path
    report: Path | None = None


def plan_suite(full: bool = False, rungs=None, presets: list[str] | None = None,
               baselines: list[str] | None = None, seeds=None) -> list[Step]:
    """The suite's plan (:func:`choose_presets` then :func:`plan`), from run_suite's parameters."""
    seed_list = as_seeds(seeds) if seeds is not None else None
    return plan(choose_presets(full, _rung_list(rungs), list(presets) if presets else None), full, seed_list,
                list(baselines) if baselines else None)


def _rung_list(rungs) -> list[str] | None:
    """run_suite's ``rungs`` ("easy,hard" or a list) as a list, or None for all."""
    return rungs.split(",") if isinstance(rungs, str) else (list(rungs) if rungs else None)


def suite_command(full: bool = False, rungs=None, presets=None, baselines=None, seeds=None,
                  epochs: int | None = None) -> str:
    """The ``cnnbench suite`` command line that makes this suite (the report names it)."""
    rung_text = rungs if isinstance(rungs, str) or rungs is None else ",".join(rungs)
    seed_text = None if seeds is None else (seeds if isinstance(seeds, str) else
                                            str(seeds) if isinstance(seeds, int) else ",".join(map(str, seeds)))
    args = ((["--full"] if full else []) + (["--rungs", rung_text] if rung_text else [])
            + [a for p in presets or () for a in ("--preset", p)]
            + [a for n in baselines or () for a in ("-b", n)] + (["--seeds", seed_text] if seed_text else [])
            + (["--epochs", str(epochs)] if epochs else []))
    return " ".join(["cnnbench suite", *map(shlex.quote, args)])


def run_suite(*, full: bool = False, rungs=None, presets: list[str] | None = None,
              baselines: list[str] | None = None, seeds=None, data_dir: str | os.PathLike = "data",
              db: str | os.PathLike | None = None, report: str | os.PathLike | None = None,
              force: bool = False, epochs: int | None = None, device: str = "auto",
              memory_budget=DEFAULT_MEMORY_BUDGET, progress: RunProgress | None = None,
              generate_progress: Callable[[str, int], AbstractContextManager] | None = None,
              on_dataset: Callable[[Step, Path, bool, int], None] | None = None,
              on_record: Callable[[RunRecord], None] | None = None, workers: int = 1) -> SuiteResult:
    """Generate the canonical presets, run their baselines and record every run, as ``cnnbench suite``.

    Parameters
    ----------
    full : every preset but the medium rungs, every applicable baseline (default: the three
        questions' own presets with the quick baselines)
    rungs : only the presets of these rungs ("easy", "medium", "hard"; a list or "easy,hard")
    presets : only these presets (names)
    baselines : only these baselines (names)
    seeds : training seeds for every run (an int, a list or "0-9"); default each baseline's
    data_dir : where the preset files are generated (kept and reused when their spec matches)
    db : the leaderboard file (default ``$CNNBENCH_DB``, else the user's data folder)
    report : write the figures and every result to this Markdown file (e.g. docs/results.md);
        an existing one only with ``force`` (its hand-written notes are kept)
    force : overwrite an existing ``report``, and ``data_dir`` files that are not their preset
    epochs, device, memory_budget : as :func:`cnnbench.run`
    progress : per run, as :func:`cnnbench.bench.runs.run_baselines`'s
    generate_progress : ``generate_progress(preset_name, samples)`` -> a context manager whose
        value is called with the number of samples just written, while a preset is generated
    on_dataset : called as ``(step, path, generated, runs)`` before a preset's first record
        (every preset is generated or checked before any run starts)
    on_record : called with each :class:`~cnnbench.board.records.RunRecord` once recorded
    workers : runs at once, each in its own process with one torch thread (CPU only); the
        records equal those of ``workers=1`` with one torch thread

    Every refusal (an unknown name, a report or data file that needs ``force``) comes before
    any work. Returns a :class:`SuiteResult`.
    """
    started = time.perf_counter()
    steps = plan_suite(full, rungs, presets, baselines, seeds)
    if report is not None:
        check_output_path(report, force)
    check_data_dir([step.preset for step in steps], data_dir, force)
    path = resolve_db_path(db)
    fingerprints, optimum, items, opened, step_of = [], {}, [], [], {}
    # Every dataset first, then every run through one executor: with several workers, no core
    # waits at the end of one preset for another preset's files.
    for step in steps:
        preset = step.preset
        total = sum(preset.spec().sizes.values())
        with (generate_progress(preset.name, total) if generate_progress else nullcontext()) as update:
            file, made = ensure_dataset(preset, data_dir, update)
        ds = open_dataset(file)
        fingerprints.append(ds.fingerprint)
        optimum[preset.name] = Optimum.of(ds.optimum)
        shape = ds.shapes["train"]["images"][1:]
        # Named baselines run whatever the image size; by default the pixel models keep to theirs.
        runs = [(b, s) for b, s in step.runs if baselines or b.fits(shape)]
        for item in items_for(ds, runs):
            step_of[id(item)] = len(opened)
            items.append(item)
        opened.append((step, file, made, runs))

    announced = 0

    def announce(upto: int) -> None:  # on_dataset for every step up to this one, in order
        nonlocal announced
        while announced <= upto and announced < len(opened):
            step, file, made, runs = opened[announced]
            if on_dataset is not None:
                on_dataset(step, file, made, len(runs))
            announced += 1

    with Leaderboard(path) as board:
        records = run_items(items, board, workers=workers, epochs=epochs, device=device,
                            memory_budget=memory_budget, progress=progress, on_record=on_record,
                            before=lambda item: announce(step_of[id(item)]))
    announce(len(opened) - 1)
    wall_s = time.perf_counter() - started
    written = None
    if report is not None:
        # The command, so the report says what it measured; the 20-minute figure is about the
        # whole --full suite, so a narrower run does not claim it.
        whole = full and not (rungs or presets or baselines or seeds is not None or epochs)
        run_names = {s.preset.name for s in steps}
        left_out = [p.name for p in choose_presets(True, _rung_list(rungs)) if p.name not in run_names] if full else []
        write_text(report, render_report(records, wall_s, optimum,
                                         suite_command(full, rungs, presets, baselines, seeds, epochs),
                                         whole_suite=whole, kept=kept_notes(report), left_out=left_out,
                                         workers=min(workers, len(items)) if runs_in_workers(items, workers, device)
                                         else 1))
        written = Path(report)
    return SuiteResult(steps, records, list(dict.fromkeys(fingerprints)), optimum, wall_s, path, written)


# --------------------------------------------------------------------------------------------
# Summaries and figures, from records


def group(records: list[RunRecord]) -> dict[tuple[str, str], list[RunRecord]]:
    """Records by (preset or dataset path, baseline name), in first-seen order."""
    out: dict[tuple[str, str], list[RunRecord]] = {}
    for r in records:
        out.setdefault((r.preset or r.dataset_path, r.name), []).append(r)
    return out


@dataclass
class Summary:
    dataset: str
    name: str
    metric: str
    n: int
    mean: float
    std: float  # sample standard deviation over seeds (as on the leaderboard); 0 for one seed
    best: float
    worst: float
    solved: float | None  # classification: share of seeds reaching the dataset's solved accuracy
    wall_s: float  # summed over seeds
    params: int | None
    extra: dict = field(default_factory=dict)


def solved_accuracy(records: list[RunRecord], dataset: str, optimum: Optimum | dict | None) -> float:
    """The accuracy a seed must reach to count as solved: the optimum where known, else the
    best any run reached on that dataset (the leaderboard's rule)."""
    optimum = Optimum.of(optimum)
    if optimum and optimum.value is not None:
        return optimum.value
    return max(r.score for r in records if (r.preset or r.dataset_path) == dataset)


def summarize_runs(records: list[RunRecord], optimum: dict[str, Optimum | dict | None] | None = None) -> list[Summary]:
    """One :class:`Summary` per (dataset, baseline): its runs over the training seeds, for the report."""
    out = []
    for (dataset, name), rs in group(records).items():
        metric, higher = PRIMARY_METRIC[rs[0].task]
        scores = [r.score for r in rs]
        solved = None
        if rs[0].task == "classification":
            target = solved_accuracy(records, dataset, (optimum or {}).get(dataset))
            solved = sum(s >= target or same_score(s, target) for s in scores) / len(scores)
        extra = {}
        if rs[0].task == "regression":
            extra["r2_mean"] = statistics.fmean(r.metrics["r2"] for r in rs)
            extra["collapsed"] = sum(bool(r.collapsed) for r in rs)
        out.append(Summary(dataset, name, metric, len(rs), statistics.fmean(scores),
                           statistics.stdev(scores) if len(scores) > 1 else 0.0,
                           max(scores) if higher else min(scores),
                           min(scores) if higher else max(scores), solved,
                           sum(r.wall_time_s or 0.0 for r in rs), rs[0].params, extra))
    return out


@dataclass
class Figure:
    dataset: str
    claim: str
    measured: str
    met: bool | None  # None: not run


def _runs(records, dataset, name):
    return [r for r in records if (r.preset or r.dataset_path) == dataset and r.name == name]


def check_figures(records: list[RunRecord], total_wall_s: float | None = None,
                  optimum: dict[str, Optimum | dict | None] | None = None) -> list[Figure]:
    """The benchmark's promised figures, each checked against the runs that were made.

    ``optimum``: each preset's recorded optimum (the floor the hard rungs must leave room
    above); without it the hard-rung figures say the floor is unknown and are not met.
    """
    figs: list[Figure] = []

    def fig(dataset, claim, measure):
        try:
            measured, met = measure()
        except _Missing as missing:
            measured, met = f"not run ({missing})", None
        figs.append(Figure(dataset, claim, measured, met))

    def need(dataset, name):
        rs = _runs(records, dataset, name)
        if not rs:
            raise _Missing(name)
        return rs

    def best_of(dataset, exclude=()):
        rs = [r for r in records if (r.preset or r.dataset_path) == dataset and r.name not in exclude]
        if not rs:
            raise _Missing(f"nothing on {dataset}")
        higher = PRIMARY_METRIC[rs[0].task][1]
        return (max if higher else min)(rs, key=lambda r: r.score)

    def lines_as_asked():
        rs = need("lines-3x3", "lines-cnn-as-asked")
        perfect = sum(r.score >= 1.0 for r in rs)
        mean = statistics.fmean(r.score for r in rs)
        return (f"{perfect} of {len(rs)} seeds reach 1.0; mean accuracy {mean:.3f}",
                perfect == 0 and mean <= 0.6)

    def lines_fixed():
        rs = need("lines-3x3", "lines-cnn-fixed")
        perfect = sum(r.score >= 1.0 for r in rs)
        return f"{perfect} of {len(rs)} seeds reach 1.0", perfect == len(rs) and len(rs) >= 10

    def lines16():
        b = best_of("lines-16")
        return f"best {b.name}: {b.score:.4f}", b.score >= 0.99

    def boxes_collapse():
        rs = need("boxes-64", "boxes-cnn-as-asked")
        dead = [r for r in rs if r.collapsed]
        text = f"{len(dead)} of {len(rs)} seeds collapse ({COLLAPSE_RULE})"
        if dead:
            text += (f"; their RMSE {min(r.score for r in dead):.2f} to {max(r.score for r in dead):.2f} px, "
                     f"prediction std at most {max(max(r.diagnostics['prediction_std']) for r in dead):.3g} px")
        return text, len(dead) > len(rs) / 2

    def under(dataset, name, limit):
        def measure():
            rs = need(dataset, name)
            worst = max(r.score for r in rs)
            return f"RMSE {worst:.3f} px" + (f" (worst of {len(rs)})" if len(rs) > 1 else ""), worst < limit
        return measure

    def liu2018(dataset, conv):
        """Liu et al. 2018's CoordConv regressor against their conv counterpart: share of seeds solved."""
        def measure():
            cc, other = need(dataset, "liu2018-coordconv"), need(dataset, conv)
            text = f"CoordConv: {solved_share(cc)}; conv: {solved_share(other)}"
            won = sum(r.score < SOLVED_PX for r in cc) > sum(r.score < SOLVED_PX for r in other)
            return text, won and len(cc) >= 10 and len(other) >= 10
        return measure

    def patches():
        mean = need("patches-64", "mean")[0].score
        b = best_of("patches-64", exclude=("mean",))
        others = {}
        for name in ("ridge-mean-colour", "patches-vgg-as-asked"):
            rs = _runs(records, "patches-64", name)
            if rs:
                others[name] = min(r.score for r in rs)
        text = f"best {b.name}: {b.score:.2f}; mean predictor {mean:.2f} (1/8: {mean / 8:.2f})"
        text += "".join(f"; {k} {v:.2f}" for k, v in others.items())
        met = b.score <= mean / 8 and all(b.score < v for k, v in others.items() if k != b.name)
        return text, met and len(others) == 2

    def hard_rung(dataset):
        """Best and worst non-reference baselines (mean over seeds) apart, the best above the floor."""
        def measure():
            means = {name: statistics.fmean(r.score for r in rs)
                     for (ds, name), rs in group(records).items()
                     if ds == dataset and rs[0].source != "reference"}
            if len(means) < 2:
                raise _Missing(f"fewer than two non-reference baselines on {dataset}")
            task = next(r.task for r in records if (r.preset or r.dataset_path) == dataset)
            higher = PRIMARY_METRIC[task][1]
            order = sorted(means, key=means.get, reverse=higher)
            best, worst = order[0], order[-1]
            known = Optimum.of((optimum or {}).get(dataset))
            floor = known.value if known else None
            if higher:
                text = (f"best {best} {means[best]:.4f}, worst {worst} {means[worst]:.4f} "
                        f"({100 * (means[best] - means[worst]):.1f} points apart)")
                spread = means[best] - means[worst] >= 0.10
                room = floor is not None and means[best] <= floor - 0.03
                if floor is not None:
                    text += f"; floor {floor:.4f}, {100 * (floor - means[best]):.1f} points above the best"
            else:
                text = (f"best {best} {means[best]:.3f}, worst {worst} {means[worst]:.3f} "
                        f"({means[worst] / max(means[best], 1e-12):.1f}x)")
                spread = means[worst] >= 3 * means[best]
                room = floor is not None and means[best] >= 1.5 * floor
                if floor is not None:
                    text += f"; floor {floor:.3f}, best at {means[best] / max(floor, 1e-12):.1f}x the floor"
            return text + ("" if floor is not None else "; floor unknown"), spread and room
        return measure

    fig("lines-3x3", "lines-cnn-as-asked never reaches 1.0 over 10 seeds, mean <= 0.6", lines_as_asked)
    fig("lines-3x3", "lines-cnn-fixed reaches 1.0 on all 10 seeds", lines_fixed)
    fig("lines-16", "best test accuracy >= 0.99", lines16)
    fig("boxes-64", "boxes-cnn-as-asked collapses to the mean on most of 10 seeds", boxes_collapse)
    fig("boxes-64", "ridge test RMSE < 1 px", under("boxes-64", "ridge", 1.0))
    fig("boxes-64", "coordconv-cnnbench test RMSE < 1 px", under("boxes-64", "coordconv-cnnbench", 1.0))
    for dataset, conv in (("notsoclevr-quadrant", "liu2018-conv-quadrant"),
                          ("notsoclevr-uniform", "liu2018-conv-uniform")):
        fig(dataset, f"Liu et al. 2018's nets, 10 seeds each: CoordConv regressor under {SOLVED_PX} px "
            "test RMSE on more seeds than their conv counterpart", liu2018(dataset, conv))
    fig("patches-64", "best <= 1/8 of the mean predictor, better than ridge on mean colour and "
        "patches-vgg-as-asked", patches)
    presets = all_presets()
    for dataset in dict.fromkeys(r.preset for r in records if r.preset):
        if dataset in presets and presets[dataset].rung == "hard":
            fig(dataset, "hard rung: best and worst non-reference baselines >= 3x apart in RMSE "
                "(10 accuracy points); best >= 1.5x the floor (3 points below it)", hard_rung(dataset))
    if total_wall_s is not None:
        # Liu et al. 2018's nets train 100 epochs on 64x64 images, 40 runs: hours on 2 cores.
        # They are the figures above; the 20-minute figure is the rest of the suite's.
        liu = sum(r.wall_time_s or 0.0 for r in records if r.name.startswith("liu2018-"))
        rest = total_wall_s - liu
        figs.append(Figure("all", "whole suite under 20 minutes on 2 CPU cores (Liu et al. 2018's runs apart)",
                           f"{rest / 60:.1f} min on {os.cpu_count()} CPUs, {torch.get_num_threads()} torch "
                           f"threads" + (f"; Liu et al. 2018's runs {liu / 3600:.1f} h more" if liu else ""),
                           rest < 20 * 60))
    return figs


class _Missing(Exception):
    pass


# Not-so-Clevr (integer centres, one-hot input): a seed under this test RMSE has found the
# exact answer (the authors' net reaches thousandths of a pixel when it trains at all).
SOLVED_PX = 0.5


def solved_share(records: list[RunRecord]) -> str:
    """'k of n seeds < 0.5 px (median m px); not: seeds s (a to b px)' from one baseline's runs."""
    ok = sorted((r for r in records if r.score < SOLVED_PX), key=lambda r: r.seed)
    stuck = sorted((r for r in records if r.score >= SOLVED_PX), key=lambda r: r.seed)
    text = f"{len(ok)} of {len(records)} seeds < {SOLVED_PX} px"
    if ok:
        text += f" (median {statistics.median(r.score for r in ok):.3g} px)"
    if stuck:
        text += (f"; not: seed{'s' if len(stuck) > 1 else ''} {', '.join(str(r.seed) for r in stuck)} "
                 f"({min(r.score for r in stuck):.3g} to {max(r.score for r in stuck):.3g} px)")
    return text


# --------------------------------------------------------------------------------------------
# The report


def machine(records: list[RunRecord] = (), workers: int = 1) -> str:
    """The machine, and how the runs used it: torch threads per run (from the records, since
    worker processes set their own), and how many ran at once."""
    # Closed-form fits record no thread count; workers run everything on one.
    threads = (sorted({r.torch_threads for r in records if r.torch_threads})
               or [1 if workers > 1 else torch.get_num_threads()])
    how = f"{'/'.join(map(str, threads))} torch thread{'s' if threads != [1] else ''} per run"
    if workers > 1:
        how += f", {workers} runs at once on worker processes"
    return (f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, torch {torch.__version__} ({how})")


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if metric == "accuracy" else f"{value:.3f}"


# Everything after this line in an existing report is written by hand and kept on rewrite.
NOTES_MARKER = "<!-- Hand-written notes below: `cnnbench suite --report` keeps them when it rewrites this file. -->"


def kept_notes(path: str | os.PathLike) -> str:
    """The hand-written part of an existing report (from :data:`NOTES_MARKER` on), or ''."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return ""
    at = text.find(NOTES_MARKER)
    return text[at:] if at >= 0 else ""


def render_report(records: list[RunRecord], total_wall_s: float, optimum: dict[str, Optimum | dict | None],
                  command: str = "cnnbench suite --full", whole_suite: bool = True, kept: str = "",
                  left_out: list[str] | None = None, workers: int = 1) -> str:
    """``docs/results.md``: the figures table and every baseline's result, from these runs.

    ``whole_suite``: the runs are the whole ``--full`` suite, so its wall time is checked
    against the 20-minute figure. ``kept``: hand-written notes appended unchanged.
    ``left_out``: presets of ``--full`` this run did not make, named so that a reader does
    not take their missing tables (or older figures elsewhere) for this run's. ``workers``:
    how many runs went at once (named in the machine line).
    """
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    devices = sorted({r.device for r in records})
    lines = [
        "# Results",
        "",
        f"Written by `{command}` on {now}; cnnbench {__version__}, protocol "
        f"version {records[0].protocol_version if records else '?'}.",
        f"Machine: {machine(records, workers)}; device {', '.join(devices)}.",
        f"Measured wall time of the whole suite (generation included): {total_wall_s:.0f} s "
        f"({total_wall_s / 60:.1f} min).",
        "",
        "Every number below comes from the runs this command made; a figure that was not met "
        "says so. Scores are on the test split, for the epoch selected on val. Each dataset's "
        "section names its fingerprint: the figures hold for those exact files.",
        "",
    ]
    if left_out:
        lines[-1:] = [
            "",
            f"Not part of this run: {', '.join(f'`{n}`' for n in left_out)} (presets of `suite --full`; "
            "their figures below read \"not run\", and the wall time above does not include them)."
            + (" The notsoclevr presets' Liu et al. 2018 runs take hours here; they were measured "
               "separately: see the CoordConv section of the hand-written notes below."
               if any(n.startswith("notsoclevr") for n in left_out) else ""),
            "",
        ]
    lines += [
        "## Figures",
        "",
        "| dataset | figure | measured | met |",
        "|---|---|---|---|",
    ]
    for f in check_figures(records, total_wall_s if whole_suite else None, optimum):
        mark = {True: "yes", False: "**no**", None: "not run"}[f.met]
        lines.append(f"| {f.dataset} | {f.claim} | {f.measured} | {mark} |")
    summaries = summarize_runs(records, optimum)
    for dataset in dict.fromkeys(s.dataset for s in summaries):
        rows = [s for s in summaries if s.dataset == dataset]
        metric = rows[0].metric
        higher = PRIMARY_METRIC["classification" if metric == "accuracy" else "regression"][1]
        rows.sort(key=lambda s: -s.mean if higher else s.mean)
        lines += ["", f"## {dataset}", ""]
        prints = list(dict.fromkeys(r.fingerprint for r in records if (r.preset or r.dataset_path) == dataset))
        lines += [f"Dataset fingerprint{'s' if len(prints) > 1 else ''}: "
                  + ", ".join(f"`{fp}`" for fp in prints) + ".", ""]
        opt = Optimum.of(optimum.get(dataset))
        if opt:
            lines += [f"Known optimum: {metric} {_fmt(opt.value, metric)} "
                      f"({'exact' if opt.exact else 'estimate'}: {opt.why}).", ""]
        head = f"| baseline | seeds | mean {metric} | std | best | worst |"
        sep = "|---|---|---|---|---|---|"
        if metric == "accuracy":
            head, sep = head + " solved |", sep + "---|"
        else:
            head, sep = head + " mean R² | collapsed |", sep + "---|---|"
        lines += [head + " params | wall s (all seeds) |", sep + "---|---|"]
        for s in rows:
            cells = [s.name, str(s.n), _fmt(s.mean, metric), _fmt(s.std, metric),
                     _fmt(s.best, metric), _fmt(s.worst, metric)]
            if metric == "accuracy":
                cells.append(f"{s.solved:.0%}")
            else:
                cells += [f"{s.extra['r2_mean']:.3f}", f"{s.extra['collapsed']} of {s.n}"]
            cells += [str(s.params if s.params is not None else ""), f"{s.wall_s:.1f}"]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", _column_notes(summaries)]
    text = "\n".join(lines) + "\n"
    return text + ("\n" + kept.rstrip("\n") + "\n" if kept else "")


def _column_notes(summaries: list[Summary]) -> str:
    notes = []
    if any(s.solved is not None for s in summaries):
        notes.append("solved = share of seeds reaching the known optimum (else the best accuracy "
                     "any run reached on that dataset)")
    if any(s.metric == "rmse" for s in summaries):
        notes.append(f"collapsed = seeds predicting about the mean ({COLLAPSE_RULE})")
    notes.append("std = sample standard deviation over seeds")
    return "Columns: " + "; ".join(notes) + "."
