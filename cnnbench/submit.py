"""Submissions: scoring predictions made elsewhere, and the public copy of a dataset.

Predictions are loaded without executing anything (``numpy.load(..., allow_pickle=False)``,
CSV as text, HDF5 arrays through h5py), checked against the dataset's test split, and scored by
:func:`cnnbench.metrics.score`, the code that scores the baselines, against a dataset file whose
arrays still match its recorded fingerprint. Every check runs before the leaderboard is opened,
so a refused submission leaves the database untouched.

The public copy withholds the test targets and the dataset seed: with the seed, anyone could
regenerate the file and read the answers. A file whose seed can be guessed (a preset's
published seed, or any small number) is refused unless the maintainer opts in.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from . import __version__
from .errors import CnnbenchError, FormatError, ParamError, UnknownNameError
from .generate import first_samples, spec_from_dict
from .h5format import SPLITS, Dataset, DatasetWriter, check_fingerprint, check_output_path, open_dataset
from .metrics import score
from .params import MAX_EPOCHS, check_run_int
from .records import MAX_NAME, MAX_PARAMS, PRIMARY_METRIC, RunRecord, check_name, check_notes  # noqa: F401
from .shards import refuse_shard

PREDICTION_SUFFIXES = (".npy", ".csv", ".h5", ".hdf5")
# dtype kinds read as numbers: signed and unsigned integers, floats (bool is not a number here).
NUMERIC_KINDS = "iuf"
# A regression prediction further than this many times the training targets' largest magnitude
# (at least 1) from zero is a unit or scaling mistake, not a prediction: refused, not ranked last.
PLAUSIBLE_FACTOR = 1e6
# Dataset seeds below this can be found by trying every one against the public file.
MIN_SECRET_SEED = 2 ** 32


class SubmissionError(ParamError):
    """Predictions that do not fit the dataset (rows, shape, values, fingerprint)."""


@dataclass
class Predictions:
    """Predictions as loaded from a file: the array and the fingerprint it claims, if any."""

    values: np.ndarray
    fingerprint: str | None
    sha256: str


# -- loading --------------------------------------------------------------------------------

def load_predictions(path: str | os.PathLike) -> Predictions:
    """Read a ``.npy``, ``.csv`` or ``.h5`` predictions file (no pickles, no code).

    ``.npy``: one array. ``.csv``: one row per sample, an optional header row, optional
    ``# fingerprint: HEX`` comment line. ``.h5``: a dataset named ``predictions`` (or the
    file's only dataset), optional root attribute ``fingerprint``.
    """
    path = Path(path)
    if not path.exists():
        raise FormatError(f"{path}: no such file")
    if path.is_dir():
        raise FormatError(f"{path}: is a folder, not a predictions file")
    suffix = path.suffix.lower()
    if suffix not in PREDICTION_SUFFIXES:
        raise FormatError(f"{path}: unknown predictions format {suffix or '(no suffix)'!r} "
                          f"(expected {', '.join(PREDICTION_SUFFIXES)})")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"{path}: cannot be read ({exc.strerror})") from None
    sha256 = hashlib.sha256(raw).hexdigest()
    if suffix == ".npy":
        values, fingerprint = _load_npy(path, raw), None
    elif suffix == ".csv":
        values, fingerprint = _load_csv(path, raw)
    else:
        values, fingerprint = _load_h5(path)
    return Predictions(values, fingerprint, sha256)


def _load_npy(path: Path, raw: bytes) -> np.ndarray:
    if not raw.startswith(b"\x93NUMPY"):
        raise FormatError(f"{path}: not a readable .npy file (no NumPy header)")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise FormatError(f"{path}: holds Python objects; only plain numeric arrays are read "
                              f"(pickles are never loaded)") from None
        raise FormatError(f"{path}: not a readable .npy file ({exc})") from None
    except (OSError, EOFError):
        raise FormatError(f"{path}: not a readable .npy file (truncated or corrupt?)") from None


def _load_csv(path: Path, raw: bytes) -> tuple[np.ndarray, str | None]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not a text CSV file (not UTF-8)") from None
    fingerprint, rows = None, []
    lines = [ln for ln in text.splitlines() if ln.strip()]
    data_lines = []
    for ln in lines:
        stripped = ln.strip()
        if stripped.startswith("#"):
            key, _, value = stripped.lstrip("#").partition(":")
            if key.strip().lower() == "fingerprint" and value.strip():
                fingerprint = value.strip()
            continue
        data_lines.append(ln)
    for number, cells in enumerate(csv.reader(data_lines), start=1):
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            if number == 1 and not rows:  # a header row
                continue
            raise FormatError(f"{path}: data row {number} has a cell that is not a number") from None
    if not rows:
        raise FormatError(f"{path}: no data rows")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise FormatError(f"{path}: rows have different numbers of columns ({sorted(widths)})")
    values = np.array(rows, dtype=np.float64)
    return (values[:, 0] if values.shape[1] == 1 else values), fingerprint


def _load_h5(path: Path) -> tuple[np.ndarray, str | None]:
    try:
        with h5py.File(path, "r") as f:
            if "format_version" in f.attrs and "train" in f:
                raise FormatError(f"{path}: is a cnnbench dataset file, not predictions")
            ds = _plain_dataset(path, f)
            values = ds[()]
            fingerprint = f.attrs.get("fingerprint")
    except OSError:
        raise FormatError(f"{path}: not a readable HDF5 file (truncated or corrupt?)") from None
    if isinstance(fingerprint, bytes):
        fingerprint = fingerprint.decode(errors="replace")
    if fingerprint is not None and not isinstance(fingerprint, str):
        fingerprint = str(np.asarray(fingerprint).tolist())
    return np.asarray(values), fingerprint


def _plain_dataset(path: Path, f: h5py.File) -> h5py.Dataset:
    """The predictions dataset, refused unless its numbers are stored inside this file.

    h5py follows external links, soft links, virtual datasets and external raw storage on its
    own: any of them could make the "predictions" the bytes of another file, the host's full
    dataset among them. Only a hard link to a dataset with its own storage and a plain numeric
    dtype is read; the links are inspected without being followed.
    """
    links = {}
    f.visititems_links(lambda name, link: links.setdefault(name, link) and None)
    if "predictions" in links:
        name = "predictions"
    else:
        # Candidates: hard-linked datasets, and every other link (refused below, by name).
        found = [n for n, link in links.items()
                 if not isinstance(link, h5py.HardLink) or f.get(n, getclass=True) is h5py.Dataset]
        if len(found) != 1:
            raise FormatError(f"{path}: no 'predictions' dataset (and not exactly one dataset "
                              f"to take instead: found {len(found)})")
        name = found[0]
    # Every link on the way, not only the last: a hard link below an external group is outside too.
    parts = name.split("/")
    for depth in range(1, len(parts) + 1):
        link = links.get("/".join(parts[:depth]))
        if isinstance(link, h5py.ExternalLink):
            raise SubmissionError(f"{path}: {name!r} is an external link (to {link.filename!r}); "
                                  f"predictions must be stored in the submitted file itself")
        if isinstance(link, h5py.SoftLink):
            raise SubmissionError(f"{path}: {name!r} is a soft link (to {link.path!r}); store the "
                                  f"predictions as a plain dataset")
    ds = f[name]
    if not isinstance(ds, h5py.Dataset):
        raise FormatError(f"{path}: {name!r} is a group, not a dataset")
    if ds.is_virtual:
        raise SubmissionError(f"{path}: {name!r} is a virtual dataset (its data lives in other files); "
                              f"store the predictions as a plain dataset")
    if ds.external:
        raise SubmissionError(f"{path}: {name!r} keeps its data in external files "
                              f"({ds.external[0][0]!r}...); store the predictions in the file itself")
    dtype = ds.dtype
    if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None or h5py.check_vlen_dtype(dtype) is not None:
        raise SubmissionError(f"{path}: predictions have dtype {dtype}; expected plain numbers")
    return ds


# -- validation -----------------------------------------------------------------------------

def target_shape(dataset: Dataset) -> tuple:
    """The shape a test-target array has (from ``train`` when a public file withholds test)."""
    n = dataset.split_size("test")
    if "targets" in dataset.shapes["test"]:
        return tuple(dataset.shapes["test"]["targets"])
    return (n,) + tuple(dataset.shapes["train"]["targets"][1:])


def check_predictions(dataset: Dataset, predictions: Predictions | np.ndarray) -> np.ndarray:
    """Validate predictions for the test split; return class ids (n,) or values (n, k).

    Raises :class:`SubmissionError` naming the problem: another dataset's fingerprint,
    wrong row count or shape, a non-numeric dtype (bool included), NaN/inf, a class id out of
    range or not a whole number.
    """
    if isinstance(predictions, Predictions):
        if predictions.fingerprint and predictions.fingerprint != dataset.fingerprint:
            raise SubmissionError(
                f"predictions are for another dataset (fingerprint {predictions.fingerprint[:12]}, "
                f"{dataset.path.name} has {dataset.fingerprint[:12]})")
        values = predictions.values
    else:
        values = np.asarray(predictions)
    n = dataset.split_size("test")
    if values.dtype.kind == "b":
        what = "class ids (integers) or class scores" if dataset.task == "classification" else "numbers"
        raise SubmissionError(f"predictions have dtype bool; expected {what}")
    if values.dtype.kind not in NUMERIC_KINDS:
        raise SubmissionError(f"predictions have dtype {values.dtype}; expected numbers")
    if values.ndim == 0 or values.shape[0] != n:
        rows = 0 if values.ndim == 0 else values.shape[0]
        raise SubmissionError(f"predictions have {rows} rows; the test split has {n} "
                              f"(one row per test sample, in test order)")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).reshape(n, -1).any(axis=1).argmax())
        raise SubmissionError(f"predictions contain NaN or inf (first at row {bad})")
    if dataset.task == "classification":
        return _class_ids(values, dataset.num_classes)
    shape = target_shape(dataset)
    k = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    if values.shape[1:] == tuple(shape[1:]) or (values.ndim == 1 and k == 1) or values.shape[1:] == (k,):
        return values.astype(np.float64).reshape(n, k)
    raise SubmissionError(f"predictions have shape {values.shape}; expected {(n, k)} "
                          f"(one row of {k} value{'s' * (k != 1)} per test sample)")


def _class_ids(values: np.ndarray, num_classes: int) -> np.ndarray:
    n = values.shape[0]
    if values.ndim == 2 and values.shape[1] == num_classes and num_classes > 1:
        return values.argmax(axis=1).astype(np.int64)  # class scores
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise SubmissionError(f"predictions have shape {values.shape}; expected ({n},) class ids or "
                              f"({n}, {num_classes}) class scores")
    if values.dtype.kind == "f":
        if not np.equal(np.floor(values), values).all():
            row = int(np.argmax(np.floor(values) != values))
            raise SubmissionError(f"class id at row {row} is {values[row].item()!r}, not a whole number "
                                  f"(give ids, or ({n}, {num_classes}) class scores)")
    # Range first, in the array's own dtype: a float like 3e38 has no int64 value to cast to.
    out = (values < 0) | (values >= num_classes)
    if out.any():
        row = int(out.argmax())
        raise SubmissionError(f"class id {values[row].item()!r} at row {row} is out of range "
                              f"0..{num_classes - 1}")
    return values.astype(np.int64)




# -- scoring --------------------------------------------------------------------------------

def _check_plausible(train: np.ndarray, values: np.ndarray) -> None:
    """Refuse regression values beyond :data:`PLAUSIBLE_FACTOR` times the training targets' scale."""
    scale = max(1.0, float(np.abs(train.astype(np.float64)).max(initial=0.0)))
    far = np.abs(values) > PLAUSIBLE_FACTOR * scale
    if far.any():
        row = int(far.reshape(len(values), -1).any(axis=1).argmax())
        worst = float(np.abs(values[row]).max())
        raise SubmissionError(f"prediction {worst:.3g} at row {row} is more than {PLAUSIBLE_FACTOR:.0e} times "
                              f"the largest training target ({scale:.4g}): wrong units or scaling?")


