"""A refused command creates no leaderboard database where none existed (and changes none)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from cnnbench.board.public import export_public
from cnnbench.cli import main
from cnnbench.data.generate import build_spec, write_dataset

NAN_MODEL = '''
import torch
from torch import nn


class NaNNet(nn.Module):
    def __init__(self, outputs):
        super().__init__()
        self.linear = nn.Linear(1, outputs)

    def forward(self, x):
        return self.linear(x.new_ones(len(x), 1)) * float("nan")


def make(info):
    return NaNNet(info.num_outputs)
'''


@pytest.fixture(scope="module")
def boxes(tmp_path_factory):
    path = tmp_path_factory.mktemp("boxes") / "boxes.h5"
    write_dataset(build_spec("boxes", {"size": 16, "box_size": 4, "n_train": 32, "n_val": 16, "n_test": 16,
                                       "seed": 2 ** 62 + 1}), path)
    return path


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def refused(result) -> bool:
    return result.exit_code == 1 and result.output.startswith("Error:")


def test_submit_overflowing_predictions(boxes, tmp_path):
    np.save(tmp_path / "huge.npy", np.full((16, 2), 1e200))
    fresh = tmp_path / "fresh.sqlite"
    assert refused(invoke("submit", boxes, tmp_path / "huge.npy", "--name", "x", "--db", fresh))
    assert not fresh.exists()


def test_submit_refused_with_the_environment_database(boxes, tmp_path, monkeypatch):
    np.save(tmp_path / "short.npy", np.zeros((3, 2)))
    monkeypatch.setenv("CNNBENCH_DB", str(tmp_path / "env.sqlite"))
    assert refused(invoke("submit", boxes, tmp_path / "short.npy", "--name", "x"))
    assert not (tmp_path / "env.sqlite").exists()


def test_default_database_folder_not_made_on_refusal(boxes, tmp_path, monkeypatch):
    np.save(tmp_path / "short.npy", np.zeros((3, 2)))
    monkeypatch.delenv("CNNBENCH_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert refused(invoke("submit", boxes, tmp_path / "short.npy", "--name", "x"))
    assert refused(invoke("leaderboard", "--preset", "nosuch"))
    assert not (tmp_path / "xdg").exists()


def test_evaluate_model_producing_nan(boxes, tmp_path):
    (tmp_path / "nan_model.py").write_text(NAN_MODEL)
    fresh = tmp_path / "fresh.sqlite"
    result = invoke("evaluate", boxes, "--model", f"{tmp_path / 'nan_model.py'}:make", "--epochs", "1",
                    "--db", fresh, "-q")
    assert refused(result), result.output
    assert not fresh.exists()


def test_bench_on_a_public_file(boxes, tmp_path):
    public = tmp_path / "public.h5"
    export_public(boxes, public)
    fresh = tmp_path / "fresh.sqlite"
    result = invoke("bench", public, "-b", "mean", "--db", fresh, "-q")
    assert refused(result) and "withheld" in result.output, result.output
    assert not fresh.exists()


def test_leaderboard_reads_create_nothing(boxes, tmp_path):
    fresh = tmp_path / "fresh.sqlite"
    for args in ([], [boxes], ["--preset", "boxes-64"], ["--format", "json"]):
        assert invoke("leaderboard", *args, "--db", fresh).exit_code == 0
    assert not fresh.exists()
