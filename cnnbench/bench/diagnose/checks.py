"""The checks: each turns measured numbers into one CheckResult (status, evidence, advice).

A check that fires names the cause it points at (``CheckResult.cause``, a key of
:data:`cnnbench.bench.diagnose.verdict.CAUSES`); symptoms that many causes share (collapse, a failed
overfit) name none, and the verdict ranks the causes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..protocol import Recipe, loss_function
from .results import FAIL, INFO, PASS, SKIP, WARN, CheckResult, fmt
from .setup import Guard, Setup
from .thresholds import (
    AUG_MIN_GAIN,
    AUG_RATIO_FAIL,
    AUG_RATIO_WARN,
    CORRELATED_OUTPUTS,
    DEAD_ALL_FAIL,
    DEAD_ALL_WARN,
    DEAD_GROWN_FAIL,
    DEAD_GROWN_WARN,
    DEAD_LAYER_FAIL,
    DEAD_LAYER_WARN,
    DECAY_RATIO_FAIL,
    DECAY_RATIO_WARN,
    DROPOUT_FAIL,
    DROPOUT_WARN,
    FROZEN_FAIL,
    GRAD_TINY,
    GRAD_VANISH_RATIO,
    INIT_LOSS_RATIO_WARN,
    INPUT_MAX_FAIL,
    INPUT_MAX_TINY,
    LOGPROB_TOL,
    LOSS_CONSTANT,
    LOSS_FLAT,
    LOSS_RISE_NOISE,
    LOSS_SLOW,
    OUTPUT_CONSTANT,
    PARAMS_PER_SAMPLE_WARN,
    POSITION_FAMILIES,
    PROB_TOL,
    RANGE_UNREACHABLE_FAIL,
    SATURATING_DEEP,
    SPREAD_FAIL,
    TARGET_RMS_FAIL,
    TARGET_RMS_WARN,
    TARGET_STD_TINY,
    TARGETS_INDEPENDENT,
    WEIGHT_FROZEN,
    WEIGHT_SLOW,
)
from .trace import Trace

LOGITS_LOSSES = (F.cross_entropy,)  # losses that apply softmax themselves
# Losses that can never be negative, by name (functional or module form).
_NONNEGATIVE = {F.cross_entropy: "cross_entropy", F.nll_loss: "nll_loss", F.mse_loss: "mse_loss",
                F.l1_loss: "l1_loss", F.smooth_l1_loss: "smooth_l1_loss", F.huber_loss: "huber_loss",
                F.binary_cross_entropy: "binary_cross_entropy",
                F.binary_cross_entropy_with_logits: "binary_cross_entropy_with_logits",
                nn.CrossEntropyLoss: "cross_entropy", nn.NLLLoss: "nll_loss", nn.MSELoss: "mse_loss",
                nn.L1Loss: "l1_loss", nn.SmoothL1Loss: "smooth_l1_loss", nn.HuberLoss: "huber_loss",
                nn.BCELoss: "binary_cross_entropy", nn.BCEWithLogitsLoss: "binary_cross_entropy_with_logits"}


def nonnegative_loss(loss) -> str | None:
    """The name of a loss that cannot be negative (None for the default), else None."""
    if loss is None:
        return None
    return _NONNEGATIVE.get(loss) or _NONNEGATIVE.get(type(loss))


def is_logits_loss(loss) -> bool:
    return loss is None or loss in LOGITS_LOSSES or isinstance(loss, nn.CrossEntropyLoss)


def fit_score(pred: torch.Tensor, y: torch.Tensor, task: str) -> float:
    """Accuracy, or R² over all columns (scaled units), of predictions on a subset."""
    if task == "classification":
        return float((pred.reshape(-1) == y.reshape(-1)).float().mean())
    pred = pred.double().reshape(len(y), -1)
    y = y.double().reshape(len(y), -1)
    sst = float(((y - y.mean(dim=0)) ** 2).sum())
    sse = float(((pred - y) ** 2).sum())
    return 1.0 - sse / sst if sst > 0 else (1.0 if sse == 0 else float("-inf"))


def chance_score(y: torch.Tensor, task: str) -> float:
    """What predicting a constant scores: the majority class's share, or R² 0."""
    if task == "classification":
        return float(torch.bincount(y.reshape(-1).cpu()).max()) / max(len(y), 1)
    return 0.0


# -- before any step ------------------------------------------------------------------------------

def input_check(x: torch.Tensor) -> CheckResult:
    x = x.detach().double()
    finite = bool(torch.isfinite(x).all())
    xf = x[torch.isfinite(x)] if not finite else x
    v = {"min": float(xf.min()) if xf.numel() else float("nan"), "max": float(xf.max()) if xf.numel() else
         float("nan"), "mean": float(xf.mean()), "std": float(xf.std()), "shape": list(x.shape),
         "nonfinite_share": float((~torch.isfinite(x)).double().mean())}
    evidence = (f"preprocessed batch {tuple(x.shape)}: min {fmt(v['min'])}, max {fmt(v['max'])}, "
                f"mean {fmt(v['mean'])}, std {fmt(v['std'])}")
    peak = max(abs(v["min"]), abs(v["max"]))
    if not finite:
        return CheckResult("input scale", FAIL,
                           evidence + f" over the finite values; {v['nonfinite_share']:.1%} are NaN or inf",
                           "preprocess produces NaN/inf: check divisions (by a std of 0?) and logs (of 0?)",
                           v, "nan-input")
    if peak > INPUT_MAX_FAIL:
        return CheckResult("input scale", FAIL, evidence,
                           "inputs look like raw 0..255 pixels: divide by 255 (preprocess=scale_01) "
                           "or standardise; large inputs saturate softmax/ReLUs and blow up steps", v,
                           "input-scale")
    if v["std"] == 0:
        return CheckResult("input scale", WARN, evidence,
                           "every input value is the same: is preprocess discarding the image?", v,
                           "input-ignored")
    if peak < INPUT_MAX_TINY:
        return CheckResult("input scale", WARN, evidence,
                           "inputs are nearly zero: scaled twice (/255 twice)? aim for values of order 1", v,
                           "input-scale")
    return CheckResult("input scale", PASS, evidence, "", v)


