"""The diagnose command: why does this network not learn?"""

from __future__ import annotations

import click

from ..board.records import MAX_SEED
from ..board.store import db_exists, resolve_db_path
from ..data.h5file import open_dataset
from ..data.params import MAX_STEPS
from ..errors import ParamError
from . import main
from .options import db_option, threads_option


@main.command()
@click.argument("dataset", type=click.Path(dir_okay=False))
@click.option("--model", "model", default=None, metavar="FILE.py:FACTORY | package.module:FACTORY",
              help="Your model factory, as for evaluate: factory(info) -> torch.nn.Module or Recipe.")
@click.option("--baseline", "-b", "baseline", default=None, metavar="NAME",
              help="A registered baseline instead (e.g. lines-cnn-as-asked); see cnnbench baselines.")
@click.option("--steps", type=click.IntRange(1, MAX_STEPS), default=50, show_default=True, metavar="N",
              help="Optimizer steps of the training probe; the overfit probe runs up to 6 x N.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True, metavar="S",
              help="Training seed (initialisation, batch order), as evaluate --seeds.")
@click.option("--device", default="cpu", show_default=True, help="cpu (reproducible), auto, cuda...")
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print the checklist as JSON.")
@db_option
def diagnose(dataset, model, baseline, steps, seed, device, as_json, db):
    """Find out why a network fails: short probes of its recipe, as a checklist.

    Builds the recipe exactly as evaluate/bench would, then probes it on a few hundred
    train images (the test split is never read), in seconds on a CPU: input and target
    scale, outputs and loss at init (softmax applied twice?), gradients of the first batch,
    weights moving, ReLUs dying, the loss curve and the predictions' spread over N steps,
    and whether a fresh model can memorise 32 images; also what the recipe itself says
    (frozen parameters, weight decay, dropout, the output's range, an augmentation tried
    against none). Each check prints PASS, WARN or FAIL, the measured numbers and where to
    look for the fix; the verdict names the most likely root cause, and why, with its advice
    first. See docs/diagnose.md.

    \b
      cnnbench diagnose lines-3x3.h5 --baseline lines-cnn-as-asked
      cnnbench diagnose boxes-64.h5 --model mynet.py:make --steps 100 --json
    """
    from ..bench.diagnose import diagnose as run_diagnosis
    from ..bench.diagnose import render_text, resolve_model

    if (model is None) == (baseline is None):
        raise ParamError("give exactly one of --model FILE.py:FACTORY or --baseline NAME")
    ds = open_dataset(dataset)
    factory, name = resolve_model(model, baseline, ds)
    path = resolve_db_path(db)
    result = run_diagnosis(ds, factory, name=name, seed=seed, steps=steps, device=device,
                           db=path if db_exists(path) else None)
    click.echo(result.to_json() if as_json else render_text(result))
