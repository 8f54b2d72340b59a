"""Runs on several worker processes give the records one process gives, in job order."""

from __future__ import annotations

import pytest

from cnnbench.bench.parallel import Job, run_jobs
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
