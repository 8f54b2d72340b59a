"""Baseline models, installed as ``cnnbench.baselines``: one readable file per baseline.

Every baseline is a factory ``make(info: DataInfo) -> Recipe`` (see :mod:`cnnbench.bench.protocol`),
registered here once with what it applies to. The three questions cnnbench grew from (one
per family; see the README) name the files:

- ``reference.py``: majority class / mean target, ridge on pixels (the boxes question's "it is linear").
- ``lines_cnn.py``: the lines question's net as asked (``lines-cnn-as-asked``:
  softmax twice, raw pixels, SGD 1e-3) and its corrected recipe (``lines-cnn-fixed``).
- ``boxes_cnn.py``: the boxes question's CNN as asked (``boxes-cnn-as-asked``:
  Adam 0.01, unscaled pixel targets) and its corrected recipe (``boxes-cnn-fixed``).
- ``mlp.py``: one hidden layer (the boxes question's answer).
- ``coordconv.py``: a CoordConv-style net of cnnbench's own (not the paper's) and a plain CNN.
- ``coordconv_regressor.py``, ``coordconv_conv_uniform.py``, ``coordconv_conv_quadrant.py``:
  Liu et al. 2018's CoordConv regressor and its two conv counterparts, exactly as their code
  builds and trains them (shared parts in ``coordconv_liu2018.py``).
- ``patches_vgg.py``: the patches question's VGG-like regressor as asked
  (``patches-vgg-as-asked``), and trained as the answers advise (``patches-vgg-advised``).
- ``resnet.py``: a small ResNet (the patches question's advice).
- ``p4_equivariant_cnn.py``: p4 group convolutions, rotation-invariant (the patches question's advice).
- ``classify_then_regress.py``: bins plus a residual (the patches question's advice).
- ``ridge_mean_colour.py``: ridge on the well's mean colour (the obvious hand-made feature).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import DeprecatedNameWarning, UnknownNameError

ALL_FAMILIES = None  # a Baseline.families value: applies to any family of the right task


@dataclass(frozen=True)
class Baseline:
    """A registered baseline: its factory and what it applies to.

    name : leaderboard name
    summary : one line for ``cnnbench baselines``
    make : callable(DataInfo) -> Recipe
    tests : the question's recipe or advice it reproduces or tests (e.g. "lines question, as asked")
    tasks : tasks it can solve
    families : families it is meant for (None: any family of those tasks)
    quick : run by the default ``cnnbench suite`` (seconds per run, or a question's own failure
        on its easy preset)
    max_inputs : the most values per image (H*W*C) it is run on by default (pixel models
        whose size grows with the image: ridge's normal equations, the MLP's first layer)
    quick_max_inputs : with ``quick``, the most values per image on which the default suite
        runs it (a model that takes seconds on small images but minutes on large ones)
    source : "reference" for reference predictors, else "baseline"
    epochs : default epochs, as a phrase (the factory may adapt them to the data size)
    seeds : training seeds the published figures use, on the presets in ``seed_presets``
        (elsewhere the suite runs one seed)
    quick_seeds : the training seeds of the default suite where fewer than ``seeds`` (a
        quick baseline whose runs are not seconds: its figure needs ``--full``)
    suite : the presets ``suite --full`` runs it on (None: every applicable preset); keeps
        the expensive baselines to the datasets whose figures need them
    aliases : former names, still accepted (with a deprecation warning) wherever a baseline
        is named; boards recorded under them keep those row names
    """

    name: str
    summary: str
    make: Callable
    tests: str = ""
    tasks: tuple = ("classification", "regression")
    families: tuple | None = ALL_FAMILIES
    quick: bool = False
    source: str = "baseline"
    epochs: str = ""
    seeds: int = 1
    quick_seeds: int | None = None
    seed_presets: tuple = ()
    suite: tuple | None = None
    max_inputs: int | None = None
    aliases: tuple = ()
    quick_max_inputs: int | None = None

    def applies_to(self, family: str, task: str) -> bool:
        return task in self.tasks and (self.families is None or family in self.families)

    def fits(self, image_shape: tuple) -> bool:
        """Whether images of this (H, W, C) are small enough for it (``max_inputs`` values)."""
        return self.max_inputs is None or _values(image_shape) <= self.max_inputs

    def quick_on(self, image_shape: tuple) -> bool:
        """Whether the default (quick) suite runs it on images of this (H, W, C)."""
        return self.quick and (self.quick_max_inputs is None or _values(image_shape) <= self.quick_max_inputs)


def _values(image_shape: tuple) -> int:
    """Values per image: H * W * C."""
    return math.prod(int(d) for d in image_shape)


def _collect() -> dict[str, Baseline]:
    from . import (
        boxes_cnn,
        classify_then_regress,
        coordconv,
        coordconv_conv_quadrant,
        coordconv_conv_uniform,
        coordconv_regressor,
        lines_cnn,
        mlp,
        p4_equivariant_cnn,
        patches_vgg,
        reference,
        resnet,
        ridge_mean_colour,
    )

    modules = (reference, lines_cnn, mlp, boxes_cnn, coordconv,
               coordconv_regressor, coordconv_conv_uniform, coordconv_conv_quadrant, ridge_mean_colour, patches_vgg,
               resnet, p4_equivariant_cnn, classify_then_regress)
    found: dict[str, Baseline] = {}
    for module in modules:
        for baseline in module.BASELINES:
            assert baseline.name not in found, f"baseline {baseline.name} registered twice"
            found[baseline.name] = baseline
    former = [a for b in found.values() for a in b.aliases]
    assert len(set(former)) == len(former) and not set(former) & set(found), "an alias is taken"
    return found


_REGISTRY: dict[str, Baseline] | None = None


def all_baselines() -> dict[str, Baseline]:
    """Every registered baseline, by name, in registration order."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _collect()
    return _REGISTRY


def get_baseline(name: str) -> Baseline:
    """The baseline of this name; a former name (``aliases``) still works, with a warning."""
    baselines = all_baselines()
    if name in baselines:
        return baselines[name]
    renamed = next((b for b in baselines.values() if name in b.aliases), None)
    if renamed is None:
        raise UnknownNameError(f"unknown baseline {name!r} (known: {', '.join(baselines)})")
    warnings.warn(f"baseline {name!r} is now called {renamed.name!r}; the old name will be removed",
                  DeprecatedNameWarning, stacklevel=2)
    return renamed


def applicable(family: str, task: str, quick_only: bool = False) -> list[Baseline]:
    """The baselines meant for a dataset of this family and task."""
    return [b for b in all_baselines().values()
            if b.applies_to(family, task) and (b.quick or not quick_only)]