def target_check(setup: Setup, recipe: Recipe, all_targets: np.ndarray) -> CheckResult:
    if setup.info.task != "regression":
        return CheckResult("target scale", SKIP, "classification: targets are class ids", "")
    y = setup.scaler.forward(all_targets).astype(np.float64)
    mean, std = y.mean(axis=0), y.std(axis=0)
    rms = float(np.sqrt((y ** 2).mean()))
    v = {"target_scaling": recipe.target_scaling, "mean": mean.tolist(), "std": std.tolist(), "rms": rms}
    cols = ", ".join(f"{n} mean {fmt(m)} std {fmt(s)}" for n, m, s in
                     zip(setup.info.target_names or range(len(mean)), mean, std))
    evidence = f"targets the loss sees (target_scaling={recipe.target_scaling!r}): {cols}; RMS {fmt(rms)}"
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
    return CheckResult("target scale", status, evidence, advice, v, "target-scale")


def output_check(setup: Setup, recipe: Recipe, out: torch.Tensor, y: torch.Tensor) -> CheckResult:
    """Shape, probabilities vs logits, the loss at init and whether it is possible at all."""
    task, k = setup.info.task, setup.info.num_outputs
    shape = tuple(out.shape)
    want = (len(out), k) if task == "classification" else tuple(y.shape)
    v = {"output_shape": list(shape), "expected_shape": list(want)}
    if shape != want:
        why = f"outputs have shape {shape}; the loss expects {want}"
        advice = (f"return one logit per class: (batch, {k})" if task == "classification" else
                  "return (batch, targets) exactly: a (batch,) vs (batch, 1) mismatch broadcasts MSE "
                  "into a batch x batch matrix")
        return CheckResult("output/loss", FAIL, why, advice, v, "output-shape")
    raw, out = out, out.detach().double()
    if not bool(torch.isfinite(out).all()):
        return CheckResult("output/loss", FAIL, "outputs at init contain NaN or inf",
                           "check the input scale and the initialisation", v, "nan-input")
    if recipe.fit is not None:
        return CheckResult("output/loss", PASS, f"outputs {shape}; closed-form fit (no loss to check)", "", v)
    loss_fn = loss_function(recipe, task)
    with Guard(setup.name, "the loss"), torch.no_grad():
        loss = float(loss_fn(raw, y))
    v["init_loss"] = loss
    name = nonnegative_loss(recipe.loss)
    impossible = (f"; a loss of {fmt(loss)} is impossible for {name} (never negative)"
                  if name and loss < 0 else "")
    if task == "classification":
        reference = math.log(k)
        v["log_num_classes"] = reference
        rows = out.sum(dim=1)
        probabilities = bool((out >= 0).all()) and bool(((rows - 1).abs() < PROB_TOL).all())
        logprobs = bool(((out.logsumexp(dim=1)).abs() < LOGPROB_TOL).all())
        top = out.softmax(dim=1).max(dim=1).values if not probabilities else out.max(dim=1).values
        v.update(probabilities=probabilities, log_probabilities=logprobs,
                 saturated_share=float((top > 0.99).double().mean()))
        evidence = (f"loss at init {fmt(loss)} vs log({k}) = {fmt(reference)}; outputs "
                    + ("are probabilities (>= 0, rows sum to 1)" if probabilities else
                       "are log-probabilities" if logprobs else "are logits")
                    + f"; top probability > 0.99 on {v['saturated_share']:.0%} of rows" + impossible)
        if probabilities and is_logits_loss(recipe.loss):
            return CheckResult("output/loss", FAIL, evidence,
                               "softmax applied twice: the model ends in softmax and cross_entropy applies "
                               "it again; return logits (drop the final softmax)", v, "softmax-twice")
        if name == "nll_loss" and not logprobs:
            return CheckResult("output/loss", FAIL, evidence + "; nll_loss is given outputs that are not "
                               "log-probabilities",
                               "nll_loss expects log-probabilities: use cross_entropy on the logits (it "
                               "applies log_softmax itself), or end the model in log_softmax", v, "loss-input")
        if impossible:
            return CheckResult("output/loss", FAIL, evidence,
                               f"the loss does not get what {name} expects: check what the model returns "
                               "(logits, probabilities, log-probabilities)", v, "loss-input")
        if probabilities:
            return CheckResult("output/loss", WARN, evidence,
                               "outputs are probabilities: make sure the loss expects probabilities "
                               "(e.g. nll_loss on their log), not logits", v, "softmax-twice")
        if is_logits_loss(recipe.loss) and loss > INIT_LOSS_RATIO_WARN * reference:
            return CheckResult("output/loss", WARN, evidence,
                               "logits are large at init (saturated softmax): scale inputs to ~[0, 1] "
                               "and use a standard initialisation", v, "input-scale")
        return CheckResult("output/loss", PASS, evidence, "", v)
    # Regression: compare with the loss of predicting the train mean.
    reference = float(((y.double() - y.double().mean(dim=0)) ** 2).mean()) if loss_fn is F.mse_loss else None
    v["mean_predictor_loss"] = reference
    evidence = f"outputs {shape}; loss at init {fmt(loss)}" + (
        f" vs {fmt(reference)} for predicting the mean" if reference is not None else "") + impossible
    if impossible:
        return CheckResult("output/loss", FAIL, evidence,
                           f"the loss does not get what {name} expects: check its arguments' order and form",
                           v, "loss-input")
    return CheckResult("output/loss", PASS, evidence, "", v)


