"""A 32x32 boxes file (the (x, y) of one square): broken recipes and healthy ones."""

from __future__ import annotations

import torch
from torch import nn

from cnnbench.bench.protocol import Recipe, adam, raw_pixels, sgd

from . import Case
from .nets import conv_net, freeze_all_but_last, zero_init

D = "boxes-32"


def relu_head(info):
    return Recipe(model=conv_net(info, head=nn.ReLU))


def sigmoid_head(info):
    return Recipe(model=conv_net(info, head=nn.Sigmoid))


def tanh_head(info):
    return Recipe(model=conv_net(info, head=nn.Tanh))


def unscaled(info):
    return Recipe(model=conv_net(info), target_scaling="none")


def bottleneck(info):
    return Recipe(model=conv_net(info, bottleneck=1))


def global_pool(info):
    return Recipe(model=conv_net(info, pool="gap", widths=(16, 32)))


def hflip(x, gen):
    """Random left-right flips, "to see more data": they move the square, not its label."""
    flip = torch.rand(len(x), generator=gen) < 0.5
    return torch.where(flip.reshape(-1, 1, 1, 1).to(x.device), x.flip(-1), x)


def flip_aug(info):
    return Recipe(model=conv_net(info), augment=hflip)


def diverges(info):
    return Recipe(model=conv_net(info), optimizer=sgd(1.0, momentum=0.9))


def frozen(info):
    return Recipe(model=freeze_all_but_last(conv_net(info)))


def weight_decay(info):
    return Recipe(model=conv_net(info), optimizer=sgd(0.01, momentum=0.9, weight_decay=5.0))


def dropout(info):
    return Recipe(model=conv_net(info, dropout=0.95))


def zeros(info):
    return Recipe(model=zero_init(conv_net(info)))


def raw(info):
    return Recipe(model=conv_net(info), preprocess=raw_pixels)


def lr_high(info):
    return Recipe(model=conv_net(info), optimizer=adam(0.1))


# -- healthy --------------------------------------------------------------------------------------

def cnn(info):
    return Recipe(model=conv_net(info))


def cnn_bn(info):
    return Recipe(model=conv_net(info, bn=True))


def cnn_wide(info):
    return Recipe(model=conv_net(info, widths=(16, 32), hidden=64))


def cnn_sgd(info):
    return Recipe(model=conv_net(info), optimizer=sgd(0.01, momentum=0.9))


CASES = [
    Case("boxes/relu-head", D, relu_head, ("output-range",), "a ReLU after the output layer"),
    Case("boxes/sigmoid-head", D, sigmoid_head, ("output-range",), "a sigmoid after the output layer"),
    Case("boxes/tanh-head", D, tanh_head, ("output-range",), "a tanh after the output layer"),
    Case("boxes/unscaled-targets", D, unscaled, ("target-scale",), "target_scaling='none': raw pixel positions"),
    Case("boxes/one-unit-bottleneck", D, bottleneck, ("bottleneck",), "a 1-unit layer before the 2 outputs"),
    Case("boxes/global-pool", D, global_pool, ("position-pooling",), "global average pooling before the head"),
    Case("boxes/flip-augment", D, flip_aug, ("augmentation",), "random left-right flips (they move x)"),
    Case("boxes/diverges", D, diverges, ("lr-too-high",), "SGD lr 1, momentum 0.9: NaN within steps"),
    Case("boxes/frozen", D, frozen, ("frozen-parameters",), "every layer but the last requires_grad=False"),
    Case("boxes/weight-decay", D, weight_decay, ("weight-decay",), "SGD weight_decay=5"),
    Case("boxes/dropout-0.95", D, dropout, ("dropout",), "dropout p=0.95"),
    Case("boxes/zero-init", D, zeros, ("symmetric-init",), "every weight initialised to 0"),
    Case("boxes/raw-pixels", D, raw, ("input-scale",), "0..255 pixels fed as they are"),
    Case("boxes/lr-too-high", D, lr_high, ("lr-too-high",), "Adam at lr 0.1"),
    Case("boxes/cnn", D, cnn), Case("boxes/cnn-batchnorm", D, cnn_bn), Case("boxes/cnn-wide", D, cnn_wide),
    Case("boxes/cnn-sgd-momentum", D, cnn_sgd),
]
