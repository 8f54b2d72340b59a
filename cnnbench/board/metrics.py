"""Scores over a whole split, in the targets' own units: one implementation for every scorer.

Baselines, user models and submitted predictions are all scored here, so a leaderboard row
means the same thing whatever produced it. Never average per-batch values: pass the whole
split's predictions.
"""

from __future__ import annotations

import numpy as np


def classification_metrics(predicted: np.ndarray, targets: np.ndarray, num_classes: int) -> dict:
    """Accuracy and per-class accuracy (recall) from predicted class ids.

    Parameters
    ----------
    predicted, targets : ndarray of shape (n,), integer class ids
    num_classes : int

    Returns
    -------
    dict with ``accuracy`` (float) and ``per_class_accuracy`` (list of float, NaN-free:
    a class absent from ``targets`` gets None).
    """
    predicted, targets = np.asarray(predicted).ravel(), np.asarray(targets).ravel()
    correct = predicted == targets
    per_class = []
    for k in range(num_classes):
        members = targets == k
        per_class.append(float(correct[members].mean()) if members.any() else None)
    return {"accuracy": float(correct.mean()), "per_class_accuracy": per_class}


def regression_metrics(predicted: np.ndarray, targets: np.ndarray) -> dict:
    """MSE, RMSE, MAE and R² over all target columns, in the targets' units.

    Parameters
    ----------
    predicted, targets : ndarray of shape (n, k), float

    R² is 1 - SSE / SST with SST summed over columns about each column's own mean, so the
    constant mean predictor scores exactly 0 and a perfect one 1. MSE and MAE average over
    every element (samples and columns); RMSE is its square root.
    """
    predicted = np.asarray(predicted, dtype=np.float64).reshape(len(targets), -1)
    targets = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
    error = predicted - targets
    sse = float((error ** 2).sum())
    sst = float(((targets - targets.mean(axis=0)) ** 2).sum())
    mse = sse / error.size
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.abs(error).mean()),
        "r2": 1.0 - sse / sst if sst > 0 else (1.0 if sse == 0 else float("-inf")),
    }


def score(task: str, predicted: np.ndarray, targets: np.ndarray, num_classes: int = 0) -> dict:
    """Dispatch on the dataset's task; ``predicted`` is class ids or (n, k) values."""
    if task == "classification":
        return classification_metrics(predicted, targets, num_classes)
    return regression_metrics(predicted, targets)