def input_used_check(out: torch.Tensor, input_grad: float | None, dead_at_init: float,
                     saturating: int) -> CheckResult:
    """Do the outputs at init depend on the image? Their spread over images, and the gradient
    of the outputs with respect to the input (exactly 0, or None: the input is not used)."""
    out = out.detach().double().reshape(len(out), -1)
    if len(out) < 2 or not bool(torch.isfinite(out).all()):
        return CheckResult("input used", SKIP, "needs two finite outputs", "")
    spread = float(out.std(dim=0).max())
    size = float(out.abs().max())
    v = {"output_spread": spread, "output_size": size, "input_gradient": input_grad}
    evidence = (f"at init, outputs over {len(out)} images: largest std across images {fmt(spread)} "
                f"(largest |output| {fmt(size)}); d(outputs)/d(input) norm "
                f"{fmt(input_grad) if input_grad is not None else 'none (input unused)'}")
    constant = spread <= OUTPUT_CONSTANT * max(size, 1e-12)
    if not input_grad and not constant:  # the values depend on the image, but no gradient flows back
        return CheckResult("input used", WARN, evidence + "; no gradient flows back to the image",
                           "a .detach() (or a non-differentiable step) sits between the input and the output: "
                           "the layers before it never train", v, "detached")
    ignored = not input_grad  # None (no path from the input) or exactly 0
    if ignored and dead_at_init >= DEAD_LAYER_FAIL:
        return CheckResult("input used", FAIL, evidence + "; blocked by ReLUs dead at init",
                           "see dead ReLUs: a layer that is all zero at init passes nothing on", v, "dead-at-init")
    if ignored:
        return CheckResult("input used", FAIL, evidence + "; the output does not depend on the image",
                           "check that forward uses its input (not a constant, a zeroed tensor or a buffer) "
                           "and that preprocess keeps it", v, "input-ignored")
    if constant:
        deep = saturating >= SATURATING_DEEP
        return CheckResult("input used", WARN, evidence + "; the outputs barely differ between images"
                           + (f" after {saturating} sigmoid/tanh layers" if deep else ""),
                           "the image's signal fades before the output: " + (
                               "stacked sigmoid/tanh layers squash it; use ReLU" if deep else
                               "check the input scale and the initialisation"), v,
                           "vanishing-gradient" if deep else "input-scale")
    return CheckResult("input used", PASS, evidence, "", v)


def output_range_check(setup: Setup, trace: Trace | str, all_scaled: np.ndarray) -> CheckResult:
    """Regression: can the last operation's range reach the targets the loss sees?"""
    if setup.info.task != "regression":
        return CheckResult("output range", SKIP, "classification: outputs are logits", "")
    if isinstance(trace, str) or trace.output_op is None:
        return CheckResult("output range", PASS, "the output is not bounded by its last operation "
                           "(a linear layer or another unbounded op)", "")
    op, low, high = trace.output_op
    y = np.asarray(all_scaled, dtype=np.float64).reshape(-1)
    outside = float(((y < low) | (y > high)).mean())
    v = {"op": op, "low": low, "high": high, "targets_outside": outside, "site": trace.output_site,
         "targets_min": float(y.min()), "targets_max": float(y.max())}
    evidence = (f"the output comes from {op} ({trace.output_site}), range [{fmt(low)}, {fmt(high)}]; "
                f"the targets the loss sees span [{fmt(v['targets_min'])}, {fmt(v['targets_max'])}], "
                f"{outside:.0%} of them out of reach")
    if outside >= RANGE_UNREACHABLE_FAIL:
        return CheckResult("output range", FAIL, evidence,
                           f"drop the final {op}: a regression head must be linear to reach standardised "
                           "targets (or scale the targets into its range)", v, "output-range")
    if outside > 0:
        return CheckResult("output range", WARN, evidence,
                           f"some targets lie beyond the final {op}'s range: make the head linear", v,
                           "output-range")
    return CheckResult("output range", PASS, evidence, "", v)


def init_check(model: nn.Module) -> CheckResult:
    """Weight tensors that start constant (all zeros): every unit of the layer the same."""
    weights = [(n, p) for n, p in model.named_parameters() if p.dim() >= 2 and p.numel() > 1]
    if not weights:
        return CheckResult("initialisation", SKIP, "no weight matrices or kernels", "")
    constant = [n for n, p in weights if bool((p.detach() == p.detach().reshape(-1)[0]).all())]
    last = weights[-1][0]
    v = {"constant": constant, "weight_tensors": len(weights)}
    if not constant:
        return CheckResult("initialisation", PASS, f"{len(weights)} weight tensors, none constant at init", "", v)
    evidence = (f"{len(constant)} of {len(weights)} weight tensors constant at init: "
                f"{', '.join(constant[:3])}{', ...' if len(constant) > 3 else ''}")
    advice = ("constant (e.g. zero) initial weights give every unit of a layer the same output and the same "
              "gradient, so they never become different: keep PyTorch's default (Kaiming) initialisation; "
              "only the last layer may start at zero")
    if constant == [last]:
        return CheckResult("initialisation", PASS, evidence + " (the last layer only: a known, harmless choice)",
                           "", v)
    status = FAIL if len(constant) >= 2 else WARN
    return CheckResult("initialisation", status, evidence, advice, v, "symmetric-init")