def score_predictions(dataset: Dataset, predictions: Predictions | np.ndarray) -> dict:
    """Test metrics of valid predictions against the full file's test targets.

    The file's arrays must match its fingerprint; the metrics are computed in float64 and
    must be finite (predictions so large that they overflow are refused, not ranked).
    """
    refuse_shard(dataset)
    if dataset.public:
        raise SubmissionError(f"{dataset.path}: a public copy withholds test targets; submissions are "
                              f"scored against the full file (the leaderboard maintainer's)")
    checked = check_predictions(dataset, predictions)
    arrays = {split: dataset.load(split) for split in SPLITS}  # each array read once
    check_fingerprint(dataset, arrays)
    if dataset.task == "regression":
        _check_plausible(arrays["train"]["targets"], checked)
    targets = arrays["test"]["targets"]
    if dataset.task == "regression":
        targets = targets.reshape(len(targets), -1).astype(np.float64)
    with np.errstate(all="ignore"):  # overflow shows as a non-finite metric, refused below
        metrics = score(dataset.task, checked, targets, dataset.num_classes)
    metric = PRIMARY_METRIC[dataset.task][0]
    if not np.isfinite(metrics[metric]):
        raise SubmissionError(f"predictions give a non-finite {metric} ({metrics[metric]}): "
                              f"values too large to score")
    return metrics


