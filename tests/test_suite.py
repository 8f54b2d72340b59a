"""cnnbench.bench.suite and cnnbench.bench.runs from Python: the plan, run_suite and
run_baselines with their callbacks, the figures and the report (the commands: test_bench_cli)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

import cnnbench
from cnnbench.board.store import Leaderboard
from cnnbench.errors import ParamError


def recorded(db):
    with Leaderboard(db) as board:
        return board.runs()


def test_run_suite_generates_runs_records_reports_and_calls_back(tmp_path):
    db, data, report = tmp_path / "b.sqlite", tmp_path / "data", tmp_path / "results.md"
    calls = {"generated": [], "datasets": [], "labels": [], "epochs": 0, "records": []}

    @contextmanager
    def generate_progress(name, total):
        calls["generated"].append((name, total))
        yield lambda n: None

    @contextmanager
    def progress(label):
        calls["labels"].append(label)

        def on_epoch(epoch, epochs, metric, value):
            calls["epochs"] += 1
            assert 1 <= epoch <= epochs and metric == "accuracy"
        yield on_epoch

    done = cnnbench.run_suite(presets=["lines-3x3"], baselines=["majority", "lines-cnn-fixed"], seeds="0-1",
                              data_dir=data, db=db, report=report, epochs=2, progress=progress,
                              generate_progress=generate_progress,
                              on_dataset=lambda step, path, made, _: calls["datasets"].append((step.preset.name, made)),
                              on_record=calls["records"].append)
    assert isinstance(done, cnnbench.SuiteResult) and done.db == db and done.report == report
    assert [s.preset.name for s in done.steps] == ["lines-3x3"] and len(done.fingerprints) == 1
    # majority is a closed-form fit: one run whatever the seeds; the CNN runs per seed.
    assert [(r.name, r.seed) for r in done.records] == [("majority", 0), ("lines-cnn-fixed", 0),
                                                        ("lines-cnn-fixed", 1)]
    assert calls["records"] == done.records
    assert [(r.name, r.seed) for r in recorded(db)] == [(r.name, r.seed) for r in done.records]
    assert calls["generated"] == [("lines-3x3", 18)] and calls["datasets"] == [("lines-3x3", True)]
    assert calls["labels"] == ["lines-3x3: majority seed 0", "lines-3x3: lines-cnn-fixed seed 0",
                               "lines-3x3: lines-cnn-fixed seed 1"]
    assert calls["epochs"] == 2 + 2 + 1  # each epoch of the two CNN runs, and the fit reports its one step
    text = report.read_text()
    command = "cnnbench suite --preset lines-3x3 -b majority -b lines-cnn-fixed --seeds 0-1 --epochs 2"
    assert f"Written by `{command}`" in text
    assert "## lines-3x3" in text and done.optimum["lines-3x3"] is not None
    # Again: the dataset is reused, not generated; the report needs force.
    with pytest.raises(ParamError, match="already exists"):
        cnnbench.run_suite(presets=["lines-3x3"], baselines=["majority"], data_dir=data, db=db, report=report)
    assert len(recorded(db)) == 3  # refused before any run
    again = cnnbench.run_suite(presets=["lines-3x3"], baselines=["majority"], data_dir=data, db=db,
                               on_dataset=lambda step, _path, made, _runs: calls["datasets"].append(
                                   (step.preset.name, made)))
    assert calls["datasets"][-1] == ("lines-3x3", False) and again.report is None and len(recorded(db)) == 4


def test_run_suite_refuses_bad_names_before_any_work(tmp_path):
    with pytest.raises(cnnbench.CnnbenchError, match="unknown preset 'nope'"):
        cnnbench.run_suite(presets=["nope"], data_dir=tmp_path / "data", db=tmp_path / "b.sqlite")
    with pytest.raises(ParamError, match="rungs: 'tough'"):
        cnnbench.run_suite(rungs="easy,tough", data_dir=tmp_path / "data", db=tmp_path / "b.sqlite")
    with pytest.raises(ParamError, match="seeds"):
        cnnbench.run_suite(presets=["lines-3x3"], seeds="x", data_dir=tmp_path / "data", db=tmp_path / "b.sqlite")
    assert list(tmp_path.iterdir()) == []


def test_run_baselines_records_each_run_and_checks_plots_first(lines3, tmp_path):
    db, plots = tmp_path / "b.sqlite", tmp_path / "plots"
    seen = []
    records = cnnbench.run_baselines(lines3, ["majority", "lines-cnn-fixed"], seeds=[0, 1], db=db, epochs=2,
                                     plot_dir=plots, on_record=seen.append)
    assert seen == records and [(r.name, r.seed) for r in records] == [("majority", 0), ("lines-cnn-fixed", 0),
                                                                       ("lines-cnn-fixed", 1)]
    assert len(recorded(db)) == 3 and len(list(plots.iterdir())) == 3
    # Every plot is checked before training: an existing one refuses the whole call.
    with pytest.raises(ParamError, match="already exists"):
        cnnbench.run_baselines(lines3, ["lines-cnn-fixed"], seeds=1, db=db, plot_dir=plots)
    assert len(recorded(db)) == 3
    # Without names: every baseline that applies (here the lines ones, no regression ones).
    names = {r.name for r in cnnbench.run_baselines(lines3, seeds=0, db=tmp_path / "all.sqlite", epochs=1)}
    assert {"majority", "ridge", "lines-cnn-as-asked", "lines-cnn-fixed"} <= names and "mean" not in names


@pytest.mark.parametrize("seeds, message", [(True, "seeds"), ([], "at least one"), ("1-0", "seeds"), (-1, "negative")])
def test_run_baselines_refuses_bad_seeds(lines3, tmp_path, seeds, message):
    with pytest.raises(ParamError, match=message):
        cnnbench.run_baselines(lines3, ["majority"], seeds=seeds, db=tmp_path / "b.sqlite")
    assert not (tmp_path / "b.sqlite").exists()


# -- the plan -------------------------------------------------------------------------------

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


# -- figures and the report -------------------------------------------------------------------

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
    # The machine line says how the runs used it: threads from the records, not this process.
    for r in records:
        r.torch_threads = 1
    text = render_report(records, 600.0, {}, workers=2)
    assert "(1 torch thread per run, 2 runs at once on worker processes)" in text


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


def test_run_suite_on_two_workers_records_what_one_worker_records(tmp_path):
    """Worker processes (one torch thread each) change the wall time, not the records or their order."""
    def suite(workers, folder):
        headers = []
        done = cnnbench.run_suite(presets=["lines-3x3"], baselines=["majority", "lines-cnn-fixed"], seeds="0-2",
                                  data_dir=tmp_path / "data", db=tmp_path / folder, epochs=3, workers=workers,
                                  on_dataset=lambda step, path, made, runs: headers.append((step.preset.name, runs)))
        assert headers == [("lines-3x3", 2)]
        return [(r.name, r.seed, r.metrics, r.best_epoch, r.torch_threads) for r in done.records]

    two = suite(2, "two.sqlite")
    assert two == suite(1, "one.sqlite")  # conftest runs torch on one thread, as each worker does
    assert [(name, seed) for name, seed, *_ in two] == [("majority", 0)] + [("lines-cnn-fixed", s) for s in range(3)]
