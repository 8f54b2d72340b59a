"""The leaderboard: runs stored in SQLite (standard library), ranked per dataset and protocol.

Storage
-------
One SQLite file, in WAL mode so readers never block the writer, with a busy timeout so
concurrent writers wait for each other instead of failing. Every write is one
``BEGIN IMMEDIATE`` transaction: a run is recorded whole or not at all. The schema version is
``PRAGMA user_version``; :data:`MIGRATIONS` brings an older file up to date on open, and a file
from a newer cnnbench is refused rather than misread.

Queryable fields are columns; the full :class:`~cnnbench.records.RunRecord` is kept as JSON,
so fields added to the record later need no migration to be stored.

Ranking
-------
Only rows with the same dataset fingerprint AND the same protocol version are ranked together
(a :class:`Board`). Runs of the same (name, source, config) are one entry: several training
seeds give the mean, spread, min/max and the share of seeds that solved the task
(classification: reached the best accuracy) or collapsed to the mean (regression:
:attr:`RunRecord.collapsed`). A seed recorded twice counts once (its latest run). Reference
predictors (source ``reference``: closed forms, whatever the seed) count once, their latest run,
and like the dataset's known optimum are marked rows, not ranked. Tied models share a rank
(standard competition ranking: 1, 1, 3). A row scoring better than the known optimum is flagged
(:attr:`Entry.beyond_optimum`): impossible when the optimum is exact, unless the test labels
leaked.

A missing database file is created only when a run is recorded (:class:`Leaderboard`), so a
refused command never leaves an empty database behind.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .errors import CnnbenchError
from .records import PRIMARY_METRIC, SOURCES, RunRecord

DB_ENV = "CNNBENCH_DB"
DEFAULT_TIMEOUT_S = 30.0
# Scores this close (relative to their size, at least 1) are equal: floats from different sums.
# It decides ties, reaching the best accuracy, and scoring better than the optimum.
SCORE_TOL = 1e-9


class LeaderboardError(CnnbenchError):
    """The leaderboard database is missing, corrupt, locked, or from a newer cnnbench."""


# Each entry brings the schema from version i to i + 1; append, never edit a released one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        source TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        protocol_version INTEGER NOT NULL,
        family TEXT NOT NULL,
        preset TEXT,
        task TEXT NOT NULL,
        metric TEXT NOT NULL,
        score REAL NOT NULL,
        seed INTEGER,
        config_key TEXT NOT NULL,
        params INTEGER,
        timestamp TEXT NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX runs_board ON runs (fingerprint, protocol_version);
    CREATE TABLE datasets (
        fingerprint TEXT PRIMARY KEY,
        family TEXT NOT NULL,
        task TEXT NOT NULL,
        preset TEXT,
        path TEXT,
        optimum TEXT,
        recorded_at TEXT NOT NULL
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def default_db_path() -> Path:
    """``$XDG_DATA_HOME/cnnbench/leaderboard.sqlite`` (default ``~/.local/share/cnnbench/...``)."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "cnnbench" / "leaderboard.sqlite"


def resolve_db_path(db: str | os.PathLike | None = None) -> Path:
    """The database file: ``db`` if given, else ``$CNNBENCH_DB``, else :func:`default_db_path`.

    Nothing is created here: the default folder is made when the first run is recorded.
    """
    if db:
        return Path(db)
    if os.environ.get(DB_ENV):
        return Path(os.environ[DB_ENV])
    return default_db_path()


# Config entries that describe one run, not the recipe: they do not split a row.
RUN_ONLY_CONFIG = ("seed", "predictions_sha256")