def submission_record(dataset: Dataset, predictions: Predictions, metrics: dict, name: str,
                      notes: str = "", params: int | None = None) -> RunRecord:
    """The leaderboard row of a scored submission (source ``submission``, no seed)."""
    if params is not None and not 0 <= params <= MAX_PARAMS:
        raise ParamError(f"--params: {params} is not in 0..{MAX_PARAMS:.0e}")
    return RunRecord(
        name=check_name(name), source="submission", fingerprint=dataset.fingerprint,
        family=dataset.family, task=dataset.task, metrics=metrics, dataset_path=str(dataset.path.resolve()),
        preset=dataset.spec.get("preset"),
        split_sizes={s: dataset.split_size(s) for s in SPLITS}, params=params,
        cnnbench_version=__version__, timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        config={"predictions_sha256": predictions.sha256}, notes=check_notes(notes or ""),
    )


def prepare_submission(dataset_path, predictions_path, name: str, notes: str = "",
                       params: int | None = None) -> tuple[Dataset, RunRecord]:
    """Load, validate and score; return the record to add. Touches no database."""
    name, notes = check_name(name), check_notes(notes or "")
    dataset = open_dataset(dataset_path)
    refuse_shard(dataset)
    predictions = load_predictions(predictions_path)
    metrics = score_predictions(dataset, predictions)
    return dataset, submission_record(dataset, predictions, metrics, name, notes, params)


