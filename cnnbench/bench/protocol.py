"""The training protocol: one implementation, used by every baseline and by user models.

Read top to bottom, :func:`run` does this:

1. Read each split from HDF5 once, into memory, as a uint8 tensor (N x H x W x C). Batches
   are gathered from it and converted to float on the device by the recipe's ``preprocess``;
   there are no per-item reads and no DataLoader worker pool. A dataset whose arrays exceed
   the memory budget (``memory_budget``, default 4 GiB) is streamed instead: batches come
   from contiguous pieces of HDF5 chunks, one lane per batch position
   (:class:`cnnbench.data.streaming.Lanes`), and val and test are scored chunk by chunk; only
   the targets (a few bytes a sample) are held.
2. For regression, standardise the targets with the train split's mean and std (unless the
   recipe says ``target_scaling="none"``); every prediction is mapped back to the targets'
   own units before it is scored.
3. Train on ``train`` for ``epochs`` epochs. After each epoch score the whole ``val`` split
   and keep a copy of the weights if the primary metric improved (the first best epoch wins
   ties). ``test`` is never looked at during training.
4. Restore the selected weights and score ``test`` once, through :mod:`cnnbench.board.metrics`.

Randomness: the run's seed (separate from the dataset's seed) drives a ``torch.Generator``
that shuffles batches and is handed to the recipe's ``augment``; model construction and
training run inside ``torch.random.fork_rng`` seeded with the same seed, so weight
initialisation and dropout are reproducible without touching the caller's global RNG state.
On CPU the same seed gives the same run, bit for bit.

The :class:`Recipe` is the interface: a baseline is a function ``make(info) -> Recipe``, and
so is a user's model factory (which may also return a bare ``torch.nn.Module``; it then gets
the default recipe). See ``docs/baselines.md``.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..board import metrics
from ..board.records import MAX_SEED, PRIMARY_METRIC, RunRecord
from ..data.families import SPLITS
from ..data.h5file import Dataset, check_fingerprint, open_dataset
from ..data.params import MAX_EPOCHS, check_run_int
from ..data.shards import refuse_shard
from ..data.streaming import (
    DEFAULT_MEMORY_BUDGET,
    ChunkReader,
    buffer_rows,
    check_fingerprint_streamed,
    fits_in_memory,
    human_bytes,
    parse_bytes,
)
from ..errors import CnnbenchError, ParamError
from . import distributed

# --------------------------------------------------------------------------------------------
# What a model factory sees, and what it returns


@dataclass(frozen=True)
class DataInfo:
    """What a model factory is told about the dataset (never its arrays)."""

    family: str
    task: str  # "classification" or "regression"
    image_shape: tuple  # (H, W, C) of the stored uint8 images
    num_outputs: int  # number of classes, or number of target columns
    target_names: tuple
    n_train: int
    spec: dict = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return self.image_shape[2]

    @classmethod
    def from_dataset(cls, ds: Dataset) -> DataInfo:
        shape = tuple(ds.shapes["train"]["images"][1:])
        if ds.task == "classification":
            outputs = ds.num_classes
        else:
            target_shape = ds.shapes["train"]["targets"]
            outputs = int(np.prod(target_shape[1:])) if len(target_shape) > 1 else 1
        return cls(ds.family, ds.task, shape, outputs, tuple(ds.target_names),
                   ds.split_size("train"), ds.spec)


def scale_01(x: torch.Tensor) -> torch.Tensor:
    """The default input preprocessing: uint8 N x H x W x C -> float N x C x H x W in [0, 1]."""
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def raw_pixels(x: torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W x C -> float N x C x H x W on the 0..255 scale (what seeds 000/001 fed)."""
    return x.permute(0, 3, 1, 2).float()


def adam(lr: float = 1e-3, **kwargs) -> Callable:
    """An optimizer factory: ``adam(1e-2)(model.parameters())``."""
    return lambda params: torch.optim.Adam(params, lr=lr, **kwargs)


def sgd(lr: float, **kwargs) -> Callable:
    return lambda params: torch.optim.SGD(params, lr=lr, **kwargs)


