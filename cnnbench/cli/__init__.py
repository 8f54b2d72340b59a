"""The ``cnnbench`` command line: a thin click layer over the library.

Library errors (:class:`~cnnbench.errors.CnnbenchError`) and OS errors become one
``Error:`` line and exit status 1, never a traceback. The library's messages name parameters
(``force=True``, ``model: ...``); :func:`flag_words` says them as this command line's flags.
"""

from __future__ import annotations

import re
import signal
import sys
import warnings

import click

from .. import __version__
from ..errors import CnnbenchError, CnnbenchWarning

# click >= 8.2 raises this (a UsageError) for a group called with no arguments.
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


# The parameters whose library name differs from a flag only by its spelling. Family
# parameters (n_train: ...) keep their names, as the generator's messages always have.
_FLAGS = {name: "--" + name.replace("_", "-") for name in
          ("force", "allow_guessable_seed", "out", "model", "shard", "params", "epochs", "name", "notes",
           "public_fraction", "daily_limit")}
# Named only with a placeholder value ("baseline=NAME"): as a message's first word they are
# plain words ("server refused ...", "baseline 'x' does not apply ...").
_VALUE_FLAGS = {**_FLAGS, "baseline": "--baseline", "token": "--token"}
_SWITCH = re.compile(r"\b([a-z][a-z0-9_]*)=True\b")  # "pass force=True" -> "pass --force"
_LEADING = re.compile(r"^([a-z][a-z0-9_]*)(?=[: ])")  # "model: ..." -> "--model: ..."
_VALUE = re.compile(r"\b([a-z][a-z0-9_]*)=(?=[A-Z])")  # "model=FILE.py" -> "--model FILE.py"


def flag_words(message: str) -> str:
    """A library message in the command line's words: ``force=True`` -> ``--force``,
    ``model=FILE.py`` (a placeholder in capitals) -> ``--model FILE.py``, and a message that
    starts with a parameter's name starts with its flag."""
    message = _SWITCH.sub(lambda m: _FLAGS.get(m.group(1), m.group(0)), message)
    message = _VALUE.sub(lambda m: _VALUE_FLAGS[m.group(1)] + " " if m.group(1) in _VALUE_FLAGS else m.group(0),
                         message)
    return _LEADING.sub(lambda m: _FLAGS.get(m.group(1), m.group(0)), message, count=1)


def _exit_on_signal(signum, frame):
    # SIGTERM/SIGHUP unwind like Ctrl-C does: temporary files are removed, worker pools
    # terminated, open transactions rolled back, instead of the process vanishing mid-write.
    raise SystemExit(128 + signum)


def _show_warning(message, category, filename, lineno, file=None, line=None, _default=warnings.showwarning):
    # The library's warnings are for the user: one "Warning:" line each, no source location.
    if issubclass(category, CnnbenchWarning):
        click.echo(f"Warning: {message}", err=True)
    else:
        _default(message, category, filename, lineno, file, line)


class CnnbenchGroup(click.Group):
    def main(self, *args, **kwargs):
        warnings.showwarning = _show_warning
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
                signal.signal(sig, _exit_on_signal)
        kwargs.pop("standalone_mode", None)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
            # ctx.exit(N) comes back as N; a command's own return value is no exit code.
            sys.exit(code if isinstance(code, int) else 0)
        except _NO_ARGS_IS_HELP as exc:  # bare `cnnbench`: the help, not an error line
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            # One line, like every other error: the problem, then where the usage is.
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"Error: {exc.format_message().rstrip('.')}{where}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CnnbenchError as exc:
            raise click.ClickException(flag_words(str(exc))) from None
        except MemoryError:
            raise click.ClickException("out of memory: the requested data does not fit "
                                       "(fewer or smaller images, or a smaller batch)") from None
        except OSError as exc:
            raise click.ClickException(f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}") from None


@click.group(cls=CnnbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cnnbench")
def main():
    """Synthetic image datasets with known answers, baselines and leaderboards.

    For the CNN that "does not learn" on a task that should be easy: generate a dataset
    whose right answer is known, train the baselines on fixed splits, compare your model's
    score with theirs and with the best achievable score.

    \b
    Start here:
      cnnbench presets                         list the canonical datasets
      cnnbench generate --preset lines-3x3 --out lines.h5
      cnnbench info lines.h5                   what is in a file
      cnnbench show lines.h5 --out grid.png    look at samples
    """


# Each module registers its commands on ``main``, defined above.
from . import bench, board, data, diagnose, scale, serve  # noqa: E402,F401
