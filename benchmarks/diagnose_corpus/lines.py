"""lines-16 (row or column, two classes): broken recipes and healthy ones."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnbench.bench.protocol import Recipe, adam, raw_pixels, scale_01, sgd

from . import Case
from .nets import conv_net, freeze_all_but_last, mlp, zero_init

D = "lines-16"


def softmax_twice(info):
    return Recipe(model=conv_net(info, head=lambda: nn.Softmax(dim=1)))


def raw(info):
    return Recipe(model=conv_net(info), preprocess=raw_pixels)


def lr_high(info):
    return Recipe(model=conv_net(info), optimizer=adam(0.5))


def lr_low(info):
    return Recipe(model=conv_net(info), optimizer=sgd(1e-5))


def nll_on_logits(info):
    return Recipe(model=conv_net(info), loss=F.nll_loss)


def frozen(info):
    return Recipe(model=freeze_all_but_last(conv_net(info)))


def weight_decay(info):
    return Recipe(model=conv_net(info), optimizer=adam(1e-3, weight_decay=3.0))


def dropout(info):
    return Recipe(model=conv_net(info, dropout=0.95))


def transpose(x, gen):
    """Random transposes, thought of as "a symmetry": they swap rows and columns, i.e. the label."""
    flip = torch.rand(len(x), generator=gen) < 0.5
    return torch.where(flip.reshape(-1, 1, 1, 1).to(x.device), x.transpose(-1, -2), x)


def label_changing_aug(info):
    return Recipe(model=conv_net(info), augment=transpose)


def zeros(info):
    return Recipe(model=zero_init(conv_net(info)))


class Detached(nn.Module):
    """The features are detached "to save memory": only the head trains."""

    def __init__(self, info):
        super().__init__()
        net = conv_net(info)
        self.features, self.head = net[:-3], net[-3:]

    def forward(self, x):
        return self.head(self.features(x).detach())


def detached(info):
    return Recipe(model=Detached(info))


def optimizer_subset(info):
    model = conv_net(info)
    head = model[-1]
    return Recipe(model=model, optimizer=lambda params: torch.optim.Adam(head.parameters(), lr=1e-3))


class Placeholder(nn.Module):
    """A placeholder left in forward: the image never reaches the network."""

    def __init__(self, info):
        super().__init__()
        self.net = conv_net(info)

    def forward(self, x):
        return self.net(torch.zeros_like(x))


def input_ignored(info):
    return Recipe(model=Placeholder(info))


def deep_sigmoid(info):
    return Recipe(model=mlp(info, hidden=32, depth=8, act=nn.Sigmoid), optimizer=sgd(0.01))


def dead_bias(info):
    model = conv_net(info)
    for m in model:
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m is not model[-1]:
            nn.init.constant_(m.bias, -5.0)  # "start the units off" with a negative bias
    return Recipe(model=model)


def log_pixels(info):
    return Recipe(model=conv_net(info), preprocess=lambda x: torch.log(scale_01(x)))


def one_big_batch(info):
    return Recipe(model=conv_net(info), epochs=1, batch_size=4096)


# -- healthy --------------------------------------------------------------------------------------

def cnn(info):
    return Recipe(model=conv_net(info))


def cnn_sgd(info):
    return Recipe(model=conv_net(info), optimizer=sgd(0.05, momentum=0.9))


def cnn_bn(info):
    return Recipe(model=conv_net(info, bn=True))


def cnn_gap(info):
    return Recipe(model=conv_net(info, pool="gap", widths=(16, 16)))


def cnn_dropout(info):
    return Recipe(model=conv_net(info, dropout=0.3))


def cnn_adamw(info):
    return Recipe(model=conv_net(info), optimizer=lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01))


def plain_mlp(info):
    return Recipe(model=mlp(info, hidden=64))


CASES = [
    Case("lines/softmax-twice", D, softmax_twice, ("softmax-twice",), "a final nn.Softmax before cross_entropy"),
    Case("lines/raw-pixels", D, raw, ("input-scale",), "0..255 pixels fed as they are"),
    Case("lines/lr-too-high", D, lr_high, ("lr-too-high",), "Adam at lr 0.5"),
    Case("lines/lr-too-low", D, lr_low, ("lr-too-low",), "plain SGD at lr 1e-5"),
    Case("lines/nll-on-logits", D, nll_on_logits, ("loss-input",), "nll_loss on raw logits"),
    Case("lines/frozen", D, frozen, ("frozen-parameters",), "every layer but the last requires_grad=False"),
    Case("lines/weight-decay", D, weight_decay, ("weight-decay",), "Adam weight_decay=3"),
    Case("lines/dropout-0.95", D, dropout, ("dropout",), "dropout p=0.95"),
    Case("lines/transpose-augment", D, label_changing_aug, ("augmentation",),
         "random transposes as augmentation (they swap row and column)"),
    Case("lines/zero-init", D, zeros, ("symmetric-init",), "every weight initialised to 0"),
    Case("lines/detached-features", D, detached, ("detached",), "features .detach()ed before the head"),
    Case("lines/optimizer-subset", D, optimizer_subset, ("optimizer-subset",), "the optimizer given the head only"),
    Case("lines/input-ignored", D, input_ignored, ("input-ignored",), "zeros_like(x) left in forward"),
    Case("lines/deep-sigmoid", D, deep_sigmoid, ("vanishing-gradient",), "8 sigmoid layers, SGD"),
    Case("lines/negative-bias", D, dead_bias, ("dead-at-init",), "hidden biases initialised to -5"),
    Case("lines/log-pixels", D, log_pixels, ("nan-input",), "log of the [0, 1] pixels (log 0 = -inf)"),
    Case("lines/one-big-batch", D, one_big_batch, ("too-few-steps",), "1 epoch of batches of 4096: 1 step"),
    Case("lines/cnn", D, cnn), Case("lines/cnn-sgd-momentum", D, cnn_sgd), Case("lines/cnn-batchnorm", D, cnn_bn),
    Case("lines/cnn-global-pool", D, cnn_gap), Case("lines/cnn-dropout-0.3", D, cnn_dropout),
    Case("lines/cnn-adamw", D, cnn_adamw), Case("lines/mlp", D, plain_mlp),
]
