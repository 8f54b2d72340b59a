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
