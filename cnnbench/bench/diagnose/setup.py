"""Choosing the model, reading the train sample, building the recipe as a run would."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ...data.h5file import Dataset
from ...errors import CnnbenchError, FormatError, ParamError
from ..models import one_line
from ..protocol import DataInfo, Recipe, TargetScaler, build_recipe
from .results import DiagnoseError


class Guard:
    """Turns an exception raised by the user's code into one DiagnoseError line."""

    def __init__(self, model_name: str, stage: str):
        self.model_name, self.stage = model_name, stage

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, CnnbenchError) or not isinstance(exc, Exception):
            return False
        raise DiagnoseError(f"{self.model_name}: {self.stage} failed: {one_line(exc)}") from None


def resolve_model(model: str | None = None, baseline: str | None = None,
                  dataset: Dataset | None = None) -> tuple[Callable, str]:
    """``(factory, name)`` for ``model="FILE.py:FACTORY"`` or ``baseline="NAME"`` (exactly one)."""
    if (model is None) == (baseline is None):
        raise ParamError("give exactly one of model=FILE.py:FACTORY or baseline=NAME")
    if baseline is not None:
        from ...baselines import get_baseline

        chosen = get_baseline(baseline)
        if dataset is not None and not chosen.applies_to(dataset.family, dataset.task):
            raise ParamError(f"baseline {chosen.name!r} does not apply to {dataset.family} "
                             f"({dataset.task}); see cnnbench baselines")
        return chosen.make, chosen.name
    from ..models import load_factory

    return load_factory(model), model


def read_train_sample(ds: Dataset, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(images, targets, all_targets)``: a fixed random sample of ``n`` train images, read
    through the validated ``ds`` (:meth:`Dataset.load`, :meth:`Dataset.load_rows`), never raw h5py.

    The sample does not depend on the run seed (seed 0 of its own stream), so changing
    ``--seed`` changes the initialisation and batch order, not the images probed.
    """
    if "targets" not in ds.shapes["train"]:
        raise FormatError(f"{ds.path}: the train split has no targets; diagnose needs train targets")
    n_train = ds.split_size("train")
    if n_train == 0:
        raise FormatError(f"{ds.path}: the train split is empty")
    # Through the Dataset open_dataset validated: a corrupt chunk is the same one-line
    # FormatError every other command gives ("array train/images cannot be read ...").
    all_targets = ds.load("train", ["targets"])["targets"]
    if n >= n_train:
        chosen = np.arange(n_train)
        images = ds.load("train", ["images"])["images"]
    else:
        chosen = np.sort(np.random.default_rng(0).choice(n_train, size=n, replace=False))
        images = ds.load_rows("train", chosen, ["images"])["images"]
    return images, all_targets[chosen], all_targets


@dataclass
class Setup:
    """What every probe shares: the data sample and how to rebuild the recipe."""

    ds: Dataset
    info: DataInfo
    factory: Callable
    name: str
    seed: int
    dev: torch.device
    images: torch.Tensor  # uint8 sample of train, on dev
    targets: torch.Tensor  # int64 ids or scaled float targets, on dev
    scaler: TargetScaler | None


def fresh_recipe(setup: Setup) -> Recipe:
    """The factory's recipe with the run's initialisation, exactly as :func:`train.run` builds it."""
    with Guard(setup.name, "the model factory"):
        recipe = build_recipe(setup.factory, setup.info, setup.seed)
    with Guard(setup.name, "moving the model to the device"):
        recipe.model.to(setup.dev)
    return recipe
