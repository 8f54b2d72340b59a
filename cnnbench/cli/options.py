"""Options shared by several commands, declared once; each number has its range (click
enforces it and shows it in --help)."""

from __future__ import annotations

import click

from ..board.records import MAX_PARAMS
from ..data.params import MAX_EPOCHS, MAX_THREADS


def db_option(f):
    """``--db PATH|URL``, shared by every command that reads or writes the leaderboard."""
    return click.option("--db", type=str, default=None, metavar="PATH|URL",
                        help="Leaderboard: an SQLite file, or a postgresql://user@host/dbname URL "
                             "(needs pip install 'cnnbench[postgres]') [default: $CNNBENCH_DB, else "
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


def jobs_option(f):
    """``--jobs N``: runs at once, each in a worker process with one torch thread."""
    return click.option("--jobs", "-j", type=click.IntRange(1, MAX_THREADS), default=None, metavar="N",
                        help="Runs at once, each in its own process with one torch thread "
                             "[default: $CNNBENCH_JOBS, else one per CPU core]; the longest expected "
                             "start first. The records are those of --jobs 1 --threads 1: each is "
                             "saved on the board as its run ends and printed in plan order. --jobs 1 "
                             "runs one after another in this process with --threads torch threads.")(f)


JOBS_ENV = "CNNBENCH_JOBS"


def resolve_jobs(jobs: int | None) -> int:
    """--jobs, else $CNNBENCH_JOBS, else one per CPU core this process may use."""
    import os

    from ..bench.parallel import default_workers
    from ..errors import ParamError

    if jobs is not None:
        return jobs
    given = os.environ.get(JOBS_ENV, "").strip()
    if not given:
        return default_workers()
    if not given.isdigit() or not 1 <= int(given) <= MAX_THREADS:
        raise ParamError(f"${JOBS_ENV}: {given!r} is not a number of jobs in 1..{MAX_THREADS}")
    return int(given)


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


def _parse_budget(ctx, param, value):
    from ..data.streaming import parse_bytes
    from ..errors import ParamError

    try:
        return parse_bytes(value)
    except ParamError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[1]) from None


def memory_budget_option(f):
    """``--memory-budget SIZE``: a dataset whose arrays exceed it is streamed from its file."""
    return click.option("--memory-budget", default="4GiB", show_default=True, metavar="SIZE",
                        callback=_parse_budget,
                        help="Load the dataset whole when its arrays fit (256MB, 4GiB, bytes); "
                             "else stream it in HDF5 chunks, shuffled through a buffer within that budget "
                             "(another batch order: see docs/baselines.md).")(f)
