"""Ranking the causes: when several checks fire, which one is the root cause, and why.

Every check that fires names the cause it points at. Causes come in tiers, by how direct
their evidence is:

0. nothing can be computed: outputs of the wrong shape, NaN/inf inputs or outputs at init;
1. read from the recipe or measured before any step (or in a controlled repeat of the probe):
   input scale, softmax twice, a loss given the wrong kind of input, an output range that
   cannot reach the targets, frozen parameters, parameters left out of the optimizer, weight
   decay, dropout, constant initial weights, dead units at init, detached parameters, target
   scale, an augmentation that changes labels; and, when the overfit probe fails, a layer
   narrower than the outputs or pooling that discards the positions the targets are. Nothing
   that happens during training causes these, so they explain what goes wrong later
   (collapse, a failed overfit, dead units...);
2. training dynamics: a learning rate too high (divergence, units dying during training, a
   rising loss) or too low (weights barely moving);
3. the protocol's budget (fewer steps than the model needs), or a model that cannot fit for
   no reason a check sees.

The root cause is the firing cause of the lowest tier, FAILs before WARNs within a tier. A
WARN of the same or a lower tier goes before a FAIL it explains (targets at the wrong scale
explain a learning rate that looks too high; inputs scaled twice explain units dead at init).
Symptoms (collapse, the overfit probe, a loss no better than a constant) name no cause: they
are what the causes explain. Nothing is ranked when no check FAILs and the model shows no
symptom (the WARNs are then things to look at).
"""

from __future__ import annotations

from .results import FAIL, WARN, Cause, CheckResult

# key: (tier, title, advice for that cause)
CAUSES = {
    "output-shape": (0, "outputs of the wrong shape",
                     "return (batch, outputs) exactly as the loss expects"),
    "nan-input": (0, "NaN or inf before any step",
                  "find the NaN's source: preprocess (log of 0, division by a std of 0), the loss, or the "
                  "initialisation"),
    "input-scale": (1, "inputs at the wrong scale",
                    "scale the inputs to about [0, 1] (preprocess=scale_01) or standardise them"),
    "softmax-twice": (1, "softmax applied twice",
                      "return logits: drop the model's final softmax (cross_entropy applies its own)"),
    "loss-input": (1, "the loss gets the wrong kind of input",
                   "give the loss what it expects: cross_entropy takes logits, nll_loss log-probabilities"),
    "output-range": (1, "the output's range cannot reach the targets",
                     "make the regression head linear (drop the final ReLU/sigmoid/tanh)"),
    "input-ignored": (1, "the output does not depend on the image",
                      "make forward use its input (no constant, zeroed tensor or buffer in its place)"),
    "symmetric-init": (1, "constant initial weights",
                       "keep PyTorch's default initialisation; only the last layer may start at zero"),
    "bottleneck": (1, "a layer narrower than the outputs",
                   "widen the narrowest layer to at least the number of outputs"),
    "position-pooling": (1, "pooling discards the positions the targets are",
                         "flatten the feature maps instead of pooling them globally, or add coordinate "
                         "channels (CoordConv)"),
    "dead-at-init": (1, "units dead before any step",
                     "fix the architecture or initialisation (negative biases, a ReLU where it does not "
                     "belong): the learning rate is not the cause"),
    "frozen-parameters": (1, "most parameters frozen",
                          "unfreeze the layers (requires_grad_(True)) unless they hold pretrained weights"),
    "optimizer-subset": (1, "parameters left out of the optimizer",
                         "build the optimizer from model.parameters()"),
    "detached": (1, "parameters cut off from the loss",
                 "remove the .detach() (or the unused branch) between these parameters and the output"),
    "no-gradient": (1, "no gradient reaches the parameters",
                    "remove the argmax/round/detach from the forward pass"),
    "weight-decay": (1, "weight decay outweighs the data",
                     "lower the weight decay to 1e-4..1e-2 (AdamW) or remove it"),
    "dropout": (1, "dropout drowns the signal",
                "lower dropout to 0.1-0.5, or remove it until the model fits"),
    "vanishing-gradient": (1, "vanishing gradients",
                           "use ReLU instead of stacked sigmoid/tanh, or add normalisation"),
    "target-scale": (1, "targets at the wrong scale",
                     "standardise the targets (target_scaling='standard', the default)"),
    "augmentation": (1, "the augmentation changes the labels",
                     "keep only augmentations that leave the target unchanged"),
    "lr-too-high": (2, "learning rate too high",
                    "lower the learning rate (Adam 1e-3, SGD 1e-2); clip gradients"),
    "lr-too-low": (2, "learning rate too low",
                   "raise the learning rate (Adam 1e-3, SGD 1e-2 with momentum)"),
    "too-few-steps": (3, "too few steps under the protocol",
                      "more epochs, a smaller batch, or a higher learning rate"),
    "capacity": (3, "the model cannot fit the data, for no reason the checks see",
                 "make the model larger or less constrained"),
}
# A lower-tier WARN that explains a FAIL of another cause goes first.
EXPLAINS = {
    "target-scale": {"lr-too-high", "capacity"},
    "input-scale": {"lr-too-high", "vanishing-gradient", "dead-at-init", "lr-too-low"},
    "frozen-parameters": {"lr-too-low", "capacity", "detached"},
    "weight-decay": {"lr-too-low", "capacity"},
    "dropout": {"lr-too-low", "capacity"},
    "augmentation": {"lr-too-low", "capacity"},
    "optimizer-subset": {"detached", "lr-too-low"},
    "vanishing-gradient": {"lr-too-low", "capacity"},
    "symmetric-init": {"vanishing-gradient", "detached", "lr-too-low", "no-gradient", "dead-at-init"},
    "output-range": {"dead-at-init", "lr-too-high", "capacity"},
    "bottleneck": {"dead-at-init", "lr-too-high"},
}
DIRECT = ("too-few-steps", "augmentation")  # their WARN alone is a verdict: a controlled comparison
SYMPTOMS = ("collapse", "overfit tiny subset", "loss trend")
_WHY = {
    0: "nothing can train until it is fixed",
    1: "it is read from the recipe or measured before any step, so training cannot have caused it",
    2: "the recipe's configuration checks pass; it appears during training",
    3: "the model trains, but every check before capacity passes while it cannot fit",
}


