"""Past one machine: a shard of a dataset (generate --shard), and merge."""

from __future__ import annotations

import click

from ..data import SPLITS
from ..data.generate import Spec
from . import main
from .data import progress_bar


def _sizes(sizes: dict) -> str:
    return "/".join(str(sizes[s]) for s in SPLITS)


def write_one_shard(spec: Spec, out: str, shard: str, force: bool, workers: int, quiet: bool) -> None:
    """``generate ... --shard I/N``: write one shard, say which rows it holds."""
    from ..data.shards import parse_shard, plan_shard, write_shard

    index, count = parse_shard(shard)
    plan = plan_shard(spec, index, count)  # N larger than the number of blocks: refused now
    label = f"{spec.preset or spec.family} shard {index}/{count} -> {out}"
    with progress_bar(plan.total_rows(), label, quiet) as update:
        write_shard(spec, out, index, count, force=force, workers=workers, progress=update)
    if not quiet:
        rows = {s: plan.n_rows(s) for s in plan.rows}
        click.echo(f"wrote {out}: {spec.family} shard {index}/{count}, train/val/test rows {_sizes(rows)} "
                   f"(of {_sizes(spec.sizes)}); merge the {count} shards with cnnbench merge")


@main.command()
@click.argument("shards", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The whole dataset file to write (written to a temporary name, then renamed).")
@click.option("--virtual", is_flag=True,
              help="Map the shards' arrays (HDF5 virtual datasets) instead of copying them: no "
                   "second copy on disk, but the shards must stay beside the file.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary line.")
def merge(shards, out, virtual, force, quiet):
    """Join the N shards of one dataset (generate --shard I/N) into the whole file.

    The shards may be given in any order; all N must be there, of one spec and seed. Each
    is verified against its fingerprint. The result's arrays and fingerprint are those of
    `cnnbench generate` without --shard (with the default copy, the file's bytes too).

    \b
      cnnbench merge boxes-64.*-of-4.h5 --out boxes-64.h5
      cnnbench merge shards/*.h5 --out boxes-64.h5 --virtual

    Copy (default) when the file will be moved, shared or read often; --virtual when disk
    is short and the shards stay where they are (see docs/scale.md).
    """
    from ..data.shards import merge as merge_shards
    from ..data.shards import open_shards

    found = open_shards(shards)  # refusals (missing, duplicated, mixed) before any work
    total = sum(s.ds.split_size(split) for s in found for split in SPLITS)
    with progress_bar(total, f"merge {len(found)} shards -> {out}", quiet) as update:
        fingerprint = merge_shards(shards, out, force=force, virtual=virtual, progress=update)
    if not quiet:
        ds = found[0].ds
        sizes = {s: sum(f.ds.split_size(s) for f in found) for s in SPLITS}
        how = " (virtual: reads the shards, keep them beside it)" if virtual else ""
        click.echo(f"wrote {out}: {ds.family}, {len(found)} shards, train/val/test {_sizes(sizes)}, "
                   f"fingerprint {fingerprint[:12]}{how}")
