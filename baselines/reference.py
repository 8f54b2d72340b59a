"""Reference predictors: what any model must beat, fitted in closed form.

- ``majority`` / ``mean``: ignore the image; predict the train split's most frequent class,
  or its mean target. "Beats the mean" starts here (R² 0 by construction on train).
- ``ridge``: linear least squares on the pixels, with an L2 penalty chosen on val. Seed 001's
  first answer: the box's centre is (nearly) a pixel-weighted sum, so no CNN is needed for
  it. Images with several channels are averaged to grey first, which keeps the normal
  equations small (64 x 64 pixels -> a 4096 x 4096 system).
"""

from __future__ import annotations

import torch
from torch import nn

from cnnbench.bench.protocol import DataInfo, Recipe, scale_01

from . import Baseline

# Ridge penalties tried, relative to the mean eigenvalue of the centred X^T X.
RIDGE_ALPHAS = (1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


class Constant(nn.Module):
    """Outputs the same vector for every image."""

    def __init__(self, outputs: int):
        super().__init__()
        self.value = nn.Parameter(torch.zeros(outputs), requires_grad=False)

    def forward(self, x):
        return self.value.expand(len(x), -1)


def make_constant(info: DataInfo) -> Recipe:
    model = Constant(info.num_outputs)

    def fit(train, val):
        if info.task == "classification":
            counts = torch.bincount(train.targets.cpu(), minlength=info.num_outputs)
            model.value.copy_(nn.functional.one_hot(counts.argmax(), info.num_outputs).float())
        else:
            model.value.copy_(train.targets.mean(dim=0))  # scaled units: ~0 after standardising

    return Recipe(model=model, fit=fit, epochs=1, batch_size=1024,
                  config={"predictor": "majority class" if info.task == "classification" else "mean target"})


def grey_pixels(x: torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W x C -> float N x (H*W): channel mean, scaled to [0, 1]."""
    return scale_01(x).mean(dim=1).flatten(1)


class Linear(nn.Module):
    def __init__(self, features: int, outputs: int):
        super().__init__()
        self.linear = nn.Linear(features, outputs)
        for p in self.linear.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        return self.linear(x)


def ridge_fit(model: Linear, train, val, task: str, num_outputs: int, alphas=RIDGE_ALPHAS):
    """Solve the ridge normal equations for each alpha; keep the best on val.

    Accumulates X^T X and X^T y over train batches (float64), so memory is d x d whatever N.
    Classification regresses one-hot targets and predicts the argmax.
    """
    def targets(y):
        if task == "classification":
            return nn.functional.one_hot(y, num_outputs).double()
        return y.double()

    n, sx, sy, xtx, xty = 0, 0.0, 0.0, 0.0, 0.0
    for x, y in train.batches(2048):
        x, y = x.double(), targets(y)
        n += len(x)
        sx, sy = sx + x.sum(0), sy + y.sum(0)
        xtx, xty = xtx + x.T @ x, xty + x.T @ y
    mx, my = sx / n, sy / n
    cxx = xtx - n * torch.outer(mx, mx)
    cxy = xty - n * torch.outer(mx, my)
    scale = float(torch.diagonal(cxx).mean()) or 1.0
    eye = torch.eye(len(cxx), dtype=cxx.dtype, device=cxx.device)
    solutions = [torch.linalg.solve(cxx + a * scale * eye, cxy) for a in alphas]

    # Selection on val: accuracy, or MSE in the (scaled) training units.
    errors = torch.zeros(len(alphas), dtype=torch.float64)
    for x, y in val.batches(2048):
        x = x.double() - mx
        for i, w in enumerate(solutions):
            pred = x @ w + my
            if task == "classification":
                errors[i] -= (pred.argmax(1) == y).sum().cpu()
            else:
                errors[i] += ((pred - y.double()) ** 2).sum().cpu()
    best = int(errors.argmin())
    w = solutions[best]
    model.linear.weight.copy_(w.T.float())
    model.linear.bias.copy_((my - mx @ w).float())
    return alphas[best]


def make_ridge(info: DataInfo) -> Recipe:
    h, w, _ = info.image_shape
    model = Linear(h * w, info.num_outputs)
    config = {"features": "grey pixels in [0, 1]", "alphas": list(RIDGE_ALPHAS)}

    def fit(train, val):
        config["alpha"] = ridge_fit(model, train, val, info.task, info.num_outputs)

    return Recipe(model=model, fit=fit, preprocess=grey_pixels, epochs=1, batch_size=1024,
                  config=config)


BASELINES = [
    Baseline("majority", "predict the train split's most frequent class (reference)", make_constant,
             tests="reference", tasks=("classification",), quick=True, source="reference",
             epochs="closed form"),
    Baseline("mean", "predict the train split's mean target (reference; R² 0)", make_constant,
             tests="reference", tasks=("regression",), quick=True, source="reference",
             epochs="closed form"),
    Baseline("ridge", "ridge least squares on grey pixels, penalty chosen on val", make_ridge,
             tests="boxes question: the task is linear", quick=True, max_inputs=64 * 64 * 3,
             source="reference", epochs="closed form"),
]
