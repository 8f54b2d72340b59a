"""``liu2018-conv-uniform``: the plain-conv regressor Liu et al. 2018 train on the uniform split.

Follows ``ConvRegressor.big_conv`` in the authors' ``model_builders.py``, which ``train.py
--arch conv_regressor`` builds when the data file's name contains "uniform" (``-mul 1`` in
``experiment_logs.sh``: width 16):

    Conv 16 3x3 (same), ReLU, MaxPool 2 -> Conv 16 3x3, ReLU, MaxPool 2
    -> Conv 16 3x3, ReLU, MaxPool 2 -> Conv 16 3x3, ReLU -> Flatten -> Dense 64, ReLU -> Dense 2

72,850 parameters on a 64x64 one-channel image. Flatten reads the map in TF's (row, column,
channel) order. Trained as the authors' conv regressors are (Adam, L2 on the conv kernels,
100 epochs, batch 256; the learning rate and L2 of their grid used here are in
``coordconv_liu2018.py``).
"""

from __future__ import annotations

from torch import nn

from cnnbench.bench.protocol import DataInfo, Recipe

from . import Baseline
from .coordconv_liu2018 import CONV_L2, CONV_LR, SameConv2d, make_recipe

WIDTH = 16  # 16 * mul, mul 1


class Liu2018ConvUniform(nn.Module):
    def __init__(self, info: DataInfo):
        super().__init__()
        h, w, c = info.image_shape
        layers = []
        for i in range(4):
            layers += [SameConv2d(c if i == 0 else WIDTH, WIDTH, 3), nn.ReLU()]
            if i < 3:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(h * w * WIDTH, 64), nn.ReLU(), nn.Linear(64, info.num_outputs))

    def forward(self, x):
        return self.head(self.features(x).permute(0, 2, 3, 1).flatten(1))


def make(info: DataInfo) -> Recipe:
    return make_recipe(Liu2018ConvUniform(info), info, CONV_LR, CONV_L2,
                       "model_builders.py ConvRegressor big_conv (train.py --arch conv_regressor, uniform data)")


BASELINES = [
    Baseline("liu2018-conv-uniform", "Liu et al. 2018's conv regressor for the uniform split exactly: "
             "4 convs of 16, max-pools, Flatten, Dense 64, Dense 2",
             make, tests="Liu et al. 2018 reproduction (conv counterpart)", tasks=("regression",),
             families=("boxes",), epochs="100", seeds=10, seed_presets=("notsoclevr-uniform",),
             suite=("notsoclevr-uniform",)),
]
