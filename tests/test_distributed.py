"""Training under torchrun: 2 gloo processes on CPU give one process's scores; the refusals."""

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cnnbench.bench import distributed
from cnnbench.cli import main

# A model without dropout or batch norm: then sharing a batch between ranks changes only the
# order of float sums, and the scores agree to float32 rounding (DDP docs: docs/scale.md).
MODEL = """
import torch
from cnnbench.bench.protocol import Recipe

def make(info):
    h, w, c = info.image_shape
    net = torch.nn.Sequential(torch.nn.Conv2d(c, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * h * w, info.num_outputs))
    return Recipe(model=net, epochs=2, batch_size=BATCH)
"""
TORCHRUN = Path(sys.executable).with_name("torchrun")
# Relative agreement of every score and curve point between 1 and 2 processes (measured: ~1e-8).
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    path = folder / "tiny.h5"
    # 203 training samples: the last batch of 32 has 11 rows, shared 5 / 6.
    result = CliRunner().invoke(main, ["generate", "boxes", "--size", "10", "--box-size", "3", "--n-train",
                                       "203", "--n-val", "40", "--n-test", "40", "--out", str(path), "-q"])
    assert result.exit_code == 0, result.output
    for batch in (32, 31):
        (folder / f"model{batch}.py").write_text(MODEL.replace("BATCH", str(batch)))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(**extra):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    return {**clean, "OMP_NUM_THREADS": "1", **extra}


def rows(db: Path) -> list[dict]:
    with sqlite3.connect(db) as c:
        return [json.loads(r) for (r,) in c.execute("select record from runs")]


def close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is installed with torch")
def test_two_gloo_processes_score_as_one(tiny, tmp_path):
    model = f"{tiny.parent / 'model32.py'}:make"
    one, two = tmp_path / "one.sqlite", tmp_path / "two.sqlite"
    args = ["evaluate", str(tiny), "--model", model, "--seeds", "3", "-q"]
    plain = CliRunner().invoke(main, [*args, "--db", str(one)])  # one process: this one
    assert plain.exit_code == 0, plain.output
    ddp = subprocess.run([str(TORCHRUN), "--nproc-per-node", "2", "--master-port", str(free_port()),
                          "-m", "cnnbench", *args, "--db", str(two)], env=env(),
                         capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr
    assert ddp.stdout.count("rmse") == 1  # rank 0 reports, once
    (a,), (b,) = rows(one), rows(two)  # rank 0 records, once
    assert "world_size" not in a["config"]  # without torchrun nothing changes
    assert b["config"]["world_size"] == 2 and b["config"]["global_batch_size"] == 32
    assert b["split_sizes"] == a["split_sizes"] and b["best_epoch"] == a["best_epoch"]
    for name in a["metrics"]:
        assert close(a["metrics"][name], b["metrics"][name]), (name, a["metrics"], b["metrics"])
    for curve in a["curves"]:
        assert all(close(x, y) for x, y in zip(a["curves"][curve], b["curves"][curve], strict=True)), curve


def test_world_size_must_divide_the_batch(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(distributed, "_CONTEXT", None)
    db = tmp_path / "db.sqlite"
    result = CliRunner().invoke(main, ["evaluate", str(tiny), "--model", f"{tiny.parent / 'model31.py'}:make",
                                       "--db", str(db), "-q"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: world size 2 does not divide the batch size 31: each rank takes an equal share of "
        "every batch (choose --nproc-per-node dividing 31)"]
    assert not db.exists()
    monkeypatch.setattr(distributed, "_CONTEXT", None)


def test_an_unreachable_rank_times_out(tiny, tmp_path):
    # Rank 1 of 2 with nobody at the rendezvous address: an error naming the timeout, not a hang.
    db = tmp_path / "db.sqlite"
    done = subprocess.run([sys.executable, "-m", "cnnbench", "evaluate", str(tiny), "--model",
                           f"{tiny.parent / 'model32.py'}:make", "--db", str(db), "-q"],
                          env=env(WORLD_SIZE="2", RANK="1", LOCAL_RANK="1", MASTER_ADDR="127.0.0.1",
                                  MASTER_PORT=str(free_port()), CNNBENCH_DIST_TIMEOUT="2"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: rank 1 of 2"), done.stderr
    assert "could not reach the other ranks within 2 s (CNNBENCH_DIST_TIMEOUT)" in lines[0]
    assert not db.exists()


def test_bad_timeout_and_rank(monkeypatch):
    monkeypatch.setattr(distributed, "_CONTEXT", None)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(distributed.ParamError, match="RANK 5 is not in 0..1"):
        distributed.context()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("CNNBENCH_DIST_TIMEOUT", "0")
    with pytest.raises(distributed.ParamError, match="CNNBENCH_DIST_TIMEOUT"):
        distributed.context()
    monkeypatch.delenv("WORLD_SIZE")
    assert distributed.context() is None and distributed.is_writer()
