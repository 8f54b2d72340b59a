"""Ridge regression on the well's mean colour: the obvious hand-made feature for the patches question.

The concentration is the dye's colour, so the mean RGB of a crop in the middle of the image
(inside the well whatever the rotation, flip or 5 % shift) carries most of the answer. This
reference shows what a model must beat once it is given that one idea: what is left is the
lighting (gamma, brightness) that the crop alone cannot separate from the dye, which a CNN
can undo from the bench around the well.
"""

from __future__ import annotations

import torch

from cnnbench.bench.protocol import DataInfo, Recipe, scale_01

from . import Baseline
from .reference import Linear, ridge_fit

CROP = 0.14  # half-width of the central crop, as a fraction of the side (the well's radius is 0.26)


def centre_colour(x: torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W x C -> float N x C: mean colour of the central crop, in [0, 1]."""
    x = scale_01(x)
    h, w = x.shape[2:]
    dy, dx = max(1, round(CROP * h)), max(1, round(CROP * w))
    return x[:, :, h // 2 - dy:h // 2 + dy, w // 2 - dx:w // 2 + dx].mean(dim=(2, 3))


def make(info: DataInfo) -> Recipe:
    model = Linear(info.channels, info.num_outputs)
    config = {"features": f"mean colour of the central {2 * CROP:.0%} crop"}

    def fit(train, val):
        config["alpha"] = ridge_fit(model, train, val, info.task, info.num_outputs)

    return Recipe(model=model, fit=fit, preprocess=centre_colour, epochs=1, batch_size=1024, config=config)


BASELINES = [
    Baseline("ridge-mean-colour", "ridge on the mean colour of the image's centre (the well)", make,
             tests="patches question: the colour is the label", tasks=("regression",), families=("patches",),
             quick=True, source="reference", epochs="closed form"),
]
