"""`cnnbench bench`, `cnnbench baselines` and `cnnbench suite` through click's runner."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cnnbench.board.store import Leaderboard
from cnnbench.cli import main
from cnnbench.data.generate import build_spec, write_dataset


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def rows(db):
    if not db.exists():
        return []
    with Leaderboard(db) as board:
        return board.runs()


@pytest.mark.parametrize("command", ["bench", "baselines", "suite"])
def test_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0 and "Usage" in result.output


def test_bench_takes_a_former_baseline_name_and_records_the_new_one(lines3, tmp_path):
    db = tmp_path / "board.sqlite"
    result = CliRunner().invoke(main, ["bench", str(lines3), "-b", "seed000-fix", "-b", "lines-cnn-fixed",
                                       "--epochs", "1", "--db", str(db), "-q"])
    assert result.exit_code == 0, result.output
    assert [r.name for r in rows(db)] == ["lines-cnn-fixed"]  # one run: both names are one baseline
    notes = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert notes == ["Warning: baseline 'seed000-fix' is now called 'lines-cnn-fixed'; "
                     "the old name will be removed"]


def test_bench_records_a_row_per_seed(lines3, tmp_path):
    db = tmp_path / "board.sqlite"
    result = invoke("bench", lines3, "-b", "lines-cnn-fixed", "-b", "majority", "--seeds", "0-1",
                    "--db", db, "--quiet")
    assert result.exit_code == 0, result.output
    recorded = rows(db)
    fix = [r for r in recorded if r.name == "lines-cnn-fixed"]
    assert sorted(r.seed for r in fix) == [0, 1]
    assert all(r.score == 1.0 for r in fix)
    assert [r.source for r in recorded if r.name == "majority"] == ["reference"]  # once, not per seed
    assert "lines-cnn-fixed" in result.output and "accuracy 1.0000" in result.output


def test_bench_jobs_runs_in_workers_and_prints_records_in_order(lines3, tmp_path, monkeypatch):
    db = tmp_path / "board.sqlite"
    result = invoke("bench", lines3, "-b", "lines-cnn-fixed", "--seeds", "0-2", "--epochs", "3",
                    "--jobs", "2", "--db", db, "--quiet")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("lines-cnn-fixed")]
    assert [line.split()[2] for line in lines] == ["0", "1", "2"]
    # Stored as each run ends (any order), printed in run order.
    assert sorted(r.seed for r in rows(db)) == [0, 1, 2] and {r.torch_threads for r in rows(db)} == {1}
    monkeypatch.setenv("CNNBENCH_JOBS", "many")
    refused = invoke("bench", lines3, "-b", "majority", "--db", db)
    assert refused.exit_code != 0 and refused.output.startswith("Error: $CNNBENCH_JOBS: 'many'")
    assert len(refused.output.splitlines()) == 1 and len(rows(db)) == 3


def test_bench_plot_writes_pngs(tmp_path):
    path = tmp_path / "boxes.h5"
    write_dataset(build_spec("boxes", {"size": 16, "box_size": 4, "n_train": 64, "n_val": 32,
                                       "n_test": 32}), path)
    result = invoke("bench", path, "-b", "ridge", "--db", tmp_path / "b.sqlite", "--plot",
                    tmp_path / "plots", "-q")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert names == ["boxes_ridge_seed0_curves.png", "boxes_ridge_seed0_scatter.png"]


@pytest.mark.parametrize("args, message", [
    (["-b", "nope"], "unknown baseline 'nope'"),
    (["--epochs", "0"], "'--epochs': 0 is not in the range 1<=x<=10000"),
    (["--seeds", "x"], "seeds"),
    (["-b", "lines-cnn-fixed", "--device", "warp"], "device"),
])
def test_bench_bad_input_one_line_no_row(lines3, tmp_path, args, message):
    db = tmp_path / "board.sqlite"
    result = invoke("bench", lines3, *args, "--db", db, "-q")
    assert result.exit_code in (1, 2)  # 2: a usage error caught by click (out of range)
    assert message in result.output and result.output.count("\n") == 1
    assert rows(db) == []


def test_bench_refuses_non_cnnbench_and_public_files(lines3, tmp_path):
    db = tmp_path / "board.sqlite"
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    result = invoke("bench", junk, "--db", db)
    assert result.exit_code == 1 and result.output.startswith("Error:")
    public = tmp_path / "public.h5"
    assert invoke("export-public", lines3, "--out", public, "--allow-guessable-seed").exit_code == 0
    result = invoke("bench", public, "-b", "majority", "--db", db)
    assert result.exit_code == 1 and "withheld" in result.output
    assert rows(db) == []


def test_bench_refuses_a_baseline_for_another_task(lines3, tmp_path):
    result = invoke("bench", lines3, "-b", "mean", "--db", tmp_path / "b.sqlite")
    assert result.exit_code == 1 and "does not apply" in result.output


def test_baselines_lists_one_line_each(lines3):
    from cnnbench.baselines import all_baselines

    result = invoke("baselines")
    assert result.exit_code == 0
    header, *rows = result.output.strip().splitlines()
    assert header.split()[:3] == ["name", "qr", "applies"] and len(rows) == len(all_baselines())
    assert any(r.split()[:4] == ["ridge", "qr", "any", "ridge"] for r in rows)
    only = invoke("baselines", "--dataset", lines3).output
    assert "lines-cnn-as-asked" in only and "\nmean " not in only


def test_suite_generates_runs_records_and_reports(tmp_path):
    db, data, report = tmp_path / "b.sqlite", tmp_path / "data", tmp_path / "results.md"
    args = ["suite", "--preset", "lines-3x3", "-b", "lines-cnn-as-asked", "-b", "lines-cnn-fixed",
            "--seeds", "0-1", "--data-dir", data, "--db", db, "--report", report, "-q"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert (data / "lines-3x3.h5").exists()
    assert len(rows(db)) == 4
    text = report.read_text()
    assert "lines-cnn-fixed reaches 1.0" in text and "2 of 2 seeds reach 1.0" in text
    # A second run reuses the file (same spec) rather than regenerating it.
    mtime = (data / "lines-3x3.h5").stat().st_mtime_ns
    assert invoke(*args[:-3], "-q").exit_code == 0
    assert (data / "lines-3x3.h5").stat().st_mtime_ns == mtime
    assert len(rows(db)) == 8


def test_suite_rejects_unknown_rung_and_preset(tmp_path):
    assert "rungs" in invoke("suite", "--rungs", "impossible", "--db", tmp_path / "b").output
    assert "unknown preset" in invoke("suite", "--preset", "nope", "--db", tmp_path / "b").output


def test_bench_runs_each_baseline_and_seed_once_and_records_an_absolute_path(tmp_path, lines3, monkeypatch):
    import shutil

    db = tmp_path / "b.sqlite"
    shutil.copy(lines3, tmp_path / "l3.h5")
    monkeypatch.chdir(tmp_path)
    result = invoke("bench", "l3.h5", "-b", "majority", "-b", "majority", "-b", "mlp", "--seeds", "0,0,1",
                    "--epochs", "1", "--db", db, "-q")
    assert result.exit_code == 0, result.output
    with Leaderboard(db) as board:
        runs = board.runs()
    # majority is a reference predictor: once, whatever the seeds; mlp once per distinct seed.
    assert sorted((r.name, r.seed) for r in runs) == [("majority", 0), ("mlp", 0), ("mlp", 1)]
    assert {r.dataset_path for r in runs} == {str(tmp_path.resolve() / "l3.h5")}
