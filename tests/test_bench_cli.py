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
    assert [r.seed for r in rows(db)] == [0, 1, 2] and {r.torch_threads for r in rows(db)} == {1}
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


def test_suite_plan_quick_full_and_medium_on_request():
    from cnnbench.bench.suite import choose_presets, plan

    def planned(full, rungs=None):
        return {s.preset.name: {b.name: len(seeds) for b, seeds in s.runs}
                for s in plan(choose_presets(full, rungs), full)}

    quick = planned(False)
    # The seeds' own tasks; the expensive boxes-cnn-as-asked runs once, not ten times.
    assert set(quick) == {"lines-3x3", "lines-16", "boxes-64", "patches-64"}
    assert quick["lines-3x3"]["lines-cnn-as-asked"] == 10 and quick["boxes-64"]["boxes-cnn-as-asked"] == 1
    assert "resnet" not in quick["patches-64"]
    full = planned(True)
    assert {"lines-32-hard", "boxes-64-hard", "patches-64-hard", "notsoclevr-quadrant"} <= set(full)
    assert not {"boxes-64-medium", "patches-64-medium"} & set(full)
    assert full["boxes-64"]["boxes-cnn-as-asked"] == 10
    assert set(planned(True, ["medium"])) == {"lines-16", "boxes-64-medium", "patches-64-medium"}


def test_suite_rejects_unknown_rung_and_preset(tmp_path):
    assert "rungs" in invoke("suite", "--rungs", "impossible", "--db", tmp_path / "b").output
    assert "unknown preset" in invoke("suite", "--preset", "nope", "--db", tmp_path / "b").output


def test_figures_are_checked_from_records():
    from cnnbench.bench.suite import check_figures, render_report
    from cnnbench.board.records import RunRecord

    def rec(name, preset, score, seed=0, task="classification", r2=0.5, spread=16.0):
        metrics = ({"accuracy": score, "per_class_accuracy": [score, score]} if task == "classification"
                   else {"rmse": score, "mse": score ** 2, "mae": score, "r2": r2})
        diagnostics = {} if task == "classification" else {"prediction_std": [spread, spread],
                                                           "target_std": [16.0, 16.0]}
        return RunRecord(name=name, source="baseline", fingerprint="f" * 64, family="x", task=task,
                         metrics=metrics, preset=preset, seed=seed, wall_time_s=1.0, params=10,
                         diagnostics=diagnostics)

    records = ([rec("lines-cnn-as-asked", "lines-3x3", 0.5, s) for s in range(9)]
               + [rec("lines-cnn-as-asked", "lines-3x3", 5 / 6, 9)]
               + [rec("lines-cnn-fixed", "lines-3x3", 1.0, s) for s in range(10)]
               + [rec("boxes-cnn-as-asked", "boxes-64", 16.0, s, "regression", r2=0.0 if s < 7 else 0.9,
                      spread=0.0 if s < 6 else 16.0) for s in range(10)])
    figs = {f.claim: f for f in check_figures(records, total_wall_s=600)}
    repro = figs["lines-cnn-as-asked never reaches 1.0 over 10 seeds, mean <= 0.6"]
    assert repro.met is True and repro.measured == "0 of 10 seeds reach 1.0; mean accuracy 0.533"
    assert figs["lines-cnn-fixed reaches 1.0 on all 10 seeds"].met is True
    # Seed 6 has R² 0 but predictions as spread as the targets: poor, not collapsed.
    assert "6 of 10 seeds collapse" in figs["boxes-cnn-as-asked collapses to the mean on most of 10 seeds"].measured
    assert figs["best test accuracy >= 0.99"].met is None  # lines-16 not run
    text = render_report(records, 600.0, {"lines-3x3": {"value": 1.0, "exact": True, "why": "clean"}})
    assert "| lines-3x3 |" in text and "not run" in text and "Known optimum: accuracy 1.0000" in text


def test_hard_rung_figure_needs_spread_between_baselines_and_room_above_the_floor():
    from cnnbench.bench.suite import check_figures
    from cnnbench.board.records import RunRecord

    def rec(name, preset, rmse, source="baseline"):
        return RunRecord(name=name, source=source, fingerprint="f" * 64, family="boxes", task="regression",
                         metrics={"rmse": rmse, "mse": rmse ** 2, "mae": rmse, "r2": 0.5}, preset=preset)

    def hard(records, floor):
        figs = [f for f in check_figures(records, optimum={"boxes-64-hard": {"value": floor}})
                if f.dataset == "boxes-64-hard"]
        assert len(figs) == 1
        return figs[0]

    # The reference rows (mean, ridge) do not count as the worst baseline.
    ranked = [rec("resnet", "boxes-64-hard", 1.0), rec("mlp", "boxes-64-hard", 3.5),
              rec("mean", "boxes-64-hard", 15.0, "reference")]
    fig = hard(ranked, 0.02)
    assert fig.met is True and "best resnet 1.000, worst mlp 3.500 (3.5x)" in fig.measured
    assert hard(ranked[:1] + [rec("mlp", "boxes-64-hard", 2.5)], 0.02).met is False  # only 2.5x apart
    assert hard(ranked, 0.9).met is False  # best within 1.5x of the floor
    assert hard(ranked[:1], 0.02).met is None  # one baseline: nothing to rank


def test_report_solved_share_is_against_the_optimum_and_hand_notes_are_kept(tmp_path):
    from cnnbench.bench.suite import NOTES_MARKER, kept_notes, render_report
    from cnnbench.board.records import RunRecord

    records = [RunRecord(name="lines-cnn-as-asked", source="baseline", fingerprint="f" * 64, family="lines",
                         task="classification", metrics={"accuracy": a}, preset="lines-3x3", seed=s)
               for s, a in enumerate([0.5, 5 / 6, 5 / 6])]
    optimum = {"lines-3x3": {"value": 1.0, "exact": True, "why": "clean"}}
    text = render_report(records, 60.0, optimum, whole_suite=False)
    # No seed reached the optimum 1.0: 0 %, not the share reaching this row's own best.
    row = next(line for line in text.splitlines() if line.startswith("| lines-cnn-as-asked |"))
    assert row.split(" | ")[6] == "0%"
    assert "whole suite under 20 minutes" not in text  # a narrower run claims no suite time
    assert "| 0.1925 |" in row  # sample std of (0.5, 5/6, 5/6), as on the leaderboard
    assert f"Dataset fingerprint: `{'f' * 64}`." in text  # the figures name the exact files
    assert "Not part of this run" not in text
    narrowed = render_report(records, 60.0, optimum, whole_suite=False,
                             left_out=["notsoclevr-quadrant", "notsoclevr-uniform"])
    assert "Not part of this run: `notsoclevr-quadrant`, `notsoclevr-uniform`" in narrowed
    assert "CoordConv section" in narrowed

    report = tmp_path / "results.md"
    report.write_text("# Results\nold tables\n\n" + NOTES_MARKER + "\n## Notes\nwritten by hand\n")
    rewritten = render_report(records, 60.0, optimum, kept=kept_notes(report))
    assert "old tables" not in rewritten
    assert rewritten.endswith(NOTES_MARKER + "\n## Notes\nwritten by hand\n")
    assert kept_notes(tmp_path / "missing.md") == ""


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
