"""The boxes question ("the CNN only predicts the mean"): as asked, then fixed.

The question (Keras) regressed the (x, y) centre of one square with::

    Conv 32, 5x5, stride 2, same, ReLU -> Conv 64 (same) -> Conv 128 (same)
    -> Flatten -> Dense(100) ReLU -> Dense(2) linear; MSE; Adam lr 0.01; batch 128

and saw both outputs stay "close to zero", which was "always the centre of the image": its
targets were pixel offsets from the centre, not standardised. ``boxes-cnn-as-asked`` is that net
with Keras' default initialisation (glorot_uniform, zero biases), Adam 0.01 and the targets
in pixels with their mean taken off (``target_scaling="centre"``: zero is the mean position,
about the image's centre). Pixels are fed divided by 255 (the question does not say how they
were scaled; raw 0..255 makes the first step larger still). From most starts the first large
Adam steps push every ReLU below zero: the network's output is then its last bias, which
Adam moves to the mean target, zero, and no gradient ever reaches the convolutions again.
The question's 1000 epochs would change nothing; the reproduction trains for one epoch on large
sets (30 up to 1,000 images).

``boxes-cnn-fixed`` keeps the architecture and applies the answers' corrections: standardised
targets (the protocol's default), inputs / 255, Adam at lr 1e-3.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from cnnbench.bench.protocol import DataInfo, Recipe, adam, scale_01

from . import Baseline
from .lines_cnn import keras_init


class StridedCNN(nn.Module):
    """Three 5x5 stride-2 convolutions (Keras "same" padding), Dense(100), Dense(outputs)."""

    def __init__(self, info: DataInfo, widths=(32, 64, 128), hidden=100):
        super().__init__()
        h, w, c = info.image_shape
        layers, channels = [], c
        for width in widths:
            layers += [nn.Conv2d(channels, width, 5, stride=2, padding=2), nn.ReLU()]
            channels = width
            h, w = (h + 1) // 2, (w + 1) // 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(channels * h * w, hidden), nn.ReLU(),
                                  nn.Linear(hidden, info.num_outputs))

    def forward(self, x):
        return self.head(self.features(x))


def _epochs(info: DataInfo) -> int:
    return 30 if info.n_train <= 1000 else 3


def make_reproduction(info: DataInfo) -> Recipe:
    return Recipe(
        model=keras_init(StridedCNN(info)),
        optimizer=adam(1e-2, betas=(0.9, 0.999), eps=1e-8),
        loss=F.mse_loss,
        preprocess=scale_01,
        target_scaling="centre",  # pixel offsets from the mean position, as in the question
        # The collapse happens within the first epoch and nothing moves after it (see above),
        # so on large sets one epoch shows it; the question's 1000 epochs would change nothing.
        epochs=30 if info.n_train <= 1000 else 1, batch_size=128,
        config={"init": "keras glorot_uniform", "targets": "pixels, mean taken off"},
    )


def make_fix(info: DataInfo) -> Recipe:
    return Recipe(
        model=keras_init(StridedCNN(info)),
        optimizer=adam(1e-3),
        loss=F.mse_loss,
        preprocess=scale_01,
        target_scaling="standard",
        epochs=_epochs(info), batch_size=128,
        config={"init": "keras glorot_uniform", "targets": "standardised"},
    )


BASELINES = [
    Baseline("boxes-cnn-as-asked",
             "the boxes question's strided CNN as asked: Adam 0.01 on unscaled pixel targets "
             "(collapses to the mean)",
             make_reproduction, tests="boxes question, as asked", tasks=("regression",),
             families=("boxes",), epochs="1 (30 up to 1,000 images)", seeds=10,
             seed_presets=("boxes-64",), suite=("boxes-64",), quick=True, quick_seeds=1,
             aliases=("seed001-repro",)),
    Baseline("boxes-cnn-fixed", "the boxes question's CNN fixed: standardised targets, Adam 1e-3",
             make_fix, tests="boxes question, the answers' fixes", tasks=("regression",),
             families=("boxes",), epochs="3 (30 up to 1,000 images)", suite=("boxes-64",), quick=True,
             aliases=("seed001-fix",)),
]
