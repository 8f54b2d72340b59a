"""The board under bad rows, hostile names and other programs' files: a malformed row is
skipped with a warning naming it, text output never carries live control characters, HTML or
spreadsheet formulas, and reading or refusing never changes a file."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import created, raw_sql

from cnnbench.board.records import RunRecord
from cnnbench.board.render import render
from cnnbench.board.store import MIGRATIONS, BoardWarning, Leaderboard
from cnnbench.cli import main
from cnnbench.data.h5file import open_dataset

FP = "c" * 64


def run(name="cnn", score=0.75, seed=0, **kw) -> RunRecord:
    return RunRecord(name=name, source="baseline", fingerprint=FP, family="lines", task="classification",
                     metrics={"accuracy": score}, seed=seed, **kw)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def state(folder):
    """Every file of a folder with its hash: what 'nothing changed' means."""
    return {p.name: digest(p) for p in sorted(folder.iterdir()) if p.is_file()}


def _insert_raw(db, record_text: str, task="classification", fingerprint=FP) -> int:
    """A row as a broken writer would leave it (either backend); its id."""
    return raw_sql(db, (
        "INSERT INTO runs (name, source, fingerprint, protocol_version, family, task, metric, score,"
        " config_key, timestamp, record) VALUES ('x', 'baseline', ?, 1, 'lines', ?, 'accuracy', 0, '{}', 't', ?)",
        (fingerprint, task, record_text)), ("SELECT max(id) FROM runs", ()))[0][0]


def _good_json(**changes) -> str:
    from dataclasses import asdict

    data = asdict(run(name="legacy", seed=5))
    data.update(changes)
    return json.dumps(data)


BAD_ROWS = {
    "not json": "{not json",
    "a list": "[1, 2]",
    "missing fields": json.dumps({"name": "x"}),
    "no accuracy": _good_json(metrics={"rmse": 1.0}),
    "undefined score": _good_json(metrics={"accuracy": None}),
    "text score": _good_json(metrics={"accuracy": "high"}),
    "text seed": _good_json(seed="zero"),
    "metrics a list": _good_json(metrics=[1]),
    "unknown task": _good_json(task="ranking"),
    "bad diagnostics": _good_json(task="regression", family="lines", metrics={"rmse": 1.0, "r2": 0.0},
                                  diagnostics={"prediction_std": ["a"], "target_std": [1.0]}),
}


# -- 8: one malformed row -----------------------------------------------------------------

@pytest.fixture
def board_with_bad_rows(db):
    with Leaderboard(db) as board:
        board.add(run(name="good", score=1.0))
    ids = {what: _insert_raw(db, text) for what, text in BAD_ROWS.items()}
    ids["other task"] = _insert_raw(db, _good_json(task="regression", metrics={"rmse": 1.0}))
    return db, ids


def test_bad_rows_skipped_with_a_warning_naming_each(board_with_bad_rows):
    db, ids = board_with_bad_rows
    with Leaderboard(db) as board:
        with pytest.warns(BoardWarning) as caught:
            (only,) = board.boards()
    assert [e.name for e in only.entries] == ["good"]
    messages = " ".join(str(w.message) for w in caught)
    for row_id in ids.values():
        assert f"run {row_id} skipped" in messages


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown"])
def test_cli_leaderboard_survives_bad_rows(board_with_bad_rows, fmt):
    db, ids = board_with_bad_rows
    result = CliRunner().invoke(main, ["leaderboard", "--db", str(db), "--format", fmt])
    assert result.exit_code == 0, result.output
    assert "good" in result.stdout and "Traceback" not in result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == len(ids)
    assert all(f"run {i} skipped" in result.stderr for i in ids.values())


def test_cli_submit_with_a_bad_row_on_the_board(db, tmp_path, lines3):
    ds = open_dataset(lines3)
    np.save(tmp_path / "p.npy", ds.load("test", ["targets"])["targets"])
    args = ["submit", str(lines3), str(tmp_path / "p.npy"), "--db", str(db)]
    assert CliRunner().invoke(main, args + ["--name", "first"]).exit_code == 0
    bad = _insert_raw(db, "{broken", fingerprint=ds.fingerprint)
    result = CliRunner().invoke(main, args + ["--name", "second"])
    assert result.exit_code == 0, result.output
    assert "rank 1 of 2" in result.stdout and f"run {bad} skipped" in result.stderr


def test_submit_commits_nothing_when_ranking_fails(db, tmp_path, lines3, monkeypatch):
    ds = open_dataset(lines3)
    np.save(tmp_path / "p.npy", ds.load("test", ["targets"])["targets"])
    args = ["submit", str(lines3), str(tmp_path / "p.npy"), "--db", str(db)]
    assert CliRunner().invoke(main, args + ["--name", "first"]).exit_code == 0

    def broken(self, *a, **k):
        raise RuntimeError("ranking failed")

    monkeypatch.setattr(Leaderboard, "boards", broken)
    result = CliRunner().invoke(main, args + ["--name", "second"])
    assert result.exit_code != 0
    monkeypatch.undo()
    with Leaderboard(db) as board:
        assert [r.name for r in board.runs()] == ["first"]


# -- 10: names, terminals, documents -------------------------------------------------------

@pytest.mark.parametrize("name", ["evil\x1b[2Jname", "bell\x07", "rtl\u202eekaf", "nul\x00", "a\rb"])
def test_control_characters_in_names_refused(name, db, tmp_path, lines3):
    ds = open_dataset(lines3)
    np.save(tmp_path / "p.npy", ds.load("test", ["targets"])["targets"])
    result = CliRunner().invoke(main, ["submit", str(lines3), str(tmp_path / "p.npy"), "--name", name,
                                       "--db", str(db)])
    assert result.exit_code == 1 and "control" in result.output and not created(db)
    result = CliRunner().invoke(main, ["evaluate", str(lines3), "--model", "nowhere.py:make", "--name", name,
                                       "--db", str(db)])
    assert result.exit_code == 1 and "control" in result.output
    with Leaderboard(db) as board:  # the library refuses them too, whatever the entry point
        with pytest.raises(Exception, match="control"):
            board.add(run(name=name))
    assert not created(db)


def _legacy_board(tmp_path, names):
    """Rows recorded before names were checked: inserted as an older cnnbench would have."""
    db = tmp_path / "board.sqlite"
    with Leaderboard(db) as board:
        board.add(run(name="plain", score=0.5))
    conn = sqlite3.connect(db)
    from dataclasses import asdict

    for i, name in enumerate(names):
        data = asdict(run(name=name, score=0.6 + i / 100, seed=i))
        conn.execute("INSERT INTO runs (name, source, fingerprint, protocol_version, family, task, metric, score,"
                     " config_key, timestamp, record) VALUES (?, 'baseline', ?, 1, 'lines', 'classification',"
                     " 'accuracy', 0.6, '{}', 't', ?)", (name, FP, json.dumps(data)))
    conn.commit()
    conn.close()
    return db


def test_table_never_prints_raw_control_characters(tmp_path):
    db = _legacy_board(tmp_path, ["clear\x1b[2J\x1b[Hscreen", "hide\u202etxet"])
    result = CliRunner().invoke(main, ["leaderboard", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output
    assert "clear\\x1b[2J" in result.stdout and "hide\\u202etxet" in result.stdout
    assert "Warning" not in result.output  # older rows keep their place, escaped


def test_markdown_escapes_html(tmp_path):
    db = _legacy_board(tmp_path, ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[x](javascript:y)"])
    result = CliRunner().invoke(main, ["leaderboard", "--db", str(db), "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert "<script" not in result.output and "<img" not in result.output
    assert "&lt;script&gt;" in result.output and "\\[x\\](javascript" in result.output


def test_csv_neutralises_formula_cells(tmp_path):
    names = ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tlead", "\rlead"]
    db = _legacy_board(tmp_path, names)
    with Leaderboard(db) as board:
        text = render(board.boards(), "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    shown = {r["name"] for r in rows}
    for cell in shown:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert "'=HYPERLINK(\"http://x\")" in shown and "'-2+3" in shown and "'\\tlead" in shown
    # Numbers stay numbers: a negative gap is not a formula.
    assert any(r["gap_to_optimum"] == "" or float(r["gap_to_optimum"]) == float(r["gap_to_optimum"]) for r in rows)
    assert "\x1b" not in text


def test_csv_keeps_negative_numbers():
    from cnnbench.board.render import csv_cell

    assert csv_cell(-0.25) == -0.25 and csv_cell("-0.25") == "'-0.25" and csv_cell(None) == ""


# -- 11: reading never writes; a foreign file is never touched ------------------------------

def _foreign(path, wal=False):
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.execute("INSERT INTO contacts VALUES ('ada')")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "wal"])
def test_foreign_sqlite_never_touched(tmp_path, lines3, wal):
    folder = tmp_path / "f"
    folder.mkdir()
    db = _foreign(folder / "other.sqlite", wal)
    ds = open_dataset(lines3)
    np.save(tmp_path / "p.npy", ds.load("test", ["targets"])["targets"])
    before = state(folder)
    for args in (["leaderboard", "--db", str(db)], ["leaderboard", str(lines3), "--db", str(db)],
                 ["submit", str(lines3), str(tmp_path / "p.npy"), "--name", "x", "--db", str(db)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and "not a cnnbench leaderboard" in result.output, result.output
        assert state(folder) == before, args


def test_zero_byte_file_read_without_writing(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    db = folder / "empty.sqlite"
    db.write_bytes(b"")
    result = CliRunner().invoke(main, ["leaderboard", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert db.stat().st_size == 0 and state(folder) == {"empty.sqlite": digest(db)}
    with Leaderboard(db) as board:
        assert board.boards() == [] and board.count() == 0
    assert db.stat().st_size == 0


def _rollback_mode_board(folder):
    """A cnnbench board whose journal mode someone set back to the default (rollback journal)."""
    db = folder / "board.sqlite"
    with Leaderboard(db) as board:
        board.add(run())
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    return db


def test_reading_never_changes_the_file(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    db = _rollback_mode_board(folder)
    before = state(folder)
    for fmt in ("table", "json"):
        assert CliRunner().invoke(main, ["leaderboard", "--db", str(db), "--format", fmt]).exit_code == 0
    assert state(folder) == before


def test_read_only_file_leaves_no_wal_or_shm(tmp_path, monkeypatch):
    """A file we may not write (as a non-root user with chmod 444, or chattr +i) is opened
    read-only, immutable when no writer is active: no -wal/-shm left beside it."""
    folder = tmp_path / "f"
    folder.mkdir()
    db = folder / "board.sqlite"
    with Leaderboard(db) as board:
        board.add(run())
    before = state(folder)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if (str(p) == str(db) and mode == os.W_OK)
                        else real_access(p, mode, **k))
    result = CliRunner().invoke(main, ["leaderboard", "--db", str(db), "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.output)[0]["name"] == "cnn"
    assert state(folder) == before


def test_older_schema_read_without_migrating(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    db = folder / "v1.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA user_version = 1")
    from dataclasses import asdict

    conn.execute("INSERT INTO runs (name, source, fingerprint, protocol_version, family, task, metric, score,"
                 " config_key, timestamp, record) VALUES ('old', 'baseline', ?, 1, 'lines', 'classification',"
                 " 'accuracy', 0.5, '{}', 't', ?)", (FP, json.dumps(asdict(run(name="old", score=0.5)))))
    conn.execute("INSERT INTO datasets (fingerprint, family, task, recorded_at) VALUES (?, 'lines',"
                 " 'classification', 't')", (FP,))
    conn.commit()
    conn.close()
    before = state(folder)
    with Leaderboard(db) as board:
        (only,) = board.boards()
        assert only.entries[0].name == "old" and board.dataset_info(FP)["spec"] is None
    assert state(folder) == before
    with Leaderboard(db) as board:  # the first write migrates, keeping the old row
        board.add(run(name="new"))
        assert {r.name for r in board.runs()} == {"old", "new"}
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("SELECT torch_version, device FROM runs ORDER BY id").fetchall()[0] == (None, None)
    conn.close()


def test_older_schema_migrated_on_postgres(pg_url):
    """Version 1's tables, as the SQLite test above, in PostgreSQL: read as they are, migrated
    (and backfilled) at the first write, the old row kept."""
    from dataclasses import asdict

    from cnnbench.board.postgres_db import translate_ddl

    statements = [(s, ()) for s in translate_ddl(MIGRATIONS[0]).split(";") if s.strip()]
    raw_sql(pg_url, *statements, ("CREATE TABLE cnnbench_schema (version BIGINT NOT NULL)", ()),
            ("INSERT INTO cnnbench_schema VALUES (1)", ()),
            ("INSERT INTO runs (name, source, fingerprint, protocol_version, family, task, metric, score,"
             " config_key, timestamp, record) VALUES ('old', 'baseline', ?, 1, 'lines', 'classification',"
             " 'accuracy', 0.5, '{}', 't', ?)",
             (FP, json.dumps(asdict(run(name="old", score=0.5, torch_version="2.0", device="cpu"))))))
    with Leaderboard(pg_url) as board:
        (only,) = board.boards()
        assert only.entries[0].name == "old"
    assert raw_sql(pg_url, ("SELECT version FROM cnnbench_schema", ())) == [(1,)]  # reading never migrates
    with Leaderboard(pg_url) as board:
        board.add(run(name="new"))
        assert {r.name for r in board.runs()} == {"old", "new"}
    assert raw_sql(pg_url, ("SELECT version FROM cnnbench_schema", ())) == [(len(MIGRATIONS),)]
    assert raw_sql(pg_url, ("SELECT torch_version, device FROM runs ORDER BY id", ()))[0] == ("2.0", "cpu")


def test_other_programs_tables_on_postgres_never_touched(pg_url):
    raw_sql(pg_url, ("CREATE TABLE runs (x TEXT)", ()), ("INSERT INTO runs VALUES ('theirs')", ()),
            ("CREATE TABLE unrelated (y TEXT)", ()))
    with pytest.raises(Exception, match="not a cnnbench leaderboard"):
        with Leaderboard(pg_url) as board:
            board.add(run())
    assert raw_sql(pg_url, ("SELECT * FROM runs", ())) == [("theirs",)]
    tables = raw_sql(pg_url, ("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1", ()))
    assert tables == [("runs",), ("unrelated",)]  # no version table, nothing created
    raw_sql(pg_url, ("DROP TABLE runs", ()))
    with Leaderboard(pg_url) as board:  # other programs' tables beside ours are fine
        board.add(run())
        assert board.count() == 1
