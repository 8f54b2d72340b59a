"""Every number a user gives has a declared range, shown in --help and enforced before any
work: huge thread counts segfaulted torch, huge epochs or steps ran until killed, a huge
--params left an empty database behind, --noise 1e308 was accepted."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from cnnbench.cli import main
from cnnbench.data.families import FAMILIES
from cnnbench.data.params import DEFAULT_FLOAT_HIGH, MAX_EPOCHS, MAX_STEPS, MAX_THREADS


def one_line_error(result) -> str:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    return lines[0]


@pytest.mark.parametrize("command", [["bench", "{data}"], ["evaluate", "{data}", "--model", "m.py:make"],
                                     ["diagnose", "{data}", "--baseline", "majority"]])
@pytest.mark.parametrize("threads", ["100000", str(10**22), "0"])
def test_threads_bounded(command, threads, lines3, tmp_path):
    args = [a.format(data=lines3) for a in command] + ["--threads", threads, "--db", str(tmp_path / "b.sqlite")]
    message = one_line_error(CliRunner().invoke(main, args))
    assert "--threads" in message and f"1<=x<={MAX_THREADS}" in message
    assert not (tmp_path / "b.sqlite").exists()


@pytest.mark.parametrize("command", [["bench", "{data}"], ["evaluate", "{data}", "--model", "m.py:make"],
                                     ["suite", "--dry-run"]])
def test_epochs_bounded(command, lines3, tmp_path):
    args = [a.format(data=lines3) for a in command] + ["--epochs", str(10**21), "--db", str(tmp_path / "b.sqlite")]
    assert f"1<=x<={MAX_EPOCHS}" in one_line_error(CliRunner().invoke(main, args))


def test_diagnose_steps_bounded(lines3):
    args = ["diagnose", str(lines3), "--baseline", "majority", "--steps", str(10**23)]
    assert f"1<=x<={MAX_STEPS}" in one_line_error(CliRunner().invoke(main, args))


def test_submit_params_bounded_leaves_no_database(lines3, tmp_path):
    import numpy as np

    from cnnbench.data.h5file import open_dataset

    np.save(tmp_path / "p.npy", open_dataset(lines3).load("test", ["targets"])["targets"])
    db = tmp_path / "b.sqlite"
    args = ["submit", str(lines3), str(tmp_path / "p.npy"), "--name", "x", "--db", str(db), "--params", str(10**23)]
    assert "--params" in one_line_error(CliRunner().invoke(main, args))
    assert not db.exists()


def test_library_refuses_a_huge_params_before_opening(lines3, tmp_path):
    from cnnbench.board.records import RunRecord
    from cnnbench.board.store import Leaderboard, LeaderboardError

    record = RunRecord(name="x", source="submission", fingerprint="f" * 64, family="lines",
                       task="classification", metrics={"accuracy": 1.0}, params=10**23)
    with Leaderboard(tmp_path / "b.sqlite") as board:
        with pytest.raises(LeaderboardError, match="parameter count"):
            board.add(record)
    assert not (tmp_path / "b.sqlite").exists()


@pytest.mark.parametrize("value", ["1e308", "1e7", "inf"])
def test_generate_noise_bounded(value, tmp_path):
    out = tmp_path / "x.h5"
    message = one_line_error(CliRunner().invoke(main, ["generate", "lines", "--out", str(out), "--noise", value]))
    assert "noise" in message and not out.exists()


def test_generate_workers_bounded(tmp_path):
    out = tmp_path / "x.h5"
    one_line_error(CliRunner().invoke(main, ["generate", "lines", "--out", str(out), "--workers", "100000"]))


def test_every_numeric_parameter_has_a_finite_documented_range():
    for family in FAMILIES.values():
        result = CliRunner().invoke(main, ["generate", family.name, "--help"])
        help_text = re.sub(r"\s+", " ", result.output)
        for param in family.params:
            if param.kind in ("int", "float", "range", "int_range"):
                assert param.upper is not None and param.upper <= max(DEFAULT_FLOAT_HIGH, 2**63 - 1)
                assert param.range_text().replace(" ", "") in help_text.replace(" ", ""), (family.name, param.name)
