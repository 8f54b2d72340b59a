"""Why does my network not learn? Short, cheap probes of a recipe, as a checklist.

:func:`diagnose` builds the recipe exactly as ``cnnbench evaluate`` / ``bench`` would (the
factory called under ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng``, the same
preprocessing, loss, optimizer, batch size and target scaling), then runs probes on a small
sample of the **train** split (the test split is never read):

1. a look at one preprocessed batch and at the (scaled) targets;
2. the outputs and the loss at initialisation;
3. a short training run of ``steps`` optimizer steps with the recipe's own optimizer: the
   gradients of the first batch, the ReLU units' activity at init, after the first step and
   at the end, the loss curve, how far the weights moved, the spread of the predictions;
4. a fresh model (same seed) trained on a tiny subset until it fits it or a step/time cap:
   a model that cannot memorise 32 images has a broken pipeline, not a hard task;
5. the parameter count against the number of training images, and the leaderboard's
   reference and best baseline for this dataset when a database is given.

Each check is a :class:`CheckResult` (name, status, evidence, advice, measured values).
Everything runs on a private copy of the global RNG state, so a given ``seed`` gives the same
checklist on the same machine (the overfit probe's time cap aside; its evidence says when it
was hit). Thresholds are module constants, documented in ``docs/diagnose.md``.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .errors import CnnbenchError, FormatError, ParamError
from .h5format import Dataset, open_dataset
from .train import DataInfo, Recipe, Split, TargetScaler, adam, as_recipe, count_parameters, resolve_device

PASS, WARN, FAIL, SKIP, INFO = "PASS", "WARN", "FAIL", "SKIP", "INFO"
STATUSES = (PASS, WARN, FAIL, SKIP, INFO)

# Probe sizes.
DEFAULT_STEPS = 50  # optimizer steps of the training probe
PROBE_SAMPLES = 512  # train images read for the probes (a fixed random sample)
EVAL_SAMPLES = 256  # images the activity and spread measurements look at
OVERFIT_SAMPLES = 32  # the tiny subset the model must be able to memorise
OVERFIT_STEPS_PER_STEP = 6  # the overfit probe runs up to 6 x steps optimizer steps...
OVERFIT_TIME_S = 20.0  # ...or this long, whichever comes first

# Thresholds (see docs/diagnose.md).
INPUT_MAX_FAIL = 10.0  # |x| above this: raw 0..255 pixels
INPUT_MAX_TINY = 0.05  # |x| never above this: scaled twice?
TARGET_RMS_WARN, TARGET_RMS_FAIL = 3.0, 30.0  # RMS of the targets the loss sees
TARGET_STD_TINY = 0.05
PROB_TOL = 1e-3  # rows within this of summing to 1 are probabilities
INIT_LOSS_RATIO_WARN = 3.0  # cross-entropy at init above 3 x log(K): saturated outputs
GRAD_VANISH_RATIO = 1e-6  # a parameter's gradient norm below 1e-6 x the largest: vanishing
WEIGHT_FROZEN = 1e-7  # relative weight change below this after the probe: frozen
DEAD_LAYER_FAIL, DEAD_ALL_FAIL = 0.95, 0.5  # a layer >= 95 % dead, or half of all units
DEAD_LAYER_WARN, DEAD_ALL_WARN = 0.5, 0.2
LOSS_FLAT = 1e-4  # relative change of the loss over the probe below this: frozen
LOSS_SLOW = 0.05  # the last steps' loss less than 5 % below the first steps': not falling
LOSS_CONSTANT = 0.9  # the last steps' loss above 0.9 x the best constant prediction's: no better
SPREAD_FAIL = 0.1  # prediction std / target std below this: predicts the mean
OVERFIT_STOP = {"classification": 1.0, "regression": 0.99}  # stop early once the subset is fitted
OVERFIT_PASS = {"classification": 1.0, "regression": 0.9}  # accuracy, R² on the subset
OVERFIT_WARN = {"classification": 0.9, "regression": 0.5}
PARAMS_PER_SAMPLE_WARN = 100.0

LOGITS_LOSSES = (F.cross_entropy,)  # losses that apply softmax themselves


class DiagnoseError(CnnbenchError):
    """The model could not be probed (it raised, or returned something unusable)."""


@dataclass
class CheckResult:
    """One line of the checklist.

    name : short name ("input scale")
    status : PASS, WARN, FAIL, SKIP (not applicable) or INFO (context, no verdict)
    evidence : one line with the measured numbers
    advice : one line pointing at the fix ("" when there is nothing to do)
    values : the measured numbers, for ``--json`` and tests
    """

    name: str
    status: str
    evidence: str
    advice: str = ""
    values: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return _finite(asdict(self))


@dataclass
class Diagnosis:
    """What :func:`diagnose` returns: the checklist and what was probed."""

    dataset: str
    fingerprint: str
    family: str
    task: str
    preset: str | None
    model: str
    seed: int
    steps: int
    params: int
    probe_samples: int
    wall_time_s: float
    checks: list[CheckResult]

    def check(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in STATUSES}

    def as_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "checks"}
        out["counts"] = self.counts()
        out["checks"] = [c.as_dict() for c in self.checks]
        return _finite(out)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, allow_nan=False)


def _finite(obj):
    """NaN and inf become None (JSON has neither)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class _Guard:
    """Turns an exception raised by the user's code into one DiagnoseError line."""

    def __init__(self, model_name: str, stage: str):
        self.model_name, self.stage = model_name, stage

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, CnnbenchError) or not isinstance(exc, Exception):
            return False
        raise DiagnoseError(f"{self.model_name}: {self.stage} failed: {_one_line(exc)}") from None


