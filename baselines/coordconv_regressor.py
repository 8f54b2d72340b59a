"""``liu2018-coordconv``: the CoordConv regressor of Liu et al. 2018, layer for layer.

Follows ``ConvRegressor.coordconv_model`` in the authors' ``model_builders.py`` (selected by
``train.py --arch coordconv_regressor``) with ``AddCoords`` from their ``CoordConv.py``:

    AddCoords (image, x, y channels; no r)
    -> Conv 8 1x1 -> Conv 8 1x1 -> Conv 8 1x1 -> Conv 8 3x3 (same) -> Conv 2 3x3 (same)
    -> MaxPooling2D 64x64 (the whole map) -> the 2 outputs (x/64, y/64)

No activation anywhere; 906 parameters on a one-channel image. Trained as
``experiment_logs.sh`` runs it (Adam lr 0.01, L2 1e-5 on the kernels, 100 epochs, batch 256;
see ``coordconv_liu2018.py``).

Up to the pooling the network is affine in its input: the image's contribution and the
coordinate channels' (with every bias) add. The forward pass uses that: the coordinate part
is computed once per batch, the image part through the composed kernels (one 5x5 convolution
when the image's outermost pixels are zero, where the two 3x3 convolutions' zero padding can
make no difference; else two 3x3 ones). Same function, same parameters, same gradients up to
float rounding; ``tests/test_liu2018.py`` checks it against the layer-by-layer network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnbench.bench.protocol import DataInfo, Recipe

from . import Baseline
from .coordconv_liu2018 import COORDCONV_L2, COORDCONV_LR, coordinate_channels, make_recipe

WIDTH = 8


class Liu2018CoordConvRegressor(nn.Module):
    def __init__(self, info: DataInfo):
        super().__init__()
        self.image_channels = info.channels
        self.convs = nn.ModuleList([
            nn.Conv2d(info.channels + 2, WIDTH, 1), nn.Conv2d(WIDTH, WIDTH, 1), nn.Conv2d(WIDTH, WIDTH, 1),
            nn.Conv2d(WIDTH, WIDTH, 3, padding=1), nn.Conv2d(WIDTH, 2, 3, padding=1),
        ])

    def layers(self, x: torch.Tensor) -> torch.Tensor:
        """The authors' network as written, layer after layer: the reference for :meth:`forward`."""
        n, _, h, w = x.shape
        h_ = torch.cat([x, coordinate_channels(n, h, w, x)], dim=1)
        for conv in self.convs:
            h_ = conv(h_)
        return h_.amax(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        c1, c2, c3, c4, c5 = self.convs
        # The coordinate channels and the biases: the same for every image, computed once.
        const = F.conv2d(coordinate_channels(1, h, w, x), c1.weight[:, c:], c1.bias)
        const = c5(c4(c3(c2(const))))
        # The image through the 1x1 chain, without biases, folded into the first 3x3 kernel.
        chain = c3.weight[:, :, 0, 0] @ c2.weight[:, :, 0, 0] @ c1.weight[:, :c, 0, 0]  # (8, c)
        k4 = torch.einsum("omij,mc->ocij", c4.weight, chain)  # (8, c, 3, 3)
        border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, :, 0], x[:, :, :, -1]], dim=2)
        if bool((border == 0).all()):
            # Two 3x3 convolutions make one 5x5; their padding differs only where the first
            # one's output outside the image would be nonzero, i.e. on a nonzero border pixel.
            k5 = F.conv_transpose2d(k4.transpose(0, 1), c5.weight.transpose(0, 1)).transpose(0, 1)
            image = F.conv2d(x, k5, padding=2)
        else:
            image = F.conv2d(F.conv2d(x, k4, padding=1), c5.weight, padding=1)
        return (image + const).amax(dim=(2, 3))


def make(info: DataInfo) -> Recipe:
    return make_recipe(Liu2018CoordConvRegressor(info), info, COORDCONV_LR, COORDCONV_L2,
                       "model_builders.py ConvRegressor coordconv_model (train.py --arch coordconv_regressor)")


BASELINES = [
    Baseline("liu2018-coordconv", "Liu et al. 2018's CoordConv regressor exactly: coords, 1x1 and 3x3 convs "
             "without activations, 64x64 max-pool; Adam 0.01, L2 1e-5, batch 256",
             make, tests="Liu et al. 2018 reproduction", tasks=("regression",), families=("boxes",),
             epochs="100", seeds=10, seed_presets=("notsoclevr-uniform", "notsoclevr-quadrant"),
             suite=("notsoclevr-uniform", "notsoclevr-quadrant")),
]
