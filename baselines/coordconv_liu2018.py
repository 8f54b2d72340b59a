"""Liu et al. 2018's supervised coordinate regression, as their code trains it: the shared parts.

What the three ``liu2018-*`` baselines share, each fact read in the authors' repository
(uber-research/CoordConv; facts taken, no code):

- ``train.py`` (``--arch coordconv_regressor`` / ``conv_regressor``): the input is the one-hot
  image (``*_onehots``, 1.0 at the centre pixel), the target the centre divided by the image
  size (``*_normalized_locations``, x/64, y/64); the loss is the mean squared error over the
  batch and both coordinates plus the regularisation loss.
- ``tf_plus/regularizers.py``'s ``l2reg(s)``: ``s * sum(w**2)``, on every convolution kernel
  (``kernel_regularizer``; not on biases, batch-norm or the dense layers, which have none).
- ``experiment_logs.sh``: CoordConv ``--epochs 100 --lr 0.01 --opt adam --l2 0.00001``; the
  conv regressors ``-E 100 --opt adam -mul 1`` over a grid of lr {0.0005, 0.001, 0.01} and l2
  {1e-5, 1e-4, 5e-4} (which cell the paper reports is not in the code; see CONV_LR below).
- ``util.py``'s ``make_standard_parser`` defaults: minibatch 256, Adam beta1 0.9, beta2 0.99
  (not 0.999), shuffled each epoch; TF's Adam epsilon 1e-8 (``--adameps`` is parsed but not
  passed on).
- ``tf_plus/__init__.py``: kernels start from ``tf.keras.initializers.he_normal()`` (a normal
  truncated at two standard deviations, standard deviation sqrt(2 / fan_in) after the
  truncation), biases at zero; dense layers get TF's default, Glorot uniform.
- Convolutions use TF's ``padding='same'``: for stride 2 on an even size the extra row and
  column of zeros go after the image, not before (:class:`SameConv2d`).

What differs, under cnnbench's protocol (docs/baselines.md): the authors train on all their
training positions for 100 epochs and report the held-out set at the end; here 1/8 of the
training positions are the val split and the test score is taken at the epoch val selects.
The targets are stored in pixels; the recipe trains on x/64, y/64 and reports pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cnnbench.bench.protocol import DataInfo, Recipe, adam, scale_01

EPOCHS = 100  # experiment_logs.sh, both regressors
BATCH = 256  # make_standard_parser's --minibatch default
BETAS = (0.9, 0.99)  # make_standard_parser's --beta1, --beta2 defaults
COORDCONV_LR, COORDCONV_L2 = 0.01, 1e-5  # experiment_logs.sh, coordconv_regressor
# The conv regressors' grid is lr {0.0005, 0.001, 0.01} x l2 {1e-5, 1e-4, 5e-4}; the paper's
# chosen cell is not in the code. Its middle learning rate and the CoordConv's L2 are used.
CONV_LR, CONV_L2 = 0.001, 1e-5
# scipy.stats.truncnorm(-2, 2).std(): a normal cut at +-2 sd keeps this share of its sd.
TRUNCATED_SD = 0.87962566103423978


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF 'same' padding of one axis: (before, after), the odd zero after the image."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """A convolution padded as TF's ``padding='same'`` pads (asymmetric for even sizes at stride 2)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1):
        super().__init__(cin, cout, kernel, stride=stride, padding=0)

    def forward(self, x):
        k, s = self.kernel_size[0], self.stride[0]
        top, bottom = same_padding(x.shape[2], k, s)
        left, right = same_padding(x.shape[3], k, s)
        return super().forward(F.pad(x, (left, right, top, bottom)))


def he_normal_(weight: torch.Tensor) -> None:
    """TF's he_normal: truncated at 2 sd, sd sqrt(2 / fan_in) after truncation."""
    fan_in = weight.shape[1] * weight[0, 0].numel()
    sd = math.sqrt(2.0 / fan_in) / TRUNCATED_SD
    nn.init.trunc_normal_(weight, std=sd, a=-2 * sd, b=2 * sd)


def tf_init(model: nn.Module) -> nn.Module:
    """He-normal convolution kernels, Glorot-uniform dense kernels, zero biases (the authors' layers)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            he_normal_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def coordinate_channels(n: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """CoordConv.py's ``AddCoords`` (with_r False): the column, then the row, each scaled to [-1, 1]."""
    xs = torch.arange(w, device=like.device, dtype=like.dtype) / (w - 1) * 2 - 1
    ys = torch.arange(h, device=like.device, dtype=like.dtype) / (h - 1) * 2 - 1
    return torch.stack([xs.expand(h, w), ys[:, None].expand(h, w)]).expand(n, 2, h, w)


def make_recipe(model: nn.Module, info: DataInfo, lr: float, l2: float, name: str) -> Recipe:
    """The authors' training, under the protocol: targets / image size, MSE + L2 on conv kernels."""
    scale = float(info.image_shape[1])  # normalized_locations = location / img_size
    kernels = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]

    def loss(outputs, targets):
        penalty = sum((w * w).sum() for w in kernels)
        return F.mse_loss(outputs, targets / scale) + l2 * penalty

    def decode(outputs):
        return outputs * scale

    return Recipe(model=tf_init(model), optimizer=adam(lr, betas=BETAS, eps=1e-8), loss=loss,
                  decode=decode, preprocess=scale_01, target_scaling="none", epochs=EPOCHS,
                  batch_size=BATCH,
                  config={"follows": name, "lr": lr, "l2_on_conv_kernels": l2, "adam_betas": list(BETAS),
                          "targets": f"pixels / {scale:g} in training", "init": "he_normal (TF), zero bias"})
