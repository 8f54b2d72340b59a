"""What a dataset family is: its parameters, its task and how it draws one block of samples."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import SPLITS
from ..optimum import Optimum
from ..params import Param

__all__ = ["SPLITS", "Family", "Optimum"]

# A plan is what a family decides once per split before drawing blocks (e.g. which grid
# positions go to which split). Most families need none.
PlanFn = Callable[[dict, str, int], Any]

# draw(params, split, start, stop, rng, plan) -> {"images": uint8 (n,H,W,C), "targets": ..., extras}
DrawFn = Callable[[dict, str, int, int, np.random.Generator, Any], dict]


@dataclass(frozen=True)
class Family:
    """A registered dataset family.

    ``draw`` must be vectorised over the block and take all randomness from ``rng``;
    the generator guarantees ``rng`` depends only on (seed, split, block index).
    """

    name: str
    task: str  # "classification" or "regression"
    summary: str
    params: tuple[Param, ...]
    draw: DrawFn
    target_names: Callable[[dict], list[str]]
    check: Callable[[dict], None] | None = None
    # Parameters of a small, fast instance: what the contract tests generate.
    small: dict = field(default_factory=dict)
    plan: PlanFn | None = None
    optimum: Callable[[dict], Optimum | None] = field(default=lambda params: None)
    # Where ``optimum`` is unknown: an oracle given the recorded nuisance factors of a block
    # (everything but the target) returns, per sample, 1/0 correctness of its guess
    # (classification) or its squared error (regression). The generator averages it over
    # the test split and records the result as an *estimated* optimum.
    oracle: Callable[[dict, dict], np.ndarray] | None = None
    # The split sizes in samples, from the params and the requested {"train": n_train, ...}:
    # a grid layout imposes its own. They are what the spec records as n_train, n_val, n_test.
    split_sizes: Callable[[dict, dict], dict] = field(default=lambda params, requested: requested)
    # The rows written per split, from the split sizes: augmented copies multiply train.
    rows: Callable[[dict, dict], dict] = field(default=lambda params, sizes: sizes)