def cosine_schedule(optimizer, total_steps: int):
    """Learning rate from its initial value to zero along a half cosine, over the whole run."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps)))


@dataclass
class Recipe:
    """A model and how to train it: what every baseline is, and what a user factory returns.

    Only ``model`` is required; every other field has the default a careful practitioner
    would pick. All callables receive and return tensors on the run's device.

    model : torch.nn.Module
        Maps a preprocessed batch to outputs: class logits (N x classes) or regression
        values (N x targets) in the *scaled* target units.
    optimizer : callable(parameters) -> torch.optim.Optimizer
        Default: Adam, lr 1e-3.
    scheduler : callable(optimizer, total_steps) -> LR scheduler, or None
        Stepped after every batch; ``total_steps`` is epochs x batches per epoch of this run
        (so ``--epochs`` keeps a schedule whole). See :func:`cosine_schedule`.
    loss : callable(outputs, targets) -> scalar tensor
        Targets are int64 class ids, or float N x targets (scaled). Default: cross-entropy on
        logits, or MSE.
    preprocess : callable(uint8 N x H x W x C) -> float tensor
        Default :func:`scale_01` (channels first, divided by 255).
    augment : callable(float batch, torch.Generator) -> float batch, or None
        Applied to training batches only, after ``preprocess``; draw randomness only from
        the generator given.
    decode : callable(outputs) -> predictions, or None
        Class ids (N,) or values (N x targets, scaled). Default: argmax, or the outputs.
    target_scaling : "standard", "centre" or "none"
        Regression only: standardise targets with the train split's mean and std; or only
        subtract the mean (units kept); or train on the raw targets.
    epochs, batch_size : int
    fit : callable(train: Split, val: Split) -> None, or None
        A closed-form fit (reference predictors, ridge) used *instead of* gradient
        training: it sets ``model``'s weights from whole-split statistics.
    config : dict
        Free-form description recorded with the run (optimizer, lr, ...).
    """

    model: nn.Module
    optimizer: Callable | None = None
    scheduler: Callable | None = None
    loss: Callable | None = None
    preprocess: Callable = scale_01
    augment: Callable | None = None
    decode: Callable | None = None
    target_scaling: str = "standard"
    epochs: int = 10
    batch_size: int = 64
    fit: Callable | None = None
    config: dict = field(default_factory=dict)


def as_recipe(made, info: DataInfo) -> Recipe:
    """Accept what a factory returned: a Recipe, or a bare module (default recipe)."""
    if isinstance(made, Recipe):
        recipe = made
    elif isinstance(made, nn.Module):
        recipe = Recipe(model=made)
    else:
        raise CnnbenchError(f"a model factory must return a torch.nn.Module or a cnnbench Recipe, "
                            f"not {type(made).__name__}")
    if recipe.target_scaling not in TARGET_SCALINGS:
        raise ParamError(f"target_scaling: {recipe.target_scaling!r} is not one of "
                         f"{', '.join(map(repr, TARGET_SCALINGS))}")
    if recipe.epochs < 1 or recipe.batch_size < 1:
        raise ParamError(f"epochs ({recipe.epochs}) and batch_size ({recipe.batch_size}) must be >= 1")
    return recipe


def build_recipe(factory: Callable, info: DataInfo, seed: int) -> Recipe:
    """The factory's recipe with the run's initialisation: the global RNG seeded with ``seed``
    first (call it inside ``torch.random.fork_rng`` to leave the caller's state alone)."""
    torch.manual_seed(seed)
    return as_recipe(factory(info), info)


# --------------------------------------------------------------------------------------------
# Data in memory


class Split:
    """One split in memory: uint8 images and targets as tensors, batched on demand."""

    def __init__(self, name: str, images: torch.Tensor, targets: torch.Tensor, preprocess: Callable):
        self.name, self.images, self.targets, self.preprocess = name, images, targets, preprocess

    def __len__(self) -> int:
        return len(self.images)

    def batches(self, batch_size: int, order: torch.Tensor | None = None) -> Iterator[tuple]:
        """Yield ``(x, y)``: preprocessed float inputs and (scaled) targets, in ``order``."""
        n = len(self.images)
        for start in range(0, n, batch_size):
            if order is None:
                idx = slice(start, min(n, start + batch_size))
            else:
                idx = order[start:start + batch_size].to(self.images.device)
            yield self.preprocess(self.images[idx]), self.targets[idx]

    def epoch_batches(self, batch_size: int, shuffle: torch.Generator, seed: int, epoch: int) -> Iterator[tuple]:
        """One training epoch: a permutation of the whole split drawn from ``shuffle``."""
        return self.batches(batch_size, torch.randperm(len(self.images), generator=shuffle))

    # Under torchrun (cnnbench.bench.distributed): each rank takes only its rows of a batch.

    def share_batches(self, batch_size: int, shuffle: torch.Generator, seed: int, epoch: int,
                      rank: int, world: int) -> Iterator[tuple]:
        """The global batches of :meth:`epoch_batches` as ``(x, y, lo, hi, n)``: only this
        rank's rows ``lo:hi`` of each batch of ``n`` are gathered and preprocessed (a rank
        without rows gets one stand-in row, which the caller weights 0)."""
        order = torch.randperm(len(self.images), generator=shuffle)
        for start in range(0, len(order), batch_size):
            n = min(batch_size, len(order) - start)
            lo, hi = rank * n // world, (rank + 1) * n // world
            idx = order[start + lo:start + max(hi, lo + 1)].to(self.images.device)
            yield self.preprocess(self.images[idx]), self.targets[idx], lo, hi, n

    def rank_batches(self, batch_size: int, rank: int, world: int) -> Iterator[tuple]:
        """``(k, (x, y))`` for the file-order batches ``k`` with ``k % world == rank``."""
        for k, start in enumerate(range(rank * batch_size, len(self.images), world * batch_size)):
            idx = slice(start, start + batch_size)
            yield rank + k * world, (self.preprocess(self.images[idx]), self.targets[idx])


class StreamSplit:
    """One split streamed from its file: the same batches interface as :class:`Split`.

    Only the (scaled) targets are in memory, on the device; images are read in whole HDF5
    chunks (evaluation) or contiguous pieces of them (training). A training epoch's order
    comes from (seed, epoch) in lanes, one per batch position, so that the ranks of a
    torchrun job each read only their share of every global batch and the global batches
    are one process's (:class:`cnnbench.data.streaming.Lanes`).
    """

    def __init__(self, name: str, reader: ChunkReader, targets: torch.Tensor, preprocess: Callable,
                 device: torch.device, memory_budget: int):
        self.name, self.reader, self.targets, self.preprocess = name, reader, targets, preprocess
        self.device, self.memory_budget = device, memory_budget

    def __len__(self) -> int:
        return self.reader.n

    def _tensors(self, stream) -> Iterator[tuple]:
        for batch in stream:
            index = torch.from_numpy(batch["index"]).to(self.device)
            yield self.preprocess(torch.from_numpy(batch["images"]).to(self.device)), self.targets[index]

    def batches(self, batch_size: int, order: torch.Tensor | None = None) -> Iterator[tuple]:
        """Yield ``(x, y)`` in file order (an explicit ``order`` would mean per-item reads)."""
        if order is not None:
            raise CnnbenchError("a streamed split is read in file order or in its own shuffled order")
        return self._tensors(self.reader.batches(batch_size, shuffle=False))

    def epoch_batches(self, batch_size: int, shuffle: torch.Generator, seed: int, epoch: int) -> Iterator[tuple]:
        return ((x, y) for x, y, *_ in self.share_batches(batch_size, shuffle, seed, epoch, 0, 1))

    def share_batches(self, batch_size: int, shuffle: torch.Generator, seed: int, epoch: int,
                      rank: int, world: int) -> Iterator[tuple]:
        """As :meth:`Split.share_batches`; this rank reads only its own rows from the file."""
        lanes = self.reader.lanes(batch_size, seed, epoch)
        need = lanes.rows_per_rank_bytes(world)
        if need > self.memory_budget:
            raise ParamError(f"memory_budget: {human_bytes(self.memory_budget)} is below what streaming "
                             f"the {self.name} split in batches of {batch_size} needs: {human_bytes(need)} "
                             f"(one piece of a chunk per batch position{' on this rank' if world > 1 else ''})")
        for rows, lo, n in lanes.batches(rank, world):
            hi = lo + (len(rows["index"]) if rows else 0)
            if hi == lo:  # no rows here: a blank stand-in row (weighted 0 by the caller)
                rows = {"images": np.zeros((1, *self.reader.dataset.shapes[self.name]["images"][1:]), np.uint8),
                        "index": np.zeros(1, dtype=np.int64)}
            (x, y), = self._tensors([rows])
            yield x, y, lo, hi, n

    def rank_batches(self, batch_size: int, rank: int, world: int) -> Iterator[tuple]:
        """``(k, (x, y))`` for the file-order batches ``k`` with ``k % world == rank``, each one read."""
        for k, start in enumerate(range(rank * batch_size, self.reader.n, world * batch_size)):
            rows = self.reader.read(start, min(start + batch_size, self.reader.n))
            yield rank + k * world, next(self._tensors([rows]))


@dataclass
class Streamed:
    """What :func:`prepare_data` returns for a dataset over the budget: the targets, whole."""

    targets: dict  # split -> targets array
    memory_budget: int


TARGET_SCALINGS = ("standard", "centre", "none")


@dataclass
class TargetScaler:
    """Per-column standardisation of regression targets, and its inverse."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, y: np.ndarray, kind: str) -> TargetScaler:
        y = y.reshape(len(y), -1).astype(np.float64)
        if kind == "none":
            return cls(np.zeros(y.shape[1]), np.ones(y.shape[1]))
        if kind == "centre":  # the mean taken off, units kept (boxes: pixel offsets)
            return cls(y.mean(axis=0), np.ones(y.shape[1]))
        std = y.std(axis=0)
        return cls(y.mean(axis=0), np.where(std > 0, std, 1.0))

    def forward(self, y: np.ndarray) -> np.ndarray:
        return ((y.reshape(len(y), -1) - self.mean) / self.std).astype(np.float32)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        return y.reshape(len(y), -1).astype(np.float64) * self.std + self.mean


def resolve_device(device: str) -> torch.device:
    """``auto`` is CUDA when present, else CPU; ``cpu``, ``cuda[:N]`` and ``mps`` when present."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ParamError(f"device: {device!r} is not a torch device (try auto, cpu or cuda)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ParamError("device: cuda was asked for but torch sees no CUDA device")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ParamError(f"device: {device!r} does not exist (torch sees "
                             f"{torch.cuda.device_count()} CUDA device(s))")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ParamError("device: mps was asked for but torch sees no MPS device")
    elif dev.type != "cpu":
        raise ParamError(f"device: {device!r} is not supported (use auto, cpu, cuda or mps)")
    return dev


# --------------------------------------------------------------------------------------------
# Evaluation: whole split, scored once


@torch.no_grad()
def predict(recipe: Recipe, split: Split, scaler: TargetScaler | None, batch_size: int = 512) -> np.ndarray:
    """Predictions for a whole split, in the targets' own units (class ids, or values)."""
    recipe.model.eval()
    decode = recipe.decode or (_argmax if scaler is None else _identity)
    dist = distributed.context()
    if dist is None:
        parts = [decode(recipe.model(x)).detach().cpu() for x, _ in split.batches(batch_size)]
    else:  # each batch predicted by one rank, all of them gathered: the split scored once
        parts = dist.gather([(k, decode(recipe.model(x)).detach().cpu())
                             for k, (x, _) in split.rank_batches(batch_size, dist.rank, dist.world)])
    out = torch.cat(parts).numpy()  # one CPU-GPU sync per batch above, none per item
    return out if scaler is None else scaler.inverse(out)


def _argmax(outputs):
    # argmax of NaN logits still names a class (a NaN model scored 0.5 on two classes): such
    # rows get -1, no class, and evaluate() gives the split no accuracy.
    return torch.where(torch.isfinite(outputs).all(dim=1), outputs.argmax(dim=1), -1)


def _identity(outputs):
    return outputs


def evaluate(recipe, split, raw_targets, scaler, task, num_classes) -> tuple[dict, np.ndarray]:
    predicted = predict(recipe, split, scaler)
    scores = metrics.score(task, predicted, raw_targets, num_classes)
    if task == "classification" and (np.asarray(predicted) < 0).any():
        # NaN/inf outputs: undefined, so never the selected epoch, and a run refused by the board.
        scores["accuracy"] = float("nan")
    return scores, predicted


# --------------------------------------------------------------------------------------------
# The run


@dataclass
class RunResult:
    """What :func:`run` returns: the record to store, and what plots need."""

    record: RunRecord
    test_predicted: np.ndarray
    test_targets: np.ndarray
    recipe: Recipe


# Seeds one command may name: each is a training run, and a range is cheap to type.
MAX_SEEDS = 10_000


def parse_seeds(text: str) -> list[int]:
    """``"0-9"`` -> 0..9; ``"0,3,5"`` -> [0, 3, 5]; ``"7"`` -> [7]; at most ``MAX_SEEDS``."""
    ranges: list[range] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                lo, hi = int(lo), int(hi)
                if hi < lo:
                    raise ValueError
                ranges.append(range(lo, hi + 1))
            else:
                ranges.append(range(int(part), int(part) + 1))
    except ValueError:
        raise ParamError(f"seeds: {text!r} is not a seed list (e.g. 0-9 or 0,3,5)") from None
    if any(r.start < 0 for r in ranges):
        raise ParamError(f"seeds: {text!r} has a negative seed")
    if any(r.stop - 1 > MAX_SEED for r in ranges):
        raise ParamError(f"seeds: {text!r} has a seed above {MAX_SEED}")
    if _distinct(ranges) > MAX_SEEDS:  # refused before a list of that length is built
        raise ParamError(f"seeds: {text!r} names more than {MAX_SEEDS:,} seeds (each is a training run)")
    seeds = [s for r in ranges for s in r]
    return list(dict.fromkeys(seeds))  # "0,0" or "0-3,2" run each seed once


def _distinct(ranges: list[range]) -> int:
    """How many distinct integers the ranges hold (overlaps counted once)."""
    count, end = 0, None
    for r in sorted(ranges, key=lambda r: r.start):
        start = r.start if end is None else max(r.start, end)
        count += max(0, r.stop - start)
        end = r.stop if end is None else max(end, r.stop)
    return count


def _check_trainable(ds: Dataset) -> None:
    refuse_shard(ds)
    if ds.public or "targets" not in ds.shapes["test"]:
        raise CnnbenchError(f"{ds.path}: test targets are withheld (a public file); it can only be "
                            "scored by whoever holds the full file")
    for split in SPLITS:
        if "targets" not in ds.shapes[split]:
            raise CnnbenchError(f"{ds.path}: split {split!r} has no targets")
        if ds.split_size(split) == 0:
            raise CnnbenchError(f"{ds.path}: split {split!r} is empty")


def load_splits(ds: Dataset) -> dict[str, dict[str, np.ndarray]]:
    """Every split's images and targets, each array read once."""
    _check_trainable(ds)
    arrays = {s: ds.load(s) for s in SPLITS}
    check_fingerprint(ds, arrays)  # in memory already: hashing them costs far less than a run
    return arrays


def prepare_data(ds: Dataset, memory_budget=DEFAULT_MEMORY_BUDGET) -> dict | Streamed:
    """The data :func:`run` takes as ``arrays``, checked once for several runs.

    Every split in memory (:func:`load_splits`) when the file's arrays fit ``memory_budget``
    (bytes, or text such as "256MB"); otherwise a :class:`Streamed` marker holding only the
    targets, after a chunk-by-chunk fingerprint check, and each run streams the images.
    """
    budget = parse_bytes(memory_budget)
    if fits_in_memory(ds, budget):
        return load_splits(ds)
    _check_trainable(ds)
    for split in SPLITS:  # a budget too small to stream is refused before the long hash
        buffer_rows(ChunkReader(ds, split, ["images"]), budget)
    check_fingerprint_streamed(ds)
    return Streamed({s: ds.load(s, ["targets"])["targets"] for s in SPLITS}, budget)


def run(dataset: Dataset | str, factory: Callable, *, name: str, seed: int = 0,
        epochs: int | None = None, device: str = "auto", source: str = "baseline",
        progress: Callable | None = None, arrays: dict | Streamed | None = None, notes: str = "",
        memory_budget=DEFAULT_MEMORY_BUDGET) -> RunResult:
    """Train ``factory``'s recipe on ``dataset`` under the protocol and score it on test.

    Parameters
    ----------
    dataset : Dataset or path
    factory : callable(DataInfo) -> Recipe or torch.nn.Module
    name : str, the row's name on the leaderboard
    seed : int, the training seed (not the dataset's)
    epochs : int or None, overrides the recipe's epochs (ignored by closed-form fits)
    device : "auto", "cpu", "cuda", ...
    progress : callable(epoch, epochs, metric_name, val_value) or None, called after each epoch
    arrays : the result of :func:`load_splits` or :func:`prepare_data`, to share one read
        (and one fingerprint check) between several runs
    memory_budget : bytes or text ("4GiB"): a dataset whose arrays are larger is streamed
        from its file (see :func:`prepare_data`); ignored when ``arrays`` is given

    Returns
    -------
    RunResult, whose ``record`` holds test metrics for the epoch selected on val.
    """
    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    check_run_int("epochs", epochs, 1, MAX_EPOCHS)
    if not 0 <= seed <= MAX_SEED:
        raise ParamError(f"seed: {seed} must be in 0..{MAX_SEED}")
    data = arrays if arrays is not None else prepare_data(ds, memory_budget)
    streamed = isinstance(data, Streamed)
    raw_targets = data.targets if streamed else {s: data[s]["targets"] for s in data}
    info = DataInfo.from_dataset(ds)
    dist = distributed.context()  # under torchrun (see cnnbench.bench.distributed), else None
    dev = resolve_device(device) if dist is None else dist.device(resolve_device(device))
    metric_name, higher_is_better = PRIMARY_METRIC[ds.task]
    started = time.perf_counter()

    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        recipe = build_recipe(factory, info, seed)
        if epochs is not None:
            recipe.epochs = epochs
        if dist is not None:
            if recipe.fit is None:
                dist.check_batch(recipe.batch_size)
            dist.start(dev)
        recipe.model.to(dev)

        # Targets: class ids stay int64; regression targets are scaled with train statistics.
        scaler = None
        prepared = {}
        for split, targets in raw_targets.items():
            if ds.task == "regression":
                if scaler is None:
                    scaler = TargetScaler.fit(raw_targets["train"], recipe.target_scaling)
                y = torch.from_numpy(scaler.forward(targets))
            else:
                y = torch.from_numpy(np.asarray(targets, dtype=np.int64))
            if streamed:
                reader = ChunkReader(ds, split, ["images"])
                buffer_rows(reader, data.memory_budget)  # refuses a budget under four chunks
                prepared[split] = StreamSplit(split, reader, y.to(dev), recipe.preprocess, dev,
                                              data.memory_budget)
            else:
                prepared[split] = Split(split, torch.from_numpy(data[split]["images"]).to(dev), y.to(dev),
                                        recipe.preprocess)
        train, val = prepared["train"], prepared["val"]
        _check_outputs(recipe, train, info)
        def evaluate_split(s):
            return evaluate(recipe, prepared[s], raw_targets[s], scaler, ds.task, ds.num_classes)

        curves = {"train_loss": [], f"val_{metric_name}": []}
        if recipe.fit is not None:
            # Closed form: one fit from whole-split statistics, no epochs to select between.
            recipe.model.eval()
            with torch.no_grad():
                recipe.fit(train, val)
            best_epoch, n_epochs = 1, 1
            val_metrics, _ = evaluate_split("val")
            curves[f"val_{metric_name}"].append(val_metrics[metric_name])
            if progress:
                progress(1, 1, metric_name, val_metrics[metric_name])
        else:
            best_epoch, val_metrics, n_epochs = _train(recipe, train, evaluate_split, dev, seed,
                                                       ds.task, metric_name, higher_is_better,
                                                       curves, progress)
        test_metrics, test_predicted = evaluate_split("test")

    wall = time.perf_counter() - started
    config = {"optimizer": _describe_optimizer(recipe), "batch_size": recipe.batch_size,
              "scheduler": getattr(recipe.scheduler, "__name__", None) if recipe.scheduler else None,
              "target_scaling": recipe.target_scaling if ds.task == "regression" else None,
              "preprocess": getattr(recipe.preprocess, "__name__", type(recipe.preprocess).__name__),
              "augment": None if recipe.augment is None else getattr(recipe.augment, "__name__", "custom"),
              **(dist.record_fields(recipe.batch_size if recipe.fit is None else None) if dist else {}),
              **({"loader": "streamed"} if streamed else {}), **recipe.config}
    record = RunRecord(
        name=name, source=source, fingerprint=ds.fingerprint, family=ds.family, task=ds.task,
        metrics=test_metrics, dataset_path=str(ds.path.resolve()) if ds.path else "",
        preset=ds.spec.get("preset"),
        split_sizes={s: ds.split_size(s) for s in SPLITS},
        val_metrics=val_metrics, params=count_parameters(recipe.model), epochs=n_epochs,
        best_epoch=best_epoch, wall_time_s=round(wall, 3), device=str(dev), seed=seed,
        torch_version=torch.__version__, torch_threads=torch.get_num_threads(), cnnbench_version=__version__,
        timestamp=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        curves=curves, config=config, notes=notes, diagnostics=_diagnostics(ds.task, test_predicted,
                                                                            raw_targets["test"]),
    )
    return RunResult(record, test_predicted, np.asarray(raw_targets["test"]), recipe)


@torch.no_grad()
def _check_outputs(recipe: Recipe, train: Split, info: DataInfo) -> None:
    """Refuse a model whose predictions cannot be scored, before any training time is spent.

    Two training images go through the untrained model (in eval mode, so nothing is drawn
    from the random state or updated) and through ``decode``.
    """
    x, _ = next(train.batches(2))
    recipe.model.eval()
    outputs = recipe.model(x)
    n, k = len(x), info.num_outputs
    if info.task == "classification":
        if recipe.decode is None and (outputs.ndim != 2 or outputs.shape[1] != k):
            raise CnnbenchError(f"the model outputs shape {tuple(outputs.shape)} for {n} images; "
                                f"this dataset needs ({n}, {k}): one logit per class")
        decoded = (recipe.decode or _argmax)(outputs)
        if tuple(decoded.shape) != (n,):
            raise CnnbenchError(f"decode gives shape {tuple(decoded.shape)} for {n} images; "
                                f"this dataset needs ({n},) class ids")
    else:
        decoded = (recipe.decode or _identity)(outputs)
        if tuple(decoded.shape) not in ((n, k),) + (((n,),) if k == 1 else ()):
            raise CnnbenchError(f"the model {'decodes to' if recipe.decode else 'outputs'} shape "
                                f"{tuple(decoded.shape)} for {n} images; this dataset needs "
                                f"({n}, {k}): {', '.join(info.target_names)}")


# The protocol's pieces, exposed once so that cnnbench.bench.diagnose probes a recipe exactly as a
# run trains it (same default loss, optimizer, schedule length and random streams).


def loss_function(recipe: Recipe, task: str) -> Callable:
    """The recipe's loss, or the default: cross-entropy on logits, or MSE."""
    return recipe.loss or (F.cross_entropy if task == "classification" else F.mse_loss)


def decoder(recipe: Recipe, task: str) -> Callable:
    """The recipe's decode, or the default: argmax of the logits, or the outputs themselves."""
    return recipe.decode or (_argmax if task == "classification" else _identity)


def build_optimizer(recipe: Recipe, model: nn.Module | None = None):
    """The recipe's optimizer over ``model``'s parameters (default Adam 1e-3)."""
    return (recipe.optimizer or adam(1e-3))((model or recipe.model).parameters())


def protocol_steps(recipe: Recipe, n_train: int) -> int:
    """Optimizer steps a run of the recipe takes: epochs x batches per epoch."""
    return recipe.epochs * -(-n_train // recipe.batch_size)


def training_generators(seed: int, dev: torch.device, augment: bool) -> tuple:
    """``(shuffle, augment_gen)``: the batch order's CPU generator and augment's, seeded."""
    shuffle = torch.Generator().manual_seed(seed)
    return shuffle, (torch.Generator(device=dev).manual_seed(seed + 1) if augment else None)


def _train(recipe, train, evaluate_split, dev, seed, task, metric_name, higher_is_better,
           curves, progress):
    """The gradient loop; returns (best_epoch, val_metrics at best, epochs run)."""
    model = recipe.model
    optimizer = build_optimizer(recipe, model)
    total_steps = protocol_steps(recipe, len(train))
    scheduler = recipe.scheduler(optimizer, total_steps) if recipe.scheduler else None
    loss_fn = loss_function(recipe, task)
    shuffle, augment_gen = training_generators(seed, dev, recipe.augment is not None)
    dist = distributed.context()
    forward = model if dist is None else dist.wrap(model, dev)

    best_value, best_epoch, best_state, best_val = None, 0, None, {}
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        total, count = 0.0, 0
        if dist is None:
            batches = train.epoch_batches(recipe.batch_size, shuffle, seed, epoch)
        else:  # this rank's share of each global batch, read alone (augment sees the whole)
            batches = dist.train_batches(train, recipe.batch_size, shuffle, seed, epoch, recipe.augment, augment_gen)
        for x, y, *share in batches:
            if dist is None and recipe.augment is not None:
                x = recipe.augment(x, augment_gen)
            weight, rows = share or (1.0, len(x))
            loss = loss_fn(forward(x), y)
            optimizer.zero_grad(set_to_none=True)
            (loss if dist is None else loss * weight).backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += loss.item() * rows  # a CPU-GPU sync per batch; cheap next to the step
            count += rows
        if dist is not None:
            total, count = dist.sum(total, count)
        curves["train_loss"].append(total / count)

        val_metrics, _ = evaluate_split("val")
        value = val_metrics[metric_name]
        curves[f"val_{metric_name}"].append(value)
        # A NaN score never wins, and never blocks a later finite one from winning.
        improved = best_value is None or (not math.isnan(value) and (
            math.isnan(best_value) or (value > best_value if higher_is_better else value < best_value)))
        if improved:  # strict: the earliest of equally good epochs is kept
            best_value, best_epoch, best_val = value, epoch, val_metrics
            best_state = copy.deepcopy(model.state_dict())
        if progress:
            progress(epoch, recipe.epochs, metric_name, value)
    model.load_state_dict(best_state)
    return best_epoch, best_val, recipe.epochs


def _diagnostics(task: str, predicted: np.ndarray, targets: np.ndarray) -> dict:
    """How spread out the predictions are, beside the targets (a collapsed model: ~0)."""
    if task != "regression":
        ids = np.asarray(predicted, dtype=np.int64).ravel()
        out = {"predicted_class_counts": np.bincount(ids[ids >= 0]).tolist()}
        if (ids < 0).any():  # rows whose outputs held NaN or inf (see _argmax)
            out["undefined_predictions"] = int((ids < 0).sum())
        return out
    p = np.asarray(predicted, dtype=np.float64).reshape(len(targets), -1)
    t = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
    return {"prediction_std": p.std(axis=0).round(6).tolist(), "target_std": t.std(axis=0).round(6).tolist()}


def count_parameters(model: nn.Module) -> int:
    """Parameters the model learns (a closed-form fit's weights count too: they are parameters)."""
    return int(sum(p.numel() for p in model.parameters()))


def _describe_optimizer(recipe: Recipe) -> str:
    if recipe.fit is not None:
        return "closed-form"
    if recipe.optimizer is None:
        return "Adam(lr=0.001)"
    opt = recipe.optimizer([nn.Parameter(torch.zeros(1))])
    hp = {k: v for k, v in opt.defaults.items() if k in ("lr", "momentum", "weight_decay") and v}
    return f"{type(opt).__name__}({', '.join(f'{k}={v}' for k, v in hp.items())})"
