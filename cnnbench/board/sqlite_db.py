"""The SQLite backend of the leaderboard store (standard library ``sqlite3``): one file.

WAL mode, so readers never block the writer, with a busy timeout, so concurrent writers wait
for each other instead of failing; every write is one ``BEGIN IMMEDIATE`` transaction. The
schema version is ``PRAGMA user_version``. Reading never writes: no journal-mode switch, and a
file we may not write is opened read-only (``immutable`` when no writer is active, so no
``-wal``/``-shm`` files are left beside it). Another program's file is recognised by its
header and tables, and refused, before anything is written to it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from .db import LeaderboardError, default_db_path

# The first bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"


class SqliteConnection:
    """An ``sqlite3`` connection in autocommit mode: we issue BEGIN/COMMIT ourselves."""

    def __init__(self, conn: sqlite3.Connection):
        self.raw = conn

    def execute(self, sql: str, args: tuple = ()):
        return self.raw.execute(sql, args)

    def insert(self, sql: str, args: tuple) -> int:
        return self.raw.execute(sql, args).lastrowid

    def script(self, ddl: str) -> None:
        for statement in ddl.split(";"):
            if statement.strip():
                self.raw.execute(statement)

    def begin(self, write: bool = True) -> None:
        # IMMEDIATE takes the write lock up front (a check and the write after it see the same
        # data); a deferred BEGIN is a consistent read snapshot.
        self.raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    def commit(self) -> None:
        self.raw.execute("COMMIT")

    def rollback(self) -> None:
        if self.raw.in_transaction:
            self.raw.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    broken = False  # a file does not go away as a server does

    def schema_version(self) -> int:
        return self.raw.execute("PRAGMA user_version").fetchone()[0]

    def set_schema_version(self, version: int) -> None:
        self.raw.execute(f"PRAGMA user_version = {int(version)}")

    def table_names(self) -> set[str]:
        return {r[0] for r in self.raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def close(self) -> None:
        self.raw.close()


class SqliteBackend:
    """A leaderboard file; see the module's docstring."""

    errors = (sqlite3.Error,)

    def __init__(self, path: Path, timeout: float, create: bool):
        self.path, self.name, self.timeout = path, str(path), timeout
        if self.path.is_dir():
            raise LeaderboardError(f"{self.path}: is a folder, not a leaderboard database")
        if not create and not self.path.exists():
            raise LeaderboardError(f"{self.path}: no leaderboard database here yet (record a run first)")
        if not self.path.parent.is_dir() and self.path != default_db_path():
            raise LeaderboardError(f"{self.path}: folder {str(self.path.parent)!r} does not exist")

    missing = "does not exist"  # said of a location with nothing recorded yet

    def exists(self) -> bool:
        return self.path.exists()

    @property
    def opens_at_once(self) -> bool:
        """An existing file is opened (and checked) when the board is; a missing one when written."""
        return self.path.exists()

    def _has_content(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def _check_header(self) -> bytes:
        """The file's first 100 bytes, refused unless they are an SQLite header (no SQLite call
        has touched the file yet)."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(100)
        except OSError as exc:
            raise LeaderboardError(f"{self.path}: cannot be read ({exc.strerror})") from None
        if len(head) < 100 or not head.startswith(SQLITE_HEADER):
            raise LeaderboardError(f"{self.path}: not a cnnbench leaderboard (corrupt or not SQLite)")
        return head

    def _open(self, uri_mode: str, immutable: bool = False) -> SqliteConnection:
        uri = f"{self.path.resolve().as_uri()}?mode={uri_mode}" + ("&immutable=1" if immutable else "")
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        except sqlite3.Error as exc:
            raise self.error(exc) from None
        return SqliteConnection(conn)

    def reader(self, identify) -> SqliteConnection | None:
        if not self._has_content():
            return None  # missing or 0 bytes: an empty board, and the file stays as it is
        head = self._check_header()
        if os.access(self.path, os.W_OK):
            # Only reads are issued; the last connection to close removes any -wal/-shm it made.
            conn = self._open("rw")
        else:
            # A file we may not write. In WAL mode (header bytes 18-19 == 2) SQLite would create
            # -wal/-shm beside it and leave them; with no -wal there, no writer is active and
            # the file can be read as immutable.
            wal = head[18:20] == b"\x02\x02"
            conn = self._open("ro", immutable=wal and not Path(f"{self.path}-wal").exists())
        try:
            identify(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def writer(self, identify) -> SqliteConnection:
        """Checks the file, then switches it to WAL mode (creating the file, and the default
        folder, if needed)."""
        existing = self._has_content()
        if existing:
            self._check_header()
        elif not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)  # the default folder, on first use
        conn = self._open("rwc")
        try:
            if existing:
                identify(conn)  # before anything is written: a foreign file is never touched
            mode = self._switch_to_wal(conn.raw)
            if mode.lower() != "wal":
                raise LeaderboardError(f"{self.path}: cannot switch the database to WAL mode ({mode})")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            conn.close()
            raise self.error(exc) from None
        except BaseException:
            conn.close()
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

    def error(self, exc: sqlite3.Error) -> LeaderboardError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return LeaderboardError(f"{self.path}: database is locked by another process (try again)")
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return LeaderboardError(f"{self.path}: not a cnnbench leaderboard (corrupt or not SQLite)")
        if "readonly" in text or "unable to open" in text:
            return LeaderboardError(f"{self.path}: cannot open the database for writing ({text})")
        return LeaderboardError(f"{self.path}: database error: {text}")
