"""Leaderboard commands: leaderboard, submit, export-public."""

from __future__ import annotations

import json

import click

from ..atomic import check_output_path, write_text
from ..bench.distributed import is_writer
from ..board.predictions import prepare_submission
from ..board.public import export_public
from ..board.render import FORMATS, printable, render, render_html
from ..board.store import Leaderboard, display, resolve_db_path
from ..data.h5file import open_dataset
from ..data.presets import all_presets, get_preset
from ..errors import ParamError
from . import main
from .options import db_option, epochs_option, memory_budget_option, params_option, threads_option


@main.command()
@click.argument("dataset", required=False, type=click.Path(dir_okay=False))
@click.option("--preset", metavar="NAME", help="Boards of the datasets generated from this preset.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--html", "html_out", type=click.Path(dir_okay=False), metavar="OUT.html",
              help="Also write a self-contained HTML page (tables and bar charts, no network fetches).")
@click.option("--force", is_flag=True, help="Overwrite an existing --html file.")
@db_option
def leaderboard(dataset, preset, fmt, html_out, force, db):
    """Show ranked runs, per dataset fingerprint and protocol version.

    With DATASET.h5 (or --preset), that dataset's board; with neither, every dataset in the
    database. Runs of one recipe over several training seeds form one row (mean, spread,
    share of seeds that solved the task or collapsed to the mean). Reference predictors and
    the dataset's known optimum are marked rows, not ranked.

    \b
      cnnbench leaderboard lines-3x3.h5
      cnnbench leaderboard --preset boxes-64 --format markdown
      cnnbench leaderboard --format json > board.json
      cnnbench leaderboard --html board.html
    """
    if dataset and preset:
        raise click.UsageError("give a DATASET file or --preset, not both")
    if html_out:
        if not html_out.lower().endswith((".html", ".htm")):
            raise ParamError(f"--html: {html_out!r} should end in .html")
        check_output_path(html_out, force)
    path = resolve_db_path(db)
    optimum, fingerprints = None, None
    if dataset:
        ds = open_dataset(dataset)
        optimum, fingerprints = ds.optimum, [ds.fingerprint]
    with Leaderboard(path) as board:  # reads only: a missing database is not created
        if dataset:
            board.check_dataset(ds)  # an edited copy is refused, never shown as the board's
        if preset:
            fingerprints = board.fingerprints(preset=preset)
            if not fingerprints and preset not in all_presets():
                get_preset(preset)  # an unknown name (neither shipped nor recorded): one-line error
        if not board.exists():
            if html_out:
                _write_html(html_out, [])
            click.echo("[]" if fmt == "json" else f"no runs recorded yet ({board.name} {board.missing})")
            return
        boards = board.boards(fingerprints, optimum=optimum)
    if html_out:
        _write_html(html_out, boards)
        if fmt == "table":
            click.echo(f"wrote {html_out}: {len(boards)} board{'s' * (len(boards) != 1)}", err=True)
    if not boards and fmt in ("table", "markdown"):
        which = f"dataset {dataset}" if dataset else f"preset {preset}" if preset else "any dataset"
        click.echo(f"no runs recorded for {which} in {display(path)}")
        return
    click.echo(render(boards, fmt).rstrip("\n"))


def _write_html(out: str, boards) -> None:
    write_text(out, render_html(boards))


@main.command()
@click.argument("dataset", type=click.Path(dir_okay=False))
@click.argument("predictions", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="Name shown on the leaderboard; resubmitting a name replaces its row.")
@click.option("--notes", default="", help="Free text stored with the row (method, link...).")
@params_option
@click.option("--json", "as_json", is_flag=True, help="Print the metrics and rank as JSON.")
@db_option
@click.option("--server", metavar="URL", default=None,
              help="Upload to a `cnnbench serve` server instead; DATASET is then the board's name.")
@click.option("--token", default=None, help="Your token for --server [default: $CNNBENCH_TOKEN].")
def submit(dataset, predictions, name, notes, params, as_json, db, server=None, token=None):
    """Score predictions made elsewhere and record them (source 'submission').

    PREDICTIONS holds one row per test sample, in test order: .npy (no pickles), .csv
    (optional header, optional '# fingerprint: HEX' line) or .h5 (dataset 'predictions',
    optional root attribute 'fingerprint'). Classification: class ids (n,) or class scores
    (n, K); regression: (n, k) values in the targets' own units. Scored by the same code as
    the baselines, against the full file's test targets. A refused submission writes nothing.

    \b
      cnnbench submit lines-3x3.h5 preds.npy --name my-cnn --params 1234
      cnnbench submit --server http://host:8000 --token T lines-16 preds.npy --name my-cnn
    """
    if server:
        from ..serve.client import print_remote

        return print_remote(server, token, dataset, predictions, name, notes, params, as_json)
    ds, record = prepare_submission(dataset, predictions, name, notes, params)
    # The row and its ranking in one transaction: nothing is committed unless both succeed.
    with Leaderboard(resolve_db_path(db)) as board, board.transaction():
        board.add(record, dataset=ds)
        boards = board.boards([ds.fingerprint], optimum=ds.optimum)
        current = next(b for b in boards if b.protocol_version == record.protocol_version)
        rank = current.rank_of(record.name, "submission")
        ranked = sum(e.rank is not None for e in current.entries)
    if as_json:
        click.echo(json.dumps({"name": record.name, "fingerprint": ds.fingerprint, "metric": record.metric,
                               "score": record.score, "metrics": record.metrics, "rank": rank,
                               "of": ranked}, indent=2))
        return
    shown = ", ".join(f"{k} {v:.4f}" for k, v in record.metrics.items() if isinstance(v, (int, float)))
    click.echo(f"{record.name} on {printable(current.title)}: {shown}")
    click.echo(f"rank {rank} of {ranked} by {record.metric} (protocol v{record.protocol_version}, "
               f"fingerprint {ds.fingerprint[:12]})")


