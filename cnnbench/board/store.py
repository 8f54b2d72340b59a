"""The leaderboard store: runs kept in SQLite (standard library) or PostgreSQL, read back ranked per dataset.

Storage
-------
The SQL is written once here; what each database does its own way is one small backend
module each (:mod:`cnnbench.board.db`): :mod:`.sqlite_db`, one file in WAL mode with a busy
timeout, and :mod:`.postgres_db`, a database server for several machines. Every write is one
transaction that first takes the one writer's lock (SQLite's ``BEGIN IMMEDIATE``, a
PostgreSQL advisory lock): a run is recorded whole or not at all, and a check made inside
the transaction still holds when it commits. :data:`MIGRATIONS` brings an older schema up to
date at its first write, and a database from a newer cnnbench is refused rather than misread.
Reading never writes: no migration; another program's database is recognised, and refused,
before anything is written to it.

Queryable fields are columns; the full :class:`~cnnbench.board.records.RunRecord` is kept as JSON,
so fields added to the record later need no migration to be stored. Each fingerprint's dataset
identity (family, task, preset, spec, class/target names, optimum) is stored once and checked
on every later write: an edited copy of a file is refused, never allowed to rewrite it.

Ranking (:func:`cnnbench.board.ranking.rank`) is apart: pure functions of the records read here.

A missing database is created only when a run is recorded (:class:`Leaderboard`), so a
refused command never leaves an empty database behind.
"""

from __future__ import annotations

import json
import os
import warnings
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime

from ..errors import CnnbenchWarning
from .db import DB_ENV, LeaderboardError, db_exists, default_db_path, display, is_url, open_backend, resolve_db_path
from .ranking import Board, rank
from .records import PRIMARY_METRIC, RunRecord, config_key, finite_json, hidden_chars, record_problem

DEFAULT_TIMEOUT_S = 30.0


class BoardWarning(CnnbenchWarning):
    """A stored row that cannot be read or ranked: skipped, named by its id (the CLI prints
    ``Warning: ...`` on stderr)."""


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
    # 2: the rest of a dataset's identity (spec, class or target names), compared on every
    # write; each run's determinism conditions (torch threads and version, device).
    """
    ALTER TABLE datasets ADD COLUMN spec TEXT;
    ALTER TABLE datasets ADD COLUMN target_names TEXT;
    ALTER TABLE runs ADD COLUMN torch_threads INTEGER;
    ALTER TABLE runs ADD COLUMN torch_version TEXT;
    ALTER TABLE runs ADD COLUMN device TEXT;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def _backfill_conditions(conn) -> None:
    """Version 2's run columns, from the records of older rows (threads were not recorded)."""
    for row_id, text in conn.execute("SELECT id, record FROM runs").fetchall():
        try:
            data = json.loads(text)
        except (TypeError, ValueError):
            continue  # a malformed row stays as it was; reads skip it with a warning
        if isinstance(data, dict):
            conn.execute("UPDATE runs SET torch_version = ?, device = ? WHERE id = ?",
                         (data.get("torch_version") or None, data.get("device") or None, row_id))


# Python steps run after a migration's SQL (index as in MIGRATIONS).
BACKFILL = {1: _backfill_conditions}


