"""``liu2018-conv-quadrant``: the plain-conv regressor Liu et al. 2018 train on the quadrant split.

Follows ``ConvRegressor.big_conv2`` in the authors' ``model_builders.py``, which ``train.py
--arch conv_regressor`` builds when the data file's name does not contain "uniform" (their
type string ``conv_quarant``; ``-mul 1`` in ``experiment_logs.sh``: width 16):

    Conv 16 5x5 /2, ReLU -> Conv 16 1x1, ReLU -> BatchNorm -> Conv 16 3x3, ReLU
    -> Conv 16 3x3 /2, ReLU -> Conv 16 3x3 /2 -> BatchNorm -> ReLU -> Conv 16 3x3 /2, ReLU
    -> Conv 16 1x1, ReLU -> Conv 16 3x3 /2, ReLU -> Conv 2 3x3, ReLU -> global average pooling

All TF 'same' padding; batch norm with TF momentum 0.9 (torch's 0.1) and epsilon 1e-5, in
training mode while training and on its running statistics when scoring. 12,914 parameters.
Trained as the authors' conv regressors are (see ``coordconv_liu2018.py``).
"""

from __future__ import annotations

from torch import nn

from cnnbench.bench.protocol import DataInfo, Recipe

from . import Baseline
from .coordconv_liu2018 import CONV_L2, CONV_LR, SameConv2d, make_recipe

WIDTH = 16  # 16 * mul, mul 1


def _bn():
    return nn.BatchNorm2d(WIDTH, momentum=0.1, eps=1e-5)


class Liu2018ConvQuadrant(nn.Module):
    def __init__(self, info: DataInfo):
        super().__init__()
        c, r = info.channels, nn.ReLU
        self.body = nn.Sequential(
            SameConv2d(c, WIDTH, 5, 2), r(), SameConv2d(WIDTH, WIDTH, 1), r(), _bn(),
            SameConv2d(WIDTH, WIDTH, 3), r(), SameConv2d(WIDTH, WIDTH, 3, 2), r(),
            SameConv2d(WIDTH, WIDTH, 3, 2), _bn(), r(), SameConv2d(WIDTH, WIDTH, 3, 2), r(),
            SameConv2d(WIDTH, WIDTH, 1), r(), SameConv2d(WIDTH, WIDTH, 3, 2), r(),
            SameConv2d(WIDTH, info.num_outputs, 3), r(),
        )

    def forward(self, x):
        return self.body(x).mean(dim=(2, 3))


def make(info: DataInfo) -> Recipe:
    return make_recipe(Liu2018ConvQuadrant(info), info, CONV_LR, CONV_L2,
                       "model_builders.py ConvRegressor big_conv2 (train.py --arch conv_regressor, quadrant data)")


BASELINES = [
    Baseline("liu2018-conv-quadrant", "Liu et al. 2018's conv regressor for the quadrant split exactly: "
             "strided convs of 16, batch norm, ReLU, global average pooling",
             make, tests="Liu et al. 2018 reproduction (conv counterpart)", tasks=("regression",),
             families=("boxes",), epochs="100", seeds=10, seed_presets=("notsoclevr-quadrant",),
             suite=("notsoclevr-quadrant",)),
]