@main.command("export-public")
@click.argument("dataset", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The public HDF5 file to write.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--allow-guessable-seed", is_flag=True,
              help="Export even a file whose seed can be guessed (a preset's published seed, or a "
                   "small number) or whose test labels do not depend on the seed, from which "
                   "anyone can regenerate the test labels.")
def export_public_command(dataset, out, force, allow_guessable_seed):
    """Write a copy without test targets or seed, for a hosted leaderboard.

    The copy keeps the original fingerprint and is marked public; of the test split only the
    images remain (targets and per-sample extras are withheld), and the spec's seed is
    withheld. Participants train on it and submit test predictions; the maintainer scores
    them with the full file. Generate the full file with a secret seed first: a canonical
    preset's seed is published, so its public copy is refused, and so is a file whose test
    labels are the same whatever the seed (lines-3x3). The copy is a new file holding only
    the public arrays and attributes.

    \b
      cnnbench generate lines --size 16 --out full.h5 \\
          --seed $(python3 -c 'import secrets; print(secrets.randbits(63))')
      cnnbench export-public full.h5 --out public.h5
    """
    public = export_public(dataset, out, force=force, allow_guessable_seed=allow_guessable_seed)
    click.echo(f"wrote {out}: public copy of {dataset}, fingerprint {public.fingerprint[:12]}, "
               f"test targets and seed withheld")


@main.command()
@click.argument("dataset", type=click.Path(dir_okay=False))
@click.option("--model", "model", required=True, metavar="FILE.py:FACTORY | package.module:FACTORY",
              help="Your model factory: factory(info) -> torch.nn.Module or cnnbench.bench.protocol.Recipe.")
@click.option("--name", default=None,
              help="Name on the leaderboard [default: the file's stem or the module, then the factory: "
                   "mynet:make, mypackage.models:make].")
@epochs_option("Override the recipe's epochs")
@click.option("--seeds", default="0", show_default=True, metavar="LIST",
              help="Training seeds: 0-9, 0,3,5 or one number; each is a run, shown as one row.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda...")
@threads_option
@memory_budget_option
@click.option("--notes", default="", help="Free text stored with the rows.")
@click.option("--quiet", "-q", is_flag=True, help="Only the final lines.")
@db_option
def evaluate(dataset, model, name, epochs, seeds, device, memory_budget, notes, quiet, db):
    """Train your own torch model under the baselines' protocol and record it (source 'user').

    The factory gets a DataInfo (task, image shape, number of outputs...) and returns a
    torch.nn.Module (trained with the defaults: inputs scaled to [0, 1], Adam 1e-3,
    cross-entropy on logits or MSE on standardised targets) or a cnnbench.bench.protocol.Recipe
    choosing the optimizer, loss, preprocessing, augmentation, epochs and batch size. See
    docs/leaderboard.md. Train on train, select the epoch on val, score test once. Your file
    runs as Python: name only code you trust; a package.module is looked up in the current
    folder first, as `python -m` does. All seeds are recorded together, or none if one fails.

    \b
      cnnbench evaluate lines-16.h5 --model mynet.py:make --seeds 0-4 --epochs 5
    """
    from ..bench.models import evaluate_model
    from ..bench.protocol import parse_seeds

    seed_list = parse_seeds(seeds)
    path = resolve_db_path(db)

    def progress(seed, epoch, total, metric, value):
        if not quiet and is_writer():
            click.echo(f"seed {seed} epoch {epoch}/{total}: val {metric} {value:.4f}", err=True)

    records, ds = [], None
    # ds: the dataset, used after the loop
    for ds, record in evaluate_model(dataset, model,  # noqa: B007
                                     name=name, seeds=seed_list, epochs=epochs,
                                     device=device, notes=notes, progress=progress,
                                     memory_budget=memory_budget):
        records.append(record)
        if not quiet and is_writer():
            click.echo(f"{record.name} seed {record.seed}: test {record.metric} {record.score:.4f} "
                       f"({record.params:,} parameters, {record.wall_time_s:.1f} s)")
    if not is_writer():  # under torchrun: rank 0 records and reports
        return
    with Leaderboard(path) as board, board.transaction():  # committed only once ranked
        ids = set(board.add_many(records, dataset=ds))
        boards = board.boards([ds.fingerprint], optimum=ds.optimum)
        current = next(b for b in boards if b.protocol_version == records[0].protocol_version)
        entry = next(e for e in current.entries if ids & set(e.run_ids))
        ranked = sum(e.rank is not None for e in current.entries)
    spread = f" ± {entry.std:.4f} over {entry.n_seeds} seeds" if entry.std is not None else ""
    click.echo(f"{printable(entry.name)} on {printable(current.title)}: {current.metric} {entry.score:.4f}{spread}; "
               f"rank {entry.rank} of {ranked} (recorded in {display(path)})")