def trainable_check(model: nn.Module) -> CheckResult:
    """How much of the model can learn: parameters with requires_grad=False are frozen."""
    total = sum(p.numel() for p in model.parameters())
    frozen = {n: p.numel() for n, p in model.named_parameters() if not p.requires_grad}
    n_frozen = sum(frozen.values())
    share = n_frozen / total if total else 0.0
    v = {"params": total, "frozen": n_frozen, "frozen_share": share, "frozen_names": list(frozen)}
    evidence = f"{total - n_frozen:,} trainable, {n_frozen:,} frozen (requires_grad=False) of {total:,} " \
               f"parameters ({share:.0%} frozen)"
    if not frozen:
        return CheckResult("trainable parameters", PASS, evidence, "", v)
    evidence += f": {', '.join(list(frozen)[:3])}{', ...' if len(frozen) > 3 else ''}"
    advice = ("frozen parameters never train: unless they hold pretrained weights they are random features; "
              "unfreeze them (requires_grad_(True))")
    status = FAIL if share >= 1.0 or share >= FROZEN_FAIL else WARN
    return CheckResult("trainable parameters", status, evidence, advice, v, "frozen-parameters")


def dropout_check(trace: Trace | str) -> CheckResult:
    if isinstance(trace, str):
        return CheckResult("dropout", SKIP, f"the forward pass could not be traced: {trace}", "")
    if not trace.dropout:
        return CheckResult("dropout", PASS, "no dropout in the forward pass", "", {"dropout": {}})
    site = max(trace.dropout, key=trace.dropout.get)
    p = trace.dropout[site]
    v = {"dropout": trace.dropout, "max_p": p, "site": site}
    evidence = f"largest dropout probability {p:g} ({site}); {len(trace.dropout)} dropout site(s)"
    if p >= DROPOUT_FAIL or p >= DROPOUT_WARN:
        return CheckResult("dropout", FAIL if p >= DROPOUT_FAIL else WARN, evidence,
                           f"dropout {p:g} keeps only {1 - p:.0%} of the units on each step: the signal drowns "
                           "in noise; use 0.1-0.5, or none until the model fits", v, "dropout")
    return CheckResult("dropout", PASS, evidence, "", v)


def optimizer_check(model: nn.Module, optimizer, grads: dict, initial: dict) -> CheckResult:
    """Read from the optimizer the recipe built: which parameters it trains, lr, weight decay.

    Weight decay is weighed against the loss's own gradient on the first batch: coupled decay
    (Adam, SGD) adds wd x w to each gradient, so wd ||w|| / ||g|| > 1 means the step mostly
    shrinks the weights; decoupled (AdamW) shrinks by lr wd w against Adam's step of about lr
    per weight, so the ratio is wd x rms(w).
    """
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    given = {id(p) for g in optimizer.param_groups for p in g["params"]}
    missing = [n for n, p in trainable.items() if id(p) not in given]
    kind = type(optimizer).__name__
    decoupled = isinstance(optimizer, torch.optim.AdamW) or bool(optimizer.defaults.get("decoupled_weight_decay"))
    lrs = sorted({float(g.get("lr", float("nan"))) for g in optimizer.param_groups})
    decays = {id(p): float(g.get("weight_decay", 0.0) or 0.0) for g in optimizer.param_groups for p in g["params"]}
    ratios = {}
    for n, p in trainable.items():
        wd = decays.get(id(p), 0.0)
        if wd <= 0 or p.dim() < 2:
            continue
        w = initial.get(n, p).detach().double()  # the weights the first gradient was taken at
        if decoupled:
            ratios[n] = wd * float(w.pow(2).mean().sqrt())
        elif grads.get(n):
            ratios[n] = wd * float(w.norm()) / grads[n]
    ratio = float(np.median(list(ratios.values()))) if ratios else 0.0
    wd_max = max(decays.values(), default=0.0)
    v = {"optimizer": kind, "lr": lrs, "weight_decay": wd_max, "decoupled": decoupled, "decay_ratio": ratio,
         "not_in_optimizer": missing, "trainable_tensors": len(trainable)}
    evidence = f"{kind}, lr {', '.join(fmt(x) for x in lrs)}, weight decay {fmt(wd_max)}"
    if ratios:
        evidence += (f" ({'decoupled' if decoupled else 'coupled'}: its pull is {fmt(ratio)} x the loss "
                     "gradient's, median over weights)")
    if missing:
        n_missing = sum(trainable[n].numel() for n in missing)
        return CheckResult("optimizer", FAIL, evidence + f"; {len(missing)} of {len(trainable)} trainable tensors "
                           f"({n_missing:,} values) are not given to it: {', '.join(missing[:3])}",
                           "build the optimizer from model.parameters(): the parameters left out never change",
                           v, "optimizer-subset")
    if ratio >= DECAY_RATIO_WARN:
        return CheckResult("optimizer", FAIL if ratio >= DECAY_RATIO_FAIL else WARN, evidence,
                           "weight decay outweighs the data: every step mostly shrinks the weights towards 0; "
                           "use 1e-4..1e-2 (AdamW) or none", v, "weight-decay")
    return CheckResult("optimizer", PASS, evidence, "", v)


# -- the training probe ---------------------------------------------------------------------------