# -- the public copy ------------------------------------------------------------------------

def public_spec(spec: dict) -> dict:
    """The spec a public copy shows: the seed withheld (``seed`` None, ``seed_withheld`` True)."""
    return {**spec, "seed": None, "seed_withheld": True}


def guessable_seed(spec: dict) -> str | None:
    """Why a file's dataset seed is no secret (anyone could regenerate it), or None."""
    seed, name = spec.get("seed"), spec.get("preset")
    if name:
        from .presets import get_preset

        try:
            preset = get_preset(name)
        except UnknownNameError:
            preset = None
        if preset is not None and seed == preset.spec().seed:
            return (f"it is preset {name} with its published seed {seed} (datasets/{name}.toml): anyone "
                    f"can regenerate its test labels; generate it with a secret seed: "
                    f"{secret_seed_command(preset)}")
    if not isinstance(seed, int) or seed < MIN_SECRET_SEED:
        return (f"its seed {seed} is small enough to find by trying every seed; generate it again with "
                f"--seed $(python3 -c 'import secrets; print(secrets.randbits(63))')")
    return None


def secret_seed_command(preset) -> str:
    """``cnnbench generate`` of a preset with a random secret seed."""
    return (f"cnnbench generate --preset {preset.name} "
            f"--seed $(python3 -c 'import secrets; print(secrets.randbits(63))') --out FULL.h5")


# Rows per copied block of a public copy: memory stays flat however large the split.
PUBLIC_COPY_BYTES = 64 << 20


# Test samples drawn per seed by seed_independent: enough that random labels never agree by chance.
SEED_CHECK_SAMPLES = 16


