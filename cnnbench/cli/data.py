"""Dataset commands: generate, presets, info, show."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager

import click
from click.core import ParameterSource

from ..atomic import check_output_path
from ..data import SPLITS
from ..data.describe import describe_dataset, format_description
from ..data.families import FAMILIES
from ..data.generate import Spec, build_spec, total_samples, write_dataset
from ..data.params import COMMON_PARAMS, MAX_WORKERS, Param
from ..data.presets import all_presets, get_preset
from ..data.show import render_grid
from ..errors import ParamError
from . import main
from .progress import ProgressLines


def _show_default(value) -> str:
    if isinstance(value, tuple):
        return str(value[0]) if value[0] == value[1] else f"{value[0]}:{value[1]}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def param_option(param: Param):
    """A click option for a declared parameter; conversion and checks stay in Param.

    A boolean works as a flag: ``--color`` alone means true, ``--color false`` still works,
    and ``--no-color`` means false.
    """
    limits = f"; {param.range_text()}" if param.range_text() else ""
    help = f"{param.help} [default: {_show_default(param.default)}{limits}]"
    if param.kind != "bool":
        return click.option(param.option, param.name, default=None, metavar=param.metavar(), help=help)

    def decorate(f):
        negative = "--no-" + param.option[2:]
        f = click.option(negative, f"no_{param.name}", is_flag=True, default=False,
                         help=f"The same as {param.option} false.")(f)
        return click.option(param.option, param.name, default=None, is_flag=False, flag_value="true",
                            metavar="[BOOL]", help=help)(f)
    return decorate


def _negated_flags(params, given: dict) -> dict:
    """Fold each ``--no-NAME`` flag into NAME = false; refuse both at once."""
    for p in params:
        if p.kind == "bool" and given.pop(f"no_{p.name}", False):
            if given.get(p.name) is not None:
                raise click.UsageError(f"{p.option} and --no-{p.option[2:]} contradict each other")
            given[p.name] = False
    return given


def output_options(f):
    f = click.option("--force", is_flag=True, help="Overwrite an existing output file.")(f)
    f = click.option("--workers", type=click.IntRange(1, MAX_WORKERS), default=1, show_default=True,
                     help="Processes drawing blocks in parallel; the bytes do not depend on it.")(f)
    f = click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary line.")(f)
    f = click.option("--shard", default=None, metavar="I/N",
                     help="Write only shard I of N (I from 0), e.g. one task of a job array; "
                          "`cnnbench merge` joins the N shards into the whole file (docs/scale.md).")(f)
    return f


def _with_group_options(ctx, force: bool, workers: int, quiet: bool,
                        shard: str | None) -> tuple[bool, int, bool, str | None]:
    """Honour --force, --workers, --quiet and --shard given before the family name too.

    ``cnnbench generate --force lines --out x.h5`` parses them as the group's; the family's
    own (after its name) win where both are given.
    """
    group = ctx.parent.params
    if ctx.get_parameter_source("workers") == ParameterSource.DEFAULT:
        workers = group["workers"]
    return force or group["force"], workers, quiet or group["quiet"], shard or group["shard"]


@contextmanager
def progress_bar(total: int, label: str, quiet: bool):
    """click's progress bar on a terminal; when piped, a progress line every 10 s of long
    work (cnnbench.cli.progress); nothing when quiet. Yields ``update(n_more)``."""
    if quiet:
        yield lambda n: None
        return
    if not sys.stderr.isatty():
        with ProgressLines(label, "images") as lines:
            def update(n: int) -> None:
                lines.update(lines.done + n, total)
            yield update
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


def _write(spec: Spec, out: str, force: bool, workers: int, quiet: bool, shard: str | None = None) -> None:
    if shard is not None:
        from .scale import write_one_shard

        return write_one_shard(spec, out, shard, force, workers, quiet)
    label = f"{spec.preset or spec.family} -> {out}"
    with progress_bar(total_samples(spec), label, quiet) as update:
        fingerprint = write_dataset(spec, out, force=force, workers=workers, progress=update)
    if not quiet:
        sizes = "/".join(str(spec.sizes[s]) for s in SPLITS)
        click.echo(f"wrote {out}: {spec.family}, train/val/test {sizes}, fingerprint {fingerprint[:12]}")


class FamilyGroup(click.Group):
    """Names an unknown family the way every other unknown name is reported."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            raise click.UsageError(f"unknown family {args[0]!r} (known: {', '.join(self.commands)})")
        return super().resolve_command(ctx, args)


@main.group(cls=FamilyGroup, invoke_without_command=True, subcommand_metavar="FAMILY [OPTIONS]")
@click.option("--preset", "presets", multiple=True, metavar="NAME",
              help="Generate a canonical preset (see `cnnbench presets`); repeatable, or 'all'.")
