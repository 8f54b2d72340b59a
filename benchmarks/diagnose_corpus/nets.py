"""Small networks the corpus's recipes are made of (each case changes one thing)."""

from __future__ import annotations

from torch import nn

from cnnbench.bench.protocol import DataInfo


def conv_net(info: DataInfo, *, widths=(8, 16), hidden=32, act=nn.ReLU, pool="flatten", bn=False,
             dropout=0.0, bottleneck=None, head=None) -> nn.Sequential:
    """Conv-[BN]-act-maxpool blocks, then flatten (or global average pooling), a hidden dense
    layer, optional dropout and bottleneck, the output layer and an optional head activation."""
    h, w, c = info.image_shape
    layers, channels = [], c
    for width in widths:
        layers += [nn.Conv2d(channels, width, 3, padding=1)] + ([nn.BatchNorm2d(width)] if bn else []) + \
                  [act(), nn.MaxPool2d(2)]
        channels, h, w = width, h // 2, w // 2
    if pool == "gap":
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, hidden), act()]
    else:
        layers += [nn.Flatten(), nn.Linear(channels * h * w, hidden), act()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    if bottleneck:
        layers += [nn.Linear(hidden, bottleneck), act()]
        hidden = bottleneck
    layers.append(nn.Linear(hidden, info.num_outputs))
    if head is not None:
        layers.append(head())
    return nn.Sequential(*layers)


def mlp(info: DataInfo, hidden=64, depth=1, act=nn.ReLU) -> nn.Sequential:
    h, w, c = info.image_shape
    layers, width = [nn.Flatten()], h * w * c
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), act()]
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, info.num_outputs))


def freeze_all_but_last(model: nn.Sequential) -> nn.Sequential:
    last = [m for m in model if isinstance(m, nn.Linear)][-1]
    for m in model:
        if m is not last:
            for p in m.parameters():
                p.requires_grad_(False)
    return model


def zero_init(model: nn.Module) -> nn.Module:
    for p in model.parameters():
        nn.init.zeros_(p)
    return model