def grad_check(grads: dict[str, float | None], weights: dict[str, float], trace: Trace | str,
               matrices: set | None = None) -> CheckResult:
    if not grads:
        return CheckResult("gradient flow", FAIL, "the model has no trainable parameters",
                           "nothing can learn: check requires_grad and the optimizer's parameters", {},
                           "frozen-parameters")
    none = [n for n, g in grads.items() if g is None]
    norms = {n: g for n, g in grads.items() if g is not None}
    matrices = set(grads) if matrices is None else matrices
    top = max(norms.values(), default=0.0)
    v = {"grad_norms": grads, "weight_norms": weights}
    if none:
        v["no_grad"] = none
    small = sorted((g, n) for n, g in norms.items())
    if not math.isfinite(top):
        bad = next(n for n, g in norms.items() if not math.isfinite(g))
        return CheckResult("gradient flow", FAIL, f"first batch: gradient of {bad} is NaN/inf",
                           "lower the learning rate, scale inputs and targets; check the loss for log(0)", v,
                           "nan-input")
    summary = (f"first batch: gradient norms from {fmt(small[0][0])} ({small[0][1]}) to "
               f"{fmt(small[-1][0])} ({small[-1][1]})") if small else "first batch: no gradient at all"
    if top == 0.0:
        return CheckResult("gradient flow", FAIL, summary + "; every gradient is exactly 0",
                           "no gradient reaches the parameters: a detached or argmax/round step in the "
                           "forward pass, or every unit saturated or dead", v, "no-gradient")
    # Weight tensors only: a bias before BatchNorm has no gradient by design (BN removes it).
    vanishing = [n for g, n in small if g < GRAD_VANISH_RATIO * top and n in matrices]
    v["vanishing"] = vanishing
    saturating = 0 if isinstance(trace, str) else trace.saturating
    v["saturating_layers"] = saturating
    if none:
        return CheckResult("gradient flow", WARN, summary + f"; no gradient at all for {len(none)} of {len(grads)}: "
                           f"{', '.join(none[:3])}",
                           "these parameters are not used by the forward pass, or sit before a .detach(): "
                           "they never train", v, "detached")
    if vanishing:
        deep = saturating >= SATURATING_DEEP
        return CheckResult("gradient flow", WARN,
                           summary + f"; {len(vanishing)} below {GRAD_VANISH_RATIO:g} x the largest"
                           + (f"; {saturating} sigmoid/tanh layers" if saturating else ""),
                           (f"vanishing gradient through {saturating} sigmoid/tanh layers: use ReLU (or "
                            "normalisation between them)" if deep else
                            f"vanishing gradient at {vanishing[0]}: saturated activations upstream "
                            "(check the input scale and the softmax), or too deep without normalisation"), v,
                           "vanishing-gradient")
    return CheckResult("gradient flow", PASS, summary, "", v)


def weights_check(before: dict[str, torch.Tensor], model: nn.Module, steps: int,
                  grads: dict | None = None, optimized: set | None = None) -> CheckResult:
    changes, nonfinite = {}, []  # ||w_end - w_0|| / ||w_0||; the absolute change where w_0 is all zeros
    for n, p in model.named_parameters():
        if n in before:
            if not bool(torch.isfinite(p.detach()).all()):
                nonfinite.append(n)
                continue
            w0 = before[n].double()
            delta = float((p.detach().double() - w0).norm())
            norm = float(w0.norm())
            changes[n] = delta / norm if norm > 0 else delta
    v = {"relative_change": changes, "nonfinite": nonfinite}
    if not changes and not nonfinite:
        return CheckResult("weights update", SKIP, "no trainable parameters", "")
    if nonfinite:
        return CheckResult("weights update", FAIL,
                           f"after {steps} steps {len(nonfinite)} of {len(nonfinite) + len(changes)} parameters "
                           f"are NaN/inf ({', '.join(nonfinite[:3])}): the run diverged",
                           "the steps are too large: lower the learning rate (and scale inputs and targets); "
                           "gradient clipping also helps", v, "lr-too-high")
    frozen = [n for n, c in changes.items() if not c > WEIGHT_FROZEN]
    median = float(np.median(list(changes.values())))
    v["frozen"], v["median"] = frozen, median
    lo = min(changes, key=changes.get)
    evidence = (f"after {steps} steps the least-moved parameter, {lo}, changed by {fmt(changes[lo])} "
                f"(relative; median over parameters {fmt(median)})")
    if len(frozen) == len(changes):
        return CheckResult("weights update", FAIL, evidence + "; no parameter moved",
                           "the optimizer changes nothing: gradients vanish (see gradient flow) or the "
                           "learning rate is far too small", v, "lr-too-low")
    grads = grads or {}
    cut = [n for n in frozen if n in grads and grads[n] is None]
    tiny = [n for n in frozen if grads.get(n) is not None and grads[n] < GRAD_TINY]
    left_out = [n for n in frozen if optimized is not None and n not in optimized]
    if cut or tiny or left_out:
        cause, why = (("detached", "no gradient reaches them (unused, or detached)") if cut else
                      ("vanishing-gradient", "their gradients are vanishingly small") if tiny else
                      ("optimizer-subset", "they have gradients, but the optimizer was not given them"))
        return CheckResult("weights update", WARN, evidence + f"; {len(frozen)} frozen: {', '.join(frozen[:3])}",
                           f"these parameters do not train: {why}", v, cause)
    if median < WEIGHT_SLOW or frozen:
        return CheckResult("weights update", WARN, evidence + "; the weights barely move",
                           "the learning rate is far too small for this optimizer: raise it (Adam 1e-3, "
                           "SGD 1e-2 with momentum)", v, "lr-too-low")
    return CheckResult("weights update", PASS, evidence, "", v)


def _dead_share(sites: dict) -> tuple[float, str, float]:
    units = sum(s["units"] for s in sites.values())
    dead = sum(s["units"] * s["dead"] for s in sites.values()) / max(units, 1)
    worst = max(sites, key=lambda k: sites[k]["dead"])
    return dead, worst, sites[worst]["dead"]


