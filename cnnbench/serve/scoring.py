"""Scoring an upload on the two parts of a hosted board's test set.

Reading and checking the predictions is the library's (:func:`cnnbench.board.predictions.load_predictions`,
:func:`cnnbench.board.predictions.check_predictions`, the plausibility bound), and so is each part's score
(:func:`cnnbench.board.metrics.score`). What is added: the bytes of an upload are read from a private
temporary file, and the test set is scored as two parts, the public one (shown live) and the
private one (shown when the board closes). Only scalar metrics are kept: per-class accuracies
on a small part would tell a prober more per submission than the score.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from ..board import predictions as reading
from ..board.metrics import score
from ..board.records import PRIMARY_METRIC
from ..data.h5file import SPLITS, Dataset, check_fingerprint, open_dataset
from ..errors import CnnbenchError, FormatError


@dataclass
class LoadedBoard:
    """A board as the server holds it: the full file's description and test/train targets in
    memory (checked against its fingerprint once, at start), and which test rows are public."""

    name: str
    dataset: Dataset
    public_path: Path
    public_rows: np.ndarray  # bool mask over the test split: True = public part
    test_targets: np.ndarray
    train_targets: np.ndarray
    daily_limit: int | None

    @classmethod
    def load(cls, name: str, full: Path, public: Path, split: Path, daily_limit: int | None) -> LoadedBoard:
        dataset = open_dataset(full)
        arrays = {s: dataset.load(s) for s in SPLITS}
        check_fingerprint(dataset, arrays)
        mask = np.load(split, allow_pickle=False)
        n = dataset.split_size("test")
        if mask.dtype != np.bool_ or mask.shape != (n,) or mask.all() or not mask.any():
            raise FormatError(f"{split}: not a public/private split of {n} test rows")
        targets = arrays["test"]["targets"]
        if dataset.task == "regression":
            targets = targets.reshape(len(targets), -1).astype(np.float64)
        return cls(name, dataset, public, mask, targets, arrays["train"]["targets"], daily_limit)

    @property
    def sizes(self) -> dict:
        return {"public": int(self.public_rows.sum()), "private": int((~self.public_rows).sum())}


def load_upload(data: bytes, filename: str) -> reading.Predictions:
    """Predictions from an upload's bytes, read by :func:`cnnbench.board.predictions.load_predictions`.

    The format comes from the filename's suffix; messages name the upload, not the temporary file.
    """
    shown = PureWindowsPath(PurePosixPath(filename or "").name).name or "upload"
    suffix = Path(shown).suffix.lower()
    if suffix not in reading.PREDICTION_SUFFIXES:
        raise FormatError(f"{shown}: unknown predictions format {suffix or '(no suffix)'!r} "
                          f"(expected {', '.join(reading.PREDICTION_SUFFIXES)})")
    with tempfile.TemporaryDirectory(prefix="cnnbench-upload-") as folder:
        path = Path(folder) / f"predictions{suffix}"
        path.write_bytes(data)
        try:
            return reading.load_predictions(path)
        except CnnbenchError as exc:
            raise type(exc)(str(exc).replace(str(path), shown)) from None


def _scalars(metrics: dict) -> dict:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def score_parts(board: LoadedBoard, predictions) -> tuple[dict, dict]:
    """(public metrics, private metrics) of valid predictions; :class:`SubmissionError` otherwise."""
    dataset = board.dataset
    checked = reading.check_predictions(dataset, predictions)
    if dataset.task == "regression":
        reading._check_plausible(board.train_targets, checked)
    metric = PRIMARY_METRIC[dataset.task][0]
    out = []
    for rows in (board.public_rows, ~board.public_rows):
        with np.errstate(all="ignore"):
            metrics = _scalars(score(dataset.task, checked[rows], board.test_targets[rows], dataset.num_classes))
        if not math.isfinite(metrics[metric]):
            raise reading.SubmissionError(f"predictions give a non-finite {metric}: values too large to score")
        out.append(metrics)
    return out[0], out[1]
