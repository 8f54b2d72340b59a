"""Progress lines for long work when stderr is not a terminal."""

import io
import time

from cnnbench.cli.progress import ProgressLines


def test_a_line_whenever_every_seconds_pass_without_one():
    stream = io.StringIO()
    with ProgressLines("boxes-64: mlp seed 0", "epochs", every=0.05, stream=stream) as lines:
        lines.update(2, 8, "val rmse 1.25")
        deadline = time.monotonic() + 10
        while "\n" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
    first = stream.getvalue().splitlines()[0]
    assert first.startswith("boxes-64: mlp seed 0: 2/8 epochs, val rmse 1.25, ")
    assert ", ETA " in first  # 6 epochs to go at the rate of the first 2


def test_short_work_prints_nothing_and_disabled_prints_nothing():
    stream = io.StringIO()
    with ProgressLines("quick", "images", every=60, stream=stream) as lines:
        lines.update(10, 10)
    off = io.StringIO()
    with ProgressLines("off", "images", enabled=False, every=0.01, stream=off) as lines:
        lines.update(1, 10)
        time.sleep(0.1)
    assert stream.getvalue() == "" and off.getvalue() == ""


def test_before_any_report_the_line_says_running():
    lines = ProgressLines("lines-16: ridge seed 0", "epochs", enabled=False)
    assert lines.line().startswith("lines-16: ridge seed 0: running, ")


def test_the_eta_counts_the_rate_up_to_the_last_unit_not_up_to_now(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    lines = ProgressLines("boxes-64: boxes-cnn-fixed seed 0", "epochs", enabled=False)
    now[0] = 145.0
    lines.update(1, 3)  # the first epoch took 45 s
    assert lines.eta() == 90.0
    now[0] = 180.0  # 35 s into the second epoch: 55 s left, not 2 x 80 s
    assert lines.eta() == 55.0
    assert lines.line().endswith("1/3 epochs, 1 min 20 s, ETA 55 s")
    now[0] = 300.0  # the second epoch overruns: the third, not started, still counts
    assert lines.eta() == 45.0
    lines.update(3, 3)
    assert lines.eta() == 0.0
    assert ProgressLines("x", "epochs", enabled=False).eta() is None  # nothing done yet
