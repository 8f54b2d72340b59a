"""The fixed schema of one scored run: what training, submissions and the leaderboard share."""

from __future__ import annotations

import json
import math
import unicodedata
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
# A parameter count fits SQLite's INTEGER (and a float's exact integers) with room to spare.
MAX_PARAMS = 10**15
# Names are shown on boards, terminals and documents: one line, printable.
MAX_NAME = 80

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
    params: int | None = None  # the model's parameter count (a closed-form fit's weights included)
    epochs: int | None = None
    best_epoch: int | None = None
    wall_time_s: float | None = None
    device: str = ""  # the torch device the run used ("cpu", "cuda:0"...)
    seed: int | None = None
    torch_version: str = ""
    torch_threads: int | None = None  # torch's CPU threads during the run (None: not a torch run)
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
    def from_dict(cls, data: dict) -> RunRecord:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


# Characters never stored in a name or shown raw: C0/C1 controls (ESC starts terminal
# sequences), format characters (bidirectional overrides reorder what a reader sees) and
# line/paragraph separators.
_HIDDEN = ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn")


def hidden_chars(text: str) -> list[str]:
    """The characters of ``text`` that a terminal or document would not show as themselves."""
    return [c for c in text if unicodedata.category(c) in _HIDDEN]


def check_name(name, what: str = "name") -> str:
    """A run name, stripped; refused when empty, too long, or holding control characters."""
    from ..errors import ParamError

    if not isinstance(name, str):
        raise ParamError(f"{what} must be text")
    name = name.strip()
    if not name:
        raise ParamError(f"{what} must not be empty")
    bad = hidden_chars(name)
    if bad:
        raise ParamError(f"{what} holds control or invisible characters ({', '.join(map(_codepoint, bad[:3]))}); "
                         f"use printable text")
    if len(name) > MAX_NAME:
        raise ParamError(f"{what} must be one line of at most {MAX_NAME} characters")
    return name


def check_notes(notes, what: str = "notes") -> str:
    """Free text: line breaks and tabs allowed, other control characters refused."""
    from ..errors import ParamError

    if not isinstance(notes, str):
        raise ParamError(f"{what} must be text")
    bad = [c for c in hidden_chars(notes) if c not in "\n\t"]
    if bad:
        raise ParamError(f"{what} holds control or invisible characters ({', '.join(map(_codepoint, bad[:3]))}); "
                         f"use printable text")
    return notes


def _codepoint(c: str) -> str:
    return f"U+{ord(c):04X}"


def _int_or_none(value, low: int = 0, high: int = 2**63 - 1) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high)


def record_problem(record: RunRecord) -> str | None:
    """Why a record cannot be stored or ranked (its first problem), or None.

    Run on every record before it is written and on every row read back, so one malformed
    row (an older cnnbench's, or a hand edit) is named and skipped instead of breaking a board.
    Control characters in a name are refused when written (:func:`check_name`) but not here:
    an older row keeps its place, and every text output escapes them.
    """
    text_fields = ("fingerprint", "family", "dataset_path", "device", "torch_version", "cnnbench_version",
                   "timestamp", "notes")
    if not isinstance(record.name, str) or not record.name.strip():
        return "an empty name"
    if record.source not in SOURCES:
        return f"source {record.source!r} (expected one of {', '.join(SOURCES)})"
    if record.task not in PRIMARY_METRIC:
        return f"task {record.task!r}"
    if not isinstance(record.fingerprint, str) or not record.fingerprint:
        return "no dataset fingerprint"
    for name in text_fields:
        if not isinstance(getattr(record, name), str):
            return f"a {name} that is not text"
    if record.preset is not None and not isinstance(record.preset, str):
        return "a preset that is not text"
    for name in ("metrics", "split_sizes", "val_metrics", "curves", "config", "diagnostics"):
        if not isinstance(getattr(record, name), dict):
            return f"a {name} that is not a mapping"
    if not _int_or_none(record.protocol_version, 1) or record.protocol_version is None:
        return f"protocol version {record.protocol_version!r}"
    if not _int_or_none(record.seed):
        return f"seed {record.seed!r}"
    if not _int_or_none(record.params, 0, MAX_PARAMS):
        return f"a parameter count {record.params!r} outside 0..{MAX_PARAMS:.0e}"
    for name in ("epochs", "best_epoch", "torch_threads"):
        if not _int_or_none(getattr(record, name)):
            return f"{name} {getattr(record, name)!r}"
    value = record.metrics.get(record.metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"no {record.metric!r} in its metrics"
    if not math.isfinite(value):
        return f"a non-finite {record.metric} ({value})"
    return None


# Config entries that describe one run, not the recipe: they do not split a row.
RUN_ONLY_CONFIG = ("seed", "predictions_sha256")


def config_key(record: RunRecord) -> str:
    """What makes two runs the same recipe: the config without per-run entries, as canonical JSON."""
    config = {k: v for k, v in (record.config or {}).items() if k not in RUN_ONLY_CONFIG}
    if record.epochs is not None:  # `--epochs 5` and `--epochs 50` are different recipes
        config.setdefault("epochs", record.epochs)
    return json.dumps(config, sort_keys=True, default=str)


def finite_json(value):
    """JSON cannot carry NaN/inf; the record keeps them as None (an undefined metric)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value
