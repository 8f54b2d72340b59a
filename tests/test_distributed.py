"""Training under torchrun: 2 gloo processes on CPU give one process's scores; the refusals."""

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import cnnbench
from cnnbench.bench import distributed
from cnnbench.bench.augment import Augment
from cnnbench.bench.protocol import Split, scale_01
from cnnbench.cli import main
from cnnbench.data.streaming import ChunkReader, fits_in_memory

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


@pytest.fixture(scope="module")
def striped(tmp_path_factory):
    """A file streamed under a 6 MB budget: 24 px images in chunks of 512 rows (6 train chunks)."""
    folder = tmp_path_factory.mktemp("ddp-stream")
    path = folder / "boxes24.h5"
    # 2995 training samples: the last batch of 32 has 19 rows, shared 9 / 10.
    cnnbench.generate(path, "boxes", size=24, n_train=2995, n_val=300, n_test=300, seed=2)
    assert not fits_in_memory(cnnbench.open_dataset(path), STREAM_BUDGET)
    (folder / "model32.py").write_text(MODEL.replace("BATCH", "32"))
    return path


STREAM_BUDGET = 6_000_000


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
@pytest.mark.parametrize("streamed", [False, True], ids=["in-memory", "streamed"])
def test_two_gloo_processes_score_as_one(tiny, striped, streamed, tmp_path):
    data = striped if streamed else tiny
    model = f"{data.parent / 'model32.py'}:make"
    one, two = tmp_path / "one.sqlite", tmp_path / "two.sqlite"
    args = ["evaluate", str(data), "--model", model, "--seeds", "3", "-q"]
    if streamed:  # each rank reads only its lanes' rows from the file
        args += ["--memory-budget", str(STREAM_BUDGET)]
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
    assert a["config"].get("loader") == b["config"].get("loader") == ("streamed" if streamed else None)
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


@pytest.mark.parametrize("world", [1, 2, 4])
def test_each_rank_reads_only_its_share_of_every_batch(striped, world, monkeypatch):
    reader = ChunkReader(cnnbench.open_dataset(striped), "train", ["images"])
    lanes = reader.lanes(32, seed=5, epoch=1)
    one = [lanes.global_batch(k) for k in range(lanes.n_batches)]  # one process's batches
    assert np.array_equal(np.sort(np.concatenate(one)), np.arange(reader.n))
    everything = reader.read(0, reader.n)["images"]
    read_by_rank = []
    for rank in range(world):
        reads = []

        def counted(lo, hi, reads=reads):  # every read the rank makes, as (first row, end row)
            reads.append((lo, hi))
            return ChunkReader.read(reader, lo, hi)

        monkeypatch.setattr(reader, "read", counted)
        shares = list(reader.lane_batches(32, seed=5, epoch=1, rank=rank, world=world))
        monkeypatch.undo()
        assert all(lo // reader.chunk_rows == (hi - 1) // reader.chunk_rows for lo, hi in reads)  # whole pieces
        rows = np.concatenate([np.arange(lo, hi) for lo, hi in reads])
        read_by_rank.append(rows)
        assert len(shares) == len(one)
        for k, (got, lo, n) in enumerate(shares):
            hi = (rank + 1) * n // world
            assert n == len(one[k]) and lo == rank * n // world  # the contiguous share of batch k
            assert np.array_equal(got["index"], one[k][lo:hi]), k
            assert np.array_equal(got["images"], everything[got["index"]])
        trained = np.concatenate([got["index"] for got, _, _ in shares])
        assert np.array_equal(np.sort(rows), np.sort(trained))  # read exactly what it trains on, once
        assert abs(len(rows) - reader.n / world) <= lanes.n_batches  # a 1/world share of the split
    assert np.array_equal(np.sort(np.concatenate(read_by_rank)), np.arange(reader.n))


def test_ranks_augment_their_share_as_one_process(striped):
    # In memory: the same randperm batches; each rank gathers only its rows, and augment (run
    # on a global-sized batch) gives them exactly one process's augmented values.
    arrays = cnnbench.open_dataset(striped).load("train")
    split = Split("train", torch.from_numpy(arrays["images"][:203]),
                  torch.from_numpy(arrays["targets"][:203]), scale_01)
    policy = Augment()  # rot90/flips, rotation, shift, gamma, brightness, per-pixel noise
    one, gen = [], torch.Generator().manual_seed(8)
    for x, y in split.epoch_batches(32, torch.Generator().manual_seed(7), 7, 1):
        one.append((policy(x, gen), y))
    for world in (2, 4):
        shares = []
        for rank in range(world):
            ctx = distributed.Context(rank, world, rank, 1.0)
            shares.append(list(ctx.train_batches(split, 32, torch.Generator().manual_seed(7), 7, 1,
                                                 policy, torch.Generator().manual_seed(8))))
        for k, (x, y) in enumerate(one):  # 7 batches, the last of 11 rows: a rank of 4 has 2
            parts = [shares[rank][k] for rank in range(world)]
            assert [rows for *_, rows in parts] == [(r + 1) * len(x) // world - r * len(x) // world
                                                    for r in range(world)]
            # DDP averages the ranks' gradients: weights rows * world / n make it the batch mean
            assert sum(w for _, _, w, _ in parts) == pytest.approx(world)
            assert torch.equal(torch.cat([px[:rows] for px, _, _, rows in parts]), x), (world, k)
            assert torch.equal(torch.cat([py[:rows] for _, py, _, rows in parts]), y)
