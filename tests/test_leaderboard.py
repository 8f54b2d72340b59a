"""The leaderboard: storage round trips, ranking, comparability, concurrency, bad databases, CLI."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import sqlite3

import pytest
from click.testing import CliRunner
from conftest import created, raw_sql

from cnnbench.board.ranking import rank
from cnnbench.board.records import COLLAPSE_R2, PROTOCOL_VERSION, RunRecord
from cnnbench.board.render import render
from cnnbench.board.store import SCHEMA_VERSION, Leaderboard, LeaderboardError, resolve_db_path
from cnnbench.cli import main

FP_A = "a" * 64
FP_B = "b" * 64


def run(name="cnn", score=1.0, seed=0, source="baseline", fingerprint=FP_A, task="classification",
        protocol_version=PROTOCOL_VERSION, config=None, r2=None, **kw) -> RunRecord:
    if task == "classification":
        metrics = {"accuracy": score, "per_class_accuracy": [score, score]}
    else:
        metrics = {"mse": score ** 2, "rmse": score, "mae": score, "r2": 0.5 if r2 is None else r2}
    return RunRecord(name=name, source=source, fingerprint=fingerprint,
                     family="lines" if task == "classification" else "boxes", task=task,
                     metrics=metrics, seed=seed, protocol_version=protocol_version,
                     config=config if config is not None else {"lr": 0.01}, preset=kw.pop("preset", None),
                     **kw)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# `db` (conftest.py): each test taking it runs on SQLite and on PostgreSQL; `sqlite_db` on SQLite
# only (the file's own behaviour: WAL, headers, corruption, other programs' files).
@pytest.fixture
def sqlite_db(tmp_path):
    return tmp_path / "board.sqlite"


# -- storage -------------------------------------------------------------------------------

def test_round_trip(db):
    record = run(curves={"train_loss": [1.0, 0.5]}, params=12, notes="hello", wall_time_s=1.5,
                 split_sizes={"train": 6, "val": 6, "test": 6}, timestamp="2024-01-01T00:00:00+00:00")
    with Leaderboard(db) as board:
        row_id = board.add(record)
        assert row_id == 1
    with Leaderboard(db) as board:
        (back,) = board.runs()
    assert back == record


def test_timestamp_filled_and_filters(db):
    with Leaderboard(db) as board:
        board.add(run(fingerprint=FP_A))
        board.add(run(fingerprint=FP_B))
        board.add(run(fingerprint=FP_A, protocol_version=PROTOCOL_VERSION + 1))
        assert len(board.runs()) == 3
        assert len(board.runs(fingerprint=FP_A)) == 2
        assert len(board.runs(fingerprint=FP_A, protocol_version=PROTOCOL_VERSION)) == 1
        assert all(r.timestamp for r in board.runs())


def test_schema_version_and_wal(sqlite_db):
    with Leaderboard(sqlite_db) as board:
        board.add(run())
    conn = sqlite3.connect(sqlite_db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_newer_schema_refused(db):
    with Leaderboard(db) as board:
        board.add(run())
    if isinstance(db, str):  # PostgreSQL: the version table's row
        raw_sql(db, ("UPDATE cnnbench_schema SET version = ?", (SCHEMA_VERSION + 1,)))
    else:
        raw_sql(db, (f"PRAGMA user_version = {SCHEMA_VERSION + 1}", ()))
    with pytest.raises(LeaderboardError, match="newer"):
        Leaderboard(db)


def test_postgres_version_table(pg_url):
    with Leaderboard(pg_url) as board:
        board.add(run(score=0.123456789012345))  # DOUBLE PRECISION: no float4 rounding
    assert raw_sql(pg_url, ("SELECT version FROM cnnbench_schema", ())) == [(SCHEMA_VERSION,)]
    ((schema,),) = raw_sql(pg_url, ("SELECT current_schema()", ()))  # the URL's search_path
    assert schema != "public"
    assert raw_sql(pg_url, ("SELECT count(*) FROM pg_tables WHERE tablename = 'runs' AND schemaname = ?",
                            (schema,))) == [(1,)]
    assert raw_sql(pg_url, ("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", ())) == [(0,)]
    with Leaderboard(pg_url) as board:
        assert board.runs()[0].score == 0.123456789012345


@pytest.mark.parametrize("record, match", [
    (run(name=""), "empty name"),
    (run(source="elsewhere"), "source"),
    (run(score=float("nan")), "non-finite"),
    (RunRecord(name="x", source="baseline", fingerprint=FP_A, family="lines", task="classification",
               metrics={}), "no 'accuracy'"),
])
def test_bad_record_not_written(db, record, match):
    with Leaderboard(db) as board:
        with pytest.raises(LeaderboardError, match=match):
            board.add(record)
        assert board.count() == 0
    assert not created(db)  # a refused record creates no database


def test_database_created_only_when_a_run_is_recorded(db):
    with Leaderboard(db) as board:
        assert board.count() == 0 and board.runs() == [] and board.boards() == []
        assert board.fingerprints() == [] and board.dataset_info(FP_A) is None
        assert board.add_many([]) == []
        assert not created(db)
        board.add(run())
        assert created(db) and board.count() == 1


def test_existing_bad_database_refused_on_open(sqlite_db):
    sqlite_db.write_bytes(b"not a database " * 300)
    with pytest.raises(LeaderboardError, match="corrupt or not SQLite"):
        Leaderboard(sqlite_db)  # before any work: not at the first write


def test_resolve_db_path(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBENCH_DB", str(tmp_path / "env.sqlite"))
    assert resolve_db_path("x.sqlite").name == "x.sqlite"
    assert resolve_db_path(None) == tmp_path / "env.sqlite"
    monkeypatch.delenv("CNNBENCH_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = resolve_db_path(None)
    assert path == tmp_path / "data" / "cnnbench" / "leaderboard.sqlite"
    assert not (tmp_path / "data").exists()  # made when the first run is recorded
    with Leaderboard(path) as board:
        assert board.boards() == [] and not (tmp_path / "data").exists()
        board.add(run())
    assert path.is_file()


def test_missing_folder_of_a_chosen_path_refused(tmp_path):
    with pytest.raises(LeaderboardError, match="does not exist"):
        Leaderboard(tmp_path / "no" / "board.sqlite")


# -- bad databases --------------------------------------------------------------------------

def test_not_sqlite_clean_error(sqlite_db):
    sqlite_db.write_bytes(b"this is not a database, just text " * 100)
    before = digest(sqlite_db)
    with pytest.raises(LeaderboardError, match="corrupt or not SQLite"):
        Leaderboard(sqlite_db)
    assert digest(sqlite_db) == before


def test_corrupt_sqlite_clean_error(sqlite_db):
    with Leaderboard(sqlite_db) as board:
        for seed in range(50):
            board.add(run(seed=seed))
    data = bytearray(sqlite_db.read_bytes())
    data[200:4096 * 3] = b"\xff" * (4096 * 3 - 200)  # trash the header's tail and the first pages
    sqlite_db.write_bytes(bytes(data))
    with pytest.raises(LeaderboardError):
        with Leaderboard(sqlite_db) as board:
            board.add(run(seed=99))
            board.runs()


def test_other_sqlite_file_refused(sqlite_db):
    conn = sqlite3.connect(sqlite_db)
    conn.execute("CREATE TABLE mine (x)")
    conn.commit()
    conn.close()
    with pytest.raises(LeaderboardError, match="not a cnnbench leaderboard"):
        Leaderboard(sqlite_db)


def test_postgres_connection_lost_then_reconnects(pg_url):
    """A database server that drops the connection (a restart, a failover): one clean error,
    nothing half-written, and the next call reconnects instead of failing forever."""
    with Leaderboard(pg_url) as board:
        board.add(run())
        raw_sql(pg_url, ("SELECT pg_terminate_backend(?)", (board._conn.raw.info.backend_pid,)))
        with pytest.raises(LeaderboardError, match="PostgreSQL connection failed"):
            board.add(run(seed=1))
        board.add(run(seed=2))
        assert sorted(r.seed for r in board.runs()) == [0, 2]


def test_locked_db_clean_error_no_row(db):
    with Leaderboard(db) as board:
        board.add(run())
    holder = Leaderboard(db)
    try:
        with pytest.raises(KeyboardInterrupt), holder.transaction():
            holder.add(run(seed=5))  # holds the one writer's lock until the block ends
            with Leaderboard(db, timeout=0.2) as board:
                with pytest.raises(LeaderboardError, match="locked"):
                    board.add(run(seed=1))
            raise KeyboardInterrupt  # the holder's row is rolled back too
    finally:
        holder.close()
    with Leaderboard(db) as board:
        assert board.count() == 1


def test_missing_db_without_create(db):
    with pytest.raises(LeaderboardError, match="no leaderboard (database here|in this database) yet"):
        Leaderboard(db, create=False)
    assert not created(db)


# -- concurrency ----------------------------------------------------------------------------

def _writer(args):
    path, worker, n = args
    with Leaderboard(path) as board:
        for i in range(n):
            board.add(run(name=f"w{worker}", seed=i, score=i / n))
    return n


def test_concurrent_writers_lose_nothing(db):
    workers, per = 4, 25
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        done = pool.map(_writer, [(str(db), w, per) for w in range(workers)])
    assert sum(done) == workers * per
    with Leaderboard(db) as board:
        runs = board.runs()
    assert len(runs) == workers * per
    assert {(r.name, r.seed) for r in runs} == {(f"w{w}", i) for w in range(workers) for i in range(per)}


# -- ranking --------------------------------------------------------------------------------

def test_seeds_grouped_mean_std_share(db):
    with Leaderboard(db) as board:
        for seed, acc in enumerate([0.5, 0.5, 1.0, 0.5]):
            board.add(run(name="lines-cnn-as-asked", seed=seed, score=acc, config={"lr": 1e-3}))
        for seed in range(4):
            board.add(run(name="lines-cnn-fixed", seed=seed, score=1.0, config={"lr": 1e-2}))
        board.add(run(name="majority", source="reference", seed=None, score=0.5, config={}))
        (b,) = board.boards([FP_A], optimum={"metric": "accuracy", "value": 1.0, "exact": True, "why": "w"})
    names = [e.name for e in b.entries]
    assert names == ["known optimum", "lines-cnn-fixed", "lines-cnn-as-asked", "majority"]
    repro = b.entries[2]
    assert repro.n_seeds == 4 and repro.score == pytest.approx(0.625)
    assert repro.std == pytest.approx(0.25) and (repro.min, repro.max) == (0.5, 1.0)
    assert repro.solved_share == pytest.approx(0.25)
    assert repro.gap_to_optimum == pytest.approx(0.375)
    assert b.entries[1].solved_share == 1.0 and b.entries[1].rank == 1
    assert repro.rank == 2
    assert b.entries[0].kind == "optimum" and b.entries[0].rank is None
    assert b.entries[3].kind == "reference" and b.entries[3].rank is None


def test_regression_collapsed_share_lower_is_better(db):
    with Leaderboard(db) as board:
        for seed in range(10):
            collapsed = seed < 7
            board.add(run(name="boxes-cnn-as-asked", task="regression", seed=seed,
                          score=18.0 if collapsed else 0.8, r2=0.0 if collapsed else 0.99))
        board.add(run(name="ridge", task="regression", seed=0, score=0.5, r2=0.999))
        board.add(run(name="mean", source="reference", task="regression", seed=None, score=18.5, r2=0.0))
        (b,) = board.boards()
    assert b.metric == "rmse" and not b.higher_is_better
    assert [e.name for e in b.entries] == ["ridge", "boxes-cnn-as-asked", "mean"]
    assert b.entries[1].collapsed_share == pytest.approx(0.7)
    assert b.entries[1].score == pytest.approx((7 * 18.0 + 3 * 0.8) / 10)
    assert b.entries[2].collapsed_share == 1.0
    assert COLLAPSE_R2 == 0.1


def test_collapsed_means_a_constant_about_the_mean_not_just_a_low_r2():
    def rec(r2, prediction_std, target_std=(16.0, 16.0)):
        return RunRecord(name="m", source="baseline", fingerprint=FP_A, family="boxes", task="regression",
                         metrics={"rmse": 1.0, "r2": r2},
                         diagnostics={"prediction_std": list(prediction_std), "target_std": list(target_std)})

    assert rec(0.0, (0.0, 0.0)).collapsed is True  # one constant: seed 001's failure
    assert rec(-1.2, (15.0, 14.0)).collapsed is False  # wrong but image-dependent (a held-out quadrant)
    assert rec(0.5, (0.0, 0.0)).collapsed is False  # R² above the bound
    assert rec(0.0, (0.0, 2.0)).collapsed is False  # one column still follows the image
    no_diagnostics = RunRecord(name="s", source="submission", fingerprint=FP_A, family="boxes",
                               task="regression", metrics={"rmse": 1.0, "r2": 0.05})
    assert no_diagnostics.collapsed is True  # R² alone where the spread was not recorded
    assert RunRecord(name="c", source="baseline", fingerprint=FP_A, family="lines", task="classification",
                     metrics={"accuracy": 0.5}).collapsed is None


def test_rerun_of_a_seed_counts_once(db):
    with Leaderboard(db) as board:
        board.add(run(seed=0, score=0.5))
        board.add(run(seed=0, score=1.0))
        (b,) = board.boards()
    (entry,) = b.entries
    assert entry.n_seeds == 1 and entry.score == 1.0


def test_different_configs_are_different_rows(db):
    with Leaderboard(db) as board:
        board.add(run(name="cnn", config={"lr": 0.1}, score=0.9))
        board.add(run(name="cnn", config={"lr": 0.01}, score=0.8))
        board.add(run(name="cnn", config={"lr": 0.01, "seed": 3}, seed=3, score=0.6))
        (b,) = board.boards()
    assert len(b.entries) == 2
    assert all(e.name.startswith("cnn [") for e in b.entries)
    assert b.entries[1].n_seeds == 2


def test_comparability_fingerprint_and_protocol(db):
    with Leaderboard(db) as board:
        board.add(run(name="a", fingerprint=FP_A, score=0.9))
        board.add(run(name="b", fingerprint=FP_B, score=0.8))
        board.add(run(name="c", fingerprint=FP_A, score=0.7, protocol_version=PROTOCOL_VERSION + 1))
        boards = board.boards()
    keys = [(b.fingerprint, b.protocol_version, [e.name for e in b.entries]) for b in boards]
    assert sorted(keys) == sorted([(FP_A, PROTOCOL_VERSION + 1, ["c"]), (FP_A, PROTOCOL_VERSION, ["a"]),
                                   (FP_B, PROTOCOL_VERSION, ["b"])])
    with pytest.raises(ValueError, match="not comparable"):
        rank([(1, run(fingerprint=FP_A)), (2, run(fingerprint=FP_B))])
    with pytest.raises(ValueError, match="not comparable"):
        rank([(1, run()), (2, run(protocol_version=PROTOCOL_VERSION + 1))])


def test_optimum_stored_from_the_dataset_given_the_store_never_opens_files(db, tmp_path, tiny_dataset):
    import cnnbench
    from cnnbench.data.h5file import open_dataset

    ds = open_dataset(tiny_dataset)
    with Leaderboard(db) as board:
        # The record names the file, but the store does not open it: only the record's own
        # identity (family, task, preset) is stored until a caller gives the dataset.
        board.add(run(fingerprint=ds.fingerprint, dataset_path=str(tiny_dataset), score=0.75, preset="lines-3x3"))
        assert board.dataset_info(ds.fingerprint)["optimum"] is None
        board.add(run(fingerprint=ds.fingerprint, dataset_path=str(tiny_dataset), score=0.75, seed=1), ds)
        info = board.dataset_info(ds.fingerprint)
        (b,) = board.boards()
    assert info["optimum"] == ds.optimum and info["preset"] == "lines-3x3"
    assert b.entries[0].kind == "optimum" and b.entries[1].gap_to_optimum == pytest.approx(0.25)
    assert b.preset == "lines-3x3"
    # cnnbench.record, the caller, reads the file the records name (when it holds the same data).
    other = tmp_path / "other.sqlite"
    cnnbench.record(run(fingerprint=ds.fingerprint, dataset_path=str(tiny_dataset), score=0.75), db=other)
    with Leaderboard(other) as board:
        assert board.dataset_info(ds.fingerprint)["optimum"] == ds.optimum


@pytest.fixture
def tiny_dataset(tmp_path):
    path = tmp_path / "lines.h5"
    result = CliRunner().invoke(main, ["generate", "--preset", "lines-3x3", "--out", str(path), "-q"])
    assert result.exit_code == 0, result.output
    return path


# -- formats and CLI -------------------------------------------------------------------------

def _filled(db):
    with Leaderboard(db) as board:
        for seed, acc in enumerate([0.5, 1.0]):
            board.add(run(name="repro", seed=seed, score=acc, preset="lines-3x3"))
        board.add(run(name="majority", source="reference", seed=None, score=0.5, preset="lines-3x3"))
        board.add(run(name="ridge", task="regression", fingerprint=FP_B, score=0.7, preset="boxes-64"))


def test_cli_leaderboard_formats(db):
    _filled(db)
    runner = CliRunner()
    for fmt in ("table", "markdown", "csv", "json"):
        result = runner.invoke(main, ["leaderboard", "--db", str(db), "--format", fmt])
        assert result.exit_code == 0, result.output
        assert "repro" in result.output and "ridge" in result.output
    result = runner.invoke(main, ["leaderboard", "--db", str(db), "--format", "json", "--preset", "boxes-64"])
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == ["ridge"] and rows[0]["metric"] == "rmse"


def test_cli_leaderboard_dataset_file(db, tiny_dataset):
    from cnnbench.data.h5file import open_dataset

    ds = open_dataset(tiny_dataset)
    with Leaderboard(db) as board:
        board.add(run(name="mine", fingerprint=ds.fingerprint, score=0.5))
        board.add(run(name="other-dataset", score=1.0))
    result = CliRunner().invoke(main, ["leaderboard", str(tiny_dataset), "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["kind"] for r in rows] == ["optimum", "model"]
    assert rows[1]["gap_to_optimum"] == pytest.approx(0.5)


def test_cli_env_db_and_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBENCH_DB", str(tmp_path / "none.sqlite"))
    result = CliRunner().invoke(main, ["leaderboard"])
    assert result.exit_code == 0 and "no runs recorded yet" in result.output
    assert not (tmp_path / "none.sqlite").exists()


def test_cli_corrupt_db_one_line_error(sqlite_db):
    sqlite_db.write_bytes(b"garbage" * 1000)
    result = CliRunner().invoke(main, ["leaderboard", "--db", str(sqlite_db)])
    assert result.exit_code == 1
    assert result.output.startswith("Error:") and len(result.output.strip().splitlines()) == 1


def test_cli_not_a_dataset(db, tmp_path):
    _filled(db)
    bogus = tmp_path / "x.h5"
    bogus.write_bytes(b"nope")
    result = CliRunner().invoke(main, ["leaderboard", str(bogus), "--db", str(db)])
    assert result.exit_code == 1 and result.output.startswith("Error:")


def test_help():
    result = CliRunner().invoke(main, ["leaderboard", "--help"])
    assert result.exit_code == 0 and "--format" in result.output and "--db" in result.output


# -- ties, references, the optimum, titles ---------------------------------------------------------

def test_ties_share_a_rank_competition_style(db):
    with Leaderboard(db) as board:
        for name, acc in (("b", 1.0), ("a", 1.0), ("c", 0.5), ("d", 0.5), ("e", 0.25)):
            board.add(run(name=name, score=acc))
        board.add(run(name="by-a-sum", score=0.1 + 0.2))  # 0.30000000000000004: the same score
        board.add(run(name="exact", score=0.3))
        (b,) = board.boards()
    ranks = {e.name: e.rank for e in b.entries}
    assert ranks == {"a": 1, "b": 1, "c": 3, "d": 3, "by-a-sum": 5, "exact": 5, "e": 7}
    assert b.rank_of("b") == 1


def test_reference_rows_count_once_whatever_the_seeds(db):
    with Leaderboard(db) as board:
        for seed in (0, 3, 5):
            board.add(run(name="majority", source="reference", seed=seed, score=0.5, config={}))
        board.add(run(name="majority", source="reference", seed=None, score=0.5, config={}))
        (b,) = board.boards()
    (entry,) = b.entries
    assert entry.n_seeds == 1 and len(entry.run_ids) == 1 and entry.std is None
    assert entry.run_ids == [4]  # the latest run


def test_gap_is_signed_and_beyond_optimum_flagged(db):
    optimum = {"metric": "accuracy", "value": 0.9, "exact": True, "why": "label noise"}
    with Leaderboard(db) as board:
        board.add(run(name="leaked", score=1.0))
        board.add(run(name="at", score=0.9))
        board.add(run(name="short", score=0.5))
        (b,) = board.boards([FP_A], optimum=optimum)
    by_name = {e.name: e for e in b.entries}
    assert by_name["leaked"].gap_to_optimum == pytest.approx(-0.1) and by_name["leaked"].beyond_optimum
    assert by_name["at"].gap_to_optimum == pytest.approx(0.0) and not by_name["at"].beyond_optimum
    assert by_name["short"].gap_to_optimum == pytest.approx(0.4) and not by_name["short"].beyond_optimum
    assert [e.name for e in b.beyond_optimum_rows] == ["leaked"]
    assert json.loads(render([b], "json"))[0]["beyond_optimum"] is True


def test_gap_sign_lower_is_better(db):
    optimum = {"metric": "rmse", "value": 0.5, "exact": False, "why": "an estimate"}
    with Leaderboard(db) as board:
        board.add(run(name="below", task="regression", score=0.4))
        board.add(run(name="above", task="regression", score=0.7))
        (b,) = board.boards([FP_A], optimum=optimum)
    by_name = {e.name: e for e in b.entries}
    assert by_name["below"].gap_to_optimum == pytest.approx(-0.1) and by_name["below"].beyond_optimum
    assert by_name["above"].gap_to_optimum == pytest.approx(0.2) and not by_name["above"].beyond_optimum


def test_title_tells_apart_files_without_a_preset(db):
    sizes = {"train": 100, "val": 20, "test": 30}
    with Leaderboard(db) as board:
        board.add(run(fingerprint=FP_A, split_sizes=sizes))
        board.add(run(fingerprint=FP_B, split_sizes=sizes))
        board.add(run(fingerprint="e" * 64, preset="lines-3x3"))
        titles = [b.title for b in board.boards()]
    assert sorted(titles) == ["lines aaaaaaaa (100/20/30)", "lines bbbbbbbb (100/20/30)", "lines-3x3"]


def test_cli_unknown_preset_is_an_error(db, tmp_path):
    _filled(db)
    for where in (db, tmp_path / "absent.sqlite"):
        result = CliRunner().invoke(main, ["leaderboard", "--db", str(where), "--preset", "nosuch"])
        assert result.exit_code == 1 and result.output.startswith("Error:"), result.output
        assert "unknown preset 'nosuch'" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "absent.sqlite").exists()
    known = CliRunner().invoke(main, ["leaderboard", "--db", str(db), "--preset", "patches-64"])
    assert known.exit_code == 0 and "no runs recorded for preset patches-64" in known.output


def test_cli_preset_recorded_but_no_longer_shipped(db):
    with Leaderboard(db) as board:
        board.add(run(name="old", preset="retired-preset"))
    result = CliRunner().invoke(main, ["leaderboard", "--db", str(db), "--preset", "retired-preset"])
    assert result.exit_code == 0 and "old" in result.output


def test_a_rare_share_is_not_rounded_away():
    from cnnbench.board.render import _share

    assert [_share(v) for v in (None, 0.0, 1 / 300, 0.5, 299 / 300, 1.0)] == ["-", "0%", "<1%", "50%", ">99%", "100%"]


def test_a_board_optimum_is_typed_whatever_it_was_stored_as():
    from cnnbench.data.optimum import Optimum

    stored = {"metric": "accuracy", "value": 1.0, "exact": True, "why": "clean"}  # a file's or a board's JSON
    board = rank([(1, run(score=0.75))], stored)
    assert board.optimum == Optimum("accuracy", 1.0, True, "clean") == Optimum.of(board.optimum)
    assert Optimum.of(stored).as_dict() == stored
    assert Optimum.of(None) is None and Optimum.of({}) is None
    assert rank([(1, run(score=0.75))], {**stored, "metric": "rmse"}).optimum is None  # not comparable


def test_postgres_url_errors_are_one_line_and_hide_the_password(pg_url):
    missing = pg_url.replace("postgresql://postgres@/", "postgresql://postgres:s3cret@/nosuchdb_")
    for args in (["leaderboard"], ["leaderboard", "--format", "json"]):
        result = CliRunner().invoke(main, [*args, "--db", missing])
        assert result.exit_code == 1 and result.output.startswith("Error:"), result.output
        assert len(result.output.strip().splitlines()) == 1 and "cannot connect to PostgreSQL" in result.output
        assert "s3cret" not in result.output and "postgresql://postgres@/nosuchdb_" in result.output


def test_cli_records_and_reads_through_a_postgres_url(pg_url, tiny_dataset, tmp_path):
    import numpy as np

    from cnnbench.data.h5file import open_dataset

    ds = open_dataset(tiny_dataset)
    np.save(tmp_path / "p.npy", ds.load("test", ["targets"])["targets"])
    result = CliRunner().invoke(main, ["submit", str(tiny_dataset), str(tmp_path / "p.npy"), "--name", "exact",
                                       "--db", pg_url])
    assert result.exit_code == 0 and "rank 1 of 1" in result.output, result.output
    result = CliRunner().invoke(main, ["leaderboard", "--db", pg_url, "--format", "json"], env={"CNNBENCH_DB": ""})
    assert [r["name"] for r in json.loads(result.output) if r["kind"] == "model"] == ["exact"]
    result = CliRunner().invoke(main, ["leaderboard", "--format", "json"], env={"CNNBENCH_DB": pg_url})
    assert [r["name"] for r in json.loads(result.output) if r["kind"] == "model"] == ["exact"]


def test_resolve_db_keeps_a_url(monkeypatch):
    from cnnbench.board.db import display

    url = "postgresql://u:pw@db.example:5432/boards?sslmode=require&password=pw2"
    assert resolve_db_path(url) == url
    monkeypatch.setenv("CNNBENCH_DB", url)
    assert resolve_db_path(None) == url
    assert display(url) == "postgresql://u@db.example:5432/boards?sslmode=require"
