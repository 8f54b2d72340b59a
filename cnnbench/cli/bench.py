"""Benchmark commands: bench, baselines, suite."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import click

from ..atomic import write_text
from ..bench.distributed import is_writer
from ..board.render import render_fingerprints
from ..board.store import Leaderboard, resolve_db_path
from ..data.h5file import check_output_path, open_dataset
from ..errors import ParamError
from . import main
from .data import progress_bar
from .options import db_option, epochs_option, memory_budget_option, threads_option
from .progress import ProgressLines


class EpochBar:
    """Progress of one run (epochs, current val metric): a click progress bar on a terminal,
    else a progress line every 10 s of a long run (cnnbench.cli.progress); nothing if quiet.

    The library calls it after each epoch; the bar is opened on the first call, when the
    number of epochs is known.
    """

    def __init__(self, label: str, quiet: bool):
        self.label, self.enabled, self.bar, self.done = label, not quiet and sys.stderr.isatty(), None, 0
        self.text = ""
        self.lines = ProgressLines(label, "epochs", enabled=not quiet and not self.enabled).__enter__()

    def __call__(self, epoch: int, epochs: int, metric: str, value: float) -> None:
        self.lines.update(epoch, epochs, f"val {metric} {value:.4g}")
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=epochs, label=self.label, file=sys.stderr,
                                         item_show_func=lambda _: self.text)
            self.bar.__enter__()
        self.text = f"val {metric} {value:.4g}"
        self.bar.update(epoch - self.done)
        self.done = epoch

    def close(self) -> None:
        self.lines.__exit__(None, None, None)
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def run_options(f):
    f = epochs_option("Override each baseline's default epochs (closed-form fits ignore it)")(f)
    f = click.option("--device", default="auto", show_default=True,
                     help="auto (CUDA when present, else CPU), cpu, cuda, cuda:1...")(f)
    f = threads_option(f)
    f = memory_budget_option(f)
    f = click.option("--quiet", "-q", is_flag=True, help="No progress bars; one line per run.")(f)
    return f


def _line(record) -> str:
    m = record.metrics
    if record.task == "classification":
        scores = f"accuracy {m['accuracy']:.4f}"
    else:
        scores = f"rmse {m['rmse']:.4f}  mae {m['mae']:.4f}  r2 {m['r2']:.4f}"
    return (f"{record.name:<22} seed {record.seed:<3} {scores}  (epoch {record.best_epoch}/"
            f"{record.epochs}, {record.params} params, {record.wall_time_s:.1f} s, {record.device})")


def _run_many(ds, runs, *, epochs, device, quiet, board, plot_dir=None, on_record=None,
              memory_budget):
    """Train and record each (baseline, seeds); the split arrays are read once for all."""
    from ..bench.protocol import prepare_data, run  # torch only for the commands that train
    arrays = prepare_data(ds, memory_budget)  # in memory, or streamed when over the budget
    records = []
    for baseline, seeds in runs:
        if baseline.source == "reference":
            seeds = seeds[:1]  # closed-form fits do not depend on the training seed
        for seed in seeds:
            bar = EpochBar(f"{Path(ds.path).stem}: {baseline.name} seed {seed}", quiet)
            try:
                result = run(ds, baseline.make, name=baseline.name, seed=seed, epochs=epochs,
                             device=device, source=baseline.source, progress=bar, arrays=arrays)
            finally:
                bar.close()
            if not is_writer():  # under torchrun: rank 0 records and reports
                continue
            board.add(result.record, ds)
            records.append(result.record)
            click.echo(_line(result.record))
            if plot_dir is not None:
                _plots(result, ds, Path(plot_dir))
            if on_record:
                on_record(result.record)
    return records


def _plot_paths(ds, folder: Path, name: str, seed: int) -> list[Path]:
    """The PNGs --plot writes for one run: learning curves, and for regression the scatter."""
    stem = f"{Path(ds.path).stem}_{name}_seed{seed}"
    return [folder / f"{stem}_curves.png"] + ([folder / f"{stem}_scatter.png"] if ds.task == "regression" else [])


def _plots(result, ds, folder: Path) -> None:
    from ..board.plots import learning_curves, scatter

    folder.mkdir(parents=True, exist_ok=True)
    r = result.record
    paths = _plot_paths(ds, folder, r.name, r.seed)
    learning_curves(r, paths[0])
    if r.task == "regression":
        scatter(result.test_predicted, result.test_targets, paths[1], f"{r.name} seed {r.seed}", ds.target_names)


@main.command()
@click.argument("dataset", type=click.Path(dir_okay=False))
@click.option("--baseline", "-b", "names", multiple=True, metavar="NAME",
              help="Baseline to run (repeatable) [default: every one that applies].")
@click.option("--seed", "--seeds", "seeds", default="0", show_default=True, metavar="S",
              help="Training seed(s): 3, 0-9 or 0,4,7; one recorded run per seed.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Write learning curves (and, for regression, predicted-vs-true) PNGs here.")
@click.option("--force", is_flag=True, help="Overwrite existing --plot files.")
@run_options
@db_option
def bench(dataset, names, seeds, plot_dir, force, epochs, device, memory_budget, quiet, db):
    """Train baselines on DATASET.h5 under the protocol, score them on test, record them.

    Each run trains on train, selects its epoch on val and reports test metrics for that
    epoch; every run is recorded in the leaderboard as soon as it ends.

    \b
      cnnbench bench lines-3x3.h5 -b lines-cnn-as-asked -b lines-cnn-fixed --seeds 0-9
      cnnbench bench boxes-64.h5 -b ridge --plot plots/
    """
    from ..baselines import applicable, get_baseline
    from ..bench.protocol import parse_seeds

    seed_list = parse_seeds(seeds)
    ds = open_dataset(dataset)
    if names:
        # Each once, also when named by a former name and its new one.
        chosen = list({b.name: b for b in map(get_baseline, names)}.values())
        wrong = [b for b in chosen if not b.applies_to(ds.family, ds.task)]
        if wrong:
            raise ParamError(f"baseline {wrong[0].name!r} does not apply to {ds.family} "
                             f"({ds.task}); see cnnbench baselines")
    else:
        shape = ds.shapes["train"]["images"][1:]
        chosen = [b for b in applicable(ds.family, ds.task) if b.fits(shape)]
    if plot_dir:
        Path(plot_dir).mkdir(parents=True, exist_ok=True)
        for b in chosen:  # every plot checked before any run: a refusal costs no training
            for seed in (seed_list[:1] if b.source == "reference" else seed_list):
                for plot in _plot_paths(ds, Path(plot_dir), b.name, seed):
                    check_output_path(plot, force)
    path = resolve_db_path(db)
    with Leaderboard(path) as board:
        _run_many(ds, [(b, seed_list) for b in chosen], epochs=epochs, device=device, quiet=quiet,
                  board=board, plot_dir=plot_dir, memory_budget=memory_budget)
    if not quiet and is_writer():
        click.echo(f"recorded in {path}")


@main.command("baselines")
@click.option("--dataset", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Only the baselines that apply to this dataset.")
def baselines_command(dataset):
    """List the baselines, one line each: name, what it applies to, what it tests.

    Marks: q = quick (part of the default suite), r = reference predictor.
    """
    from ..baselines import all_baselines

    found = list(all_baselines().values())
    if dataset:
        ds = open_dataset(dataset)
        found = [b for b in found if b.applies_to(ds.family, ds.task)]
    def applies_to(b) -> str:
        if b.families:
            return ",".join(b.families)
        return "any" if len(b.tasks) > 1 else f"any {b.tasks[0]}"

    rows = [(b.name, ("q" if b.quick else "-") + ("r" if b.source == "reference" else "-"),
             applies_to(b), f"{b.summary}  [{b.epochs}]") for b in found]
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows + [("name", "qr", "applies to", "")]) for i in range(3)]
    for row in [("name", "qr", "applies to", "what it is  [epochs]")] + rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3])


@main.command()
@click.option("--full", is_flag=True,
              help="Every canonical preset but the medium rungs, every applicable baseline.")
@click.option("--rungs", default=None, metavar="LIST",
              help="The presets of these rungs (easy,medium,hard), e.g. --rungs medium.")
@click.option("--preset", "preset_names", multiple=True, metavar="NAME", help="Only this preset (repeatable).")
@click.option("--baseline", "-b", "names", multiple=True, metavar="NAME",
              help="Only this baseline (repeatable).")
@click.option("--data-dir", default="data", show_default=True, type=click.Path(file_okay=False),
              help="Where the preset files are generated (kept and reused when their spec matches).")
@click.option("--seeds", default=None, metavar="S",
              help="Training seeds for every run [default: each baseline's, 10 for the questions' recipes as asked].")
@click.option("--dry-run", is_flag=True, help="Print the plan (presets, baselines, seeds) and stop.")
@click.option("--report", "report", type=click.Path(dir_okay=False), default=None, metavar="FILE.md",
              help="Write the figures table and every result (e.g. docs/results.md); an existing "
                   "file only with --force (its hand-written notes are kept).")
@click.option("--force", is_flag=True,
              help="Overwrite an existing --report, and --data-dir files that are not this preset.")
@run_options
@db_option
def suite(full, rungs, preset_names, names, data_dir, seeds, dry_run, report, force, epochs, device,
          memory_budget, quiet, db):
    """Generate the canonical presets, run their baselines, record them, print the leaderboard.

    Without flags: the three questions' own tasks (lines-3x3, lines-16, boxes-64, patches-64) with the
    quick baselines, 37 runs in about 4 minutes on 2 CPU cores (far longer on a busy machine,
    where --threads 1 helps). --full: the easy and hard rungs and the figure presets with
    every baseline, 10 seeds for the questions' recipes as asked (about 14 minutes, plus hours for Liu
    et al. 2018's 40 runs on the notsoclevr presets); the medium rungs run on request (--full
    --rungs medium). --report writes the figures.

    \b
      cnnbench suite
      cnnbench suite --full --report docs/results.md --force
      cnnbench suite --full --rungs medium
      cnnbench suite --preset lines-3x3 --seeds 0-9
    """
    from ..bench import suite as lib
    from ..bench.protocol import parse_seeds

    started = time.perf_counter()
    seed_list = parse_seeds(seeds) if seeds else None
    presets = lib.choose_presets(full, rungs.split(",") if rungs else None, list(preset_names) or None)
    steps = lib.plan(presets, full, seed_list, list(names) or None)
    if dry_run:
        for step in steps:
            runs = ", ".join(f"{b.name}" + (f" x{len(s)}" if len(s) > 1 else "") for b, s in step.runs)
            click.echo(f"{step.preset.name}: {runs}")
        return
    if report:
        check_output_path(report, force)
    lib.check_data_dir([step.preset for step in steps], data_dir, force)
    path = resolve_db_path(db)
    records, fingerprints, optimum = [], [], {}
    with Leaderboard(path) as board:
        for step in steps:
            preset = step.preset
            spec = preset.spec()
            total = sum(spec.sizes.values())
            with progress_bar(total, f"generate {preset.name}", quiet) as update:
                file, made = lib.ensure_dataset(preset, data_dir, update)
            ds = open_dataset(file)
            fingerprints.append(ds.fingerprint)
            optimum[preset.name] = ds.optimum
            if not quiet:
                click.echo(f"== {preset.name} ({file}{', generated' if made else ''}): "
                           f"{len(step.runs)} baselines")
            shape = ds.shapes["train"]["images"][1:]
            runs = [(b, s) for b, s in step.runs if names or b.fits(shape)]
            records += _run_many(ds, runs, epochs=epochs, device=device, quiet=quiet, board=board,
                                 memory_budget=memory_budget)
        total_s = time.perf_counter() - started
        if not quiet:
            click.echo("")
            click.echo(render_fingerprints(board, list(dict.fromkeys(fingerprints))))
    if report:
        # The command as given, so the report says what it measured; the 20-minute figure is
        # about the whole --full suite, so a narrower run does not claim it.
        args = ((["--full"] if full else []) + (["--rungs", rungs] if rungs else [])
                + [a for p in preset_names for a in ("--preset", p)]
                + [a for n in names for a in ("-b", n)] + (["--seeds", seeds] if seeds else [])
                + (["--epochs", str(epochs)] if epochs else []))
        whole = full and not (rungs or preset_names or names or seeds or epochs)
        command = " ".join(["cnnbench suite", *map(shlex.quote, args)])
        left_out = ([p.name for p in lib.choose_presets(True, rungs.split(",") if rungs else None)
                     if p.name not in {s.preset.name for s in steps}] if full else [])
        write_text(report, lib.render_report(records, total_s, optimum, command, whole_suite=whole,
                                             kept=lib.kept_notes(report), left_out=left_out))
        click.echo(f"wrote {report}")
    plural = "s" if len(steps) != 1 else ""
    click.echo(f"suite: {len(records)} runs on {len(steps)} dataset{plural} in {total_s:.0f} s; recorded in {path}")
