"""Generation in shards (generate --shard I/N) and merge: the whole file, byte for byte."""

import json
import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cnnbench.cli import main
from cnnbench.data.generate import BLOCK_SIZE, build_spec, write_dataset
from cnnbench.data.h5file import compute_fingerprint, open_dataset
from cnnbench.data.shards import block_counts, merge, plan_shard, write_shard

# 5 blocks: train 3 (the last partial), val 1 and test 1, both smaller than one block. Noise
# makes the optimum an oracle's estimate over the test split, which the merge must reproduce.
GIVEN = {"n_train": 2 * BLOCK_SIZE + 52, "n_val": 300, "n_test": 40, "size": 8, "box_size": 3,
         "noise": 5, "seed": 11}
OPTIONS = ["boxes", "--size", "8", "--box-size", "3", "--noise", "5", "--seed", "11",
           "--n-train", str(GIVEN["n_train"]), "--n-val", "300", "--n-test", "40", "-q"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, match):
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and match in lines[0], result.output


def arrays(path):
    with h5py.File(path, "r") as f:
        return {f"{s}/{n}": f[s][n][()] for s in ("train", "val", "test") for n in f[s]}


def root_attrs(path):
    with h5py.File(path, "r") as f:
        return dict(f.attrs)


@pytest.fixture(scope="module")
def spec():
    return build_spec("boxes", GIVEN)


@pytest.fixture(scope="module")
def whole(spec, tmp_path_factory):
    path = tmp_path_factory.mktemp("whole") / "whole.h5"
    fingerprint = write_dataset(spec, path)
    return path, fingerprint


