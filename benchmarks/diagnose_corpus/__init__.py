"""A diagnosis benchmark: recipes with one realistic bug each, healthy recipes, and the cause
``cnnbench diagnose`` should name for each (see docs/diagnose.md, "Measured: the corpus").

A :class:`Case` is a model factory (``make(info) -> Recipe``, as ``cnnbench evaluate`` takes),
the dataset it runs on and the cause keys (:data:`cnnbench.bench.diagnose.CAUSES`) that count as
naming its bug; a healthy case has none. ``scripts/bench_diagnose.py`` runs them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    dataset: str  # a key of DATASETS
    make: Callable
    causes: tuple = ()  # cause keys that count as named; () for a healthy recipe
    bug: str = ""  # the bug in a few words, as a user would describe it

    @property
    def healthy(self) -> bool:
        return not self.causes


# The three small files the issue measured on: lines-16, a 32x32 boxes file, a 32 px patches
# file with one target. (family, generator parameters); sizes keep every run in seconds.
DATASETS = {
    "lines-16": ("lines", {"size": 16, "noise": 20.0, "length": (0.5, 1.0), "n_train": 4000, "n_val": 500,
                           "n_test": 500, "seed": 0}),
    "boxes-32": ("boxes", {"size": 32, "box_size": 4, "channels": 3, "n_train": 2000, "n_val": 200,
                           "n_test": 200, "seed": 0}),
    "patches-32": ("patches", {"render_size": 96, "output_size": 32, "label_noise": 2.0, "n_train": 2000,
                               "n_val": 200, "n_test": 200, "seed": 0}),
}


def all_cases() -> list[Case]:
    from . import boxes, lines, patches

    return lines.CASES + boxes.CASES + patches.CASES