def seed_independent(dataset: Dataset) -> str | None:
    """Why a secret seed would hide nothing: the test labels do not depend on it; else None.

    The first test samples are drawn with three other seeds; when their targets come out the
    same each time (lines-3x3: a grid layout, the same six images whatever the seed), anyone
    can regenerate the test labels without knowing the seed. Random labels agree by chance
    with odds of at most 2^-(2 x 16); the draws take seconds on the slowest family.
    """
    try:
        spec = spec_from_dict(dataset.spec)
    except (CnnbenchError, KeyError, TypeError) as exc:
        raise ParamError(f"{dataset.path}: its spec cannot be regenerated by this cnnbench ({exc}), so "
                         f"whether its test labels depend on its seed cannot be checked") from None
    seeds = [(spec.seed + k) % 2 ** 63 for k in (1, 2, 3)]
    drawn = [first_samples(replace(spec, seed=seed), "test", SEED_CHECK_SAMPLES)["targets"] for seed in seeds]
    if any(not np.array_equal(drawn[0], other) for other in drawn[1:]):
        return None
    return (f"its test labels do not depend on its seed (drawn with seeds {seeds[0]}, {seeds[1]} and "
            f"{seeds[2]}, its first {len(drawn[0])} test targets come out the same): anyone can regenerate "
            f"them, a secret seed hides nothing; choose parameters whose samples are drawn at random")


def export_public(dataset_path, out, force: bool = False, allow_guessable_seed: bool = False) -> Dataset:
    """Write a public copy of a dataset: no test targets, no test extras, no seed.

    The copy is written fresh (never a copy of the full file edited afterwards: HDF5 keeps the
    bytes of a replaced attribute, so the seed would still be in the file). It holds only the
    public arrays (every split's images; train's and val's targets and extras) and the root
    attributes ``family``, ``task``, ``optimum``, ``spec`` with the seed withheld
    (:func:`public_spec`), ``public = True``, and the full file's ``fingerprint`` (so
    submissions made from the copy match the full file).

    Refused: a public file, a file whose arrays or attributes do not match its fingerprint,
    and, unless ``allow_guessable_seed``, a file whose seed can be guessed
    (:func:`guessable_seed`) or whose test labels do not depend on the seed
    (:func:`seed_independent`). Written to a temporary name, then renamed.
    """
    dataset = open_dataset(dataset_path)
    refuse_shard(dataset)
    if dataset.public:
        raise ParamError(f"{dataset.path}: is already a public copy; export from the full file")
    out = check_output_path(out, force)
    if out.resolve() == Path(dataset_path).resolve():
        raise ParamError(f"--out {str(out)!r} is the input file")
    if not allow_guessable_seed:
        why = guessable_seed(dataset.spec) or seed_independent(dataset)
        if why:
            raise ParamError(f"{dataset.path}: a public copy would not hide its test labels: {why} "
                             f"(or pass --allow-guessable-seed)")
    check_fingerprint(dataset)
    _write_public(dataset, out, force)
    return open_dataset(out)


