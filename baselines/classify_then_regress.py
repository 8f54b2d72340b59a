"""Classify into bins, then regress the residual: the patches question's advice for a bounded label.

The target range (standardised) is cut into ``BINS`` equal bins. The network (the small
ResNet's features) has two heads: logits over the bins, and one residual per bin. Training
loss: cross-entropy on the true bin plus the squared error of that bin's residual; the
prediction is the most likely bin's centre plus its residual. A reader can see whether
turning regression into classification helps on this data (it is in the leaderboard beside
the plain ResNet with the same features).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnbench.bench.protocol import DataInfo, Recipe, cosine_schedule

from . import Baseline
from .resnet import DIHEDRAL, SmallResNet, adamw

BINS = 8
LOW, HIGH = -1.8, 1.8  # a uniform label standardised lies in [-1.73, 1.73]
WIDTH = (HIGH - LOW) / BINS
CENTRES = LOW + WIDTH * (torch.arange(BINS) + 0.5)


class BinsAndResidual(nn.Module):
    def __init__(self, info: DataInfo):
        super().__init__()
        self.backbone = SmallResNet(info.channels, 1)
        self.bins = nn.Linear(self.backbone.features, BINS)
        self.residuals = nn.Linear(self.backbone.features, BINS)

    def forward(self, x):
        f = self.backbone.embed(x)
        return torch.cat([self.bins(f), self.residuals(f)], dim=1)  # (N, 2 * BINS)


def which_bin(y: torch.Tensor) -> torch.Tensor:
    return ((y.squeeze(1) - LOW) / WIDTH).floor().long().clamp(0, BINS - 1)


def loss(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits, residuals = outputs[:, :BINS], outputs[:, BINS:]
    k = which_bin(y)
    centre = CENTRES.to(y.device)[k]
    residual = residuals.gather(1, k[:, None]).squeeze(1)
    return F.cross_entropy(logits, k) + F.mse_loss(centre + residual * WIDTH, y.squeeze(1))


def decode(outputs: torch.Tensor) -> torch.Tensor:
    logits, residuals = outputs[:, :BINS], outputs[:, BINS:]
    k = logits.argmax(dim=1)
    return (CENTRES.to(outputs.device)[k] + residuals.gather(1, k[:, None]).squeeze(1) * WIDTH)[:, None]


def make(info: DataInfo) -> Recipe:
    return Recipe(model=BinsAndResidual(info), optimizer=adamw, scheduler=cosine_schedule, loss=loss,
                  decode=decode, augment=DIHEDRAL, target_scaling="standard",
                  epochs=30 if info.n_train <= 1000 else 15, batch_size=64,
                  config={"bins": BINS, "range": [LOW, HIGH]})


BASELINES = [
    Baseline("classify-regress", f"small ResNet features, {BINS} bins + a residual per bin",
             make, tests="patches question: classify then regress", tasks=("regression",), families=("patches",),
             epochs="15 (30 up to 1,000 images)", suite=("patches-64",)),
]
