"""Ranking: the runs of one dataset fingerprint and protocol version as a :class:`Board`.

Runs of the same (name, source, config) are one entry: several training seeds give the mean,
spread, min/max and the share of seeds that solved the task (classification: reached the best
accuracy) or collapsed to the mean (regression: :attr:`RunRecord.collapsed`). A seed recorded
twice counts once (its latest run). Reference predictors (closed forms, whatever the seed)
count once, their latest run, and like the dataset's known optimum are marked rows, not
ranked. Tied models share a rank (standard competition ranking: 1, 1, 3). A row scoring better
than the known optimum is flagged (:attr:`Entry.beyond_optimum`): impossible when the optimum
is exact, unless the test labels leaked.

Pure functions of records: no database, no files (the store is :mod:`cnnbench.board.store`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

from ..data import SPLITS
from ..data.optimum import Optimum
from .records import PRIMARY_METRIC, RunRecord, config_key, finite_json

# Scores this close (relative to their size, at least 1) are equal: floats from different sums.
# It decides ties, reaching the best accuracy, and scoring better than the optimum.
SCORE_TOL = 1e-9


@dataclass
class Entry:
    """One line of a board: a recipe over its seeds, a reference predictor, or the optimum."""

    kind: str  # "model", "reference" or "optimum"
    name: str
    source: str
    score: float  # mean over seeds of the primary metric
    rank: int | None = None  # models only; reference and optimum rows are marked, not ranked
    std: float | None = None  # sample std over seeds (None for one seed)
    min: float | None = None
    max: float | None = None
    n_seeds: int = 1
    seeds: list = field(default_factory=list)
    scores: list = field(default_factory=list)
    solved_share: float | None = None  # classification: share of seeds reaching the best accuracy
    collapsed_share: float | None = None  # regression: share of seeds collapsed (RunRecord.collapsed)
    # Where the optimum is known: how far the score falls short of it, in the metric's units
    # (optimum - score when higher is better, score - optimum when lower is better). Negative:
    # better than the optimum, impossible when it is exact (a leak or a bug), see beyond_optimum.
    gap_to_optimum: float | None = None
    beyond_optimum: bool = False
    params: int | None = None  # the model's parameter count (RunRecord.params), not generator parameters
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)  # mean over seeds of every scalar test metric
    run_ids: list = field(default_factory=list)
    notes: str = ""
    exact: bool | None = None  # optimum rows: exact or estimated
    # The determinism conditions of the entry's runs: torch's CPU threads, torch version and
    # device. One value when every run agrees, else the distinct values joined ("1,4");
    # None where not recorded (submissions, rows from before cnnbench recorded them).
    torch_threads: int | str | None = None
    torch_version: str | None = None
    device: str | None = None


@dataclass
class Board:
    """The ranked runs of one dataset fingerprint under one protocol version."""

    fingerprint: str
    protocol_version: int
    family: str
    task: str
    preset: str | None
    metric: str
    higher_is_better: bool
    optimum: Optimum | None
    entries: list[Entry]
    solved_target: float | None = None  # the accuracy a seed must reach to count as solved
    split_sizes: dict = field(default_factory=dict)  # train/val/test sizes, from the records

    @property
    def title(self) -> str:
        """The preset's name; else family, short fingerprint and split sizes, which tell apart
        two files made without a preset."""
        if self.preset:
            return self.preset
        sizes = "/".join(str(self.split_sizes[s]) for s in SPLITS if s in self.split_sizes)
        return f"{self.family} {self.fingerprint[:8]}" + (f" ({sizes})" if sizes else "")

    @property
    def beyond_optimum_rows(self) -> list[Entry]:
        """Rows scoring better than the known optimum (a leak, a bug, or an optimistic estimate)."""
        return [e for e in self.entries if e.beyond_optimum]

    def rank_of(self, name: str, source: str | None = None) -> int | None:
        for entry in self.entries:
            if entry.name == name and (source is None or entry.source == source):
                return entry.rank
        return None

    def rows(self) -> list[dict]:
        """JSON-ready rows: every entry with the board's identity (``name``, ``metric``,
        ``score``, ``fingerprint``...)."""
        out = []
        for entry in self.entries:
            row = {"fingerprint": self.fingerprint, "protocol_version": self.protocol_version,
                   "dataset": self.title, "family": self.family, "preset": self.preset,
                   "task": self.task, "metric": self.metric, "higher_is_better": self.higher_is_better}
            row.update(asdict(entry))
            out.append(finite_json(row))
        return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _std(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    m = _mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def _common(values):
    """The one value every run shares, the distinct ones joined when they differ, or None."""
    known = sorted({v for v in values if v not in (None, "")}, key=str)
    if not known:
        return None
    return known[0] if len(known) == 1 else ",".join(map(str, known))


def _short(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:6]


def same_score(a: float, b: float) -> bool:
    """Equal up to :data:`SCORE_TOL` (relative to the scores' size, at least 1)."""
    return abs(a - b) <= SCORE_TOL * max(1.0, abs(a), abs(b))


def rank(rows: list[tuple[int, RunRecord]], optimum: Optimum | dict | None = None,
         preset: str | None = None) -> Board:
    """Group runs of one fingerprint and protocol version into a ranked :class:`Board`.

    ``rows`` are ``(row id, record)`` pairs; they must share fingerprint and protocol version.
    """
    if not rows:
        raise ValueError("rank() needs at least one run")
    first = rows[0][1]
    if any(r.fingerprint != first.fingerprint or r.protocol_version != first.protocol_version for _, r in rows):
        raise ValueError("rank() mixes fingerprints or protocol versions: not comparable")
    metric, higher = PRIMARY_METRIC[first.task]
    optimum = Optimum.of(optimum)  # a stored board's optimum comes as its JSON dict
    if optimum and optimum.metric != metric:
        optimum = None  # an optimum in another metric is not comparable with this board

    # One group per recipe; within it the latest run of each seed. Reference predictors are
    # closed forms that do not depend on the training seed: only their latest run counts.
    groups: dict[tuple, dict] = {}
    for row_id, record in rows:
        key = (record.name, record.source, config_key(record))
        seed = None if record.source == "reference" else record.seed
        groups.setdefault(key, {})[seed] = (row_id, record)
    names_used: dict[tuple, int] = {}
    for name, source, _ in groups:
        names_used[(name, source)] = names_used.get((name, source), 0) + 1

    best_accuracy = None
    if metric == "accuracy":
        best_accuracy = (optimum.value if optimum else
                         max(r.score for _, r in rows))

    entries = []
    for (name, source, key), by_seed in groups.items():
        runs = sorted(by_seed.values(), key=lambda p: (p[1].seed is None, p[1].seed or 0))
        records = [r for _, r in runs]
        scores = [r.score for r in records]
        shown = name if names_used[(name, source)] == 1 else f"{name} [{_short(key)}]"
        scalar = sorted({k for r in records for k, v in r.metrics.items() if isinstance(v, (int, float))})
        metrics = {}
        for k in scalar:
            values = [r.metrics[k] for r in records if isinstance(r.metrics.get(k), (int, float))]
            metrics[k] = _mean(values)
        entry = Entry(kind="reference" if source == "reference" else "model", name=shown, source=source,
                      score=_mean(scores), std=_std(scores), min=min(scores), max=max(scores),
                      n_seeds=len(records), seeds=[r.seed for r in records], scores=scores,
                      params=records[-1].params, config=json.loads(key), metrics=metrics,
                      run_ids=[i for i, _ in runs], notes=records[-1].notes,
                      torch_threads=_common(r.torch_threads for r in records),
                      torch_version=_common(r.torch_version for r in records),
                      device=_common(r.device for r in records))
        if metric == "accuracy":
            entry.solved_share = sum(s >= best_accuracy or same_score(s, best_accuracy)
                                     for s in scores) / len(scores)
        else:
            known = [r.collapsed for r in records if r.collapsed is not None]
            entry.collapsed_share = sum(known) / len(known) if known else None
        if optimum:
            gap = optimum.value - entry.score if higher else entry.score - optimum.value
            entry.gap_to_optimum = gap
            entry.beyond_optimum = gap < 0 and not same_score(entry.score, optimum.value)
        entries.append(entry)
    if optimum:
        entries.append(Entry(kind="optimum", name="known optimum", source="dataset", score=optimum.value,
                             gap_to_optimum=0.0, notes=optimum.why, exact=optimum.exact,
                             n_seeds=0))

    # Best first; the optimum sorts above any model tied with it. Standard competition ranking:
    # tied models share a rank and the next one skips (1, 1, 3).
    sign = -1.0 if higher else 1.0
    entries.sort(key=lambda e: (sign * e.score, e.kind != "optimum", -e.n_seeds, e.name))
    position, previous = 0, None
    for entry in entries:
        if entry.kind == "model":
            position += 1
            tied = previous is not None and same_score(entry.score, previous.score)
            entry.rank = previous.rank if tied else position
            previous = entry
    sizes = next((r.split_sizes for _, r in reversed(rows) if r.split_sizes), {})
    return Board(fingerprint=first.fingerprint, protocol_version=first.protocol_version,
                 family=first.family, task=first.task, preset=preset or first.preset, metric=metric,
                 higher_is_better=higher, optimum=optimum, entries=entries, solved_target=best_accuracy,
                 split_sizes=dict(sizes))
