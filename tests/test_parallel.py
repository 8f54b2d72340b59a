"""Runs on several worker processes give the records one process gives, in job order."""

from __future__ import annotations

import pytest

from cnnbench.bench.parallel import Job, run_jobs, start_order
from cnnbench.data.h5file import open_dataset
from cnnbench.errors import CnnbenchError


def _metrics(done):
    r = done.record
    return (r.name, r.seed, r.metrics, r.best_epoch, r.params)


def test_two_workers_give_the_serial_records_in_job_order(lines3):
    jobs = [Job(str(lines3), name, seed, epochs=5)
            for name in ("majority", "lines-cnn-as-asked", "lines-cnn-fixed") for seed in (0, 1)]
    jobs = [j for j in jobs if not (j.baseline == "majority" and j.seed == 1)]
    order, started, progressed = [], set(), set()
    parallel = run_jobs(jobs, 2, on_start=started.add, on_progress=lambda i, a: progressed.add(i),
                        on_done=lambda i, d: order.append(i))
    serial = run_jobs(jobs, 1)
    assert order == list(range(len(jobs)))  # handed back in job order whatever finished first
    assert started == set(range(len(jobs)))
    assert progressed >= {1, 2, 3, 4}  # the trained runs reported epochs from their workers
    assert [_metrics(d) for d in parallel] == [_metrics(d) for d in serial]
    assert [d.record.torch_threads for d in parallel] == [1] * len(jobs)


def test_an_error_keeps_the_records_before_it_and_raises_the_same_class(lines3, tmp_path):
    jobs = [Job(str(lines3), "majority", 0), Job(str(tmp_path / "missing.h5"), "majority", 0),
            Job(str(lines3), "lines-cnn-fixed", 0, epochs=2)]
    handed = []
    with pytest.raises(CnnbenchError) as info:
        run_jobs(jobs, 2, on_done=lambda i, d: handed.append(i))
    assert handed == [0]
    assert "missing.h5" in str(info.value)
    with pytest.raises(CnnbenchError) as direct:
        open_dataset(tmp_path / "missing.h5")
    assert type(info.value) is type(direct.value)  # the worker's error class survives the trip


def test_costliest_jobs_start_first_and_records_keep_job_order(lines3):
    jobs = [Job(str(lines3), "majority", 0), Job(str(lines3), "lines-cnn-fixed", 0, epochs=2),
            Job(str(lines3), "lines-cnn-as-asked", 0, epochs=2)]
    started, results, handed = [], [], []
    done = run_jobs(jobs, 1, costs=[0.0, 5.0, 9.0], on_start=started.append,
                    on_result=lambda i, d: results.append(i), on_done=lambda i, d: handed.append(i))
    assert started == [2, 1, 0]
    assert results == [2, 1, 0]  # each result as soon as its job ends: nothing waits for job 0
    assert handed == [0, 1, 2]
    assert [_metrics(d) for d in done] == [_metrics(d) for d in run_jobs(jobs, 1)]


def test_start_order_ties_keep_job_order_and_counts_must_match():
    assert start_order(4, None) == [0, 1, 2, 3]
    assert start_order(4, [1.0, 3.0, 1.0, 3.0]) == [1, 3, 0, 2]
    with pytest.raises(CnnbenchError, match="costs: 2 given for 3 jobs"):
        start_order(3, [1.0, 2.0])


def test_an_error_still_runs_the_jobs_before_it_that_had_not_started(lines3, tmp_path):
    # The failing job and the one after it start first; the cheap job before them still runs.
    jobs = [Job(str(lines3), "majority", 0), Job(str(tmp_path / "missing.h5"), "majority", 0),
            Job(str(lines3), "lines-cnn-fixed", 0, epochs=2)]
    started, results, handed = [], [], []
    with pytest.raises(CnnbenchError, match="missing.h5"):
        run_jobs(jobs, 1, costs=[0.0, 2.0, 1.0], on_start=started.append,
                 on_result=lambda i, d: results.append(i), on_done=lambda i, d: handed.append(i))
    assert started == [1, 0]  # job 2, after the error, never starts
    assert handed == [0] and results == [0]


def test_costs_that_are_not_finite_numbers_count_as_zero():
    assert start_order(5, [1.0, float("nan"), 3.0, 2.0, 5.0]) == [4, 2, 3, 0, 1]
    assert start_order(3, [None, float("inf"), 1.0]) == [2, 0, 1]
