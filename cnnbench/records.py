"""The fixed schema of one scored run: what training, submissions and the leaderboard share."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

# Bump whenever a change to the training protocol or the metrics could change scores;
# the leaderboard ranks together only rows with the same protocol version.
# 2: dataset format 2, whose fingerprint also covers family, task, spec, optimum and target names.
PROTOCOL_VERSION = 2

# The metric each task is ranked by, and whether higher is better.
PRIMARY_METRIC = {"classification": ("accuracy", True), "regression": ("rmse", False)}

SOURCES = ("reference", "baseline", "user", "submission")

# Training seeds fit every consumer: torch.manual_seed, numpy, SQLite's INTEGER, and seed + 1.
MAX_SEED = 2**31 - 1

# Seed 001's failure, "the net predicts the mean": test R² at most COLLAPSE_R2 *and*, where
# the run recorded it, predictions that barely vary (std under COLLAPSE_SPREAD times the
# targets' in every column). A poor model whose predictions follow the image is not collapsed.
COLLAPSE_R2 = 0.1
COLLAPSE_SPREAD = 0.1
COLLAPSE_RULE = f"test R² <= {COLLAPSE_R2} and prediction std < {COLLAPSE_SPREAD} x the targets'"


@dataclass
class RunRecord:
    """One scored model on one dataset file.

    ``metrics`` holds the test-split metrics (``accuracy`` and ``per_class_accuracy``, or
    ``mse``, ``rmse``, ``mae`` and ``r2`` in the targets' own units); ``val_metrics`` the
    same on val at the selected epoch; ``curves`` the per-epoch lists
    (``{"train_loss": [...], "val_<metric>": [...]}``).
    """

    name: str
    source: str  # one of SOURCES
    fingerprint: str
    family: str
    task: str
    metrics: dict
    dataset_path: str = ""
    preset: str | None = None
    split_sizes: dict = field(default_factory=dict)
    val_metrics: dict = field(default_factory=dict)
    params: int | None = None  # parameter count (a closed-form fit's weights included)
    epochs: int | None = None
    best_epoch: int | None = None
    wall_time_s: float | None = None
    device: str = ""
    seed: int | None = None
    torch_version: str = ""
    cnnbench_version: str = ""
    protocol_version: int = PROTOCOL_VERSION
    timestamp: str = ""  # ISO 8601, UTC
    curves: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)  # the recipe: optimiser, lr, batch size...
    notes: str = ""
    # Not scores: what helps read one. Regression: ``prediction_std`` and ``target_std`` per
    # target column on test (a model collapsed to a constant has prediction_std near 0).
    diagnostics: dict = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return PRIMARY_METRIC[self.task][0]

    @property
    def score(self) -> float:
        return float(self.metrics[self.metric])

    @property
    def collapsed(self) -> bool | None:
        """Regression: predicting (about) one constant near the mean; None where unknowable."""
        r2 = self.metrics.get("r2")
        if self.task != "regression" or not isinstance(r2, (int, float)):
            return None
        pairs = zip(self.diagnostics.get("prediction_std", []), self.diagnostics.get("target_std", []))
        flat = all(p < COLLAPSE_SPREAD * t for p, t in pairs if t > 0)
        return r2 <= COLLAPSE_R2 and flat

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "RunRecord":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
