"""A run that cannot be scored is refused, and refusals print plain numbers."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from cnnbench.board.predictions import SubmissionError, check_predictions
from cnnbench.board.store import Leaderboard
from cnnbench.cli import main
from cnnbench.data.h5file import open_dataset

NAN_MODEL = """
import torch
from torch import nn


class NaNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.full((len(x), 2), float("nan")) + self.w


def make(info):
    return NaNNet()
"""


def test_classification_model_with_nan_outputs_refused(lines3, tmp_path):
    (tmp_path / "nan_model.py").write_text(NAN_MODEL)
    db = tmp_path / "b.sqlite"
    result = CliRunner().invoke(main, ["evaluate", str(lines3), "--model", f"{tmp_path / 'nan_model.py'}:make",
                                       "--epochs", "1", "--db", str(db), "-q"])
    assert result.exit_code == 1, result.output
    assert "non-finite accuracy" in result.output and "Traceback" not in result.output
    assert not db.exists()  # nothing recorded, no database made


def test_train_scores_nan_outputs_as_undefined(lines3):
    import math

    from cnnbench.bench import protocol as train
    ns = {}
    exec(NAN_MODEL, ns)
    result = train.run(open_dataset(lines3), ns["make"], name="nan", epochs=1, device="cpu")
    assert math.isnan(result.record.metrics["accuracy"])
    assert result.record.torch_threads >= 1 and result.record.torch_version and result.record.device == "cpu"


def test_fractional_class_id_message_is_a_plain_number(lines3):
    ds = open_dataset(lines3)
    values = np.zeros(ds.split_size("test"))
    values[2] = 0.2
    try:
        check_predictions(ds, values)
    except SubmissionError as exc:
        message = str(exc)
    assert "class id at row 2 is 0.2," in message and "np." not in message


def test_run_conditions_recorded_and_shown(lines3, tmp_path):
    """Threads, torch version and device of every run, in the store and in json/csv output."""
    import csv
    import io
    import json
    import sqlite3

    db = tmp_path / "b.sqlite"
    result = CliRunner().invoke(main, ["bench", str(lines3), "-b", "majority", "--threads", "1", "--device", "cpu",
                                       "--db", str(db), "-q"])
    assert result.exit_code == 0, result.output
    with Leaderboard(db) as board:
        (record,) = board.runs()
    assert record.torch_threads == 1 and record.device == "cpu" and record.torch_version
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT torch_threads, device FROM runs").fetchone() == (1, "cpu")
    conn.close()
    rows = json.loads(CliRunner().invoke(main, ["leaderboard", "--db", str(db), "--format", "json"]).output)
    model = next(r for r in rows if r["name"] == "majority")
    assert (model["torch_threads"], model["device"], model["torch_version"]) == (1, "cpu", record.torch_version)
    text = CliRunner().invoke(main, ["leaderboard", "--db", str(db), "--format", "csv"]).output
    (row,) = [r for r in csv.DictReader(io.StringIO(text)) if r["name"] == "majority"]
    assert (row["torch_threads"], row["device"]) == ("1", "cpu")
