"""CoordConv (Liu et al. 2018, "An intriguing failing of convolutional neural networks..."):
give the convolutions the pixel coordinates as two extra input channels.

Seed 001's answers point at it: a convolution is translation-equivariant, so it knows what is
at a place but not where the place is. The paper's regression net, as here: CoordConv
(image + x + y channels), then 1x1 convolutions (a small per-pixel network of the pixel's
neighbourhood and its coordinates) and a global pooling, so the position the network reports
is computed from the coordinates of the pixels it finds, whatever quadrant they are in.
That is what lets it generalise to the held-out quadrant of Not-so-Clevr.

``plain-cnn`` is the comparison the paper makes: the same convolutions without coordinate
channels and with the head an ordinary CNN uses (stride-2 downsampling, Flatten, Dense);
global pooling would throw the position away. Its dense weights for the held-out quadrant
are never trained, so it cannot extrapolate there.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnbench.train import DataInfo, Recipe, adam

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


# The presets ``suite --full`` runs these on: the seed-001 set and CoordConv's two splits.
SUITE = ("boxes-64", "boxes-64-quadrant", "boxes-64-medium", "boxes-64-hard", "notsoclevr-quadrant",
         "notsoclevr-uniform")

BASELINES = [
    Baseline("coordconv", "CoordConv: coordinate channels, 1x1 convs, global pooling (Liu et al. 2018)",
             make_coordconv, tests="seed 001: CoordConv", tasks=("regression",), families=("boxes",),
             epochs="5 (40 up to 4,000 images)", suite=SUITE),
    Baseline("plain-cnn", "the CoordConv net's comparison: strided convs + dense head, no coordinates",
             make_plain, tests="seed 001: CoordConv's plain-CNN control", tasks=("regression",),
             families=("boxes",), epochs="5 (40 up to 4,000 images)", suite=SUITE),
]
