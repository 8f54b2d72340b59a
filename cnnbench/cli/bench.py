"""Benchmark commands: bench, baselines, suite."""

from __future__ import annotations

import sys

import click

from ..bench.distributed import is_writer
from ..board.render import render_fingerprints
from ..board.store import Leaderboard, display, resolve_db_path
from ..data.h5file import open_dataset
from . import main
from .data import progress_bar
from .options import db_option, epochs_option, jobs_option, memory_budget_option, resolve_jobs, threads_option
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

    def __enter__(self) -> EpochBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_options(f):
    f = epochs_option("Override each baseline's default epochs (closed-form fits ignore it)")(f)
    f = click.option("--device", default="auto", show_default=True,
                     help="auto (CUDA when present, else CPU), cpu, cuda, cuda:1...")(f)
    f = threads_option(f)
    f = jobs_option(f)
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
def bench(dataset, names, seeds, plot_dir, force, epochs, device, jobs, memory_budget, quiet, db):
    """Train baselines on DATASET.h5 under the protocol, score them on test, record them.

    Each run trains on train, selects its epoch on val and reports test metrics for that
    epoch; every run is recorded in the leaderboard as soon as it ends.

    \b
      cnnbench bench lines-3x3.h5 -b lines-cnn-as-asked -b lines-cnn-fixed --seeds 0-9
      cnnbench bench boxes-64.h5 -b ridge --plot plots/
    """
    from ..bench.runs import run_baselines

    path = resolve_db_path(db)
    run_baselines(dataset, names or None, seeds, db=path, epochs=epochs, device=device,
                  memory_budget=memory_budget, plot_dir=plot_dir, force=force, workers=resolve_jobs(jobs),
                  progress=lambda label: EpochBar(label, quiet), on_record=lambda r: click.echo(_line(r)))
    if not quiet and is_writer():
        click.echo(f"recorded in {display(path)}")


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
          jobs, memory_budget, quiet, db):
    """Generate the canonical presets, run their baselines, record them, print the leaderboard.

    Without flags: the three questions' own tasks (lines-3x3, lines-16, boxes-64, patches-64) with the
    quick baselines, 35 runs in about 2 1/2 minutes on 2 CPU cores, one run per core at a time,
    the longest first (--jobs). --full: the easy and hard rungs and the figure presets with
    every baseline, 10 seeds for the questions' recipes as asked (about 45 minutes on 2 CPU cores,
    plus hours for Liu et al. 2018's 40 runs on the notsoclevr presets); the medium rungs run on request (--full
    --rungs medium). --report writes the figures.

    \b
      cnnbench suite
      cnnbench suite --full --report docs/results.md --force
      cnnbench suite --full --rungs medium
      cnnbench suite --preset lines-3x3 --seeds 0-9
    """
    from ..bench import suite as lib

    given = dict(full=full, rungs=rungs, presets=list(preset_names) or None, baselines=list(names) or None,
                 seeds=seeds)
    if dry_run:
        for step in lib.plan_suite(**given):
            runs = ", ".join(f"{b.name}" + (f" x{len(s)}" if len(s) > 1 else "") for b, s in step.runs)
            click.echo(f"{step.preset.name}: {runs}")
        return

    def on_dataset(step, file, made, runs):
        if not quiet:
            click.echo(f"== {step.preset.name} ({file}{', generated' if made else ''}): "
                       f"{runs} baselines")

    done = lib.run_suite(**given, data_dir=data_dir, db=resolve_db_path(db), report=report, force=force,
                         epochs=epochs, device=device, memory_budget=memory_budget,
                         progress=lambda label: EpochBar(label, quiet),
                         generate_progress=lambda name, total: progress_bar(total, f"generate {name}", quiet),
                         on_dataset=on_dataset, on_record=lambda r: click.echo(_line(r)),
                         workers=resolve_jobs(jobs))
    if not quiet:
        click.echo("")
        with Leaderboard(done.db) as board:
            click.echo(render_fingerprints(board, done.fingerprints))
    if done.report is not None:
        click.echo(f"wrote {done.report}")
    plural = "s" if len(done.steps) != 1 else ""
    click.echo(f"suite: {len(done.records)} runs on {len(done.steps)} dataset{plural} in {done.wall_s:.0f} s; "
               f"recorded in {display(done.db)}")