# Where a leaderboard lives (re-exported: callers import them from here).
__all__ = ["DB_ENV", "BoardWarning", "DatasetMismatchError", "Leaderboard", "LeaderboardError", "MIGRATIONS",
           "SCHEMA_VERSION", "dataset_identity", "db_exists", "default_db_path", "display", "is_url",
           "resolve_db_path"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Leaderboard:
    """A leaderboard: an SQLite file or a PostgreSQL database (:mod:`cnnbench.board.db`), opened lazily.

    An existing file (or any PostgreSQL URL) is opened and checked at once: a corrupt, foreign
    or newer database, or a server that cannot be reached, fails before any work is done. A
    missing file (or a database without cnnbench's tables) gets its tables only when a run is
    about to be recorded, so a command refused before that point leaves nothing behind; until
    then reads see an empty board.

    Reading never changes the database: no migration, and on SQLite no journal-mode switch and
    no ``-wal``/``-shm`` files beside a file we may not write (:mod:`.sqlite_db`). Before
    anything is written, the database is checked to be a cnnbench leaderboard (or empty):
    another program's is never touched.

    Parameters
    ----------
    path : an SQLite file path or a ``postgresql://`` URL (see :func:`resolve_db_path`)
    timeout : seconds a write waits for another writer before giving up
    create : when False, a missing database is an error instead of a new empty board
    """

    def __init__(self, path: str | os.PathLike, timeout: float = DEFAULT_TIMEOUT_S, create: bool = True):
        self._db = open_backend(path, timeout, create)
        self.path = self._db.path  # the SQLite file; None for PostgreSQL
        self.name = self._db.name  # for messages (a URL without its password)
        self.timeout = timeout
        self._conn = None
        self._writable = False  # the open connection has checked, migrated and may write
        self._version = SCHEMA_VERSION  # of the open database; 0: empty (no cnnbench tables yet)
        self._depth = 0  # nesting of transaction()
        self._begun = False  # a write transaction begun in the current transaction()
        if self._db.opens_at_once:
            self._reader()

    def exists(self) -> bool:
        """Whether there is a database to read (an SQLite file; cnnbench's tables in PostgreSQL)."""
        return self._db.exists()

    @property
    def missing(self) -> str:
        """What to say of this location while nothing is recorded there ("does not exist")."""
        return self._db.missing

    # -- opening --------------------------------------------------------------------------

    def _identify(self, conn) -> int:
        """The database's schema version (0: empty), by reading only.

        Refuses another program's database, a newer cnnbench's, or one with tables missing.
        """
        for attempt in range(2):
            try:
                version = conn.schema_version()
                names = conn.table_names()
            except self._db.errors as exc:
                raise self._error(exc) from None
            # The two reads are not one snapshot: a writer creating the schema may commit
            # between them (its tables appear with a version, at once). Read again once.
            if attempt == 0 and ((version == 0 and names) or (version > 0 and not {"runs", "datasets"} <= names)):
                continue
            break
        problem = None
        if version > SCHEMA_VERSION:
            problem = (f"schema version {version} is newer than this cnnbench reads ({SCHEMA_VERSION}); "
                       f"upgrade cnnbench")
        elif version == 0 and names:
            problem = "not a cnnbench leaderboard (another program's tables)"
        elif version > 0 and not {"runs", "datasets"} <= names:
            problem = "not a cnnbench leaderboard (tables missing)"
        if problem:
            raise LeaderboardError(f"{self.name}: {problem}")
        return version

    def _reader(self):
        """A connection for reading; None while there is no database (nothing recorded yet)."""
        if self._conn is not None:
            return self._conn

        def identify(conn):
            self._version = self._identify(conn)
            return self._version

        conn = self._db.reader(identify)
        if conn is not None:
            self._conn, self._writable = conn, False
        return conn

    def _writer(self):
        """The connection for writing; the first call checks the database (before anything is
        written to it), then migrates it, creating the tables (and an SQLite file) if needed."""
        if self._conn is not None and self._writable:
            return self._conn
        self.close()
        self._conn = self._db.writer(self._identify)
        try:
            self._migrate()
        except self._db.errors as exc:
            self.close()
            raise self._error(exc) from None
        except BaseException:
            self.close()
            raise
        self._writable, self._version = True, SCHEMA_VERSION
        return self._conn

    # -- plumbing -------------------------------------------------------------------------

    def _error(self, exc) -> LeaderboardError:
        if self._conn is not None and self._conn.broken:
            # A database server restarted or gone: the next call reconnects instead of failing forever.
            self.close()
        return self._db.error(exc)

    def _migrate(self) -> None:
        if self._conn.schema_version() == SCHEMA_VERSION:
            return
        with self._immediate(self._conn):
            # Re-read inside the lock: another process may have created or migrated it meanwhile.
            version = self._identify(self._conn)
            for step in range(version, SCHEMA_VERSION):
                self._conn.script(MIGRATIONS[step])
                if step in BACKFILL:
                    BACKFILL[step](self._conn)
            self._conn.set_schema_version(SCHEMA_VERSION)

    @contextmanager
    def transaction(self):
        """One write transaction (one writer at a time) around several calls: all or nothing.

        ``add``, ``add_many`` and reads inside it join it; the rows it adds are visible to
        :meth:`boards` inside it, and nothing is committed unless the whole block succeeds::

            with board.transaction():
                board.add(record, dataset)
                ranked = board.boards([record.fingerprint])  # may fail: the row goes too

        The database is opened for writing (created if missing) at the first write inside
        it, so a record refused by its checks still leaves no file behind.
        """
        with self._grouped():
            yield self

    @contextmanager
    def _grouped(self):
        """transaction()'s body; the library's own writes use it, so that a subclass may
        redefine the public transaction() (cnnbench.serve's Store does)."""
        outer = self._depth == 0
        self._depth += 1
        try:
            yield self
        except BaseException:
            if outer and self._begun:
                self._begun = False
                if self._conn is not None:
                    self._conn.rollback()
            raise
        finally:
            self._depth -= 1
        if outer and self._begun:
            self._begun = False
            try:
                self._conn.commit()
            except self._db.errors as exc:
                self._conn.rollback()
                raise self._error(exc) from None

    def _begin(self):
        """The writing connection inside the current transaction(), begun on the first call."""
        if not self._begun:
            conn = self._writer()
            if conn.in_transaction:
                return conn  # a transaction opened by a subclass on this connection: join it
            try:
                conn.begin(write=True)
            except self._db.errors as exc:
                conn.rollback()
                raise self._error(exc) from None
            self._begun = True
        return self._conn

    # The names subclasses written before the read/write split use (cnnbench.serve.store).
    def _connect(self):
        return self._writer()

    def _write(self):
        return self._grouped()

    @contextmanager
    def _immediate(self, conn, write: bool = True):
        """A write transaction (or, ``write=False``, a read snapshot) on ``conn``: committed,
        or rolled back on any exception."""
        try:
            conn.begin(write=write)
        except self._db.errors as exc:
            conn.rollback()
            raise self._error(exc) from None
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        try:
            conn.commit()
        except self._db.errors as exc:
            conn.rollback()
            raise self._error(exc) from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn, self._writable = None, False

    def __enter__(self) -> Leaderboard:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing --------------------------------------------------------------------------

    def add(self, record: RunRecord, dataset=None) -> int:
        """Record one run in one transaction; return its row id.

        ``dataset`` (an :class:`~cnnbench.data.h5file.Dataset`) gives the file's identity (preset,
        spec, class or target names, optimum), stored with its fingerprint the first time and
        checked against what is stored ever after; without it, only what the record says
        (family, task, preset) is. The store never opens a dataset file: its caller does.
        """
        return self.add_many([record], dataset)[0]

    def add_many(self, records: list[RunRecord], dataset=None) -> list[int]:
        """Record several runs (e.g. the seeds of one recipe) in ONE transaction: all or none.

        Every record is checked before the database is opened: a refused record creates no
        file. A record or dataset whose identity disagrees with the board's stored one is
        refused (:class:`DatasetMismatchError`) and the stored identity is kept.
        """
        if not records:
            return []
        for record in records:
            _check_record(record)
        identities: dict[str, tuple[dict, str]] = {}
        for record in records:
            if record.fingerprint not in identities:
                same = dataset if dataset is not None and dataset.fingerprint == record.fingerprint else None
                identities[record.fingerprint] = ((dataset_identity(same), str(same.path)) if same is not None
                                                  else ({}, f"run {record.name!r}"))
            identity, where = identities[record.fingerprint]
            own = {"family": record.family, "task": record.task, "preset": record.preset}
            _refuse_disagreement(record.fingerprint, own, identity, where, "the dataset file's")
            for key, value in own.items():
                identity.setdefault(key, value)
        rows = []
        for record in records:
            stored = asdict(record)
            stored["timestamp"] = record.timestamp or _now()
            stored = finite_json(stored)
            rows.append((record.name, record.source, record.fingerprint, int(record.protocol_version),
                         record.family, record.preset, record.task, record.metric, record.score,
                         record.seed, config_key(record), record.params, stored["timestamp"],
                         json.dumps(stored, sort_keys=True), record.torch_threads,
                         record.torch_version or None, record.device or None))
        try:
            with self._grouped():
                self._begin()
                for fingerprint, (identity, where) in identities.items():
                    self._store_identity(fingerprint, identity, where,
                                         next(r.dataset_path for r in records if r.fingerprint == fingerprint))
                return [self._conn.insert(
                    "INSERT INTO runs (name, source, fingerprint, protocol_version, family, preset,"
                    " task, metric, score, seed, config_key, params, timestamp, record,"
                    " torch_threads, torch_version, device)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row) for row in rows]
        except self._db.errors as exc:
            raise self._error(exc) from None

    def add_dataset(self, dataset) -> None:
        """Remember a dataset file's identity under its fingerprint (refused if it disagrees)."""
        try:
            with self._grouped():
                self._begin()
                self._store_identity(dataset.fingerprint, dataset_identity(dataset), str(dataset.path),
                                     str(dataset.path.resolve()))
        except self._db.errors as exc:
            raise self._error(exc) from None

    def _store_identity(self, fingerprint: str, identity: dict, where: str, path: str | None) -> None:
        """Insert a fingerprint's identity, or check it against the stored one and fill in only
        what was never stored; a disagreement is refused and nothing stored is rewritten."""
        stored = self.dataset_info(fingerprint)
        if stored is None:
            self._conn.execute(
                "INSERT INTO datasets (fingerprint, family, task, preset, path, optimum, spec, target_names,"
                " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (fingerprint, identity["family"], identity["task"], identity.get("preset"), path or None,
                 _json_or_none(identity.get("optimum")), _json_or_none(identity.get("spec")),
                 _json_or_none(identity.get("target_names")), _now()))
            return
        _refuse_disagreement(fingerprint, identity, stored, where, "the board's stored")
        missing = {k: identity.get(k) for k in ("preset", "optimum", "spec", "target_names")
                   if stored.get(k) is None and identity.get(k) is not None}
        if not stored.get("path") and path:
            missing["path"] = path
        for key, value in missing.items():  # key: one of the fixed names above, never user text
            self._conn.execute(f"UPDATE datasets SET {key} = ? WHERE fingerprint = ? AND {key} IS NULL",
                               (value if key in ("preset", "path") else _json_or_none(value), fingerprint))

    def check_dataset(self, dataset) -> None:
        """Refuse a dataset file whose identity disagrees with the one stored for its
        fingerprint (an edited copy); reads only."""
        stored = self.dataset_info(dataset.fingerprint)
        if stored is not None:
            _refuse_disagreement(dataset.fingerprint, dataset_identity(dataset), stored, str(dataset.path),
                                 "the board's stored")

    # -- reading --------------------------------------------------------------------------

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Rows of a read; none while there is no database or no cnnbench table (nothing recorded yet)."""
        conn = self._reader()
        if conn is None or self._version == 0:
            return []
        try:
            return conn.execute(sql, args).fetchall()
        except self._db.errors as exc:
            raise self._error(exc) from None

    def runs(self, fingerprint: str | None = None, protocol_version: int | None = None) -> list[RunRecord]:
        """Every readable recorded run, oldest first, optionally of one dataset and/or protocol
        version; a malformed row is skipped with a :class:`BoardWarning` naming its id."""
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
        out = []
        for row_id, text in self._query(sql, tuple(args)):
            record, problem = _read_row(text)
            if problem:
                self._skip(row_id, problem)
            else:
                out.append((row_id, record))
        return out

    def _skip(self, row_id: int, problem: str) -> None:
        warnings.warn(f"{self.name}: run {row_id} skipped: {problem}", BoardWarning, stacklevel=3)

    def count(self) -> int:
        rows = self._query("SELECT count(*) FROM runs")
        return rows[0][0] if rows else 0

    def fingerprints(self, preset: str | None = None) -> list[str]:
        """Fingerprints with at least one run, by preset (or family) name, then first recording."""
        # Each fingerprint's first run (standard SQL: PostgreSQL refuses SQLite's bare columns).
        rows = self._query(
            "SELECT r.fingerprint, r.id, coalesce(d.preset, r.preset, ''), r.family FROM runs r"
            " LEFT JOIN datasets d ON d.fingerprint = r.fingerprint"
            " WHERE r.id IN (SELECT min(id) FROM runs GROUP BY fingerprint)")
        if preset is not None:
            rows = [r for r in rows if r[2] == preset]
        return [r[0] for r in sorted(rows, key=lambda r: (str(r[2] or r[3]), r[1]))]

    def dataset_info(self, fingerprint: str) -> dict | None:
        """The identity stored for a fingerprint: family, task, preset, path, optimum, spec and
        target names (None where never stored)."""
        conn = self._reader()
        if conn is None or self._version == 0:
            return None
        try:
            cursor = conn.execute("SELECT * FROM datasets WHERE fingerprint = ?", (fingerprint,))
            row = cursor.fetchone()
        except self._db.errors as exc:
            raise self._error(exc) from None
        if row is None:
            return None
        found = dict(zip([d[0] for d in cursor.description], row))  # an older schema has fewer columns
        info = {"family": found.get("family"), "task": found.get("task"), "preset": found.get("preset"),
                "path": found.get("path")}
        for key in ("optimum", "spec", "target_names"):
            try:
                info[key] = json.loads(found[key]) if found.get(key) else None
            except (TypeError, ValueError):
                info[key] = None  # unreadable: as if never stored
        return info

    def boards(self, fingerprints: list[str] | None = None, optimum: dict | None = None) -> list[Board]:
        """Ranked boards, one per (fingerprint, protocol version), current protocol first.

        The board's identity (family, task, preset, optimum) is the one stored with its
        fingerprint. ``optimum`` (a dataset file's) is shown only where none was ever stored,
        and only when one fingerprint is asked for. A row that cannot be read, or whose family
        or task disagrees with the board's, is skipped with a :class:`BoardWarning`.
        """
        fingerprints = self.fingerprints() if fingerprints is None else list(fingerprints)
        out = []
        for fp in fingerprints:
            info = self.dataset_info(fp) or {}
            known = info.get("optimum")
            if known is None and optimum is not None and len(fingerprints) == 1:
                known = optimum
            rows = self._rows(fp)
            if not rows:
                continue
            family = info.get("family") or rows[0][1].family
            task = info.get("task") if info.get("task") in PRIMARY_METRIC else rows[0][1].task
            kept = []
            for row_id, record in rows:
                if record.task != task or record.family != family:
                    self._skip(row_id, f"its {record.family} {record.task} run disagrees with the board's "
                                       f"dataset ({family}, {task})")
                else:
                    kept.append((row_id, record))
            versions = sorted({r.protocol_version for _, r in kept}, reverse=True)
            for version in versions:
                same = [(i, r) for i, r in kept if r.protocol_version == version]
                out.append(rank(same, known if isinstance(known, dict) else None, preset=info.get("preset")))
        return out


# The columns of the datasets table that identify a board, compared on every write.
IDENTITY = ("family", "task", "preset", "spec", "target_names", "optimum")


class DatasetMismatchError(LeaderboardError):
    """A dataset file or run whose identity disagrees with the one stored for its fingerprint."""


def dataset_identity(dataset) -> dict:
    """What identifies a dataset on a board, read from its file (JSON-ready values)."""
    return {"family": dataset.family, "task": dataset.task, "preset": dataset.spec.get("preset"),
            "spec": dataset.spec, "target_names": list(dataset.target_names), "optimum": dataset.optimum}


def _comparable(key: str, value, other):
    """A spec without its seed when either side's seed is withheld (a public copy's spec)."""
    if key == "spec" and isinstance(value, dict) and isinstance(other, dict) and (
            value.get("seed_withheld") or other.get("seed_withheld")):
        return {k: v for k, v in value.items() if k not in ("seed", "seed_withheld")}
    return value


def _refuse_disagreement(fingerprint: str, new: dict, stored: dict, where: str, whose: str) -> None:
    for key in IDENTITY:
        mine, theirs = new.get(key), stored.get(key)
        if mine is None or theirs is None:
            continue  # unknown on one side: nothing to disagree with
        if _comparable(key, mine, theirs) != _comparable(key, theirs, mine):
            raise DatasetMismatchError(
                f"{where}: its {key} ({_brief(mine)}) disagrees with {whose} {key} ({_brief(theirs)}) for "
                f"fingerprint {fingerprint[:12]}; refused, nothing recorded (was the file edited after "
                f"it was generated?)")


def _brief(value, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = ascii(text)[1:-1] if hidden_chars(text) else text  # never a raw control character
    return text if len(text) <= width else text[:width - 3] + "..."


def _json_or_none(value) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _read_row(text: str) -> tuple[RunRecord | None, str | None]:
    """A stored row's record, or why it cannot be ranked."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            return None, "its record is not a JSON object"
        record = RunRecord.from_dict(data)
    except (TypeError, ValueError) as exc:
        return None, f"its record cannot be read ({type(exc).__name__})"
    problem = record_problem(record)
    if problem is None:
        try:  # what ranking computes from a row, so a bad value fails here and not mid-board
            _ = record.collapsed
            config_key(record)
        except Exception as exc:  # noqa: BLE001 - any malformed value; the row is skipped, named
            problem = f"a malformed value ({type(exc).__name__})"
    return (None, problem) if problem else (record, None)


def _check_record(record: RunRecord) -> None:
    problem = record_problem(record)
    if problem is None and hidden_chars(record.name):
        problem = "control or invisible characters in its name"
    if problem:
        raise LeaderboardError(f"run {_brief(str(record.name), 80)!r} not recorded: it has {problem}")