def dead_check(snapshots: list[tuple[str, dict | str]], output_site: str = "") -> CheckResult:
    failed = next((r for _, r in snapshots if isinstance(r, str)), None)
    if failed is not None:
        return CheckResult("dead ReLUs", SKIP, f"the activity probe could not run: {failed}", "")
    if not snapshots or not snapshots[0][1]:
        return CheckResult("dead ReLUs", SKIP, "no relu calls in the forward pass (other activations are "
                           "not checked)", "")
    v = {"snapshots": {when: sites for when, sites in snapshots}}
    parts = []
    for when, sites in snapshots:
        dead, worst, share = _dead_share(sites)
        parts.append(f"{when} {dead:.0%} (worst {worst} {share:.0%})")
    evidence = "ReLU units never active over the batch: " + "; ".join(parts)
    dead, worst, worst_share = _dead_share(snapshots[-1][1])
    init_dead, init_worst, init_share = _dead_share(snapshots[0][1])
    v.update(dead_share=dead, worst_site=worst, worst_dead_share=worst_share, init_dead_share=init_dead,
             init_worst_site=init_worst, init_worst_dead_share=init_share)
    if init_share >= DEAD_LAYER_FAIL or init_dead >= DEAD_ALL_FAIL:
        head = init_worst == output_site or init_worst.startswith(output_site + " ") if output_site else False
        return CheckResult("dead ReLUs", FAIL, evidence + f"; dead before any step ({init_worst})",
                           ("the output itself goes through a ReLU that is dead at init: the head cannot "
                            "produce these targets; drop the final ReLU" if head else
                            "units dead before any step point at the architecture or the initialisation "
                            "(negative biases, a ReLU in the wrong place), not the learning rate"), v,
                           "output-range" if head else "dead-at-init")
    # Units dead at init and still dead are the architecture's; only those that died during the
    # probe point at its steps (the learning rate, or the scale of inputs and targets).
    grown = max(dead - init_dead, max(s["dead"] - snapshots[0][1].get(k, {"dead": 0.0})["dead"]
                                      for k, s in snapshots[-1][1].items()))
    v["died_during_probe"] = grown
    advice = ("ReLUs die when a large early step pushes their inputs below zero: lower the learning "
              "rate (Adam 1e-3), standardise targets and scale inputs; LeakyReLU/BatchNorm also help")
    if (worst_share >= DEAD_LAYER_FAIL or dead >= DEAD_ALL_FAIL) and grown >= DEAD_GROWN_FAIL:
        return CheckResult("dead ReLUs", FAIL, evidence, advice, v, "lr-too-high")
    if (worst_share >= DEAD_LAYER_WARN or dead >= DEAD_ALL_WARN) and grown >= DEAD_GROWN_WARN:
        return CheckResult("dead ReLUs", WARN, evidence, advice, v, "lr-too-high")
    return CheckResult("dead ReLUs", PASS, evidence + ("" if grown < DEAD_GROWN_WARN else ""), "", v)


def constant_loss(recipe: Recipe, y: torch.Tensor, task: str, k: int) -> float | None:
    """The default loss of the best constant prediction on ``y``: what "learnt nothing" scores.

    Cross-entropy: the entropy of the class frequencies; MSE: the targets' variance. None
    for any other loss.
    """
    if task == "classification" and is_logits_loss(recipe.loss):
        p = torch.bincount(y.reshape(-1).cpu(), minlength=k).double()
        p = p[p > 0] / p.sum()
        return float(-(p * p.log()).sum())
    if task == "regression" and recipe.loss in (None, F.mse_loss):
        y = y.double().reshape(len(y), -1)
        return float(((y - y.mean(dim=0)) ** 2).mean())
    return None


