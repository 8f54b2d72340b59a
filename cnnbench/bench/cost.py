"""How long a run will take, roughly: only to start the longest runs first on a worker pool.

Nothing is recorded from this and no result depends on it; a wrong guess only makes a suite
finish later. A run's time is modelled as

- gradient training: the model's forward FLOPs on one image (``torch``'s own flop counter)
  times 3 (forward and backward) per training image per epoch, plus one forward per val
  image per epoch and per test image, at ``GRADIENT_FLOPS_PER_S``; plus ``STEP_S`` per
  optimizer step (the fixed cost of a step, which is what tiny nets on many images pay);
- a closed-form fit (ridge and the like): the normal equations, ``2 n d^2`` to form and
  about ``4 d^3`` for the solves, with ``d`` the fitted weights per output, at
  ``FIT_FLOPS_PER_S``.

The constants were fitted on the README's main job on one core of the 2-core development
machine (2026-11-30): the boxes CNNs ran at 41-48 GFLOP/s, a step of lines-16's tiny CNNs
cost 1.1-1.4 ms, the float64 ridges ran at 20 GFLOP/s. Only their ratios matter for the order.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..baselines import Baseline
from ..data.h5file import Dataset
from .protocol import DataInfo, build_recipe, count_parameters, protocol_steps

GRADIENT_FLOPS_PER_S = 45e9
STEP_S = 1.2e-3
FIT_FLOPS_PER_S = 20e9


def estimated_seconds(ds: Dataset, baseline: Baseline, epochs: int | None = None) -> float:
    """A rough guess of one run's seconds on one thread (0.0 when the model cannot be built:
    the run itself then reports why). Leaves torch's random state as it found it."""
    try:
        info = DataInfo.from_dataset(ds)
        # CPU only (devices=[]): a guess must not start CUDA in the parent of CPU workers.
        with torch.random.fork_rng(devices=[]):  # building a recipe seeds the global generator
            recipe = build_recipe(baseline.make, info, 0)
            if recipe.fit is not None:
                d = count_parameters(recipe.model) / max(1, info.num_outputs)
                return (2 * info.n_train * d * d + 4 * d ** 3) / FIT_FLOPS_PER_S
            if epochs is not None:
                recipe.epochs = epochs
            one = torch.zeros((1, *info.image_shape), dtype=torch.uint8)
            # eval(): batch norm cannot train on one image, and dropout would draw random numbers.
            recipe.model.eval()
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                recipe.model(recipe.preprocess(one))
        forward = counter.get_total_flops()
        images = 3 * info.n_train * recipe.epochs + ds.split_size("val") * recipe.epochs + ds.split_size("test")
        return forward * images / GRADIENT_FLOPS_PER_S + protocol_steps(recipe, info.n_train) * STEP_S
    except Exception:  # noqa: BLE001 - a guess must never stop the runs
        return 0.0