def config_key(record: RunRecord) -> str:
    """What makes two runs the same recipe: the config without per-run entries, as canonical JSON."""
    config = {k: v for k, v in (record.config or {}).items() if k not in RUN_ONLY_CONFIG}
    if record.epochs is not None:  # `--epochs 5` and `--epochs 50` are different recipes
        config.setdefault("epochs", record.epochs)
    return json.dumps(config, sort_keys=True, default=str)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _finite(value):
    """JSON cannot carry NaN/inf; the record keeps them as None (an undefined metric)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class Leaderboard:
    """A leaderboard database file, opened lazily.

    An existing file is opened and checked at once (a corrupt, foreign or newer file fails
    before any work is done). A missing file is created only when a run is about to be
    recorded, so a command refused before that point leaves no file behind; until then reads
    see an empty board.

    Parameters
    ----------
    path : file path (see :func:`resolve_db_path`)
    timeout : seconds a write waits for another writer before giving up
    create : when False, a missing file is an error instead of a new empty board
    """

    def __init__(self, path: str | os.PathLike, timeout: float = DEFAULT_TIMEOUT_S, create: bool = True):
        self.path = Path(path)
        self.timeout = timeout
        self._conn: sqlite3.Connection | None = None
        if self.path.is_dir():
            raise LeaderboardError(f"{self.path}: is a folder, not a leaderboard database")
        if not create and not self.path.exists():
            raise LeaderboardError(f"{self.path}: no leaderboard database here yet (record a run first)")
        if not self.path.parent.is_dir() and self.path != default_db_path():
            raise LeaderboardError(f"{self.path}: folder {str(self.path.parent)!r} does not exist")
        if self.path.exists():
            self._connect()

    def _connect(self) -> sqlite3.Connection:
        """The open connection; the first call opens (creating the file if needed) and migrates."""
        if self._conn is not None:
            return self._conn
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)  # the default folder, on first use
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per write.
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            mode = self._switch_to_wal(conn)
            if mode.lower() != "wal" and self.path.exists() and os.access(self.path, os.W_OK):
                raise LeaderboardError(f"{self.path}: cannot switch the database to WAL mode ({mode})")
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.Error as exc:
            self.close()
            raise self._error(exc) from None
        except LeaderboardError:
            self.close()
            raise
        return conn

    def _switch_to_wal(self, conn: sqlite3.Connection) -> str:
        """``PRAGMA journal_mode = WAL``, retried while another process holds the file.

        SQLite answers "database is locked" to this pragma at once, without waiting through
        the busy timeout, when another connection is creating or switching the same new file:
        several first writers starting together would otherwise fail.
        """
        deadline, delay = time.monotonic() + self.timeout, 0.002
        while True:
            try:
                return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if not ("locked" in str(exc) or "busy" in str(exc)) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(2 * delay, 0.1)

    # -- plumbing -------------------------------------------------------------------------

    def _error(self, exc: sqlite3.Error) -> LeaderboardError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return LeaderboardError(f"{self.path}: database is locked by another process (try again)")
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return LeaderboardError(f"{self.path}: not a cnnbench leaderboard (corrupt or not SQLite)")
        if "readonly" in text or "unable to open" in text:
            return LeaderboardError(f"{self.path}: cannot open the database for writing ({text})")
        return LeaderboardError(f"{self.path}: database error: {text}")

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LeaderboardError(f"{self.path}: schema version {version} is newer than this "
                                   f"cnnbench reads ({SCHEMA_VERSION}); upgrade cnnbench")
        if version == SCHEMA_VERSION:
            self._check_tables()
            return
        with self._write():
            # Re-read inside the lock: another process may have migrated meanwhile.
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0 and self._conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]:
                raise LeaderboardError(f"{self.path}: an SQLite file, but not a cnnbench leaderboard")
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_tables(self) -> None:
        names = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"runs", "datasets"} <= names:
            raise LeaderboardError(f"{self.path}: not a cnnbench leaderboard (tables missing)")

    class _Transaction:
        def __init__(self, board: "Leaderboard"):
            self.board = board

        def __enter__(self):
            self.board._conn.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type, exc, tb):
            conn = self.board._conn
            if exc_type is None:
                conn.execute("COMMIT")
            elif conn.in_transaction:
                conn.execute("ROLLBACK")
            return False

    def _write(self) -> "_Transaction":
        self._connect()
        return Leaderboard._Transaction(self)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "Leaderboard":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing --------------------------------------------------------------------------

    def add(self, record: RunRecord, dataset=None) -> int:
        """Record one run in one transaction; return its row id.

        ``dataset`` (an :class:`~cnnbench.h5format.Dataset`) stores the file's known optimum
        and preset with its fingerprint; without it, the file at ``record.dataset_path`` is
        read for them when it still exists and has the same fingerprint.
        """
        return self.add_many([record], dataset)[0]

    def add_many(self, records: list[RunRecord], dataset=None) -> list[int]:
        """Record several runs (e.g. the seeds of one recipe) in ONE transaction: all or none.

        Every record is checked before the database is opened: a refused record creates no file.
        """
        if not records:
            return []
        for record in records:
            _check_record(record)
        datasets = {}
        for record in records:
            if record.fingerprint not in datasets:
                same = dataset if dataset is not None and dataset.fingerprint == record.fingerprint else None
                if same is None and record.dataset_path:
                    same = _dataset_if_same(record.dataset_path, record.fingerprint)
                datasets[record.fingerprint] = same
        rows = []
        for record in records:
            stored = asdict(record)
            stored["timestamp"] = record.timestamp or _now()
            stored = _finite(stored)
            rows.append((record.name, record.source, record.fingerprint, int(record.protocol_version),
                         record.family, record.preset, record.task, record.metric, record.score,
                         record.seed, config_key(record), record.params, stored["timestamp"],
                         json.dumps(stored, sort_keys=True)))
        try:
            with self._write():
                ids = []
                for record, row in zip(records, rows):
                    cursor = self._conn.execute(
                        "INSERT INTO runs (name, source, fingerprint, protocol_version, family, preset,"
                        " task, metric, score, seed, config_key, params, timestamp, record)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
                    ids.append(cursor.lastrowid)
                    self._upsert_dataset(record, datasets[record.fingerprint])
                return ids
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def add_dataset(self, dataset) -> None:
        """Remember a dataset file's preset and optimum under its fingerprint."""
        record = RunRecord(name="", source="reference", fingerprint=dataset.fingerprint,
                           family=dataset.family, task=dataset.task, metrics={},
                           dataset_path=str(dataset.path.resolve()), preset=dataset.spec.get("preset"))
        try:
            with self._write():
                self._upsert_dataset(record, dataset)
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _upsert_dataset(self, record: RunRecord, dataset) -> None:
        optimum = json.dumps(dataset.optimum) if dataset is not None and dataset.optimum else None
        preset = record.preset or (dataset.spec.get("preset") if dataset is not None else None)
        self._conn.execute(
            "INSERT INTO datasets (fingerprint, family, task, preset, path, optimum, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO UPDATE SET"
            " preset = coalesce(excluded.preset, preset), path = coalesce(excluded.path, path),"
            " optimum = coalesce(excluded.optimum, optimum)",
            (record.fingerprint, record.family, record.task, preset, record.dataset_path or None,
             optimum, _now()))

    # -- reading --------------------------------------------------------------------------

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Rows of a read; none while the database file does not exist (nothing recorded yet)."""
        if self._conn is None and not self.path.exists():
            return []
        try:
            return self._connect().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def runs(self, fingerprint: str | None = None, protocol_version: int | None = None) -> list[RunRecord]:
        """Every recorded run, oldest first, optionally of one dataset and/or protocol version."""
        return [record for _, record in self._rows(fingerprint, protocol_version)]

    def _rows(self, fingerprint=None, protocol_version=None) -> list[tuple[int, RunRecord]]:
        where, args = [], []
        if fingerprint is not None:
            where.append("fingerprint = ?")
            args.append(fingerprint)
        if protocol_version is not None:
            where.append("protocol_version = ?")
            args.append(int(protocol_version))
        sql = "SELECT id, record FROM runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        return [(row_id, RunRecord.from_dict(json.loads(text))) for row_id, text in self._query(sql, tuple(args))]

    def count(self) -> int:
        rows = self._query("SELECT count(*) FROM runs")
        return rows[0][0] if rows else 0

    def fingerprints(self, preset: str | None = None) -> list[str]:
        """Fingerprints with at least one run, by preset (or family) name, then first recording."""
        rows = self._query(
            "SELECT r.fingerprint, min(r.id), coalesce(d.preset, r.preset, ''), r.family FROM runs r"
            " LEFT JOIN datasets d ON d.fingerprint = r.fingerprint GROUP BY r.fingerprint")
        if preset is not None:
            rows = [r for r in rows if r[2] == preset]
        return [r[0] for r in sorted(rows, key=lambda r: (r[2] or r[3], r[1]))]

    def dataset_info(self, fingerprint: str) -> dict | None:
        rows = self._query("SELECT family, task, preset, path, optimum FROM datasets WHERE fingerprint = ?",
                           (fingerprint,))
        if not rows:
            return None
        family, task, preset, path, optimum = rows[0]
        return {"family": family, "task": task, "preset": preset, "path": path,
                "optimum": json.loads(optimum) if optimum else None}

    def boards(self, fingerprints: list[str] | None = None, optimum: dict | None = None) -> list["Board"]:
        """Ranked boards, one per (fingerprint, protocol version), current protocol first.

        ``optimum`` (a dataset file's ``optimum``) overrides the stored one; it applies when
        one fingerprint is asked for.
        """
        fingerprints = self.fingerprints() if fingerprints is None else list(fingerprints)
        out = []
        for fp in fingerprints:
            info = self.dataset_info(fp) or {}
            known = optimum if optimum is not None and len(fingerprints) == 1 else info.get("optimum")
            rows = self._rows(fp)
            versions = sorted({r.protocol_version for _, r in rows}, reverse=True)
            for version in versions:
                same = [(i, r) for i, r in rows if r.protocol_version == version]
                out.append(rank(same, known, preset=info.get("preset")))
        return out


def _check_record(record: RunRecord) -> None:
    problems = []
    if not record.name:
        problems.append("an empty name")
    if record.source not in SOURCES:
        problems.append(f"source {record.source!r} (expected one of {', '.join(SOURCES)})")
    if record.task not in PRIMARY_METRIC:
        problems.append(f"task {record.task!r}")
    if not record.fingerprint:
        problems.append("no dataset fingerprint")
    if not problems:
        try:
            value = record.score
        except (KeyError, TypeError, ValueError):
            problems.append(f"no {record.metric!r} in its metrics")
        else:
            if not math.isfinite(value):
                problems.append(f"a non-finite {record.metric} ({value})")
    if problems:
        raise LeaderboardError(f"run {record.name!r} not recorded: it has {problems[0]}")


def _dataset_if_same(path: str, fingerprint: str):
    from .h5format import open_dataset  # h5py only when a file has to be read

    try:
        dataset = open_dataset(path)
    except CnnbenchError:
        return None
    return dataset if dataset.fingerprint == fingerprint else None


# -- ranking ------------------------------------------------------------------------------

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
    params: int | None = None
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)  # mean over seeds of every scalar test metric
    run_ids: list = field(default_factory=list)
    notes: str = ""
    exact: bool | None = None  # optimum rows: exact or estimated


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
    optimum: dict | None
    entries: list[Entry]
    solved_target: float | None = None  # the accuracy a seed must reach to count as solved
    split_sizes: dict = field(default_factory=dict)  # train/val/test sizes, from the records

    @property
    def title(self) -> str:
        """The preset's name; else family, short fingerprint and split sizes, which tell apart
        two files made without a preset."""
        if self.preset:
            return self.preset
        sizes = "/".join(str(self.split_sizes[s]) for s in ("train", "val", "test") if s in self.split_sizes)
        return f"{self.family} {self.fingerprint[:8]}" + (f" ({sizes})" if sizes else "")

    @property
    def beyond_optimum_rows(self) -> list["Entry"]:
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
            out.append(_finite(row))
        return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _std(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    m = _mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def _short(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:6]


def same_score(a: float, b: float) -> bool:
    """Equal up to :data:`SCORE_TOL` (relative to the scores' size, at least 1)."""
    return abs(a - b) <= SCORE_TOL * max(1.0, abs(a), abs(b))


def rank(rows: list[tuple[int, RunRecord]], optimum: dict | None = None, preset: str | None = None) -> Board:
    """Group runs of one fingerprint and protocol version into a ranked :class:`Board`.

    ``rows`` are ``(row id, record)`` pairs; they must share fingerprint and protocol version.
    """
    if not rows:
        raise ValueError("rank() needs at least one run")
    first = rows[0][1]
    if any(r.fingerprint != first.fingerprint or r.protocol_version != first.protocol_version for _, r in rows):
        raise ValueError("rank() mixes fingerprints or protocol versions: not comparable")
    metric, higher = PRIMARY_METRIC[first.task]
    if optimum and optimum.get("metric") != metric:
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
        best_accuracy = (optimum["value"] if optimum else
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
                      run_ids=[i for i, _ in runs], notes=records[-1].notes)
        if metric == "accuracy":
            entry.solved_share = sum(s >= best_accuracy or same_score(s, best_accuracy)
                                     for s in scores) / len(scores)
        else:
            known = [r.collapsed for r in records if r.collapsed is not None]
            entry.collapsed_share = sum(known) / len(known) if known else None
        if optimum:
            gap = optimum["value"] - entry.score if higher else entry.score - optimum["value"]
            entry.gap_to_optimum = gap
            entry.beyond_optimum = gap < 0 and not same_score(entry.score, optimum["value"])
        entries.append(entry)
    if optimum:
        entries.append(Entry(kind="optimum", name="known optimum", source="dataset", score=optimum["value"],
                             gap_to_optimum=0.0, notes=optimum.get("why", ""), exact=optimum.get("exact"),
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
