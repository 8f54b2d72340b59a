"""Predictions made elsewhere: read without executing anything, checked, and scored.

Predictions are loaded without executing anything (``numpy.load(..., allow_pickle=False)``,
CSV as text, HDF5 arrays only from a plain dataset stored in the submitted file), checked
against the dataset's test split, and scored by :func:`cnnbench.board.metrics.score`, the code that
scores the baselines, against a dataset file whose arrays still match its recorded
fingerprint. Every check runs before the leaderboard is opened, so a refused submission
leaves the database untouched.
"""


from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..data.h5file import SPLITS, Dataset, check_fingerprint, open_dataset
from ..data.shards import refuse_shard
from ..errors import FormatError, ParamError
from .metrics import score
from .records import MAX_PARAMS, PRIMARY_METRIC, RunRecord, check_name, check_notes

PREDICTION_SUFFIXES = (".npy", ".csv", ".h5", ".hdf5")
# dtype kinds read as numbers: signed and unsigned integers, floats (bool is not a number here).
NUMERIC_KINDS = "iuf"
# A regression prediction further than this many times the training targets' largest magnitude
# (at least 1) from zero is a unit or scaling mistake, not a prediction: refused, not ranked last.
PLAUSIBLE_FACTOR = 1e6


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
        raise ParamError(f"params: {params} is not in 0..{MAX_PARAMS:.0e}")
    return RunRecord(
        name=check_name(name), source="submission", fingerprint=dataset.fingerprint,
        family=dataset.family, task=dataset.task, metrics=metrics, dataset_path=str(dataset.path.resolve()),
        preset=dataset.spec.get("preset"),
        split_sizes={s: dataset.split_size(s) for s in SPLITS}, params=params,
        cnnbench_version=__version__, timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
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
