"""The hosted board's own tables, kept in the leaderboard's database beside ``runs``.

Tokens (stored as SHA-256 digests, never in clear), accepted submissions (their run id,
participant, UTC day, and the metrics on both parts of the test set) and closed boards.
Living in the same database as the runs lets one write transaction (SQLite's ``BEGIN
IMMEDIATE``, PostgreSQL's advisory lock: :mod:`cnnbench.board.db`) check a participant's
daily limit, add the run through :meth:`Leaderboard.add` and write the submission row: an
accepted submission is recorded whole, exactly once, or not at all, even with several server
processes (on several machines, with PostgreSQL), and a limit holds exactly under concurrent
requests. The SQL here is the store's: written once, with ``?`` placeholders.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from ..board.store import Leaderboard, LeaderboardError
from ..errors import CnnbenchError, ParamError

SCHEMA = """
CREATE TABLE IF NOT EXISTS serve_tokens (
    id INTEGER PRIMARY KEY,
    participant TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS serve_submissions (
    id INTEGER PRIMARY KEY,
    board TEXT NOT NULL,
    participant TEXT,
    run_id INTEGER NOT NULL UNIQUE REFERENCES runs (id),
    day TEXT NOT NULL,
    created_at TEXT NOT NULL,
    model TEXT NOT NULL,
    public_metrics TEXT NOT NULL,
    private_metrics TEXT NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS serve_quota ON serve_submissions (participant, board, day);
CREATE TABLE IF NOT EXISTS serve_closed (
    board TEXT PRIMARY KEY,
    closed_at TEXT NOT NULL
)
"""
TOKEN_PREFIX = "cbt_"
MAX_PARTICIPANT = 40


class QuotaError(CnnbenchError):
    """A participant's daily limit is reached (HTTP 429)."""


def now_utc() -> datetime:
    return datetime.now(UTC)


def token_digest(token: str) -> str:
    # Tokens are 256 random bits: a plain SHA-256 cannot be reversed by guessing, so no slow
    # password hash is needed, and lookups stay one indexed equality.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_text(value: str, what: str, limit: int, newlines: bool = False) -> str:
    """Refuse control and format characters (ESC, bidi overrides...) and over-long text."""
    value = value.strip()
    if len(value) > limit:
        raise ParamError(f"{what} must be at most {limit} characters")
    for ch in value:
        if newlines and ch == "\n":
            continue
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise ParamError(f"{what} holds a control or invisible character ({ch.encode('unicode_escape').decode()})")
    return value


def check_participant(name: str) -> str:
    name = check_text(name, "participant name", MAX_PARTICIPANT)
    if not name:
        raise ParamError("participant name must not be empty")
    return name


@dataclass
class Submission:
    id: int
    board: str
    participant: str | None
    run_id: int
    day: str
    created_at: str
    model: str
    public_metrics: dict
    private_metrics: dict
    sha256: str

    @classmethod
    def from_row(cls, row) -> Submission:
        values = list(row)
        values[7], values[8] = json.loads(values[7]), json.loads(values[8])
        return cls(*values)


_COLUMNS = ("id, board, participant, run_id, day, created_at, model, public_metrics, private_metrics, sha256")


class Store(Leaderboard):
    """The leaderboard file with the hosted board's tables.

    Writes made through :class:`Leaderboard`'s own methods join a transaction opened by
    :meth:`transaction`, so a run and its submission row commit together.
    """

    def _write(self):
        if self._conn is not None and self._conn.in_transaction:
            return contextlib.nullcontext()  # inside our transaction: it commits or rolls back
        return super()._write()

    @contextlib.contextmanager
    def transaction(self, immediate: bool = True):
        """One transaction: the write lock taken up front (a check and the write after it see
        the same data), or, ``immediate=False``, a consistent read snapshot."""
        with self._immediate(self._connect(), write=immediate) as conn:
            yield conn

    def create_schema(self) -> None:
        """The hosted board's tables (and the leaderboard's, on a new database); idempotent."""
        try:
            with self.transaction() as conn:
                conn.script(SCHEMA)
        except self._db.errors as exc:
            raise self._error(exc) from None

    def check_schema(self) -> None:
        try:
            conn = self._reader()  # reads only: a missing database is not created here
            names = conn.table_names() if conn is not None else set()
        except self._db.errors as exc:
            raise self._error(exc) from None
        if not {"serve_tokens", "serve_submissions", "serve_closed"} <= names:
            raise LeaderboardError(f"{self.name}: not a hosted board's database (run `cnnbench serve init`)")

    def _sql(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            return self._connect().execute(sql, args).fetchall()
        except self._db.errors as exc:
            raise self._error(exc) from None

    # -- tokens ---------------------------------------------------------------------------

    def add_token(self, participant: str) -> str:
        """A new token for ``participant``; only its digest is stored, the token is returned once."""
        participant = check_participant(participant)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.transaction() as conn:
            conn.execute("INSERT INTO serve_tokens (participant, token_sha256, created_at) VALUES (?, ?, ?)",
                         (participant, token_digest(token), now_utc().isoformat(timespec="seconds")))
        return token

    def revoke(self, participant: str) -> int:
        """Revoke every live token of ``participant``; return how many."""
        with self.transaction() as conn:
            cursor = conn.execute("UPDATE serve_tokens SET revoked_at = ? WHERE participant = ? AND revoked_at IS NULL",
                                  (now_utc().isoformat(timespec="seconds"), participant))
            return cursor.rowcount

    def tokens(self) -> list[dict]:
        rows = self._sql("SELECT participant, substr(token_sha256, 1, 8), created_at, revoked_at FROM serve_tokens"
                         " ORDER BY participant, id")
        return [{"participant": p, "digest": d, "created_at": c, "revoked_at": r} for p, d, c, r in rows]

    def participant(self, token: str) -> str | None:
        """Whose live token this is, or None."""
        rows = self._sql("SELECT participant FROM serve_tokens WHERE token_sha256 = ? AND revoked_at IS NULL",
                         (token_digest(token),))
        return rows[0][0] if rows else None

    # -- submissions ----------------------------------------------------------------------

    def used_today(self, participant: str, board: str, day: str) -> int:
        return self._sql("SELECT count(*) FROM serve_submissions WHERE participant = ? AND board = ? AND day = ?",
                         (participant, board, day))[0][0]

    def record(self, board: str, participant: str | None, record, dataset, private_metrics: dict,
               limit: int | None = None, when: datetime | None = None) -> Submission:
        """Check the daily limit, add the run and its submission row: one transaction.

        Raises :class:`QuotaError` (nothing written) when ``participant`` has ``limit``
        accepted submissions on ``board`` this UTC day already.
        """
        when = when or now_utc()
        day = when.date().isoformat()
        created = when.isoformat(timespec="seconds")
        with self.transaction() as conn:
            if limit is not None and participant is not None:
                used = conn.execute("SELECT count(*) FROM serve_submissions WHERE participant = ? AND board = ?"
                                    " AND day = ?", (participant, board, day)).fetchone()[0]
                if used >= limit:
                    raise QuotaError(f"daily limit reached: {used} of {limit} submissions to {board} today "
                                     f"(UTC); the count starts again at midnight UTC")
            run_id = self.add(record, dataset=dataset)
            public = json.dumps(record.metrics, sort_keys=True)
            private = json.dumps(private_metrics, sort_keys=True)
            sha = record.config.get("predictions_sha256", "")
            sub_id = conn.insert(
                "INSERT INTO serve_submissions (board, participant, run_id, day, created_at, model, public_metrics,"
                " private_metrics, sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (board, participant, run_id, day, created, record.name, public, private, sha))
            return Submission(sub_id, board, participant, run_id, day, created, record.name,
                              record.metrics, private_metrics, sha)

    def submissions(self, participant: str | None = None, board: str | None = None) -> list[Submission]:
        where, args = [], []
        if participant is not None:
            where.append("participant = ?")
            args.append(participant)
        if board is not None:
            where.append("board = ?")
            args.append(board)
        sql = f"SELECT {_COLUMNS} FROM serve_submissions" + (" WHERE " + " AND ".join(where) if where else "")
        return [Submission.from_row(r) for r in self._sql(sql + " ORDER BY id", tuple(args))]

    def submission(self, submission_id: int) -> Submission | None:
        rows = self._sql(f"SELECT {_COLUMNS} FROM serve_submissions WHERE id = ?", (submission_id,))
        return Submission.from_row(rows[0]) if rows else None

    # -- closing --------------------------------------------------------------------------

    def close_board(self, board: str) -> str:
        """Close ``board`` (idempotent); return when it was closed."""
        with self.transaction() as conn:
            conn.execute("INSERT INTO serve_closed (board, closed_at) VALUES (?, ?) ON CONFLICT (board) DO NOTHING",
                         (board, now_utc().isoformat(timespec="seconds")))
            return conn.execute("SELECT closed_at FROM serve_closed WHERE board = ?", (board,)).fetchone()[0]

    def closed(self) -> dict[str, str]:
        return dict(self._sql("SELECT board, closed_at FROM serve_closed"))
