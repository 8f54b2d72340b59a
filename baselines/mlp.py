"""One hidden layer: the boxes question's "this can be solved with a single hidden layer".

Flatten -> Linear(256) -> ReLU -> Linear(outputs); inputs / 255, targets standardised,
Adam 1e-3, batch 64. The smallest non-linear model: if it fails, the data or the pipeline
is at fault, not the architecture.
"""

from __future__ import annotations

from torch import nn

from cnnbench.bench.protocol import DataInfo, Recipe, adam

from . import Baseline

HIDDEN = 256


def make(info: DataInfo) -> Recipe:
    h, w, c = info.image_shape
    model = nn.Sequential(nn.Flatten(), nn.Linear(h * w * c, HIDDEN), nn.ReLU(),
                          nn.Linear(HIDDEN, info.num_outputs))
    epochs = 200 if info.n_train <= 100 else 10
    return Recipe(model=model, optimizer=adam(1e-3), epochs=epochs, batch_size=64,
                  config={"hidden": HIDDEN})


BASELINES = [
    Baseline("mlp", "one hidden layer of 256 ReLUs on the pixels (the boxes question's answer)", make,
             tests="boxes question: one hidden layer", quick=True, max_inputs=64 * 64 * 3,
             # 10 epochs on 10,000 64x64x3 images are 80 CPU-seconds: --full runs those
             quick_max_inputs=32 * 32 * 3,
             epochs="10 (200 up to 100 images)"),
]
