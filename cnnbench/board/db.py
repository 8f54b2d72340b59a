"""Where a leaderboard lives: an SQLite file or a PostgreSQL database, behind one small interface.

:mod:`cnnbench.board.store` speaks SQL through a *backend* (one per location) and the
*connections* it opens. Everything a database engine does its own way lives in one module each:
:mod:`.sqlite_db` (WAL mode, the read-only and ``immutable`` opens, the file-header checks,
``PRAGMA user_version``) and :mod:`.postgres_db` (the psycopg driver, an advisory lock that
makes writers take turns as SQLite's ``BEGIN IMMEDIATE`` does, a schema-version table, the
column types). The store's SQL is written once, with ``?`` placeholders.

A backend has ``name`` (for messages; never a password), ``path`` (the SQLite file, else
None), ``errors`` (the driver's exception classes) and:

- ``reader(identify)``: a connection for reading, or None while there is nothing to read;
  ``identify(conn)`` checks it is a cnnbench leaderboard, by reading only.
- ``writer(identify)``: a connection that may write, the location checked by ``identify``
  before anything is written.
- ``error(exc)``: a driver exception as a one-line :class:`LeaderboardError`.
- ``exists()``: whether anything has been recorded there yet.

A connection has ``execute(sql, args)`` (a DB-API cursor), ``insert(sql, args)`` (the new
row's id), ``script(ddl)`` (statements separated by ``;``), ``begin(write)`` (``write``: the
one writer at a time, the lock taken up front; else a consistent read snapshot), ``commit()``,
``rollback()``, ``in_transaction``, ``schema_version()``, ``set_schema_version(v)``,
``table_names()`` and ``close()``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CnnbenchError

URL_SCHEMES = ("postgresql://", "postgres://")
DB_ENV = "CNNBENCH_DB"


class LeaderboardError(CnnbenchError):
    """The leaderboard database is missing, corrupt, locked, or from a newer cnnbench."""


def is_url(location) -> bool:
    """Whether ``location`` names a PostgreSQL database rather than an SQLite file."""
    return isinstance(location, str) and location.lower().startswith(URL_SCHEMES)


def default_db_path() -> Path:
    """``$XDG_DATA_HOME/cnnbench/leaderboard.sqlite`` (default ``~/.local/share/cnnbench/...``)."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "cnnbench" / "leaderboard.sqlite"


def resolve_db_path(db: str | os.PathLike | None = None) -> Path | str:
    """The leaderboard: ``db`` if given, else ``$CNNBENCH_DB``, else :func:`default_db_path`.

    A ``postgresql://`` URL is returned as it is (a str); anything else is an SQLite file's
    path. Nothing is created here: the default folder is made when the first run is recorded.
    """
    chosen = db or os.environ.get(DB_ENV) or None
    if chosen is None:
        return default_db_path()
    return str(chosen) if is_url(str(chosen)) else Path(chosen)


def db_exists(location) -> bool:
    """Whether there is a leaderboard at ``location`` to read (an SQLite file; cnnbench's tables
    in a PostgreSQL database); creates nothing. An unreachable server is a LeaderboardError."""
    return open_backend(location, 30.0, True).exists()


def display(location) -> str:
    """A location as messages show it: a URL without its password."""
    if is_url(location):
        from .postgres_db import redact

        return redact(location)
    return str(location)


def open_backend(location: str | os.PathLike, timeout: float, create: bool):
    """The backend for ``location``: a ``postgresql://`` URL, else an SQLite file path."""
    if is_url(location):
        from .postgres_db import PostgresBackend

        return PostgresBackend(location, timeout, create)
    from .sqlite_db import SqliteBackend

    return SqliteBackend(Path(location), timeout, create)
