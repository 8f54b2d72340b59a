"""``cnnbench serve``: a hosted leaderboard (see docs/serve.md)."""

from __future__ import annotations

import json

import click

from ..errors import ParamError
from . import main


class ServeGroup(click.Group):
    """``cnnbench serve BOARD_DIR`` runs the server; ``cnnbench serve init|token|close ...`` manage it."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@main.group("serve", cls=ServeGroup)
def serve():
    """A hosted leaderboard: participants submit over HTTP against hidden test labels.

    \b
      cnnbench serve init boards/ --preset lines-16 --daily-limit 5
      cnnbench serve token add boards/ alice          prints alice's token, once
      cnnbench serve boards/ --host 0.0.0.0 --port 8000
      cnnbench submit --server http://host:8000 --token TOKEN lines-16 preds.npy --name my-cnn
      cnnbench serve close boards/ lines-16           shows the final (private) ranking

    The full files (secret seeds) and the public/private split never leave BOARD_DIR;
    participants download the public copy. See docs/serve.md for the API (curl examples).
    """


@serve.command("run")
@click.argument("board_dir", type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes on this machine (they share the store; limits hold across them).")
@click.option("--quiet", "-q", is_flag=True, help="No access log.")
def run_command(board_dir, host, port, workers, quiet):
    """Serve BOARD_DIR's boards over HTTP (pages at /, JSON API under /api)."""
    import os

    import uvicorn

    from ..serve.app import DIR_ENV, create_app

    app = create_app(board_dir)  # checks the folder and every full file before listening
    names = ", ".join(app.state.serve.boards) or "none"
    from ..board.store import display

    click.echo(f"serving {board_dir} (boards: {names}; store {display(app.state.serve.board_dir.database)}) "
               f"on http://{host}:{port}", err=True)
    log = "warning" if quiet else "info"
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level=log, access_log=not quiet)
    else:
        os.environ[DIR_ENV] = os.path.abspath(board_dir)
        uvicorn.run("cnnbench.serve.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log, access_log=not quiet)


@serve.command("init")
@click.argument("board_dir", type=click.Path(file_okay=False))
@click.option("--preset", "presets", multiple=True, metavar="NAME",
              help="A board on this preset, generated here with a secret seed (repeatable).")
@click.option("--dataset", "datasets", multiple=True, type=click.Path(dir_okay=False), metavar="FULL.h5",
              help="A board on a full file you generated with a secret seed (copied in; repeatable).")
@click.option("--name", "names", multiple=True, metavar="BOARD",
              help="Board names, in the order of --preset then --dataset [default: the preset's name].")
@click.option("--public-fraction", type=float, default=0.5, show_default=True,
              help="Share of test rows in the public part (ranked live); the rest rank at the close.")
@click.option("--daily-limit", type=int, default=None, metavar="N",
              help="Accepted submissions per participant, board and UTC day [default: 5; kept when adding boards].")
@click.option("--max-upload-mb", type=click.FloatRange(0.001, 1024), default=None, metavar="MB",
              help="Largest upload accepted [default: 16].")
@click.option("--no-references", is_flag=True, help="Do not fit and record the reference predictors.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Generation processes.")
@click.option("--db", "database", default=None, metavar="URL",
              help="Keep the store (runs, tokens, submissions) in this PostgreSQL database "
                   "(postgresql://user@host/dbname; needs pip install 'cnnbench[postgres]'), so that server "
                   "processes on several machines can share it [default: BOARD_DIR/leaderboard.sqlite].")
def init_command(board_dir, presets, datasets, names, public_fraction, daily_limit, max_upload_mb,
                 no_references, workers, database):
    """Create BOARD_DIR (or add boards to it): full files, public copies, splits, references.

    \b
      cnnbench serve init boards/ --preset lines-16 --preset boxes-64
      cnnbench serve init boards/ --dataset my-full.h5 --name my-board --public-fraction 0.3
      cnnbench serve init boards/ --preset lines-16 --db postgresql://board@dbhost/lines
    """
    from ..serve.boards import init_board_dir

    size = None if max_upload_mb is None else int(max_upload_mb * 1024 * 1024)
    added = init_board_dir(board_dir, presets, datasets, names, public_fraction, daily_limit, size,
                           references=not no_references, workers=workers,
                           progress=lambda text: click.echo(text, err=True), database=database)
    click.echo(f"{board_dir}: boards {', '.join(added)} ready; issue tokens with "
               f"`cnnbench serve token add {board_dir} NAME`, then `cnnbench serve {board_dir}`")


@serve.group("token")
def token():
    """Participants' tokens: add, list, revoke (stored hashed; a token is shown once)."""


def _store(board_dir):
    from ..serve.boards import BoardDir

    folder = BoardDir(board_dir)
    folder.config()  # a clear error when this is not a board folder
    store = folder.store()
    store.check_schema()
    return store


@token.command("add")
@click.argument("board_dir", type=click.Path(file_okay=False))
@click.argument("participant")
def token_add(board_dir, participant):
    """Issue a token for PARTICIPANT and print it (only its hash is kept)."""
    with _store(board_dir) as store:
        value = store.add_token(participant)
    click.echo(value)
    click.echo(f"token for {participant}: shown once, keep it; revoke with "
               f"`cnnbench serve token revoke {board_dir} {participant}`", err=True)


@token.command("list")
@click.argument("board_dir", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True)
def token_list(board_dir, as_json):
    """Participants and their tokens' hash prefixes (never the tokens)."""
    with _store(board_dir) as store:
        rows = store.tokens()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "live"
        click.echo(f"{row['participant']}\tsha256 {row['digest']}...\tcreated {row['created_at']}\t{state}")
    if not rows:
        click.echo("no tokens issued yet")


@token.command("revoke")
@click.argument("board_dir", type=click.Path(file_okay=False))
@click.argument("participant")
def token_revoke(board_dir, participant):
    """Revoke every live token of PARTICIPANT (their submissions stay on the board)."""
    with _store(board_dir) as store:
        count = store.revoke(participant)
    if not count:
        raise ParamError(f"{participant!r} has no live token")
    click.echo(f"revoked {count} token{'s' * (count != 1)} of {participant}")


@serve.command("close")
@click.argument("board_dir", type=click.Path(file_okay=False))
@click.argument("board")
def close_command(board_dir, board):
    """Close BOARD: no more submissions; its page shows the final ranking on the private part."""
    from ..serve.boards import BoardDir

    folder = BoardDir(board_dir)
    if board not in folder.config().boards:
        raise ParamError(f"no board named {board!r} in {board_dir}")
    with _store(board_dir) as store:
        when = store.close_board(board)
    click.echo(f"{board} closed at {when}: the private ranking is on its page (a running server shows it at once)")
