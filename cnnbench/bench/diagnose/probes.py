"""The probes, and :func:`diagnose`, which runs them in order and ranks the causes.

1. a look at one preprocessed batch, the (scaled) targets, and the recipe itself: which
   parameters are frozen or missing from the optimizer, its weight decay, its dropout;
2. one traced forward pass at init: outputs, loss, the output's range, ReLU activity, layer
   widths, pooling;
3. a short training run of ``steps`` optimizer steps with the recipe's own optimizer, loss,
   batch size and augmentation; repeated without augmentation when the recipe has one;
4. a fresh model (same seed) trained on a tiny subset until it fits it or a step/time cap,
   and what could limit its capacity when it cannot;
5. the steps the protocol will give the recipe, the parameter count, the leaderboard.

Everything runs on a private copy of the global RNG state, seeded as :func:`train.run` seeds
a run, so a given ``seed`` gives the same checklist on the same machine (the overfit probe's
time cap aside; its evidence says when it was hit).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from ...board.records import MAX_SEED
from ...data.h5file import Dataset, open_dataset
from ...errors import ParamError
from ..protocol import (
    DataInfo,
    Recipe,
    Split,
    TargetScaler,
    build_optimizer,
    count_parameters,
    decoder,
    loss_function,
    protocol_steps,
    resolve_device,
    training_generators,
)
from . import checks as C
from .results import FAIL, PASS, SKIP, WARN, CheckResult, Diagnosis, fmt
from .setup import Guard, Setup, fresh_recipe, one_line, read_train_sample
from .thresholds import (
    DEFAULT_STEPS,
    EVAL_SAMPLES,
    OVERFIT_PASS,
    OVERFIT_SAMPLES,
    OVERFIT_STEPS_PER_STEP,
    OVERFIT_STOP,
    OVERFIT_TIME_S,
    OVERFIT_WARN,
    PROBE_SAMPLES,
)
from .trace import Trace, trace_forward
from .verdict import rank_causes


def _trace(model, x) -> Trace | str:
    """:func:`trace_forward`, or the one-line reason it failed (the checks that need it are
    then skipped: a model that cannot be deep-copied or run under a TorchFunctionMode is still
    diagnosed by the others)."""
    try:
        return trace_forward(model, x)
    except Exception as exc:  # the user's model; every other probe still runs
        return one_line(exc)


def _guarded_input_gradient(setup: Setup, model, x):
    with Guard(setup.name, "the forward pass"):
        return _input_gradient(model, x)


def _relu(trace: Trace | str):
    return trace if isinstance(trace, str) else trace.relu


def _input_gradient(model, x: torch.Tensor) -> float | None:
    """Norm of d(r . outputs)/d(input) at init, eval mode, for a fixed random projection r
    (a plain sum would vanish for outputs that sum to a constant, like softmax). None when the
    outputs do not depend on the input at all."""
    xg = x.detach().clone().requires_grad_(True)
    model.eval()
    with torch.enable_grad():
        out = model(xg)
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            return None
        r = torch.randn(out.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        (grad,) = torch.autograd.grad((out.double() * r.to(out.device)).sum(), xg, allow_unused=True)
    return None if grad is None else float(grad.double().norm())


def _predict(recipe: Recipe, x: torch.Tensor, task: str) -> torch.Tensor:
    """Decoded predictions in eval mode, as the protocol scores them (scaled units)."""
    recipe.model.eval()
    with torch.no_grad():
        return decoder(recipe, task)(recipe.model(x))


def _train_steps(setup: Setup, recipe: Recipe, steps: int, split: Split, augment: bool, on_step=None):
    """``steps`` optimizer steps as :func:`train.run` takes them (its optimizer, loss, batch
    order and augmentation generator); ``on_step(done, loss)`` after each. Returns the losses."""
    model = recipe.model
    with Guard(setup.name, "the optimizer"):
        optimizer = build_optimizer(recipe, model)
    loss_fn = loss_function(recipe, setup.info.task)
    shuffle, augment_gen = training_generators(setup.seed, setup.dev, augment and recipe.augment is not None)
    losses, done = [], 0
    while done < steps:
        model.train()
        for x, y in split.batches(recipe.batch_size, torch.randperm(len(split), generator=shuffle)):
            if augment_gen is not None:
                x = recipe.augment(x, augment_gen)
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if on_step is not None:
                on_step(done, optimizer)
            optimizer.step()
            losses.append(float(loss.detach()))
            done += 1
            if on_step is not None:
                on_step(done, optimizer)
            if done >= steps:
                break
    return losses


def diagnose(dataset: Dataset | str, factory: Callable, *, name: str = "model", seed: int = 0,
             steps: int = DEFAULT_STEPS, device: str = "cpu", db=None,
             overfit_samples: int = OVERFIT_SAMPLES, overfit_steps: int | None = None,
             overfit_time_s: float = OVERFIT_TIME_S, probe_samples: int = PROBE_SAMPLES) -> Diagnosis:
    """Probe ``factory``'s recipe on a sample of ``dataset``'s train split; return the checklist.

    Parameters
    ----------
    dataset : Dataset or path of a cnnbench file (a public copy works: only train is read)
    factory : callable(DataInfo) -> Recipe or torch.nn.Module, as ``evaluate`` takes it
    name : how the model is named in messages
    seed : training seed: initialisation and batch order, as ``cnnbench evaluate --seeds``
    steps : optimizer steps of the training probe; the overfit probe runs up to 6 x steps
    device : "cpu" (default: reproducible), "auto", "cuda"...
    db : leaderboard path for the baseline context, or None

    Returns
    -------
    Diagnosis, whose ``checks`` are in a fixed order and whose ``causes`` are ranked.
    """
    started = time.perf_counter()
    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    if steps < 1:
        raise ParamError(f"steps: {steps} must be at least 1")
    if not 0 <= seed <= MAX_SEED:
        raise ParamError(f"seed: {seed} must be in 0..{MAX_SEED}")
    info = DataInfo.from_dataset(ds)
    dev = resolve_device(device)
    images, targets, all_targets = read_train_sample(ds, probe_samples)
    overfit_steps = overfit_steps if overfit_steps is not None else OVERFIT_STEPS_PER_STEP * steps

    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        setup = Setup(ds, info, factory, name, seed, dev, torch.from_numpy(images).to(dev), None, None)
        recipe = fresh_recipe(setup)
        if ds.task == "regression":
            setup.scaler = TargetScaler.fit(all_targets, recipe.target_scaling)  # as train.run: all of train
            setup.targets = torch.from_numpy(setup.scaler.forward(targets)).to(dev)
        else:
            setup.targets = torch.from_numpy(np.asarray(targets, dtype=np.int64)).to(dev)
        checks, blocked, trained = _probe(setup, recipe, all_targets, steps)
        if blocked:
            overfit = CheckResult("overfit tiny subset", SKIP, blocked, "")
        else:
            overfit = _overfit_check(setup, overfit_steps, min(overfit_samples, len(images)), overfit_time_s)
        checks.append(overfit)
        budget = protocol_steps(recipe, info.n_train) if recipe.fit is None else None
        _slow_start(checks, overfit, budget)
        _learning_anyway(checks)
        trace, pred = trained
        checks.append(C.capacity_check(setup, trace, pred, setup.targets[:len(pred)] if pred is not None
                                       else setup.targets, overfit,
                                       any(c.status == FAIL for c in checks[:-1])) if not blocked else
                      CheckResult("capacity", SKIP, blocked, ""))
        batches = -(-info.n_train // recipe.batch_size)
        checks.append(C.budget_check(budget, overfit, recipe.epochs, batches) if budget is not None else
                      CheckResult("training budget", SKIP, "closed-form fit: no steps", ""))
        params = count_parameters(recipe.model)
        checks.append(C.params_check(params, ds.split_size("train")))
    checks.append(C.context_check(ds, db))
    return Diagnosis(dataset=str(ds.path), fingerprint=ds.fingerprint, family=ds.family, task=ds.task,
                     preset=ds.spec.get("preset"), model=name, seed=seed, steps=steps, params=params,
                     probe_samples=len(images), wall_time_s=round(time.perf_counter() - started, 3),
                     checks=checks, causes=rank_causes(checks))


def _slow_start(checks: list[CheckResult], overfit: CheckResult, budget: int | None = None) -> None:
    """Symptoms that the rest of the evidence contradicts, judged against the protocol's steps.

    When no check names a cause and the same model (same initialisation) memorises the tiny
    subset, a loss not yet below a constant's or predictions not yet spread after the probe's
    N steps are a slow start, not a finding: the protocol gives the recipe ``budget`` steps,
    not N. Memorised within that budget: the causeless loss-trend WARN and the collapse PASS,
    saying so. Memorised in more steps (or no budget known): a collapse FAIL is a WARN, and
    more steps tell. FAILs of other kinds (a frozen loss, NaN) and anything with a cause stand.
    """
    if overfit.status != PASS or any((c.cause and c.status in (FAIL, WARN))
                                     or (c.name == "loss trend" and c.status == FAIL) for c in checks):
        return
    samples = overfit.values.get("samples")
    needed = overfit.values.get("passed_at") or overfit.values.get("steps")  # steps to memorise it
    within = budget is not None and needed is not None and needed <= budget
    metric = overfit.values.get("metric")
    level = OVERFIT_PASS["classification" if metric == "accuracy" else "regression"]
    for i, c in enumerate(checks):
        if c.cause or not ((c.name == "collapse" and c.status in (FAIL, WARN))
                           or (c.name == "loss trend" and c.status == WARN)):
            continue
        if within:
            note = (f"; a slow start: the same model memorises {samples} images ({metric} >= {level:g}) "
                    f"in {needed} steps, and the protocol gives {budget}")
            checks[i] = CheckResult(c.name, PASS, c.evidence + note, "", {**c.values, "slow_start": True}, "")
        elif c.name == "collapse" and c.status == FAIL:
            checks[i] = CheckResult(c.name, WARN, c.evidence + "; yet the same model memorises "
                                    f"{samples} images and no check names a cause",
                                    "probably a slow start, not a collapse: run with more steps (--steps 200) to tell",
                                    c.values, "")


def _learning_anyway(checks: list[CheckResult]) -> None:
    """Units that died during the probe are a WARN, not a FAIL, when the model learns anyway
    (the loss trend and collapse pass): capacity is being lost, training is not stopped."""
    by_name = {c.name: i for i, c in enumerate(checks)}
    dead = checks[by_name["dead ReLUs"]] if "dead ReLUs" in by_name else None
    if dead is None or dead.status != FAIL or dead.cause != "lr-too-high":
        return
    if all(checks[by_name[n]].status == PASS for n in ("loss trend", "collapse") if n in by_name):
        checks[by_name["dead ReLUs"]] = CheckResult(
            dead.name, WARN, dead.evidence + "; the model learns with the units left",
            "many units died during the probe, though the loss falls and the predictions spread: a lower "
            "learning rate (or LeakyReLU/BatchNorm) keeps them", dead.values, dead.cause)


_DYNAMIC = ("optimizer", "gradient flow", "weights update", "dead ReLUs", "loss trend", "collapse", "augmentation")


def _probe(setup: Setup, recipe: Recipe, all_targets: np.ndarray, steps: int):
    """The checks before any step, then the training probe's.

    Returns ``(checks, blocked, (trace at init, predictions after the probe))``: ``blocked``
    says why nothing can be trained ("" if it can).
    """
    task, model = setup.info.task, recipe.model
    n_eval = min(EVAL_SAMPLES, len(setup.images))
    with Guard(setup.name, "preprocess"):
        x_eval = recipe.preprocess(setup.images[:n_eval])
    y_eval = setup.targets[:n_eval]
    first_batch = min(recipe.batch_size, len(setup.images))
    model.eval()
    with Guard(setup.name, "the forward pass"), torch.no_grad():
        out = model(x_eval)
    if not isinstance(out, torch.Tensor):
        from .results import DiagnoseError

        raise DiagnoseError(f"{setup.name}: the model returned a {type(out).__name__}, not a tensor")
    trace = _trace(model, x_eval)
    init_sites = _relu(trace)
    init_dead = 0.0 if isinstance(init_sites, str) or not init_sites else \
        max(s["dead"] for s in init_sites.values())
    scaled_all = setup.scaler.forward(all_targets) if setup.scaler is not None else None
    output = C.output_check(setup, recipe, out, y_eval)
    checks = [C.input_check(x_eval[:first_batch]), C.target_check(setup, recipe, all_targets), output,
              C.input_used_check(out, _guarded_input_gradient(setup, model, x_eval), init_dead,
                                 0 if isinstance(trace, str) else trace.saturating) if recipe.fit is None else
              CheckResult("input used", SKIP, "closed-form fit", ""),
              C.output_range_check(setup, trace, scaled_all), C.init_check(model) if recipe.fit is None else
              CheckResult("initialisation", SKIP, "closed-form fit", ""),
              C.trainable_check(model), C.dropout_check(trace)]
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    dynamic = _DYNAMIC
    blocked = ""
    if output.values.get("output_shape") != output.values.get("expected_shape"):
        blocked = "outputs have the wrong shape: fix that first"
    elif recipe.fit is None and not trainable:
        blocked = "the model has no trainable parameters"
        checks.append(CheckResult("gradient flow", FAIL, blocked,
                                  "nothing can learn: check requires_grad and what the factory returns", {},
                                  "frozen-parameters"))
        dynamic = tuple(d for d in dynamic if d != "gradient flow")
    if blocked:
        return checks + [CheckResult(n, SKIP, blocked, "") for n in dynamic], blocked, (trace, None)

    if recipe.fit is not None:
        skip = "closed-form fit: no gradient training to probe"
        split = Split("train", setup.images, setup.targets, recipe.preprocess)
        with Guard(setup.name, "the closed-form fit"), torch.no_grad():
            model.eval()
            recipe.fit(split, split)
        with Guard(setup.name, "the forward pass"):
            pred = _predict(recipe, x_eval, task)
        checks += [CheckResult(n, SKIP, skip, "") for n in
                   ("optimizer", "gradient flow", "weights update", "dead ReLUs", "loss trend")]
        checks.append(C.spread_check(pred, y_eval, task, 0, setup.info.num_outputs))
        checks.append(CheckResult("augmentation", SKIP, skip, ""))
        return checks, "", (trace, pred)

    snapshots = [("init", init_sites)]
    before = {n: p.detach().clone() for n, p in trainable.items()}
    weights = {n: float(p.detach().norm()) for n, p in trainable.items()}
    grads: dict[str, float | None] = {}
    seen = {}

    def on_step(done, optimizer):
        seen["optimizer"] = optimizer
        if done == 0 and not grads:  # called after the first backward, before the first step
            grads.update({n: (None if p.grad is None else float(p.grad.detach().double().norm()))
                          for n, p in trainable.items()})
        elif done == 1 and steps > 1 and len(snapshots) == 1:
            snapshots.append(("after step 1", _relu(_trace(model, x_eval))))

    split = Split("train", setup.images, setup.targets, recipe.preprocess)
    with Guard(setup.name, "the training probe"):
        losses = _train_steps(setup, recipe, steps, split, augment=True, on_step=on_step)
        snapshots.append((f"after step {len(losses)}", _relu(_trace(model, x_eval))))
        pred = _predict(recipe, x_eval, task)
    given = {id(p) for g in seen["optimizer"].param_groups for p in g["params"]}
    weights_result = C.weights_check(before, model, len(losses), grads,
                                     {n for n, p in trainable.items() if id(p) in given})
    trend = C.loss_trend_check(losses, C.constant_loss(recipe, setup.targets, task, setup.info.num_outputs),
                               C.nonnegative_loss(recipe.loss) or ("cross_entropy" if recipe.loss is None
                                                                  and task == "classification" else
                                                                  "mse_loss" if recipe.loss is None else None),
                               weights_result.values.get("median"))
    falling = bool(trend.values.get("falling"))
    checks += [C.optimizer_check(model, seen["optimizer"], grads, before),
               C.grad_check(grads, weights, trace, {n for n, p in trainable.items() if p.dim() >= 2}),
               weights_result,
               C.dead_check(snapshots, "" if isinstance(trace, str) else trace.output_site),
               trend, C.spread_check(pred, y_eval, task, len(losses), setup.info.num_outputs, falling),
               _augmentation_check(setup, recipe, pred, y_eval, x_eval, steps)]
    return checks, "", (trace, pred)


def _augmentation_check(setup: Setup, recipe: Recipe, pred, y_eval, x_eval, steps: int) -> CheckResult:
    if recipe.augment is None:
        return CheckResult("augmentation", SKIP, "the recipe has no augmentation", "")
    task = setup.info.task
    metric = "accuracy" if task == "classification" else "R²"
    fresh = fresh_recipe(setup)
    split = Split("train", setup.images, setup.targets, fresh.preprocess)
    with Guard(setup.name, "the training probe without augmentation"):
        _train_steps(setup, fresh, steps, split, augment=False)
        plain = _predict(fresh, x_eval, task)
    def scores(p):
        if not bool(torch.isfinite(p.double()).all()):
            return [float("nan")] * (1 if task == "classification" else setup.info.num_outputs)
        if task == "classification":
            return [C.fit_score(p, y_eval, task)]
        p, y = p.reshape(len(y_eval), -1), y_eval.reshape(len(y_eval), -1)
        return [C.fit_score(p[:, j], y[:, j], task) for j in range(y.shape[1])]

    names = setup.info.target_names or [str(j) for j in range(setup.info.num_outputs)]
    return C.augmentation_check(scores(pred), scores(plain), C.chance_score(y_eval, task), metric, steps,
                                names if task == "regression" else ["accuracy"])


def _overfit_check(setup: Setup, steps: int, n: int, time_limit: float) -> CheckResult:
    task = setup.info.task
    recipe = fresh_recipe(setup)
    x_u8, y = setup.images[:n], setup.targets[:n]
    split = Split("train", x_u8, y, recipe.preprocess)
    x_all = recipe.preprocess(x_u8)
    started, cpu_started = time.perf_counter(), time.process_time()
    done, reason, score, passed_at = 0, "step cap", float("nan"), None
    if recipe.fit is not None:
        with Guard(setup.name, "the closed-form fit"), torch.no_grad():
            recipe.model.eval()
            recipe.fit(split, split)
        score, reason = C.fit_score(_predict(recipe, x_all, task), y, task), "closed-form fit"
    else:
        optimizer = build_optimizer(recipe)
        loss_fn = loss_function(recipe, task)
        shuffle = torch.Generator().manual_seed(setup.seed)
        batch = min(recipe.batch_size, n)
        target = OVERFIT_STOP[task]
        with Guard(setup.name, "training on the tiny subset"):
            while done < steps:
                recipe.model.train()
                for xb, yb in split.batches(batch, torch.randperm(n, generator=shuffle)):
                    loss = loss_fn(recipe.model(xb), yb)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    done += 1
                    if done >= steps:
                        break
                score = C.fit_score(_predict(recipe, x_all, task), y, task)  # one epoch done
                if passed_at is None and score >= OVERFIT_PASS[task] - 1e-12:
                    passed_at = done  # memorised well enough to PASS: what the budget is judged against
                if score >= target - 1e-12:
                    reason = "fitted"
                    break
                # CPU time, not wall: a busy machine slows the probe, it must not change the checklist
                if time.process_time() - cpu_started > time_limit:
                    reason = f"CPU-time cap {time_limit:g} s"
                    break
            score = C.fit_score(_predict(recipe, x_all, task), y, task)
    metric = "accuracy" if task == "classification" else "R²"
    v = {"samples": n, "steps": done, "passed_at": passed_at, "metric": metric, "score": score, "stopped": reason,
         "seconds": round(time.perf_counter() - started, 3),
         "cpu_seconds": round(time.process_time() - cpu_started, 3)}
    how = "closed-form fit" if recipe.fit is not None else f"{done} steps ({reason})"
    evidence = f"{n} train images, {how}: train {metric} {fmt(score)}"
    if score >= OVERFIT_PASS[task] - 1e-12:
        return CheckResult("overfit tiny subset", PASS, evidence, "", v)
    advice = ("a model that cannot memorise a handful of images has a broken pipeline or too little "
              "capacity, not a hard task: see the causes ranked below" if recipe.fit is None else
              "this closed-form model cannot represent even a handful of these images (a constant, "
              "or a linear model on a task that is not linear)")
    status = WARN if score >= OVERFIT_WARN[task] else FAIL
    if status == WARN and recipe.fit is None:
        advice = "nearly fits: more steps may finish it (--steps), or a higher learning rate"
    return CheckResult("overfit tiny subset", status, evidence, advice, v)