@click.option("--out", type=click.Path(dir_okay=False), help="Output file for one preset.")
@click.option("--out-dir", type=click.Path(file_okay=False),
              help="Folder for one or more presets, written as NAME.h5.")
@click.option("--seed", "preset_seed", type=click.IntRange(min=0), default=None, metavar="INT",
              help="With --preset: another dataset seed than the published one (a hosted "
                   "leaderboard's secret seed, see `cnnbench export-public --help`).")
@output_options
@click.pass_context
def generate(ctx, presets, out, out_dir, preset_seed, force, workers, quiet, shard):
    """Generate a dataset file (HDF5, see docs/format.md).

    Either a family with its options, or a canonical preset by name:

    \b
      cnnbench generate lines --out my.h5 --size 8 --noise 10
      cnnbench generate lines --help          every option of a family
      cnnbench generate --preset lines-3x3 --out lines-3x3.h5
      cnnbench generate --preset all --out-dir data/
      cnnbench generate --preset boxes-64 --seed 8190247 --out hosted.h5
      cnnbench generate --preset boxes-64 --shard 0/4 --out boxes-64.0.h5

    The same parameters and seed always give the same bytes.
    """
    if ctx.invoked_subcommand is not None:
        if presets or out or out_dir or preset_seed is not None:
            raise click.UsageError("--preset/--out/--out-dir/--seed before a family name: put them after it")
        return
    if not presets:
        click.echo(ctx.get_help())
        ctx.exit(2)
    names = list(all_presets()) if "all" in presets else list(dict.fromkeys(presets))
    chosen = [get_preset(name) for name in names]  # unknown names fail before any work
    if out and out_dir or not (out or out_dir):
        raise click.UsageError("give exactly one of --out (one preset) or --out-dir")
    if out and len(chosen) != 1:
        raise click.UsageError("--out takes one preset; use --out-dir for several")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    stem = ""
    if shard and out_dir:
        from ..data.shards import parse_shard

        stem = ".shard-{}-of-{}".format(*parse_shard(shard))
    specs = [(p.spec(preset_seed), out or f"{out_dir.rstrip('/')}/{p.name}{stem}.h5") for p in chosen]
    for _, path in specs:  # every output checked before any is written
        check_output_path(path, force)
    for spec, path in specs:
        _write(spec, path, force, workers, quiet, shard)


def _family_command(family):
    options = list(COMMON_PARAMS) + list(family.params)

    @click.pass_context
    def command(ctx, out, force, workers, quiet, shard, **given):
        given = _negated_flags(options, given)
        spec = build_spec(family.name, {k: v for k, v in given.items() if v is not None})
        _write(spec, out, *_with_group_options(ctx, force, workers, quiet, shard))

    command = click.option("--out", required=True, type=click.Path(dir_okay=False),
                           help="Output HDF5 file (written to a temporary name, then renamed).")(command)
    command = output_options(command)
    for param in reversed(options):
        command = param_option(param)(command)
    return click.command(name=family.name, help=f"Family '{family.name}': {family.summary}.",
                         short_help=family.summary)(command)


for _family in FAMILIES.values():
    generate.add_command(_family_command(_family))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--family", help="Only this family's presets.")
@click.option("--rung", type=click.Choice(["easy", "medium", "hard"]), help="Only this difficulty rung.")
def presets(as_json, family, rung):
    """List the canonical presets: name, family, rung and what the dataset is.

    Specs live in datasets/*.toml. A family's ladder runs from `easy` (the seed's own
    task, where its failure reproduces) to `hard` (room for better models to show).
    Presets marked `*` are part of the quick main job (`cnnbench suite`).
    """
    found = {name: p for name, p in all_presets().items()
             if (family is None or p.family == family) and (rung is None or p.rung == rung)}
    if as_json:
        click.echo(json.dumps({n: {"family": p.family, "rung": p.rung, "description": p.description,
                                   "quick": p.quick, "params": p.params} for n, p in found.items()},
                              indent=2))
        return
    width = max(map(len, found), default=0)
    for name, p in found.items():
        click.echo(f"{name:<{width}} {'*' if p.quick else ' '} {p.family:<8} {p.rung or '-':<6}  {p.description}")


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(path, as_json):
    """Describe a dataset file: family, spec, splits, targets, optimum, fingerprint."""
    summary = describe_dataset(path)
    click.echo(json.dumps(summary, indent=2) if as_json else format_description(summary))


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--split", type=click.Choice(SPLITS), default="train", show_default=True)
@click.option("-n", "--n", "count", type=click.IntRange(min=1), default=16, show_default=True,
              help="Number of samples (the first ones of the split).")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
def show(path, out, split, count, force):
    """Write a PNG grid of samples with their targets beside each."""
    if not out.lower().endswith(".png"):
        raise ParamError(f"--out: {out!r} should end in .png")
    drawn = render_grid(path, out, split=split, n=count, force=force)
    click.echo(f"wrote {out}: {drawn} {split} samples")
