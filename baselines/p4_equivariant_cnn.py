"""A p4 group-equivariant CNN (Cohen & Welling 2016) in plain torch: the patches question's advice to
build rotation invariance into the network instead of learning it.

A p4 convolution shares each filter over its four quarter-turn rotations. The first layer
("lifting") turns an image into a function on (rotation, y, x); later layers filter those,
rotating the filter in space *and* cycling it along the rotation axis, so rotating the input
by 90 degrees rotates every feature map and shifts it along the rotation axis. Pooling over
the rotations and over space then gives features that do not change under quarter turns.
(Arbitrary angles are only approximately covered; the scenes are rotated by any angle.)
No equivariance library is needed: the four rotated filters are stacked into one ordinary
``conv2d``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cnnbench.bench.protocol import DataInfo, Recipe, cosine_schedule

from . import Baseline

WIDTHS = (8, 16, 32)  # channels per rotation: 4x as many feature maps


class P4Lift(nn.Module):
    """Image (N, C, H, W) -> p4 feature map (N, out, 4, H', W')."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, k, k))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.stride, self.pad = stride, k // 2

    def forward(self, x):
        w = torch.cat([torch.rot90(self.weight, r, dims=(2, 3)) for r in range(4)])  # (4*out, in, k, k)
        y = F.conv2d(x, w, stride=self.stride, padding=self.pad)
        n, _, h, wd = y.shape
        return y.view(n, 4, -1, h, wd).transpose(1, 2) + self.bias.view(1, -1, 1, 1, 1)


class P4Conv(nn.Module):
    """p4 feature map (N, in, 4, H, W) -> (N, out, 4, H', W')."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, 4, k, k))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.stride, self.pad = stride, k // 2

    def forward(self, x):
        n, cin, _, h, w = x.shape
        # The filter for output rotation r: rotated by r in space, its input-rotation axis
        # cycled by r (a rotation of the input permutes the rotation channels cyclically).
        filters = [torch.rot90(torch.roll(self.weight, r, dims=2), r, dims=(3, 4)) for r in range(4)]
        weight = torch.stack(filters, dim=1).flatten(2, 3)  # (out, 4, in*4, k, k)
        weight = weight.flatten(0, 1)  # output channel index = o * 4 + r
        y = F.conv2d(x.reshape(n, cin * 4, h, w), weight, stride=self.stride, padding=self.pad)
        return y.view(n, -1, 4, *y.shape[-2:]) + self.bias.view(1, -1, 1, 1, 1)


class P4BatchNorm(nn.Module):
    """One mean and scale per channel, shared by its four rotations (keeps equivariance)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm3d(channels)

    def forward(self, x):
        return self.bn(x)


class P4Pool(nn.Module):
    """2x2 average pooling of each rotation's map (on an even side the windows are symmetric
    under quarter turns, which a stride-2 convolution's sampling grid is not)."""

    def forward(self, x):
        n, c, r, h, w = x.shape
        return F.avg_pool2d(x.reshape(n, c * r, h, w), 2).view(n, c, r, h // 2, w // 2)


class P4CNN(nn.Module):
    """Input halved by average pooling, then lift -> pool -> p4 conv -> pool -> p4 conv."""

    def __init__(self, info: DataInfo, widths=WIDTHS):
        super().__init__()
        layers: list[nn.Module] = [P4Lift(info.channels, widths[0], 3), P4BatchNorm(widths[0]), nn.ReLU()]
        cin = widths[0]
        for width in widths[1:]:
            layers += [P4Pool(), P4Conv(cin, width, 3), P4BatchNorm(width), nn.ReLU()]
            cin = width
        self.body = nn.Sequential(nn.AvgPool2d(2), *layers)
        self.head = nn.Sequential(nn.Linear(2 * cin, 64), nn.ReLU(), nn.Linear(64, info.num_outputs))

    def forward(self, x):
        f = self.body(x).amax(dim=2)  # invariant to quarter turns: pool over the rotations
        return self.head(torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1))


def adam_2e3(params):
    return torch.optim.Adam(params, lr=2e-3)


def make(info: DataInfo) -> Recipe:
    return Recipe(model=P4CNN(info), optimizer=adam_2e3, scheduler=cosine_schedule,
                  epochs=30 if info.n_train <= 1000 else 15, batch_size=64,
                  config={"widths_per_rotation": list(WIDTHS)})


BASELINES = [
    Baseline("p4cnn", "p4 group convolutions (quarter-turn equivariant), pooled to invariant features",
             make, tests="patches question: equivariant CNNs", families=("patches",),
             epochs="15 (30 up to 1,000 images)", suite=("patches-64",)),
]
