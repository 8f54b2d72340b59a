"""cnnbench.bench.suite and cnnbench.bench.runs from Python: run_suite and run_baselines, as
the commands run them, with their callbacks; the plan and figures are tested in test_bench_cli."""

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
