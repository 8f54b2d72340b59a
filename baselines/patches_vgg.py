"""The patches question ("which CNN architecture for regression?"): the asker's
VGG-like net as asked, then trained as the answers advise.

The question's best model (pseudo code), trained with MSE::

    3 x [conv 3x3 -> batch norm -> ReLU] (32 filters) -> max pool 2x2
    3 x [conv 3x3 -> batch norm -> ReLU] (64 filters) -> max pool 2x2
    3 x [conv 3x3 -> batch norm -> ReLU] (128 filters) -> max pool 2x2
    dropout -> conv 1x1 (128) -> BN -> ReLU -> dropout -> conv 1x1 (32) -> BN -> ReLU -> dense(1)

about half a million parameters for 5,000 images, and an MSE of about 0.3 on train and
validation. The pseudo code gives no padding, optimiser or scaling; this reproduction uses
"same" padding, dropout 0.5, Adam 1e-3, batch 32, inputs / 255 and standardised targets (an
MSE of 0.3 only makes sense on standardised targets), and no augmentation. It is the most
expensive baseline here (about half a minute per epoch on 2 CPU cores), so it trains for 2
epochs by default: enough to show where it stands, not a tuned result.

``patches-vgg-advised`` is the same net trained as the answers advise: the label-preserving
symmetries as augmentation (the eight quarter turns and flips, drawn per image), twice the
epochs, and a learning rate that decays to zero along a cosine.
"""

from __future__ import annotations

from torch import nn

from cnnbench.bench.protocol import DataInfo, Recipe, adam, cosine_schedule

from . import Baseline
from .resnet import DIHEDRAL


def conv_bn_relu(cin: int, cout: int, k: int = 3) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=k // 2), nn.BatchNorm2d(cout), nn.ReLU()]


class VGGLike(nn.Module):
    def __init__(self, info: DataInfo, widths=(32, 64, 128), dropout: float = 0.5):
        super().__init__()
        h, w, cin = info.image_shape
        layers = []
        for width in widths:
            for _ in range(3):
                layers += conv_bn_relu(cin, width)
                cin = width
            layers.append(nn.MaxPool2d(2, 2))
            h, w = h // 2, w // 2
        layers += [nn.Dropout(dropout), *conv_bn_relu(cin, 128, 1), nn.Dropout(dropout), *conv_bn_relu(128, 32, 1)]
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.dense = nn.Linear(32 * h * w, info.num_outputs)

    def forward(self, x):
        return self.dense(self.features(x))


def make(info: DataInfo) -> Recipe:
    return Recipe(model=VGGLike(info), optimizer=adam(1e-3), epochs=2, batch_size=32,
                  config={"padding": "same", "dropout": 0.5})


def make_fix(info: DataInfo) -> Recipe:
    return Recipe(model=VGGLike(info), optimizer=adam(1e-3), scheduler=cosine_schedule,
                  augment=DIHEDRAL, epochs=4, batch_size=32,
                  config={"padding": "same", "dropout": 0.5})


BASELINES = [
    Baseline("patches-vgg-as-asked",
             "the patches question's VGG-like net as asked (9 convs + BN, ~0.5M params, no augmentation)",
             make, tests="patches question, as asked", tasks=("regression",), families=("patches",),
             epochs="2", suite=("patches-64",), aliases=("seed002-vgg",)),
    Baseline("patches-vgg-advised",
             "the patches question's VGG-like net with the answers' advice: dihedral augmentation, "
             "cosine lr, 4 epochs",
             make_fix, tests="patches question, the answers' advice", tasks=("regression",),
             families=("patches",), epochs="4", suite=("patches-64",), aliases=("seed002-fix",)),
]
