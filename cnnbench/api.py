"""The public Python API, re-exported from :mod:`cnnbench`: make, generate, load, run, score, record.

Every function speaks in parameter names (``n_train``, ``force``), never in CLI flags, and
raises :class:`cnnbench.errors.CnnbenchError` subclasses for bad input. Nothing here imports
torch at import time: the functions that train import it when called.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from . import __version__
from .data.families import SPLITS, get_family
from .data.generate import Spec, build_spec, generate_arrays, write_dataset
from .data.h5file import FORMAT_VERSION, Dataset, check_fingerprint, compute_fingerprint, identity, open_dataset
from .data.params import Param
from .data.presets import get_preset
from .data.streaming import DEFAULT_MEMORY_BUDGET, check_fingerprint_streamed, check_split_name
from .errors import CnnbenchError, ParamError

# -- make_*: arrays in memory ---------------------------------------------------------------

_N_SAMPLES = Param("n_samples", "int", None, "", low=1)
_RANDOM_STATE = Param("random_state", "int", None, "", low=0)
_SPEC_ONLY = {"seed": "random_state", "n_train": "n_samples", "n_val": None, "n_test": None}


def _make(family: str, n_samples, random_state, return_factors: bool, params: dict):
    for name, instead in _SPEC_ONLY.items():
        if name in params:
            hint = f"use {instead}" if instead else "make_* returns the train split only; see generate()"
            raise ParamError(f"{name}: not a parameter of make_{family} ({hint})")
    given = {**params, "seed": _RANDOM_STATE.convert(random_state), "n_train": _N_SAMPLES.convert(n_samples)}
    arrays = generate_arrays(build_spec(family, given), "train")
    images, targets = arrays.pop("images"), arrays.pop("targets")
    return (images, targets, arrays) if return_factors else (images, targets)


def make_lines(n_samples: int = 1000, *, random_state: int = 0, return_factors: bool = False, **params):
    """Images of one white row or column (the lines question's task): classification.

    Parameters
    ----------
    n_samples : int, default 1000
        Number of images.
    random_state : int, default 0
        The dataset seed. ``X, y`` equal, byte for byte, the train split of the file
        ``cnnbench generate lines --seed random_state --n-train n_samples ...`` writes
        (``generate(out, "lines", seed=random_state, n_train=n_samples, ...)``).
    return_factors : bool, default False
        Also return the per-sample nuisance factors (a dict of arrays, one row per sample).
    **params
        The family's parameters, with the same names, defaults and checks as the CLI's
        options (listed below). A bad value raises :class:`~cnnbench.errors.ParamError`
        naming the parameter.

    Returns
    -------
    X : ndarray of shape (n_samples, size, size, 1), dtype uint8
        Pixel values 0..255, channels last.
    y : ndarray of shape (n_samples,), dtype int64
        Class ids: 0 = row, 1 = column.
    factors : dict of str to ndarray, only with ``return_factors=True``
    """
    return _make("lines", n_samples, random_state, return_factors, params)


def make_boxes(n_samples: int = 1000, *, random_state: int = 0, return_factors: bool = False, **params):
    """Images of one square whose centre is the target (the boxes question's task): regression.

    Parameters
    ----------
    n_samples : int, default 1000
        Number of images. A grid layout (``positions="grid"``) sets its own split sizes and
        ignores it.
    random_state : int, default 0
        The dataset seed. ``X, y`` equal, byte for byte, the train split of the file
        ``cnnbench generate boxes --seed random_state --n-train n_samples ...`` writes.
    return_factors : bool, default False
        Also return the per-sample nuisance factors (box bounds, colours, ...).
    **params
        The family's parameters, as the CLI's options (listed below), validated by the same
        declarations.

    Returns
    -------
    X : ndarray of shape (n_samples, size, size, channels), dtype uint8
    y : ndarray of shape (n_samples, 2), dtype float32
        The box centre (x, y) in pixels.
    factors : dict of str to ndarray, only with ``return_factors=True``
    """
    return _make("boxes", n_samples, random_state, return_factors, params)


def make_patches(n_samples: int = 1000, *, random_state: int = 0, return_factors: bool = False, **params):
    """Images of a well whose colour gives a concentration (the patches question's task): regression.

    Parameters
    ----------
    n_samples : int, default 1000
        Number of scenes. With ``augment_copies=k`` the result has ``n_samples * (k + 1)``
        rows, as the file's train split does.
    random_state : int, default 0
        The dataset seed. ``X, y`` equal, byte for byte, the train split of the file
        ``cnnbench generate patches --seed random_state --n-train n_samples ...`` writes.
    return_factors : bool, default False
        Also return the per-sample nuisance factors (rotation, lighting, ...).
    **params
        The family's parameters, as the CLI's options (listed below), validated by the same
        declarations.

    Returns
    -------
    X : ndarray of shape (rows, output_size, output_size, channels), dtype uint8
    y : ndarray of shape (rows, 1), dtype float32
        The concentration, in the question's units (80..350).
    factors : dict of str to ndarray, only with ``return_factors=True``
    """
    return _make("patches", n_samples, random_state, return_factors, params)


def _family_parameters_doc(family: str) -> str:
    """The declarations, as a numpydoc block: one source for the CLI's --help and these docs."""
    lines = ["", "    Family parameters", "    -----------------"]
    for p in get_family(family).params:
        kind = {"range": "float or (low, high)", "int_range": "int or (low, high)",
                "choice": "{" + ", ".join(map(repr, p.choices)) + "}"}.get(p.kind, p.kind)
        lines.append(f"    {p.name} : {kind}, default {p.default!r}")
        lines.append(f"        {p.help}")
    return "\n".join(lines) + "\n"


for _f, _family in ((make_lines, "lines"), (make_boxes, "boxes"), (make_patches, "patches")):
    _f.__doc__ += _family_parameters_doc(_family)


# -- files ----------------------------------------------------------------------------------

def _spec(family: str | None, preset: str | None, params: dict) -> Spec:
    if (family is None) == (preset is None):
        raise ParamError("give a family name or preset=, one of the two")
    if preset is None:
        return build_spec(family, params)
    extra = sorted(set(params) - {"seed"})
    if extra:
        raise ParamError(f"{extra[0]}: a preset fixes its parameters (only seed can be given with preset=)")
    return get_preset(preset).spec(params.get("seed"))


def generate(out: str | os.PathLike, family: str | None = None, *, preset: str | None = None,
             force: bool = False, workers: int = 1, progress: Callable[[int], None] | None = None,
             **params) -> Dataset:
    """Write a dataset file, as ``cnnbench generate`` does; return it opened.

    Parameters
    ----------
    out : path of the ``.h5`` file, written to a temporary name and renamed (nothing is left
        behind by a failure).
    family : "lines", "boxes" or "patches"; or give ``preset`` instead.
    preset : name of a canonical preset (see ``cnnbench presets``); ``seed=`` may replace its
        published seed.
    force : overwrite an existing ``out``.
    workers : processes drawing blocks; the bytes do not depend on it.
    progress : called with the number of samples just written.
    **params : ``seed``, ``n_train``, ``n_val``, ``n_test`` and the family's parameters (see
        :func:`make_lines` and its siblings), checked as the CLI checks them.

    Returns
    -------
    Dataset : the file's description (see :func:`open_dataset`).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ParamError(f"workers: {workers!r} must be an integer >= 1")
    spec = _spec(family, preset, params)
    write_dataset(spec, out, force=force, workers=workers, progress=progress)
    return open_dataset(out)


def cache_dir() -> Path:
    """Where :func:`load_preset` keeps presets: ``$XDG_CACHE_HOME/cnnbench`` (default ``~/.cache/cnnbench``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cnnbench"


def load_preset(name: str, split: str | None = "train", *, root: str | os.PathLike | None = None,
                return_factors: bool = False, regenerate: bool = False):
    """A canonical preset, generated once into a cache folder and checked on every load.

    The first call writes ``root/NAME.h5`` (as ``cnnbench generate --preset NAME`` would;
    seconds to a minute); later calls reuse it when its spec is the preset's, after checking
    that its arrays still match its recorded fingerprint (a file edited in the cache raises
    :class:`~cnnbench.errors.FormatError`; ``regenerate=True`` writes it again).

    Parameters
    ----------
    name : a preset name (``cnnbench presets``)
    split : "train", "val" or "test": return that split's arrays; None: return the opened
        :class:`Dataset` (for :class:`cnnbench.torch.H5Dataset`, :func:`run` ...).
    root : the cache folder (default :func:`cache_dir`)
    return_factors : with a split, also return its nuisance factors
    regenerate : write the file again even if the cached one is sound

    Returns
    -------
    (X, y) or (X, y, factors) for a split, as :func:`make_lines` documents them; or a Dataset.
    """
    preset = get_preset(name)
    if split is not None:
        check_split_name(split)
    folder = Path(root) if root is not None else cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParamError(f"root: cannot create {str(folder)!r} ({exc.strerror})") from None
    path = folder / f"{name}.h5"
    spec = preset.spec()
    wanted = json.loads(spec.to_json())  # as the file gives it back (tuples become lists)
    if regenerate or not _has_spec(path, wanted):
        write_dataset(spec, path, force=True)
    ds = open_dataset(path)
    if split is None:
        check_fingerprint_streamed(ds)
        return ds
    arrays = {s: ds.load(s) for s in SPLITS}
    try:
        check_fingerprint(ds, arrays)
    except CnnbenchError as exc:
        raise type(exc)(f"{exc}; load_preset({name!r}, regenerate=True) writes it again") from None
    chosen = arrays[split]
    images, targets = chosen.pop("images"), chosen.pop("targets")
    return (images, targets, chosen) if return_factors else (images, targets)


def _has_spec(path: Path, wanted: dict) -> bool:
    if not path.is_file():
        return False
    try:
        return open_dataset(path).spec == wanted
    except CnnbenchError:  # an unreadable cache file is simply written again
        return False


# -- arrays as a dataset --------------------------------------------------------------------

def from_arrays(splits: Mapping[str, tuple], task: str | None = None) -> tuple[Dataset, dict]:
    """An in-memory dataset for :func:`run`: ``{"train": (X, y), "val": (X, y), "test": (X, y)}``.

    ``X``: uint8 (N, H, W, C) or (N, H, W); ``y``: class ids (N,) for classification, values
    (N,) or (N, k) for regression. ``task`` defaults to classification for integer targets.
    Its fingerprint is computed from the arrays as a file's is, so the same arrays always
    land on the same board.
    """
    if not isinstance(splits, Mapping) or set(splits) != set(SPLITS):
        raise ParamError("arrays: give a dict with exactly the splits train, val and test, each (X, y)")
    arrays = {}
    for split in SPLITS:
        try:
            images, targets = splits[split]
        except (TypeError, ValueError):
            raise ParamError(f"arrays[{split!r}]: give a pair (X, y)") from None
        images, targets = np.asarray(images), np.asarray(targets)
        if images.ndim == 3:
            images = images[..., None]
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ParamError(f"arrays[{split!r}]: X must be uint8 of shape (N, H, W[, C]), not "
                             f"{images.dtype} {images.shape} (the protocol scales 0..255 to [0, 1])")
        if len(targets) != len(images) or len(images) == 0:
            raise ParamError(f"arrays[{split!r}]: X has {len(images)} rows and y {len(targets)}; "
                             "they must match, at least one")
        arrays[split] = {"images": images, "targets": targets}
    task = task or ("classification" if arrays["train"]["targets"].dtype.kind in "iu" else "regression")
    if task not in ("classification", "regression"):
        raise ParamError(f"task: {task!r} is not classification or regression")
    if task == "classification":
        top = max(int(arrays[s]["targets"].max()) for s in SPLITS)
        names = [str(i) for i in range(top + 1)]
    else:
        k = int(np.prod(arrays["train"]["targets"].shape[1:], dtype=np.int64))
        names = [f"y{i}" for i in range(k)]
    shapes = {s: {n: a.shape for n, a in arrays[s].items()} for s in SPLITS}
    ds = Dataset(path=None, family="arrays", task=task, spec={}, fingerprint=compute_fingerprint(
                     None, arrays, ident=identity("arrays", task, {}, None, names)),
                 format_version=FORMAT_VERSION, cnnbench_version=__version__, target_names=names,
                 optimum=None, shapes=shapes, public=False, attrs={})
    return ds, arrays


# -- training and scoring -------------------------------------------------------------------

def _factory(model, ds: Dataset) -> tuple[Callable, str, str]:
    """(factory, default name, source) for a baseline name, 'FILE.py:FACTORY' or a callable."""
    if isinstance(model, str):
        if ":" in model:
            from .bench.models import default_model_name, load_factory

            return load_factory(model), default_model_name(model), "user"
        from .baselines import get_baseline

        baseline = get_baseline(model)
        if not baseline.applies_to(ds.family, ds.task):
            raise ParamError(f"model: baseline {baseline.name!r} does not apply to {ds.family} ({ds.task})")
        return baseline.make, baseline.name, baseline.source
    from torch import nn  # run() has imported it already

    if callable(model) and not isinstance(model, nn.Module):
        return model, getattr(model, "__name__", type(model).__name__), "user"
    raise ParamError("model: give a factory(info) -> torch.nn.Module or Recipe (called once per seed, "
                     "so each run starts from fresh weights), a baseline name, or 'FILE.py:FACTORY'")


def _as_dataset(data) -> tuple[Dataset, dict | None]:
    if isinstance(data, Dataset):
        return data, None
    if isinstance(data, Mapping):
        return from_arrays(data)
    return open_dataset(data), None


def run(data, model, *, name: str | None = None, seed: int = 0, epochs: int | None = None,
        device: str = "auto", memory_budget=DEFAULT_MEMORY_BUDGET, progress: Callable | None = None,
        notes: str = ""):
    """Train and score one model under the protocol, as ``cnnbench bench``/``evaluate`` do.

    Train on ``train``, select the epoch on ``val``, score ``test`` once, over whole splits.
    Nothing is recorded: pass the result to :func:`record`.

    Parameters
    ----------
    data : a dataset file's path, an opened :class:`Dataset`, or in-memory arrays
        ``{"train": (X, y), "val": (X, y), "test": (X, y)}`` (see :func:`from_arrays`)
    model : a factory ``make(info: DataInfo) -> torch.nn.Module | Recipe``, a baseline name
        (``cnnbench baselines``) or ``"FILE.py:FACTORY"``
    name : the leaderboard row's name (default: the baseline's or the factory's name)
    seed : the training seed (not the dataset's), 0 .. 2**31 - 1
    epochs : overrides the recipe's epochs
    device : "auto" (CUDA when present), "cpu", "cuda", "cuda:1", "mps"
    memory_budget : bytes or text ("256MB", "4GiB"), default 4 GiB: a file whose arrays
        exceed it is streamed from disk in whole chunks (see ``docs/baselines.md`` for what
        that changes in the batch order)
    progress : callable(epoch, epochs, metric_name, val_value), after each epoch

    Returns
    -------
    RunResult : ``.record`` (a :class:`~cnnbench.board.records.RunRecord`: test metrics, val
        metrics, curves ...), ``.test_predicted``, ``.test_targets``, ``.recipe``.
    """
    from .bench import protocol as train  # torch, only when something trains

    ds, arrays = _as_dataset(data)
    factory, default_name, source = _factory(model, ds)
    from .board.records import check_name

    row = check_name(name if name is not None else default_name)
    return train.run(ds, factory, name=row, seed=seed, epochs=epochs, device=device, source=source,
                     progress=progress, arrays=arrays, notes=notes, memory_budget=memory_budget)


def _predictions(predictions):
    from .board.predictions import Predictions, load_predictions

    if isinstance(predictions, (str, os.PathLike)):
        return load_predictions(predictions)
    if isinstance(predictions, Predictions):
        return predictions
    return np.asarray(predictions)


def score(dataset, predictions) -> dict:
    """Test metrics of predictions, with every check ``cnnbench submit`` makes.

    Parameters
    ----------
    dataset : path or :class:`Dataset` of the full file (a public copy has no test targets)
    predictions : one row per test sample, in test order: class ids (n,) or class scores
        (n, classes); regression values (n, k) in the targets' units. An array, or a
        ``.npy``/``.csv``/``.h5`` file's path.

    Returns
    -------
    dict : accuracy and per_class_accuracy, or mse, rmse, mae and r2.
    """
    from .board.predictions import score_predictions

    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    return score_predictions(ds, _predictions(predictions))


def record_submission(dataset, predictions, *, name: str, notes: str = "", params: int | None = None,
           db: str | os.PathLike | None = None):
    """Score predictions (as :func:`score`) and record them on the leaderboard, source 'submission'.

    ``params``: the model's parameter count, shown on the board. ``db``: the SQLite file or a
    ``postgresql://`` URL (default ``$CNNBENCH_DB``, else
    ``$XDG_DATA_HOME/cnnbench/leaderboard.sqlite``). A refused submission writes nothing.
    Returns the recorded :class:`~cnnbench.board.records.RunRecord`.
    """
    from .board.predictions import Predictions, score_predictions, submission_record

    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    loaded = _predictions(predictions)
    if not isinstance(loaded, Predictions):
        import hashlib

        values = np.ascontiguousarray(loaded)
        loaded = Predictions(values, None, hashlib.sha256(values.tobytes()).hexdigest())
    metrics = score_predictions(ds, loaded)
    row = submission_record(ds, loaded, metrics, name, notes, params)
    record([row], db=db, dataset=ds)
    return row


def record(results, *, db: str | os.PathLike | None = None, dataset: Dataset | None = None) -> list[int]:
    """Record runs (a :func:`run` result, a RunRecord, or a list of them) in ONE transaction.

    Returns the new row ids. ``dataset`` (the file the runs scored) stores its optimum and
    preset beside them; by default they are read from the files the records name, where
    those still hold the same data.
    """
    from .board.records import RunRecord
    from .board.store import Leaderboard, resolve_db_path

    items = results if isinstance(results, (list, tuple)) else [results]
    rows = [getattr(r, "record", r) for r in items]
    bad = [type(r).__name__ for r in rows if not isinstance(r, RunRecord)]
    if bad:
        raise ParamError(f"results: {bad[0]} is not a run result or RunRecord")
    # The store never opens data files: the files the records name are read here, for their
    # identity (preset, spec, optimum), when they still hold the same data.
    known = {dataset.fingerprint} if dataset is not None else set()
    files = []
    for path, fingerprint in dict.fromkeys((r.dataset_path, r.fingerprint) for r in rows if r.dataset_path):
        found = None if fingerprint in known else _dataset_if_same(path, fingerprint)
        if found is not None:
            files.append(found)
            known.add(fingerprint)
    with Leaderboard(resolve_db_path(db)) as board, board.transaction():  # all or nothing
        for found in files:
            board.add_dataset(found)
        return board.add_many(rows, dataset=dataset)


def _dataset_if_same(path: str, fingerprint: str) -> Dataset | None:
    try:
        found = open_dataset(path)
    except CnnbenchError:  # moved, deleted or replaced: the records alone are recorded
        return None
    return found if found.fingerprint == fingerprint else None


def boards(dataset=None, *, db: str | os.PathLike | None = None) -> list:
    """The ranked boards (one per fingerprint and protocol version), as ``cnnbench leaderboard``.

    ``dataset``: a path or Dataset for its boards only. Each board has ``.entries`` (rank,
    name, score, std over seeds ...) and ``.rows()`` (plain dicts).
    """
    from .board.store import Leaderboard, db_exists, resolve_db_path

    path = resolve_db_path(db)
    ds = dataset if dataset is None or isinstance(dataset, Dataset) else open_dataset(dataset)
    if not db_exists(path):
        return []
    with Leaderboard(path, create=False) as board:
        return board.boards([ds.fingerprint] if ds else None, optimum=ds.optimum if ds else None)
