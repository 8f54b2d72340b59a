"""Fixtures shared by the test modules."""

from __future__ import annotations

import os

import pytest
import torch

from cnnbench.data.generate import write_dataset
from cnnbench.data.presets import get_preset

# Tiny models train faster on one thread than they synchronise two.
torch.set_num_threads(1)
# Commands run their trainings in this process unless a test asks for workers (--jobs N):
# starting worker interpreters would cost more than the tests' tiny runs.
os.environ["CNNBENCH_JOBS"] = "1"


@pytest.fixture(scope="session")
def lines3(tmp_path_factory):
    """The lines-3x3 preset (seed 000's six images), written once; tests only read it."""
    path = tmp_path_factory.mktemp("lines3") / "lines-3x3.h5"
    write_dataset(get_preset("lines-3x3").spec(), path)
    return path