def _write_public(dataset: Dataset, out: Path, force: bool) -> None:
    attrs = {"family": dataset.family, "task": dataset.task,
             "spec": json.dumps(public_spec(dataset.spec), sort_keys=True),
             "optimum": json.dumps(dataset.optimum), "public": True}
    with DatasetWriter(out, attrs, force=force, fingerprint=dataset.fingerprint) as writer, \
            h5py.File(dataset.path, "r") as src:
        for split in SPLITS:
            names = ["images"] if split == "test" else list(dataset.shapes[split])
            n = dataset.split_size(split)
            row_bytes = sum(src[split][name].dtype.itemsize * int(np.prod(src[split][name].shape[1:]))
                            for name in names)
            step = max(1, PUBLIC_COPY_BYTES // max(1, row_bytes))
            for start in range(0, n, step):
                block = {}
                for name in names:
                    try:
                        block[name] = src[split][name][start:start + step]
                    except (OSError, RuntimeError):
                        raise FormatError(f"{dataset.path}: array {split}/{name} cannot be read "
                                          f"(truncated or corrupt?)") from None
                if start == 0:
                    writer.create_split(split, n, block, {"targets": {"names": dataset.target_names}})
                writer.write(split, start, block)


# -- user models ----------------------------------------------------------------------------

def _split_model(spec: str) -> tuple[str, str, bool]:
    """``(module or file, factory, is_file)`` of a ``--model`` value."""
    module_part, sep, attr = spec.rpartition(":")
    if not sep or not module_part or not attr:
        raise ParamError(f"--model {spec!r}: expected FILE.py:FACTORY or package.module:FACTORY")
    return module_part, attr, module_part.endswith(".py") or os.sep in module_part or "/" in module_part


def default_model_name(spec: str) -> str:
    """The leaderboard name of ``--model``: ``mynet:make`` for ``dir/mynet.py:make``, the module
    in full for ``package.module:make``."""
    module_part, attr, is_file = _split_model(spec)
    return f"{Path(module_part).stem if is_file else module_part}:{attr}"


def load_factory(spec: str):
    """The model factory named by ``FILE.py:FACTORY`` or ``package.module:FACTORY``.

    This runs the user's code (the module's top level), which is why it happens only when
    the user names it. A module is looked up with the current folder first on ``sys.path``,
    as ``python -m`` does. Returns a callable ``factory(info)``; a factory written without
    parameters is called without the :class:`~cnnbench.train.DataInfo`.
    """
    import importlib
    import importlib.util
    import inspect
    import sys

    module_part, attr, is_file = _split_model(spec)
    if is_file:
        path = Path(module_part)
        if not path.is_file():
            raise FormatError(f"--model: {module_part}: no such file")
        name = f"cnnbench_user_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # dataclasses and pickling look the module up by name
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise ParamError(f"--model: importing {module_part} failed: {_one_line(exc)}") from None
    else:
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())  # the console script, unlike `python -m`, leaves it out
        try:
            module = importlib.import_module(module_part)
        except ModuleNotFoundError as exc:
            raise ParamError(f"--model: no module named {exc.name!r} (is it installed, or on PYTHONPATH?)") from None
        except Exception as exc:
            raise ParamError(f"--model: importing {module_part} failed: {_one_line(exc)}") from None
    factory = getattr(module, attr, None)
    if factory is None:
        raise ParamError(f"--model: {module_part} has no {attr!r}")
    if not callable(factory):
        raise ParamError(f"--model: {module_part}:{attr} is a {type(factory).__name__}, not a function or class")
    try:
        takes_info = len(inspect.signature(factory).parameters) > 0
    except (TypeError, ValueError):
        takes_info = True

    def call(info):
        try:
            return factory(info) if takes_info else factory()
        except Exception as exc:
            raise ParamError(f"--model: {attr}() raised {_one_line(exc)}") from None

    call.__name__ = attr
    return call


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def evaluate_model(dataset_path, model: str, *, name: str | None = None, seeds=(0,), epochs: int | None = None,
                   device: str = "auto", notes: str = "", progress=None, memory_budget=None):
    """Train a user's model under the baselines' protocol, once per seed; yield (dataset, record).

    A public file is refused before any user code runs. Errors in the user's model during
    training become one-line :class:`ParamError` messages.
    """
    from . import train  # torch only when a model is trained

    dataset = open_dataset(dataset_path)
    refuse_shard(dataset)  # before any user code runs
    if dataset.public or "targets" not in dataset.shapes["test"]:
        raise FormatError(f"{dataset.path}: test targets are withheld (a public file); train and "
                          f"predict on it, then `cnnbench submit` the predictions to whoever holds the full file")
    check_run_int("--epochs", epochs, 1, MAX_EPOCHS)
    name = check_name(name or default_model_name(model))  # before the user's code runs
    notes = check_notes(notes or "")
    factory = load_factory(model)
    arrays = train.prepare_data(dataset, memory_budget or train.DEFAULT_MEMORY_BUDGET)
    for seed in seeds:
        try:
            result = train.run(dataset, factory, name=name, seed=seed, epochs=epochs, device=device,
                               source="user", arrays=arrays, notes=notes,
                               progress=(lambda *a, s=seed: progress(s, *a)) if progress else None)
        except CnnbenchError:
            raise
        except Exception as exc:
            raise ParamError(f"--model {model}: training failed (seed {seed}): {_one_line(exc)}") from None
        yield dataset, result.record
