"""The lines question ("a conv net cannot learn very simple data"): as asked, then fixed.

The question (Keras, channels last) trained this on six 3x3 images, one white row or one
white column, values 0 and 255::

    Conv2D(2 filters, 2x2, valid, no bias) -> ReLU -> Flatten -> Dense(2) -> Softmax
    loss tf.nn.softmax_cross_entropy_with_logits on the Softmax output, SGD lr 1e-3,
    batch 6, 100 epochs, raw 0..255 input

and saw the loss frozen at 0.8133, accuracy 0.5, filters unchanged. ``lines-cnn-as-asked`` is that
recipe in torch: Keras' default initialisation (glorot_uniform weights, zero biases), the
softmax inside the model and ``cross_entropy`` (which applies softmax again) outside it. On
raw pixels the first softmax saturates at a one-hot vector, its gradient vanishes, and the
second softmax of a one-hot vector can only move the loss between two constants (0.3133 and
1.3133 per image: 0.8133 is their mean at accuracy 0.5). Nothing trains.

``lines-cnn-fixed`` applies the answers' fixes together: inputs / 255, logits into the loss
(no softmax in the model), 6 filters with "same" padding, Adam 1e-2.

On large datasets (more than 100 training images) the question's 100 epochs of batch 6 would be
minutes of tiny steps, so both recipes then train for 5 epochs.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from cnnbench.bench.protocol import DataInfo, Recipe, adam, raw_pixels, scale_01, sgd

from . import Baseline


def keras_init(model: nn.Module) -> nn.Module:
    """Keras' defaults: glorot_uniform (= torch's xavier_uniform) weights, zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


class TwoFilterNet(nn.Module):
    """Conv(filters, 2x2, no bias) -> ReLU -> Flatten -> Dense(classes) [-> Softmax]."""

    def __init__(self, info: DataInfo, filters: int, padding: str, softmax: bool):
        super().__init__()
        h, w, c = info.image_shape
        # Keras "same" with a 2x2 kernel pads one row and column after the image (TF's rule).
        self.pad = nn.ZeroPad2d((0, 1, 0, 1)) if padding == "same" else nn.Identity()
        self.conv = nn.Conv2d(c, filters, 2, bias=False)
        out_h, out_w = (h, w) if padding == "same" else (h - 1, w - 1)
        self.dense = nn.Linear(filters * out_h * out_w, info.num_outputs)
        self.softmax = softmax

    def forward(self, x):
        z = self.dense(F.relu(self.conv(self.pad(x))).flatten(1))
        return z.softmax(dim=1) if self.softmax else z


def _epochs(info: DataInfo) -> int:
    return 100 if info.n_train <= 100 else 5


def make_reproduction(info: DataInfo) -> Recipe:
    model = keras_init(TwoFilterNet(info, filters=2, padding="valid", softmax=True))
    return Recipe(
        model=model,
        optimizer=sgd(1e-3),
        loss=F.cross_entropy,  # applies log-softmax to the model's softmax output: twice
        preprocess=raw_pixels,
        epochs=_epochs(info), batch_size=6,
        config={"init": "keras glorot_uniform", "loss": "cross_entropy(softmax(z))"},
    )


def make_fix(info: DataInfo) -> Recipe:
    model = keras_init(TwoFilterNet(info, filters=6, padding="same", softmax=False))
    return Recipe(
        model=model,
        optimizer=adam(1e-2),
        loss=F.cross_entropy,  # on logits, as it expects
        preprocess=scale_01,
        epochs=_epochs(info), batch_size=6,
        config={"init": "keras glorot_uniform", "loss": "cross_entropy(z)"},
    )


BASELINES = [
    Baseline("lines-cnn-as-asked",
             "the lines question's 2-filter CNN as asked: softmax twice, raw pixels, SGD 1e-3 (fails)",
             make_reproduction, tests="lines question, as asked", tasks=("classification",),
             families=("lines",), quick=True, epochs="100 (5 above 100 images)", seeds=10,
             seed_presets=("lines-3x3",), aliases=("seed000-repro",)),
    Baseline("lines-cnn-fixed",
             "the lines question's CNN fixed: logits loss, /255, 6 same-padded filters, Adam 1e-2",
             make_fix, tests="lines question, the answers' fixes", tasks=("classification",),
             families=("lines",), quick=True, epochs="100 (5 above 100 images)", seeds=10,
             seed_presets=("lines-3x3",), aliases=("seed000-fix",)),
]