def loss_trend_check(losses: list[float], constant: float | None = None, loss_name: str | None = None,
                     median_change: float | None = None) -> CheckResult:
    v = {"losses": losses, "constant_loss": constant}
    if not losses:
        return CheckResult("loss trend", SKIP, "no training steps", "")
    bad = next((i for i, loss in enumerate(losses) if not math.isfinite(loss)), None)
    if bad is not None:
        return CheckResult("loss trend", FAIL, f"loss is NaN/inf at step {bad + 1}",
                           "the run diverges: lower the learning rate, scale inputs and targets", v, "lr-too-high")
    negative = next((i for i, loss in enumerate(losses) if loss < 0), None)
    if loss_name and negative is not None:
        return CheckResult("loss trend", FAIL, f"loss {fmt(losses[negative])} at step {negative + 1}: impossible "
                           f"for {loss_name}, which is never negative",
                           f"{loss_name} is given the wrong kind of input (e.g. nll_loss on logits rather than "
                           "log-probabilities): the optimizer is pushing it towards -inf", v, "loss-input")
    w = max(1, min(5, len(losses) // 4))
    first, last = float(np.mean(losses[:w])), float(np.mean(losses[-w:]))
    # The standard error of (last - first): how far two windows' means differ by batch noise alone.
    noise = (float(np.var(losses[:w], ddof=1) + np.var(losses[-w:], ddof=1)) / w) ** 0.5 if w > 1 else 0.0
    change = (first - last) / abs(first) if first else 0.0
    q = max(1, len(losses) // 4)
    second, fourth = float(np.mean(losses[q:2 * q])), float(np.mean(losses[-q:]))
    late = (second - fourth) / abs(second) if second else 0.0
    # Still falling in its second half and already below a constant's loss: a slow start.
    falling = late >= LOSS_SLOW and (constant is None or last < constant)
    v.update(first=first, last=last, relative_drop=change, spread=float(np.ptp(losses)), late_drop=late,
             falling=falling, noise=noise)
    evidence = (f"training loss over {len(losses)} steps: {fmt(first)} (first {w}) -> {fmt(last)} "
                f"(last {w}), min {fmt(min(losses))}")
    slow = median_change is not None and median_change < WEIGHT_SLOW
    if float(np.ptp(losses)) <= LOSS_FLAT * max(abs(first), 1e-12):
        return CheckResult("loss trend", FAIL, evidence + "; frozen",
                           "the loss does not move at all: nothing is learning (see gradient flow)", v,
                           "lr-too-low" if slow else "")
    if constant is not None:
        evidence += f"; the best constant prediction scores {fmt(constant)}"
    if change < LOSS_SLOW:
        # Weights that barely move, or a rise within the batches' noise: not the steps' size.
        rose = change < -LOSS_SLOW and not slow
        beyond_noise = last - first > LOSS_RISE_NOISE * noise
        rising, noisy = rose and beyond_noise, rose and not beyond_noise
        cause = "lr-too-high" if rising else ("lr-too-low" if slow else "")
        advice = ("the loss rises: the steps are too large, lower the learning rate" if rising else
                  f"the weights barely move (median change {fmt(median_change)}): raise the learning rate"
                  if slow else
                  "the loss is (nearly) not falling: check the learning rate (too small, or so large it "
                  "bounces), or give it more steps (--steps)")
        return CheckResult("loss trend", WARN, evidence + (
            "; rising" if rising else
            f"; not falling (its rise is within {LOSS_RISE_NOISE:g} x the batches' noise, {fmt(noise)})" if noisy
            else "; not falling" if change <= 0 else f"; fell only {change:.1%}"), advice, v, cause)
    if constant is not None and last >= LOSS_CONSTANT * constant and not falling:
        return CheckResult("loss trend", WARN, evidence + "; no better yet",
                           "the loss has not gone below what a constant prediction (the mean, or the class "
                           "frequencies) scores: the model is not using the image yet", v)
    return CheckResult("loss trend", PASS, evidence, "", v)


def spread_check(pred: torch.Tensor, y: torch.Tensor, task: str, steps: int, k: int,
                 falling: bool = False) -> CheckResult:
    after = f"after {steps} steps" if steps else "after the fit"
    if task == "classification":
        pred = pred.reshape(-1).cpu()
        counts = torch.bincount(pred.clamp(min=0), minlength=k).tolist()
        classes_in_y = int(torch.unique(y).numel())
        v = {"predicted_counts": counts, "target_classes": classes_in_y,
             "accuracy": fit_score(pred, y.cpu(), task)}
        used = sum(c > 0 for c in counts)
        evidence = (f"{after}: {used} of {k} classes predicted on {len(pred)} train images "
                    f"(counts {counts}); accuracy {v['accuracy']:.2f}")
        if used == 1 and classes_in_y > 1:
            return CheckResult("collapse", FAIL, evidence,
                               "the model predicts one class for everything: it ignores the image "
                               "(see the causes above)", v)
        return CheckResult("collapse", PASS, evidence, "", v)
    pred = pred.double().reshape(len(y), -1).cpu()
    y = y.double().reshape(len(y), -1).cpu()
    if not bool(torch.isfinite(pred).all()):
        return CheckResult("collapse", FAIL, f"{after}: predictions are NaN/inf on {len(y)} train images",
                           "the run diverged (see loss trend and weights update)",
                           {"std_ratio": None, "r2": None, "nonfinite": True}, "lr-too-high")
    ratios = (pred.std(dim=0) / y.std(dim=0).clamp(min=1e-12)).tolist()
    v = {"std_ratio": ratios, "r2": fit_score(pred, y, task)}
    evidence = (f"{after}: prediction std / target std = {', '.join(f'{r:.3f}' for r in ratios)} "
                f"on {len(y)} train images; R² {fmt(v['r2'])}")
    if not min(ratios) >= SPREAD_FAIL and falling:
        return CheckResult("collapse", WARN, evidence + "; still near the mean, but the loss is falling",
                           "not collapsed yet: the loss falls, the predictions have yet to spread; more steps "
                           "(--steps) tell a slow start from a collapse", v)
    if not min(ratios) >= SPREAD_FAIL:  # a NaN ratio is a collapse, not a pass
        return CheckResult("collapse", FAIL, evidence,
                           "the model predicts (nearly) the mean for every image: see the causes above; "
                           "a lower learning rate or a linear model (ridge) is the first thing to try", v)
    return CheckResult("collapse", PASS, evidence, "", v)


def augmentation_check(with_aug: list[float], without: list[float], chance: float, metric: str, steps: int,
                       names) -> CheckResult:
    """The training probe repeated without augmentation: does the augmentation stop learning?

    Scores are per target column for regression (a flip that moves x leaves y learnable), one
    accuracy for classification; the worst column's ratio decides.
    """
    ratios = [(w - chance) / (o - chance) if o - chance > 0 else float("nan") for w, o in zip(with_aug, without)]
    gains = [o - chance for o in without]
    judged = [i for i, g in enumerate(gains) if g >= AUG_MIN_GAIN]
    worst = min(judged, key=lambda i: ratios[i]) if judged else None
    v = {"with": with_aug, "without": without, "chance": chance, "ratios": ratios}
    cols = (", ".join(f"{n} {fmt(w)} vs {fmt(o)}" for n, w, o in zip(names, with_aug, without))
            if len(with_aug) > 1 else f"{fmt(with_aug[0])} vs {fmt(without[0])}")
    evidence = (f"after {steps} steps, train {metric} with the recipe's augmentation vs without it: {cols} "
                f"(a constant scores {fmt(chance)})")
    if worst is not None and not ratios[worst] >= AUG_RATIO_WARN:
        return CheckResult("augmentation", FAIL if not ratios[worst] >= AUG_RATIO_FAIL else WARN, evidence,
                           "the same recipe learns without its augmentation: the augmentation changes what "
                           "the label means (a flip or transpose that moves a position or swaps classes); "
                           "keep only transforms that leave the target unchanged", v, "augmentation")
    return CheckResult("augmentation", PASS, evidence, "", v)


def capacity_check(setup: Setup, trace: Trace | str, pred: torch.Tensor | None, y: torch.Tensor,
                   overfit: CheckResult, earlier_fail: bool = False) -> CheckResult:
    """What can limit what the model represents: a narrow layer, outputs that move together,
    pooling that discards where things are. A verdict only when the overfit probe fails."""
    k, task = setup.info.num_outputs, setup.info.task
    signals, v = [], {}
    if not isinstance(trace, str):
        inner = {n: w for n, w in trace.widths.items()}
        if inner:
            narrow = min(inner, key=inner.get)
            v["narrowest"] = {"site": narrow, "width": inner[narrow]}
            need = k if task == "regression" else k - 1
            if inner[narrow] < need and inner[narrow] < list(inner.values())[-1]:
                signals.append(("bottleneck", f"{narrow} passes on {inner[narrow]} value(s) per image, "
                                f"fewer than the {k} outputs need"))
        if trace.global_pool:
            v["global_pool"] = trace.global_pool
            if setup.ds.family in POSITION_FAMILIES:
                signals.append(("position-pooling", f"{trace.global_pool[0]} pools each feature map to "
                                f"one value, and {setup.ds.family} targets are positions it discards"))
    if task == "regression" and k >= 2 and pred is not None and bool(torch.isfinite(pred).all()):
        p = pred.double().reshape(len(y), -1).cpu()
        t = y.double().reshape(len(y), -1).cpu()
        if bool((p.std(dim=0) > 0).all()):
            pc = torch.corrcoef(p.T).abs().fill_diagonal_(0).max()
            tc = torch.corrcoef(t.T).abs().fill_diagonal_(0).max()
            v["output_correlation"], v["target_correlation"] = float(pc), float(tc)
            if pc > CORRELATED_OUTPUTS and tc < TARGETS_INDEPENDENT:
                signals.append(("bottleneck", f"the predicted columns move together (|correlation| {float(pc):.3f}; "
                                f"the targets' {float(tc):.2f})"))
    v["signals"] = [s for _, s in signals]
    if overfit.status not in (FAIL, WARN):
        return CheckResult("capacity", PASS, "the model fits the tiny subset" + (
            f" (noted: {'; '.join(s for _, s in signals)}; the model gets round it)" if signals else ""), "", v)
    if not signals:
        if overfit.status == FAIL and not earlier_fail:
            return CheckResult("capacity", WARN, "no narrow layer, correlated outputs or position-discarding "
                               "pooling found, yet the overfit probe fails while every check before it passes",
                               "the model may be too small or too constrained for the task: widen it, or "
                               "remove what limits it", v, "capacity")
        return CheckResult("capacity", PASS, "no narrow layer, correlated outputs or position-discarding pooling"
                           + (" (the overfit probe fails for the FAILs above)" if earlier_fail else ""), "", v)
    cause = signals[0][0]
    advice = ("widen the narrow layer to at least the number of outputs" if cause == "bottleneck" else
              "keep the spatial layout up to the head (flatten instead of global pooling), or add "
              "coordinate channels (CoordConv)")
    return CheckResult("capacity", FAIL, "; ".join(s for _, s in signals), advice, v, cause)


def budget_check(protocol_steps: int, overfit: CheckResult, epochs: int, batches: int) -> CheckResult:
    """The steps a run of the recipe will get under the protocol, against the steps it needed."""
    v = {"protocol_steps": protocol_steps, "epochs": epochs, "batches_per_epoch": batches}
    if overfit.status != PASS or overfit.values.get("stopped") != "fitted":
        return CheckResult("training budget", SKIP, f"the protocol gives {protocol_steps} steps ({epochs} epochs "
                           f"x {batches} batches); no fitted overfit probe to compare with", "", v)
    needed = overfit.values["steps"]
    v["overfit_steps"] = needed
    evidence = (f"the protocol gives {protocol_steps} steps ({epochs} epochs x {batches} batches); "
                f"memorising {overfit.values['samples']} images took {needed}")
    if protocol_steps < needed:
        return CheckResult("training budget", WARN, evidence,
                           "the run will stop before the model has had the steps it needs: more epochs, "
                           "a smaller batch or a higher learning rate", v, "too-few-steps")
    return CheckResult("training budget", PASS, evidence, "", v)


def params_check(params: int, n_train: int) -> CheckResult:
    ratio = params / max(n_train, 1)
    v = {"params": params, "n_train": n_train, "ratio": ratio}
    evidence = f"{params:,} parameters for {n_train:,} training images ({ratio:.3g} per image)"
    if ratio > PARAMS_PER_SAMPLE_WARN:
        return CheckResult("parameters vs samples", WARN, evidence,
                           "many parameters per image: if train fits but val lags, try a smaller model, "
                           "augmentation or a linear baseline (ridge) first (seeds 001, 002)", v)
    return CheckResult("parameters vs samples", PASS, evidence, "", v)


def context_check(ds, db) -> CheckResult:
    name = "baseline context"
    if db is None:
        return CheckResult(name, SKIP, "no leaderboard given (--db)", "")
    from ...board.store import Leaderboard, db_exists, display, resolve_db_path

    path = resolve_db_path(db)
    if not db_exists(path):
        return CheckResult(name, SKIP, f"no leaderboard at {display(path)}", "")

    with Leaderboard(path, create=False) as board:
        boards = board.boards([ds.fingerprint], optimum=ds.optimum)
    if not boards:
        return CheckResult(name, SKIP, f"no runs recorded for this dataset in {display(path)}",
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
