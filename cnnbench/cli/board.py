"""Leaderboard commands: leaderboard (and submit, export-public)."""

from __future__ import annotations

import click

from ..h5format import open_dataset
from ..leaderboard import Leaderboard, resolve_db_path
from ..report import FORMATS, render
from . import main


def db_option(f):
    """``--db PATH``, shared by every command that reads or writes the leaderboard."""
    return click.option("--db", type=click.Path(dir_okay=False), default=None, metavar="PATH",
                        help="Leaderboard database [default: $CNNBENCH_DB, else "
                             "~/.local/share/cnnbench/leaderboard.sqlite].")(f)


@main.command()
@click.argument("dataset", required=False, type=click.Path(dir_okay=False))
@click.option("--preset", metavar="NAME", help="Boards of the datasets generated from this preset.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@db_option
def leaderboard(dataset, preset, fmt, db):
    """Show ranked runs, per dataset fingerprint and protocol version.

    With DATASET.h5 (or --preset), that dataset's board; with neither, every dataset in the
    database. Runs of one recipe over several training seeds form one row (mean, spread,
    share of seeds that solved the task or collapsed to the mean). Reference predictors and
    the dataset's known optimum are marked rows, not ranked.

    \b
      cnnbench leaderboard lines-3x3.h5
      cnnbench leaderboard --preset boxes-64 --format markdown
      cnnbench leaderboard --format json > board.json
    """
    if dataset and preset:
        raise click.UsageError("give a DATASET file or --preset, not both")
    path = resolve_db_path(db)
    if not path.exists():
        click.echo("[]" if fmt == "json" else f"no runs recorded yet ({path} does not exist)")
        return
    optimum, fingerprints = None, None
    if dataset:
        ds = open_dataset(dataset)
        optimum, fingerprints = ds.optimum, [ds.fingerprint]
    with Leaderboard(path, create=False) as board:
        if preset:
            fingerprints = board.fingerprints(preset=preset)
        boards = board.boards(fingerprints, optimum=optimum)
    if not boards and fmt in ("table", "markdown"):
        which = f"dataset {dataset}" if dataset else f"preset {preset}" if preset else "any dataset"
        click.echo(f"no runs recorded for {which} in {path}")
        return
    click.echo(render(boards, fmt).rstrip("\n"))