def _symptoms(checks: list[CheckResult]) -> list[str]:
    return [c.name for c in checks if c.name in SYMPTOMS and c.status in (FAIL, WARN)]


def rank_causes(checks: list[CheckResult]) -> list[Cause]:
    """The causes the checks point at, the most likely root cause first ([] when none)."""
    symptoms = _symptoms(checks)
    # Direct evidence that the recipe fails, though no symptom shows in the probe itself.
    direct = any(c.cause in DIRECT and c.status == WARN for c in checks)
    if not symptoms and not direct and not any(c.status == FAIL for c in checks):
        return []
    found: dict[str, dict] = {}
    for c in checks:
        if c.status in (FAIL, WARN) and c.cause:
            entry = found.setdefault(c.cause, {"strength": WARN, "checks": []})
            entry["checks"].append(c)
            if c.status == FAIL:
                entry["strength"] = FAIL
    order = list(CAUSES)
    ranked = sorted(found, key=lambda k: (found[k]["strength"] != FAIL, CAUSES[k][0], order.index(k)))
    if ranked:
        top = ranked[0]
        explainers = [k for k in ranked if found[k]["strength"] == WARN and CAUSES[k][0] <= CAUSES[top][0]
                      and top in EXPLAINS.get(k, ())]
        if explainers:
            ranked.remove(explainers[0])
            ranked.insert(0, explainers[0])
    root = ranked[0] if ranked else None

    def explained(key):
        return key in EXPLAINS.get(root, ()) or CAUSES[root][0] < CAUSES[key][0]

    # (explained: a cause the root one is known to produce, or one of a later tier)

    causes = []
    for i, key in enumerate(ranked):
        tier, title, advice = CAUSES[key]
        entry = found[key]
        names = [c.name for c in entry["checks"]]
        if i == 0:
            followers = symptoms + [x.name for k in ranked[1:] if explained(k) for x in found[k]["checks"]]
            why = f"most likely root cause: {_WHY[tier]}"
            if followers:
                why += f"; {', '.join(dict.fromkeys(followers))} follow from it"
        else:
            why = "explained by the root cause" if explained(key) else "also wrong, independent of the root cause"
        causes.append(Cause(key, title, entry["strength"], names, why, advice))
    if not causes:
        failed = any(c.status == FAIL for c in checks)
        causes.append(Cause("unexplained", "the model does not learn, for no reason a check names" if failed else
                            "the model has not learnt yet, for no reason a check names",
                            FAIL if failed else WARN, symptoms,
                            "only symptoms fired: " + ", ".join(symptoms),
                            "try the recipe on an easier preset, more steps (--steps), or a linear baseline "
                            "(ridge) to separate the data from the model"))
    return causes