@pytest.fixture(scope="module")
def shards3(spec, tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards3")
    paths = [folder / f"part{i}.h5" for i in range(3)]
    for i, path in enumerate(paths):
        result = run("generate", *OPTIONS, "--shard", f"{i}/3", "--out", path)
        assert result.exit_code == 0, result.output
    return paths


def test_shards_cover_every_block_once():
    spec = build_spec("lines", {"n_train": 5000, "n_val": 100, "n_test": 2100})
    counts = block_counts(spec)
    assert counts == {"train": 5, "val": 1, "test": 3}
    for n in range(1, 10):
        seen = {s: [] for s in counts}
        for i in range(n):
            plan = plan_shard(spec, i, n)
            assert plan.total_rows() > 0  # no shard is empty
            for s, blocks in plan.blocks.items():
                seen[s] += list(blocks)
        assert seen == {s: list(range(c)) for s, c in counts.items()}


@pytest.mark.parametrize("n", [1, 2, 3])
def test_merge_is_the_whole_file(spec, whole, tmp_path, n):
    whole_path, fingerprint = whole
    paths = [tmp_path / f"s{i}.h5" for i in range(n)]
    for i, path in enumerate(paths):
        write_shard(spec, path, i, n)
    assert merge(paths[::-1], tmp_path / "merged.h5") == fingerprint  # any order
    merged = arrays(tmp_path / "merged.h5")
    expected = arrays(whole_path)
    assert merged.keys() == expected.keys()
    for name in expected:
        assert merged[name].dtype == expected[name].dtype
        assert merged[name].tobytes() == expected[name].tobytes(), name
    assert root_attrs(tmp_path / "merged.h5") == root_attrs(whole_path)  # optimum (oracle) included
    # Blocks written in the same order with the same layout: the same file, byte for byte.
    assert (tmp_path / "merged.h5").read_bytes() == whole_path.read_bytes()


def test_a_split_smaller_than_a_block_lies_in_one_shard(shards3, whole):
    plans = [json.loads(root_attrs(p)["shard"]) for p in shards3]
    # 5 blocks in 3 shards: [0, 1), [1, 3), [3, 5): train's blocks 0 | 1, 2 (the last one
    # partial), then val and test (300 and 40 samples, each less than a block) in shard 2.
    assert [p["rows"]["train"] for p in plans] == [[0, 1024], [1024, 2100], [2100, 2100]]
    assert [p["rows"]["val"] for p in plans] == [[0, 0], [0, 0], [0, 300]]
    assert [p["rows"]["test"] for p in plans] == [[0, 0], [0, 0], [0, 40]]
    with h5py.File(shards3[2], "r") as shard, h5py.File(whole[0], "r") as f:
        assert shard["train/images"].shape == (0, 8, 8, 3)
        assert shard["test/images"][()].tobytes() == f["test/images"][()].tobytes()


def test_shard_workers_do_not_change_bytes(spec, tmp_path):
    write_shard(spec, tmp_path / "one.h5", 0, 2)
    write_shard(spec, tmp_path / "two.h5", 0, 2, workers=2)
    assert (tmp_path / "one.h5").read_bytes() == (tmp_path / "two.h5").read_bytes()


def test_virtual_merge(shards3, whole, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for p in shards3:
        shutil.copy(p, folder)
    out = folder / "virtual.h5"
    result = run("merge", *[folder / p.name for p in shards3], "--out", out, "--virtual")
    assert result.exit_code == 0, result.output
    assert whole[1][:12] in result.output
    assert out.stat().st_size < 20_000  # a map of the shards, no copy of their arrays
    assert open_dataset(out).fingerprint == whole[1]
    # The shards are named relative to the file: the folder can move as a whole.
    moved = tmp_path / "moved"
    folder.rename(moved)
    assert compute_fingerprint(moved / "virtual.h5") == whole[1]  # read through the mapping
    assert all(np.array_equal(a, b) for a, b in zip(arrays(moved / "virtual.h5").values(),
                                                   arrays(whole[0]).values()))


def test_info_describes_a_shard(shards3):
    result = run("info", shards3[1], "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["shard"]["index"] == 1 and info["shard"]["count"] == 3
    assert info["splits"]["test"]["n"] == 0
    assert "shard        1/3" in run("info", shards3[1]).output


def test_merge_refusals(shards3, spec, tmp_path):
    out = tmp_path / "out.h5"
    a, b, c = shards3
    assert_one_line_error(run("merge", a, c, "--out", out), "shard 1 of 3 missing")
    copy = tmp_path / "copy.h5"
    shutil.copy(a, copy)
    assert_one_line_error(run("merge", a, copy, b, c, "--out", out), "shard 0/3 given twice")
    assert_one_line_error(run("merge", a, a, b, c, "--out", out), "given twice")
    other_seed = tmp_path / "seed.h5"
    opts = [o if o != "11" else "12" for o in OPTIONS]
    assert run("generate", *opts, "--shard", "1/3", "--out", other_seed).exit_code == 0
    assert_one_line_error(run("merge", a, other_seed, c, "--out", out), "different seeds")
    other_spec = tmp_path / "spec.h5"
    opts = [o if o != "5" else "6" for o in OPTIONS]
    assert run("generate", *opts, "--shard", "1/3", "--out", other_spec).exit_code == 0
    assert_one_line_error(run("merge", a, other_spec, c, "--out", out), "differ in params.noise")
    halves = tmp_path / "half.h5"
    write_shard(spec, halves, 1, 2)
    assert_one_line_error(run("merge", a, halves, c, "--out", out), "different splittings")
    whole = tmp_path / "whole.h5"
    write_dataset(spec, whole)
    assert_one_line_error(run("merge", whole, "--out", out), "not a shard")
    assert_one_line_error(run("merge", a, b, c, "--out", a, "--force"), "is one of the shards")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.h5", "half.h5", "seed.h5", "spec.h5", "whole.h5"]


def test_a_modified_shard_is_refused(shards3, tmp_path):
    paths = [tmp_path / p.name for p in shards3]
    for src, dst in zip(shards3, paths):
        shutil.copy(src, dst)
    with h5py.File(paths[2], "r+") as f:
        f["val/targets"][5] += 1.0
    for flag in ([], ["--virtual"]):
        result = run("merge", *paths, "--out", tmp_path / "out.h5", *flag)
        assert_one_line_error(result, "do not match its recorded fingerprint")
        assert not (tmp_path / "out.h5").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in paths]


def test_generate_shard_refusals(tmp_path):
    out = tmp_path / "x.h5"
    assert_one_line_error(run("generate", *OPTIONS, "--shard", "3/3", "--out", out), "I must be in 0..2")
    assert_one_line_error(run("generate", *OPTIONS, "--shard", "0/6", "--out", out),
                          "only 5 blocks of 1024 samples (train 3, val 1, test 1)")
    assert_one_line_error(run("generate", *OPTIONS, "--shard", "1", "--out", out), "expected I/N")
    assert_one_line_error(run("generate", "--preset", "lines-3x3", "--shard", "x/2", "--out-dir", tmp_path),
                          "expected I/N")
    assert list(tmp_path.iterdir()) == []


def test_preset_shards_in_a_folder(tmp_path):
    result = run("generate", "--preset", "lines-16", "--shard", "1/2", "--out-dir", tmp_path, "-q")
    assert result.exit_code == 0, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["lines-16.shard-1-of-2.h5"]


def test_scoring_commands_refuse_a_shard(shards3, tmp_path):
    shard = shards3[0]
    db = tmp_path / "board.sqlite"
    np.save(tmp_path / "preds.npy", np.zeros((40, 2), np.float32))
    (tmp_path / "model.py").write_text("import torch\ndef make(info):\n    return torch.nn.Flatten()\n")
    for args in (["bench", shard, "-b", "mean", "--db", db, "-q"],
                 ["submit", shard, tmp_path / "preds.npy", "--name", "x", "--db", db],
                 ["evaluate", shard, "--model", f"{tmp_path / 'model.py'}:make", "--db", db],
                 ["export-public", shard, "--out", tmp_path / "public.h5", "--allow-guessable-seed"]):
        assert_one_line_error(run(*args), "is shard 0/3 of a dataset, not a whole dataset; merge its 3 shards")
    assert not db.exists() and not (tmp_path / "public.h5").exists()
