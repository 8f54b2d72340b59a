"""``coordconv-cnnbench``: a CoordConv-style regressor designed for cnnbench, and ``plain-cnn``.

Not Liu et al. 2018's networks (those are the ``liu2018-*`` baselines, built as their code
builds them). This net takes the CoordConv idea (the pixel coordinates as two extra input
channels, so a convolution can report where it found something) and adds what an ordinary
CNN has: ReLUs, a 4x4 stride-2 first convolution of width 32, three 1x1 convolutions, global
max and mean pooling and a linear head (4,866 parameters on a one-channel 64x64 image, 5,890
on RGB). It is fast, and it keeps the boxes-64 figures; on notsoclevr it does not show the
all-or-nothing behaviour of the authors' net (docs/results.md).

``plain-cnn`` is the same kind of net without coordinate channels and with a strided-conv,
Flatten, Dense head; its dense weights for positions never seen in training are never
trained. It is cnnbench's control, not the paper's conv counterparts (``liu2018-conv-*``).
"""

from __future__ import annotations

import torch
from torch import nn

from cnnbench.bench.protocol import DataInfo, Recipe, adam

from . import Baseline

WIDTH = 32


def coordinates(x: torch.Tensor) -> torch.Tensor:
    """Two channels holding each pixel's column and row, scaled to [-1, 1]."""
    n, _, h, w = x.shape
    ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y]).expand(n, 2, h, w)


class CoordConvNet(nn.Module):
    """[image, x, y] -> conv 4x4 stride 2 -> 1x1 convs -> global max and mean pooling -> linear.

    The first convolution's stride halves the cost; its 4x4 windows still see every pixel,
    and the coordinate channels keep the exact position of each.
    """

    def __init__(self, info: DataInfo, width: int = WIDTH):
        super().__init__()
        c = info.channels + 2
        self.body = nn.Sequential(
            nn.Conv2d(c, width, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 1), nn.ReLU(),
            nn.Conv2d(width, width, 1), nn.ReLU(),
            nn.Conv2d(width, width, 1), nn.ReLU(),
        )
        self.head = nn.Linear(2 * width, info.num_outputs)

    def forward(self, x):
        f = self.body(torch.cat([x, coordinates(x)], dim=1))
        return self.head(torch.cat([f.amax(dim=(2, 3)), f.mean(dim=(2, 3))], dim=1))


class PlainCNN(nn.Module):
    """conv 4x4 stride 2 -> three stride-2 3x3 convs -> Flatten -> Dense(64) -> Dense(outputs)."""

    def __init__(self, info: DataInfo, width: int = WIDTH):
        super().__init__()
        h, w, c = info.image_shape
        layers = [nn.Conv2d(c, width, 4, stride=2, padding=1), nn.ReLU()]
        h, w = h // 2, w // 2
        for _ in range(3):
            layers += [nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU()]
            h, w = (h + 1) // 2, (w + 1) // 2
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(width * h * w, 64), nn.ReLU(), nn.Linear(64, info.num_outputs))

    def forward(self, x):
        return self.head(self.body(x))


def _epochs(info: DataInfo) -> int:
    return 40 if info.n_train <= 4000 else 5


def make_coordconv(info: DataInfo) -> Recipe:
    return Recipe(model=CoordConvNet(info), optimizer=adam(3e-3), epochs=_epochs(info), batch_size=32,
                  config={"width": WIDTH, "pooling": "max+mean"})


def make_plain(info: DataInfo) -> Recipe:
    return Recipe(model=PlainCNN(info), optimizer=adam(1e-3), epochs=_epochs(info), batch_size=32,
                  config={"width": WIDTH})


# The presets ``suite --full`` runs these on: the seed-001 set and Not-so-Clevr's two splits.
SUITE = ("boxes-64", "boxes-64-quadrant", "boxes-64-medium", "boxes-64-hard", "notsoclevr-quadrant",
         "notsoclevr-uniform")

BASELINES = [
    Baseline("coordconv-cnnbench", "a CoordConv-style net of cnnbench's own (not the paper's): coordinate "
             "channels, ReLU, 1x1 convs, max+mean pooling", make_coordconv, tests="boxes question: CoordConv",
             tasks=("regression",), families=("boxes",),
             epochs="5 (40 up to 4,000 images)", suite=SUITE),
    Baseline("plain-cnn", "coordconv-cnnbench's control: strided convs + dense head, no coordinates",
             make_plain, tests="boxes question: CoordConv's plain-CNN control", tasks=("regression",),
             families=("boxes",), epochs="5 (40 up to 4,000 images)", suite=SUITE),
]