# --------------------------------------------------------------------------------------------
# Choosing the model and reading the data


def resolve_model(model: str | None = None, baseline: str | None = None,
                  dataset: Dataset | None = None) -> tuple[Callable, str]:
    """``(factory, name)`` for ``--model FILE.py:FACTORY`` or ``--baseline NAME`` (exactly one)."""
    if (model is None) == (baseline is None):
        raise ParamError("give exactly one of --model FILE.py:FACTORY or --baseline NAME")
    if baseline is not None:
        from .baselines import get_baseline

        chosen = get_baseline(baseline)
        if dataset is not None and not chosen.applies_to(dataset.family, dataset.task):
            raise ParamError(f"baseline {chosen.name!r} does not apply to {dataset.family} "
                             f"({dataset.task}); see cnnbench baselines")
        return chosen.make, chosen.name
    from .models import load_factory

    return load_factory(model), model


def _read_train_sample(ds: Dataset, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(images, targets, all_targets)``: a fixed random sample of ``n`` train images.

    The sample does not depend on the run seed (seed 0 of its own stream), so changing
    ``--seed`` changes the initialisation and batch order, not the images probed.
    """
    if "targets" not in ds.shapes["train"]:
        raise FormatError(f"{ds.path}: the train split has no targets; diagnose needs train targets")
    n_train = ds.split_size("train")
    if n_train == 0:
        raise FormatError(f"{ds.path}: the train split is empty")
    try:
        with h5py.File(ds.path, "r") as f:
            group = f["train"]
            all_targets = group["targets"][()]
            if n >= n_train:
                images = group["images"][()]
                chosen = np.arange(n_train)
            else:
                chosen = np.sort(np.random.default_rng(0).choice(n_train, size=n, replace=False))
                images = group["images"][chosen]
    except OSError:
        raise FormatError(f"{ds.path}: the train split cannot be read (truncated or corrupt?)") from None
    return images, all_targets[chosen], all_targets


# --------------------------------------------------------------------------------------------
# ReLU activity, for any way of calling relu (nn.ReLU, F.relu, torch.relu, x.relu())


_RELU_FUNCS = {F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}


class _ReluRecorder(TorchFunctionMode):
    """Records, per relu call site, which units (channels, or features) were ever positive.

    A call site is named by the innermost module running it and the call's rank inside that
    module's forward: ``features.1`` for an ``nn.ReLU``, ``TwoFilterNet.forward relu 1`` for an
    ``F.relu`` in a forward method.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.stack: list[str] = []
        self.calls: dict[str, int] = {}
        self.invocations: dict[str, int] = {}
        self.active: dict[str, torch.Tensor] = {}
        self.handles = []
        for name, module in model.named_modules():
            label = name or type(module).__name__
            self.handles.append(module.register_forward_pre_hook(
                lambda m, args, label=label: self._enter(label)))
            self.handles.append(module.register_forward_hook(lambda m, args, out: self._leave()))
        self.types = {(name or type(m).__name__): m for name, m in model.named_modules()}

    def _enter(self, label):
        self.stack.append(label)
        self.calls[label] = 0
        self.invocations[label] = self.invocations.get(label, 0) + 1  # a module may run twice

    def _leave(self):
        if self.stack:
            self.stack.pop()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in _RELU_FUNCS and isinstance(out, torch.Tensor) and out.dim() >= 1:
            owner = self.stack[-1] if self.stack else "model"
            module = self.types.get(owner)
            if isinstance(module, nn.ReLU):
                site = owner
            else:
                self.calls[owner] = self.calls.get(owner, 0) + 1
                where = f"{type(module).__name__}.forward" if owner == type(module).__name__ else owner
                site = f"{where} relu {self.calls[owner]}"
            if self.invocations.get(owner, 1) > 1:
                site += f" (call {self.invocations[owner]})"
            with torch.no_grad():
                o = out.detach()
                units = (o > 0).transpose(0, 1).reshape(o.shape[1], -1).any(dim=1) if o.dim() >= 2 \
                    else (o > 0).any().reshape(1)
            while site in self.active and self.active[site].shape != units.shape:
                site += "'"
            self.active[site] = units if site not in self.active else self.active[site] | units
        return out

    def remove(self):
        for h in self.handles:
            h.remove()


def relu_activity(model: nn.Module, x: torch.Tensor) -> dict[str, dict]:
    """``{site: {"units": n, "dead": share never positive over the batch x}}``.

    Runs a deep copy of the model in train mode (batch statistics, as training sees it), on
    a private RNG state, so neither the model nor the caller's random stream is touched.
    """
    probe = copy.deepcopy(model).train()
    recorder = _ReluRecorder(probe)
    try:
        with torch.random.fork_rng(devices=[x.device.index or 0] if x.device.type == "cuda" else []), \
                torch.no_grad(), recorder:
            probe(x)
    finally:
        recorder.remove()
    return {site: {"units": int(a.numel()), "dead": float(1.0 - a.float().mean())}
            for site, a in recorder.active.items()}


def _activity(model: nn.Module, x: torch.Tensor):
    """:func:`relu_activity`, or the one-line reason it failed (the dead-ReLU check is then
    skipped: a model that cannot be deep-copied or run under a TorchFunctionMode is still
    diagnosed by the other checks)."""
    try:
        return relu_activity(model, x)
    except Exception as exc:  # the user's model; every other probe still runs
        return _one_line(exc)


# --------------------------------------------------------------------------------------------
# The probes


@dataclass
class _Setup:
    ds: Dataset
    info: DataInfo
    factory: Callable
    name: str
    seed: int
    dev: torch.device
    images: torch.Tensor  # uint8 sample of train, on dev
    targets: torch.Tensor  # int64 ids or scaled float targets, on dev
    scaler: TargetScaler | None


def _fresh_recipe(setup: _Setup) -> Recipe:
    """The factory's recipe with the run's initialisation: seeded as :func:`train.run` seeds it."""
    torch.manual_seed(setup.seed)
    with _Guard(setup.name, "the model factory"):
        recipe = as_recipe(setup.factory(setup.info), setup.info)
    with _Guard(setup.name, "moving the model to the device"):
        recipe.model.to(setup.dev)
    return recipe


def _loss_fn(recipe: Recipe, task: str):
    return recipe.loss or (F.cross_entropy if task == "classification" else F.mse_loss)


def _predict(recipe: Recipe, x: torch.Tensor, task: str) -> torch.Tensor:
    """Decoded predictions in eval mode, as the protocol scores them (scaled units)."""
    recipe.model.eval()
    with torch.no_grad():
        out = recipe.model(x)
        decode = recipe.decode or ((lambda o: o.argmax(dim=1)) if task == "classification" else (lambda o: o))
        return decode(out)


def _fit_score(pred: torch.Tensor, y: torch.Tensor, task: str) -> float:
    """Accuracy, or R² over all columns (scaled units), of predictions on a subset."""
    if task == "classification":
        return float((pred.reshape(-1) == y.reshape(-1)).float().mean())
    pred = pred.double().reshape(len(y), -1)
    y = y.double().reshape(len(y), -1)
    sst = float(((y - y.mean(dim=0)) ** 2).sum())
    sse = float(((pred - y) ** 2).sum())
    return 1.0 - sse / sst if sst > 0 else (1.0 if sse == 0 else float("-inf"))


def _is_logits_loss(loss) -> bool:
    return loss is None or loss in LOGITS_LOSSES or isinstance(loss, nn.CrossEntropyLoss)


def _fmt(v: float) -> str:
    if v is None or not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    a = abs(v)
    return f"{v:.3g}" if 1e-3 <= a < 1e4 else f"{v:.2e}"


def _input_check(x: torch.Tensor) -> CheckResult:
    x = x.detach().double()
    finite = bool(torch.isfinite(x).all())
    v = {"min": float(x.min()), "max": float(x.max()), "mean": float(x.mean()), "std": float(x.std()),
         "shape": list(x.shape)}
    evidence = (f"preprocessed batch {tuple(x.shape)}: min {_fmt(v['min'])}, max {_fmt(v['max'])}, "
                f"mean {_fmt(v['mean'])}, std {_fmt(v['std'])}")
    peak = max(abs(v["min"]), abs(v["max"]))
    if not finite:
        return CheckResult("input scale", FAIL, evidence + " (NaN or inf)",
                           "preprocess produces NaN/inf: check divisions (by a std of 0?)", v)
    if peak > INPUT_MAX_FAIL:
        return CheckResult("input scale", FAIL, evidence,
                           "inputs look like raw 0..255 pixels: divide by 255 (preprocess=scale_01) "
                           "or standardise; large inputs saturate softmax/ReLUs and blow up steps", v)
    if v["std"] == 0:
        return CheckResult("input scale", WARN, evidence,
                           "every input value is the same: is preprocess discarding the image?", v)
    if peak < INPUT_MAX_TINY:
        return CheckResult("input scale", WARN, evidence,
                           "inputs are nearly zero: scaled twice (/255 twice)? aim for values of order 1", v)
    return CheckResult("input scale", PASS, evidence, "", v)


def _target_check(setup: _Setup, recipe: Recipe, all_targets: np.ndarray) -> CheckResult:
    if setup.info.task != "regression":
        return CheckResult("target scale", SKIP, "classification: targets are class ids", "")
    y = setup.scaler.forward(all_targets).astype(np.float64)
    mean, std = y.mean(axis=0), y.std(axis=0)
    rms = float(np.sqrt((y ** 2).mean()))
    v = {"target_scaling": recipe.target_scaling, "mean": mean.tolist(), "std": std.tolist(), "rms": rms}
    cols = ", ".join(f"{n} mean {_fmt(m)} std {_fmt(s)}" for n, m, s in
                     zip(setup.info.target_names or range(len(mean)), mean, std))
    evidence = f"targets the loss sees (target_scaling={recipe.target_scaling!r}): {cols}; RMS {_fmt(rms)}"
    if rms > TARGET_RMS_FAIL:
        status = FAIL
    elif rms > TARGET_RMS_WARN or float(std.min()) < TARGET_STD_TINY:
        status = WARN
    else:
        return CheckResult("target scale", PASS, evidence, "", v)
    advice = ("standardise the targets (target_scaling='standard', the default): at this scale the "
              "output bias alone must travel far, and MSE gradients are huge at first"
              if rms > TARGET_RMS_WARN else
              "targets barely vary: standardise them (target_scaling='standard')")
    return CheckResult("target scale", status, evidence, advice, v)


def _output_check(setup: _Setup, recipe: Recipe, x: torch.Tensor, y: torch.Tensor) -> CheckResult:
    task, k = setup.info.task, setup.info.num_outputs
    recipe.model.eval()
    with _Guard(setup.name, "the forward pass"), torch.no_grad():
        out = recipe.model(x)
    if not isinstance(out, torch.Tensor):
        raise DiagnoseError(f"{setup.name}: the model returned a {type(out).__name__}, not a tensor")
    shape = tuple(out.shape)
    want = (len(x), k) if task == "classification" else tuple(y.shape)
    v = {"output_shape": list(shape), "expected_shape": list(want)}
    if shape != want:
        why = (f"outputs have shape {shape}; the loss expects {want}")
        advice = (f"return one logit per class: (batch, {k})" if task == "classification" else
                  "return (batch, targets) exactly: a (batch,) vs (batch, 1) mismatch broadcasts MSE "
                  "into a batch x batch matrix")
        return CheckResult("output/loss", FAIL, why, advice, v)
    raw, out = out, out.detach().double()
    if not bool(torch.isfinite(out).all()):
        return CheckResult("output/loss", FAIL, "outputs at init contain NaN or inf",
                           "check the input scale and the initialisation", v)
    if recipe.fit is not None:
        return CheckResult("output/loss", PASS, f"outputs {shape}; closed-form fit (no loss to check)", "", v)
    loss_fn = _loss_fn(recipe, task)
    with _Guard(setup.name, "the loss"), torch.no_grad():
        loss = float(loss_fn(raw, y))
    v["init_loss"] = loss
    if task == "classification":
        reference = math.log(k)
        v["log_num_classes"] = reference
        rows = out.sum(dim=1)
        probabilities = bool((out >= 0).all()) and bool(((rows - 1).abs() < PROB_TOL).all())
        top = out.softmax(dim=1).max(dim=1).values if not probabilities else out.max(dim=1).values
        v["probabilities"] = probabilities
        v["saturated_share"] = float((top > 0.99).double().mean())
        evidence = (f"loss at init {_fmt(loss)} vs log({k}) = {_fmt(reference)}; outputs "
                    + ("are probabilities (>= 0, rows sum to 1)" if probabilities else "are logits")
                    + f"; top probability > 0.99 on {v['saturated_share']:.0%} of rows")
        if probabilities and _is_logits_loss(recipe.loss):
            return CheckResult("output/loss", FAIL, evidence,
                               "softmax applied twice: the model ends in softmax and cross_entropy applies "
                               "it again; return logits (drop the final softmax)", v)
        if probabilities:
            return CheckResult("output/loss", WARN, evidence,
                               "outputs are probabilities: make sure the loss expects probabilities "
                               "(e.g. nll_loss on their log), not logits", v)
        if _is_logits_loss(recipe.loss) and loss > INIT_LOSS_RATIO_WARN * reference:
            return CheckResult("output/loss", WARN, evidence,
                               "logits are large at init (saturated softmax): scale inputs to ~[0, 1] "
                               "and use a standard initialisation", v)
        return CheckResult("output/loss", PASS, evidence, "", v)
    # Regression: compare with the loss of predicting the train mean.
    reference = float(((y.double() - y.double().mean(dim=0)) ** 2).mean()) if loss_fn is F.mse_loss else None
    v["mean_predictor_loss"] = reference
    evidence = f"outputs {shape}; loss at init {_fmt(loss)}" + (
        f" vs {_fmt(reference)} for predicting the mean" if reference is not None else "")
    return CheckResult("output/loss", PASS, evidence, "", v)


def _grad_check(setup: _Setup, grads: dict[str, float | None], weights: dict[str, float]) -> CheckResult:
    if not grads:
        return CheckResult("gradient flow", FAIL, "the model has no trainable parameters",
                           "nothing can learn: check requires_grad and the optimizer's parameters")
    none = [n for n, g in grads.items() if g is None]
    norms = {n: g for n, g in grads.items() if g is not None}
    top = max(norms.values(), default=0.0)
    v = {"grad_norms": grads, "weight_norms": weights}
    if none:
        v["no_grad"] = none
    small = sorted((g, n) for n, g in norms.items())
    if not math.isfinite(top):
        bad = next(n for n, g in norms.items() if not math.isfinite(g))
        return CheckResult("gradient flow", FAIL, f"first batch: gradient of {bad} is NaN/inf",
                           "lower the learning rate, scale inputs and targets; check the loss for log(0)", v)
    summary = (f"first batch: gradient norms from {_fmt(small[0][0])} ({small[0][1]}) to "
               f"{_fmt(small[-1][0])} ({small[-1][1]})") if small else "first batch: no gradient at all"
    if top == 0.0:
        return CheckResult("gradient flow", FAIL, summary + "; every gradient is exactly 0",
                           "no gradient reaches the parameters: a saturated softmax/sigmoid, dead ReLUs, "
                           "or a detached/argmax step in the forward pass", v)
    vanishing = [n for g, n in small if g < GRAD_VANISH_RATIO * top]
    v["vanishing"] = vanishing
    if none:
        return CheckResult("gradient flow", WARN, summary + f"; no gradient at all for {', '.join(none[:3])}",
                           "these parameters are not used by the forward pass (or detached): "
                           "they never train", v)
    if vanishing:
        return CheckResult("gradient flow", WARN,
                           summary + f"; {len(vanishing)} below {GRAD_VANISH_RATIO:g} x the largest",
                           f"vanishing gradient at {vanishing[0]}: saturated activations upstream "
                           "(check input scale, init, softmax), or too deep without normalisation", v)
    return CheckResult("gradient flow", PASS, summary, "", v)


def _weights_check(before: dict[str, torch.Tensor], model: nn.Module, steps: int) -> CheckResult:
    changes = {}  # ||w_end - w_0|| / ||w_0||; the absolute change where w_0 is all zeros (biases)
    for n, p in model.named_parameters():
        if n in before:
            w0 = before[n].double()
            delta = float((p.detach().double() - w0).norm())
            norm = float(w0.norm())
            changes[n] = delta / norm if norm > 0 else delta
    v = {"relative_change": changes}
    if not changes:
        return CheckResult("weights update", SKIP, "no trainable parameters", "")
    frozen = [n for n, c in changes.items() if not c > WEIGHT_FROZEN]
    v["frozen"] = frozen
    lo = min(changes, key=changes.get)
    evidence = (f"after {steps} steps the least-moved parameter, {lo}, changed by {_fmt(changes[lo])} "
                f"(relative; median over parameters {_fmt(float(np.median(list(changes.values()))))})")
    if len(frozen) == len(changes):
        return CheckResult("weights update", FAIL, evidence + "; no parameter moved",
                           "the optimizer changes nothing: gradients vanish (see gradient flow) or the "
                           "learning rate is far too small", v)
    if frozen:
        return CheckResult("weights update", WARN,
                           evidence + f"; {len(frozen)} frozen: {', '.join(frozen[:3])}",
                           "these parameters do not train: no gradient reaches them, or the optimizer "
                           "was not given them", v)
    return CheckResult("weights update", PASS, evidence, "", v)


def _dead_check(snapshots: list[tuple[str, dict | str]]) -> CheckResult:
    failed = next((r for _, r in snapshots if isinstance(r, str)), None)
    if failed is not None:
        return CheckResult("dead ReLUs", SKIP, f"the activity probe could not run: {failed}", "")
    if not snapshots or not snapshots[0][1]:
        return CheckResult("dead ReLUs", SKIP, "no relu calls in the forward pass (other activations are "
                           "not checked)", "")
    v = {"snapshots": {when: sites for when, sites in snapshots}}
    parts, final = [], None
    for when, sites in snapshots:
        units = sum(s["units"] for s in sites.values())
        dead = sum(s["units"] * s["dead"] for s in sites.values()) / max(units, 1)
        worst = max(sites, key=lambda k: sites[k]["dead"])
        parts.append(f"{when} {dead:.0%} (worst {worst} {sites[worst]['dead']:.0%})")
        final = (dead, worst, sites[worst]["dead"])
    evidence = "ReLU units never active over the batch: " + "; ".join(parts)
    dead, worst, worst_share = final
    v["dead_share"], v["worst_site"], v["worst_dead_share"] = dead, worst, worst_share
    advice = ("ReLUs die when a large early step pushes their inputs below zero: lower the learning "
              "rate (Adam 1e-3), standardise targets and scale inputs; LeakyReLU/BatchNorm also help")
    if worst_share >= DEAD_LAYER_FAIL or dead >= DEAD_ALL_FAIL:
        return CheckResult("dead ReLUs", FAIL, evidence, advice, v)
    if worst_share >= DEAD_LAYER_WARN or dead >= DEAD_ALL_WARN:
        return CheckResult("dead ReLUs", WARN, evidence, advice, v)
    return CheckResult("dead ReLUs", PASS, evidence, "", v)


def _constant_loss(recipe: Recipe, y: torch.Tensor, task: str, k: int) -> float | None:
    """The default loss of the best constant prediction on ``y``: what "learnt nothing" scores.

    Cross-entropy: the entropy of the class frequencies; MSE: the targets' variance. None
    for any other loss.
    """
    if task == "classification" and _is_logits_loss(recipe.loss):
        p = torch.bincount(y.reshape(-1).cpu(), minlength=k).double()
        p = p[p > 0] / p.sum()
        return float(-(p * p.log()).sum())
    if task == "regression" and recipe.loss in (None, F.mse_loss):
        y = y.double().reshape(len(y), -1)
        return float(((y - y.mean(dim=0)) ** 2).mean())
    return None


def _loss_trend_check(losses: list[float], constant: float | None = None) -> CheckResult:
    v = {"losses": losses, "constant_loss": constant}
    if not losses:
        return CheckResult("loss trend", SKIP, "no training steps", "")
    bad = next((i for i, l in enumerate(losses) if not math.isfinite(l)), None)
    if bad is not None:
        return CheckResult("loss trend", FAIL, f"loss is NaN/inf at step {bad + 1}",
                           "the run diverges: lower the learning rate, scale inputs and targets", v)
    w = max(1, min(5, len(losses) // 4))
    first, last = float(np.mean(losses[:w])), float(np.mean(losses[-w:]))
    change = (first - last) / abs(first) if first else 0.0
    v.update(first=first, last=last, relative_drop=change, spread=float(np.ptp(losses)))
    evidence = (f"training loss over {len(losses)} steps: {_fmt(first)} (first {w}) -> {_fmt(last)} "
                f"(last {w}), min {_fmt(min(losses))}")
    if float(np.ptp(losses)) <= LOSS_FLAT * max(abs(first), 1e-12):
        return CheckResult("loss trend", FAIL, evidence + "; frozen",
                           "the loss does not move at all: nothing is learning (see gradient flow)", v)
    if constant is not None:
        evidence += f"; the best constant prediction scores {_fmt(constant)}"
    if change < LOSS_SLOW:
        return CheckResult("loss trend", WARN, evidence + ("; not falling" if change <= 0 else
                                                           f"; fell only {change:.1%}"),
                           "the loss is (nearly) not falling: check the learning rate (too small, or so "
                           "large it bounces), or give it more steps (--steps)", v)
    if constant is not None and last >= LOSS_CONSTANT * constant:
        return CheckResult("loss trend", WARN, evidence + "; no better yet",
                           "the loss has not gone below what a constant prediction (the mean, or the class "
                           "frequencies) scores: the model is not using the image yet", v)
    return CheckResult("loss trend", PASS, evidence, "", v)


def _spread_check(pred: torch.Tensor, y: torch.Tensor, task: str, steps: int, k: int) -> CheckResult:
    after = f"after {steps} steps" if steps else "after the fit"
    if task == "classification":
        pred = pred.reshape(-1).cpu()
        counts = torch.bincount(pred.clamp(min=0), minlength=k).tolist()
        classes_in_y = int(torch.unique(y).numel())
        v = {"predicted_counts": counts, "target_classes": classes_in_y,
             "accuracy": _fit_score(pred, y.cpu(), task)}
        used = sum(c > 0 for c in counts)
        evidence = (f"{after}: {used} of {k} classes predicted on {len(pred)} train images "
                    f"(counts {counts}); accuracy {v['accuracy']:.2f}")
        if used == 1 and classes_in_y > 1:
            return CheckResult("collapse", FAIL, evidence,
                               "the model predicts one class for everything: it ignores the image "
                               "(see output/loss, dead ReLUs, input scale)", v)
        return CheckResult("collapse", PASS, evidence, "", v)
    pred = pred.double().reshape(len(y), -1).cpu()
    y = y.double().reshape(len(y), -1).cpu()
    ratios = (pred.std(dim=0) / y.std(dim=0).clamp(min=1e-12)).tolist()
    v = {"std_ratio": ratios, "r2": _fit_score(pred, y, task)}
    evidence = (f"{after}: prediction std / target std = {', '.join(f'{r:.3f}' for r in ratios)} "
                f"on {len(y)} train images; R² {_fmt(v['r2'])}")
    if min(ratios) < SPREAD_FAIL:
        return CheckResult("collapse", FAIL, evidence,
                           "the model predicts (nearly) the mean for every image: see dead ReLUs and "
                           "target scale; a lower learning rate or a linear model (ridge) is the first "
                           "thing to try", v)
    return CheckResult("collapse", PASS, evidence, "", v)


def _overfit_check(setup: _Setup, steps: int, n: int, time_limit: float) -> CheckResult:
    task = setup.info.task
    recipe = _fresh_recipe(setup)
    x_u8, y = setup.images[:n], setup.targets[:n]
    split = Split("train", x_u8, y, recipe.preprocess)
    x_all = recipe.preprocess(x_u8)
    started = time.perf_counter()
    done, reason, score = 0, "step cap", float("nan")
    if recipe.fit is not None:
        with _Guard(setup.name, "the closed-form fit"), torch.no_grad():
            recipe.model.eval()
            recipe.fit(split, split)
        score, reason = _fit_score(_predict(recipe, x_all, task), y, task), "closed-form fit"
    else:
        optimizer = (recipe.optimizer or adam(1e-3))(recipe.model.parameters())
        loss_fn = _loss_fn(recipe, task)
        shuffle = torch.Generator().manual_seed(setup.seed)
        batch = min(recipe.batch_size, n)
        target = OVERFIT_STOP[task]
        with _Guard(setup.name, "training on the tiny subset"):
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
                score = _fit_score(_predict(recipe, x_all, task), y, task)  # one epoch done
                if score >= target - 1e-12:
                    reason = "fitted"
                    break
                if time.perf_counter() - started > time_limit:
                    reason = f"time cap {time_limit:g} s"
                    break
            score = _fit_score(_predict(recipe, x_all, task), y, task)
    metric = "accuracy" if task == "classification" else "R²"
    v = {"samples": n, "steps": done, "metric": metric, "score": score, "stopped": reason,
         "seconds": round(time.perf_counter() - started, 3)}
    how = "closed-form fit" if recipe.fit is not None else f"{done} steps ({reason})"
    evidence = f"{n} train images, {how}: train {metric} {_fmt(score)}"
    if score >= OVERFIT_PASS[task] - 1e-12:
        return CheckResult("overfit tiny subset", PASS, evidence, "", v)
    advice = ("a model that cannot memorise a handful of images has a broken pipeline, not a hard task: "
              "fix the FAILs above first (loss, scales, learning rate)" if recipe.fit is None else
              "this closed-form model cannot represent even a handful of these images (a constant, "
              "or a linear model on a task that is not linear)")
    status = WARN if score >= OVERFIT_WARN[task] else FAIL
    if status == WARN and recipe.fit is None:
        advice = "nearly fits: more steps may finish it (--steps), or a higher learning rate"
    return CheckResult("overfit tiny subset", status, evidence, advice, v)


def _params_check(params: int, n_train: int) -> CheckResult:
    ratio = params / max(n_train, 1)
    v = {"params": params, "n_train": n_train, "ratio": ratio}
    evidence = f"{params:,} parameters for {n_train:,} training images ({ratio:.3g} per image)"
    if ratio > PARAMS_PER_SAMPLE_WARN:
        return CheckResult("parameters vs samples", WARN, evidence,
                           "many parameters per image: if train fits but val lags, try a smaller model, "
                           "augmentation or a linear baseline (ridge) first (seeds 001, 002)", v)
    return CheckResult("parameters vs samples", PASS, evidence, "", v)


def _context_check(ds: Dataset, db) -> CheckResult:
    name = "baseline context"
    if db is None:
        return CheckResult(name, SKIP, "no leaderboard given (--db)", "")
    path = Path(db)
    if not path.exists():
        return CheckResult(name, SKIP, f"no leaderboard at {path}", "")
    from .leaderboard import Leaderboard

    with Leaderboard(path, create=False) as board:
        boards = board.boards([ds.fingerprint], optimum=ds.optimum)
    if not boards:
        return CheckResult(name, SKIP, f"no runs recorded for this dataset in {path}",
                           f"cnnbench bench {ds.path} -b mean -b ridge gives the reference scores")
    b = max(boards, key=lambda b: b.protocol_version)
    refs = [e for e in b.entries if e.kind == "reference"]
    models = [e for e in b.entries if e.kind == "model" and e.source == "baseline" and e.rank is not None]
    optimum = next((e for e in b.entries if e.kind == "optimum"), None)
    parts = [f"reference {e.name} {e.score:.4g}" for e in refs]
    if models:
        best = min(models, key=lambda e: e.rank)
        parts.append(f"best baseline {best.name} {best.score:.4g}")
    if optimum:
        parts.append(f"optimum {optimum.score:.4g}")
    v = {"metric": b.metric, "reference": {e.name: e.score for e in refs},
         "best_baseline": {"name": best.name, "score": best.score} if models else None,
         "optimum": optimum.score if optimum else None}
    return CheckResult(name, INFO, f"test {b.metric} on this dataset: " + "; ".join(parts),
                       "your model must beat the reference to have learnt anything; "
                       "`cnnbench evaluate` scores it on the same board", v)


# --------------------------------------------------------------------------------------------
# The entry point


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
    Diagnosis, whose ``checks`` are in a fixed order.
    """
    started = time.perf_counter()
    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    if steps < 1:
        raise ParamError(f"steps: {steps} must be at least 1")
    if seed < 0:
        raise ParamError(f"seed: {seed} must be non-negative")
    info = DataInfo.from_dataset(ds)
    dev = resolve_device(device)
    images, targets, all_targets = _read_train_sample(ds, probe_samples)
    overfit_steps = overfit_steps if overfit_steps is not None else OVERFIT_STEPS_PER_STEP * steps

    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        setup = _Setup(ds, info, factory, name, seed, dev, torch.from_numpy(images).to(dev), None, None)
        recipe = _fresh_recipe(setup)
        if ds.task == "regression":
            setup.scaler = TargetScaler.fit(all_targets, recipe.target_scaling)  # as train.run: all of train
            setup.targets = torch.from_numpy(setup.scaler.forward(targets)).to(dev)
        else:
            setup.targets = torch.from_numpy(np.asarray(targets, dtype=np.int64)).to(dev)
        checks, blocked = _probe(setup, recipe, all_targets, steps)
        if blocked:
            checks.append(CheckResult("overfit tiny subset", SKIP, blocked, ""))
        else:
            checks.append(_overfit_check(setup, overfit_steps, min(overfit_samples, len(images)),
                                         overfit_time_s))
        params = count_parameters(recipe.model)
        checks.append(_params_check(params, ds.split_size("train")))
    checks.append(_context_check(ds, db))
    return Diagnosis(dataset=str(ds.path), fingerprint=ds.fingerprint, family=ds.family, task=ds.task,
                     preset=ds.spec.get("preset"), model=name, seed=seed, steps=steps, params=params,
                     probe_samples=len(images), wall_time_s=round(time.perf_counter() - started, 3),
                     checks=checks)


def _probe(setup: _Setup, recipe: Recipe, all_targets: np.ndarray, steps: int) -> tuple[list, str]:
    """Input, target and output checks at init, then the training probe's checks.

    Returns ``(checks, blocked)``: ``blocked`` says why nothing can be trained ("" if it can).
    """
    task, model = setup.info.task, recipe.model
    n_eval = min(EVAL_SAMPLES, len(setup.images))
    with _Guard(setup.name, "preprocess"):
        x_eval = recipe.preprocess(setup.images[:n_eval])
    y_eval = setup.targets[:n_eval]
    first_batch = min(recipe.batch_size, len(setup.images))
    checks = [_input_check(x_eval[:first_batch]), _target_check(setup, recipe, all_targets),
              _output_check(setup, recipe, x_eval, y_eval)]
    dynamic = ("gradient flow", "weights update", "dead ReLUs", "loss trend", "collapse")
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    blocked = ""
    if "output_shape" in checks[-1].values and \
            checks[-1].values["output_shape"] != checks[-1].values["expected_shape"]:
        blocked = "outputs have the wrong shape: fix that first"
    elif recipe.fit is None and not trainable:
        blocked = "the model has no trainable parameters"
        checks.append(CheckResult("gradient flow", FAIL, blocked,
                                  "nothing can learn: check requires_grad and what the factory returns"))
        dynamic = dynamic[1:]
    if blocked:
        return checks + [CheckResult(n, SKIP, blocked, "") for n in dynamic], blocked

    if recipe.fit is not None:
        skip = "closed-form fit: no gradient training to probe"
        split = Split("train", setup.images, setup.targets, recipe.preprocess)
        with _Guard(setup.name, "the closed-form fit"), torch.no_grad():
            model.eval()
            recipe.fit(split, split)
        with _Guard(setup.name, "the forward pass"):
            pred = _predict(recipe, x_eval, task)
        checks += [CheckResult(n, SKIP, skip, "") for n in
                   ("gradient flow", "weights update", "dead ReLUs", "loss trend")]
        checks.append(_spread_check(pred, y_eval, task, 0, setup.info.num_outputs))
        return checks, ""

    snapshots = [("init", _activity(model, x_eval))]
    before = {n: p.detach().clone() for n, p in trainable.items()}
    weights = {n: float(p.detach().norm()) for n, p in trainable.items()}
    grads: dict[str, float | None] = {}
    losses: list[float] = []
    with _Guard(setup.name, "the optimizer"):
        optimizer = (recipe.optimizer or adam(1e-3))(model.parameters())
    loss_fn = _loss_fn(recipe, task)
    shuffle = torch.Generator().manual_seed(setup.seed)  # as train._train: explicit, CPU
    augment_gen = torch.Generator(device=setup.dev).manual_seed(setup.seed + 1) if recipe.augment else None
    split = Split("train", setup.images, setup.targets, recipe.preprocess)
    done = 0
    with _Guard(setup.name, "the training probe"):
        while done < steps:
            model.train()
            for x, y in split.batches(recipe.batch_size, torch.randperm(len(split), generator=shuffle)):
                if recipe.augment is not None:
                    x = recipe.augment(x, augment_gen)
                loss = loss_fn(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if done == 0:
                    grads = {n: (None if p.grad is None else float(p.grad.detach().double().norm()))
                             for n, p in trainable.items()}
                optimizer.step()
                losses.append(float(loss.detach()))
                done += 1
                if done == 1 and steps > 1:
                    snapshots.append(("after step 1", _activity(model, x_eval)))
                if done >= steps:
                    break
        snapshots.append((f"after step {done}", _activity(model, x_eval)))
        pred = _predict(recipe, x_eval, task)
    checks += [_grad_check(setup, grads, weights), _weights_check(before, model, done),
               _dead_check(snapshots),
               _loss_trend_check(losses, _constant_loss(recipe, setup.targets, task, setup.info.num_outputs)),
               _spread_check(pred, y_eval, task, done, setup.info.num_outputs)]
    return checks, ""


def render_text(d: Diagnosis) -> str:
    """The checklist as printed by ``cnnbench diagnose``."""
    title = d.preset or Path(d.dataset).name
    lines = [f"diagnose {d.model} on {title} ({d.family}, {d.task}; fingerprint {d.fingerprint[:12]})",
             f"seed {d.seed}, {d.steps} probe steps on {d.probe_samples} train images "
             f"(test never read), {d.params:,} parameters, {d.wall_time_s:.1f} s", ""]
    width = max(len(c.name) for c in d.checks)
    for c in d.checks:
        lines.append(f"{c.status:<4}  {c.name:<{width}}  {c.evidence}")
        if c.advice and c.status in (WARN, FAIL, INFO):
            lines.append(f"{'':<4}  {'':<{width}}  -> {c.advice}")
    counts = d.counts()
    lines += ["", ", ".join(f"{counts[s]} {s}" for s in (FAIL, WARN, PASS, SKIP) if counts[s])]
    return "\n".join(lines)
