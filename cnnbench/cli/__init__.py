"""The ``cnnbench`` command line: a thin click layer over the library.

Library errors (:class:`~cnnbench.errors.CnnbenchError`) and OS errors become one
``Error:`` line and exit status 1, never a traceback.
"""

from __future__ import annotations

import click

from .. import __version__
from ..errors import CnnbenchError


class CnnbenchGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CnnbenchError as exc:
            raise click.ClickException(str(exc)) from None
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


from . import data  # noqa: E402,F401  (registers the commands)
from . import bench  # noqa: E402,F401
from . import board  # noqa: E402,F401
from . import diagnose  # noqa: E402,F401
