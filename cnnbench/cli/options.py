"""Options shared by several commands, declared once; each number has its range (click
enforces it and shows it in --help)."""

from __future__ import annotations

import click

from ..params import MAX_EPOCHS, MAX_THREADS
from ..records import MAX_PARAMS


def db_option(f):
    """``--db PATH``, shared by every command that reads or writes the leaderboard."""
    return click.option("--db", type=click.Path(dir_okay=False), default=None, metavar="PATH",
                        help="Leaderboard database [default: $CNNBENCH_DB, else "
                             "$XDG_DATA_HOME/cnnbench/leaderboard.sqlite, i.e. "
                             "~/.local/share/cnnbench/leaderboard.sqlite].")(f)


def _set_threads(ctx, param, threads):
    if threads:
        import torch  # only commands that train take this option

        torch.set_num_threads(threads)


def threads_option(f):
    """``--threads N``: torch's CPU threads, set as soon as the option is read."""
    return click.option("--threads", type=click.IntRange(1, MAX_THREADS), default=None, metavar="N",
                        expose_value=False, callback=_set_threads,
                        help="CPU threads for torch [default: torch's choice; 1 is often faster for tiny "
                             "models or on a busy machine]; recorded with each run.")(f)


def epochs_option(help_text: str):
    """``--epochs N`` (1..MAX_EPOCHS), overriding a recipe's or baseline's epochs."""
    def decorate(f):
        return click.option("--epochs", type=click.IntRange(1, MAX_EPOCHS), default=None, metavar="N",
                            help=f"{help_text}.")(f)
    return decorate


def params_option(f):
    """``--params N``: a submitted model's parameter count (0..MAX_PARAMS)."""
    return click.option("--params", type=click.IntRange(0, MAX_PARAMS), default=None, metavar="N",
                        help="Your model's trainable parameter count.")(f)
