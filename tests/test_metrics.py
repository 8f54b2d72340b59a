"""cnnbench.board.metrics: every scorer's numbers, checked against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnbench.board.metrics import classification_metrics, regression_metrics, score


def test_accuracy_and_per_class_recall():
    m = classification_metrics(np.array([0, 1, 1, 2, 0]), np.array([0, 1, 0, 2, 2]), num_classes=4)
    assert m["accuracy"] == pytest.approx(3 / 5)
    # class 0: 1 of 2 right; class 1: 1 of 1; class 2: 1 of 2; class 3 never occurs: None, not NaN.
    assert m["per_class_accuracy"] == [0.5, 1.0, 0.5, None]


def test_regression_metrics_in_the_targets_units():
    targets = np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 16.0]])
    predicted = targets + np.array([[1.0, -1.0], [0.0, 0.0], [-1.0, 2.0]])
    m = regression_metrics(predicted, targets)
    assert m["mse"] == pytest.approx((1 + 1 + 0 + 0 + 1 + 4) / 6)  # over every element
    assert m["rmse"] == pytest.approx(math.sqrt(7 / 6))
    assert m["mae"] == pytest.approx((1 + 1 + 0 + 0 + 1 + 2) / 6)
    # SST about each column's own mean: column 0 (mean 2) 8, column 1 (mean 12) 24.
    assert m["r2"] == pytest.approx(1 - 7 / 32)


def test_r2_of_the_mean_predictor_is_zero_and_of_a_perfect_one_is_one():
    targets = np.arange(12, dtype=np.float32).reshape(6, 2)
    assert regression_metrics(np.tile(targets.mean(axis=0), (6, 1)), targets)["r2"] == pytest.approx(0.0, abs=1e-12)
    assert regression_metrics(targets, targets) == {"mse": 0.0, "rmse": 0.0, "mae": 0.0, "r2": 1.0}


def test_r2_with_constant_targets():
    targets = np.full((4, 1), 3.0)
    assert regression_metrics(targets, targets)["r2"] == 1.0
    assert regression_metrics(targets + 1, targets)["r2"] == float("-inf")


def test_one_column_targets_may_come_flat():
    flat = regression_metrics(np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0, 3.0]))
    assert flat == regression_metrics(np.array([[1.0], [2.0], [4.0]]), np.array([[1.0], [2.0], [3.0]]))


def test_score_dispatches_on_the_task():
    assert score("classification", np.array([1, 1]), np.array([1, 0]), 2)["accuracy"] == 0.5
    assert score("regression", np.array([[1.0]]), np.array([[3.0]]))["rmse"] == 2.0
