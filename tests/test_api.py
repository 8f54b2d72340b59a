"""The public Python API (cnnbench/api.py, re-exported from cnnbench)."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import cnnbench
from cnnbench.cli import main
from cnnbench.errors import CnnbenchError, FormatError, ParamError, UnknownNameError

SMALL = {
    "lines": {"size": 6, "noise": 4.0, "length": "0.5:1"},
    "boxes": {"size": 12, "box_size": "2:4"},
    "patches": {"render_size": 32, "output_size": 16, "augment_copies": 1},
}
MAKE = {"lines": cnnbench.make_lines, "boxes": cnnbench.make_boxes, "patches": cnnbench.make_patches}


def cli_flags(params: dict) -> list[str]:
    return [a for k, v in params.items() for a in (f"--{k.replace('_', '-')}", str(v))]


@pytest.mark.parametrize("family", sorted(SMALL))
def test_make_equals_the_generated_files_train_split_byte_for_byte(family, tmp_path):
    n, seed = 1100, 7  # more than one generation block (1024)
    out = tmp_path / f"{family}.h5"
    result = CliRunner().invoke(main, ["generate", family, "--out", str(out), "--seed", str(seed),
                                       "--n-train", str(n), "--n-val", "3", "--n-test", "3", "-q",
                                       *cli_flags(SMALL[family])])
    assert result.exit_code == 0, result.output
    X, y, factors = MAKE[family](n, random_state=seed, return_factors=True, **SMALL[family])
    with h5py.File(out, "r") as f:
        train = {name: f["train"][name][()] for name in f["train"]}
    assert X.dtype == np.uint8 and X.ndim == 4
    for name, array in [("images", X), ("targets", y), *factors.items()]:
        assert array.dtype == train[name].dtype and array.shape == train[name].shape, name
        assert array.tobytes() == train[name].tobytes(), name
    assert set(factors) | {"images", "targets"} == set(train)
    X2, y2 = MAKE[family](n, random_state=seed, **SMALL[family])
    assert X2.tobytes() == X.tobytes() and y2.tobytes() == y.tobytes()


@pytest.mark.parametrize("kwargs, match", [
    ({"n_samples": 0}, "n_samples: 0 is below the minimum 1"),
    ({"random_state": -1}, "random_state: -1 is below the minimum 0"),
    ({"random_state": None}, "random_state: None is not an integer"),
    ({"size": 1}, "size: 1 is below the minimum"),
    ({"noise": "loud"}, "noise: 'loud' is not a number"),
    ({"seed": 3}, "seed: not a parameter of make_lines (use random_state)"),
    ({"n_test": 3}, "n_test: not a parameter of make_lines"),
    ({"colour": 1}, "unknown parameter 'colour'"),
])
def test_make_refuses_bad_parameters_by_their_names(kwargs, match):
    with pytest.raises(ParamError) as info:
        cnnbench.make_lines(**kwargs)
    assert match in str(info.value)
    assert "--" not in str(info.value)  # a parameter, not a flag


def test_make_docstrings_list_the_family_parameters():
    for family, make in MAKE.items():
        for p in cnnbench.api.get_family(family).params:
            assert f"    {p.name} : " in make.__doc__


def test_generate_writes_a_file_and_refuses_in_python_words(tmp_path):
    out = tmp_path / "l.h5"
    ds = cnnbench.generate(out, "lines", seed=3, n_train=20, n_val=5, n_test=5, size=4)
    assert isinstance(ds, cnnbench.Dataset) and ds.split_size("train") == 20 and ds.spec["seed"] == 3
    assert cnnbench.open_dataset(out).fingerprint == ds.fingerprint
    with pytest.raises(ParamError, match=r"already exists \(use force=True to overwrite\)"):
        cnnbench.generate(out, "lines", size=4)
    again = cnnbench.generate(out, "lines", seed=3, n_train=20, n_val=5, n_test=5, size=4, force=True)
    assert again.fingerprint == ds.fingerprint
    with pytest.raises(ParamError, match="one of the two"):
        cnnbench.generate(tmp_path / "x.h5", "lines", preset="lines-3x3")
    with pytest.raises(ParamError, match="size: a preset fixes its parameters"):
        cnnbench.generate(tmp_path / "x.h5", preset="lines-3x3", size=5)
    with pytest.raises(UnknownNameError, match="unknown family 'circles'"):
        cnnbench.generate(tmp_path / "x.h5", "circles")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.h5"]  # refusals wrote nothing
    secret = cnnbench.generate(tmp_path / "p.h5", preset="lines-3x3", seed=12345)
    assert secret.spec["seed"] == 12345 and secret.spec["preset"] == "lines-3x3"


def test_load_preset_caches_checks_and_regenerates(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    X, y = cnnbench.load_preset("lines-3x3")
    path = tmp_path / "cache" / "cnnbench" / "lines-3x3.h5"
    assert path.is_file() and X.shape == (6, 3, 3, 1) and y.shape == (6,)
    stamp = path.stat().st_mtime_ns
    Xt, yt, factors = cnnbench.load_preset("lines-3x3", "test", return_factors=True)
    assert path.stat().st_mtime_ns == stamp  # reused, not regenerated
    assert isinstance(factors, dict)
    ds = cnnbench.load_preset("lines-3x3", None)
    assert ds.path == path and ds.spec["preset"] == "lines-3x3"
    with h5py.File(path, "r+") as f:  # tamper with the cached file
        f["train/images"][0, 0, 0, 0] = 255 - f["train/images"][0, 0, 0, 0]
    with pytest.raises(FormatError, match="do not match its recorded fingerprint.*regenerate=True"):
        cnnbench.load_preset("lines-3x3")
    with pytest.raises(FormatError, match="do not match"):
        cnnbench.load_preset("lines-3x3", None)
    X2, _ = cnnbench.load_preset("lines-3x3", regenerate=True)
    assert X2.tobytes() == X.tobytes()
    own = tmp_path / "own"
    cnnbench.load_preset("lines-3x3", root=own)
    assert (own / "lines-3x3.h5").is_file()
    with pytest.raises(ParamError, match="split: 'dev' is not one of train, val, test"):
        cnnbench.load_preset("lines-3x3", "dev")
    with pytest.raises(UnknownNameError, match="unknown preset"):
        cnnbench.load_preset("lines-2x2")


def test_run_score_record_from_python(lines3, tmp_path):
    db = tmp_path / "board.sqlite"
    result = cnnbench.run(lines3, "lines-cnn-fixed", epochs=3, device="cpu")
    r = result.record
    assert r.name == "lines-cnn-fixed" and r.source == "baseline" and r.epochs == 3
    with pytest.warns(FutureWarning, match="'seed000-fix' is now called 'lines-cnn-fixed'"):
        old = cnnbench.run(lines3, "seed000-fix", epochs=3, device="cpu").record  # a former name
    assert old.name == r.name and old.metrics == r.metrics
    # score() applies submit's checks and scoring: the run's own test predictions score the same.
    assert cnnbench.score(lines3, result.test_predicted)["accuracy"] == r.metrics["accuracy"]
    ids = cnnbench.record(result, db=db)
    assert len(ids) == 1
    [board] = cnnbench.boards(lines3, db=db)
    assert [e.name for e in board.entries if e.name == "lines-cnn-fixed"]
    sub = cnnbench.record_submission(lines3, np.zeros(6, dtype=np.int64), name="all zeros", db=db)
    assert sub.source == "submission" and sub.metrics["accuracy"] == pytest.approx(0.5)


def test_scoring_refusals_write_nothing(lines3, tmp_path):
    db = tmp_path / "never.sqlite"
    with pytest.raises(CnnbenchError, match="predictions have 5 rows; the test split has 6"):
        cnnbench.record_submission(lines3, np.zeros(5, dtype=np.int64), name="short", db=db)
    with pytest.raises(ParamError, match="^name must not be empty"):
        cnnbench.record_submission(lines3, np.zeros(6, dtype=np.int64), name=" ", db=db)
    with pytest.raises(CnnbenchError, match="dtype bool"):
        cnnbench.score(lines3, np.zeros(6, dtype=bool))
    with pytest.raises(ParamError, match="is not a run result"):
        cnnbench.record("not a run", db=db)
    assert not db.exists()
    assert cnnbench.boards(lines3, db=db) == []


def test_run_accepts_in_memory_arrays_and_a_factory():
    import torch

    X, y = cnnbench.make_lines(64, random_state=0, size=4)
    splits = {"train": (X[:40], y[:40]), "val": (X[40:52], y[40:52]), "test": (X[52:], y[52:])}

    def tiny(info):
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, info.num_outputs))

    a = cnnbench.run(splits, tiny, seed=1, epochs=2, device="cpu")
    b = cnnbench.run(splits, tiny, seed=1, epochs=2, device="cpu")
    assert a.record.name == "tiny" and a.record.source == "user" and a.record.family == "arrays"
    assert a.record.task == "classification" and a.record.dataset_path == ""
    assert a.record.fingerprint == b.record.fingerprint and a.record.metrics == b.record.metrics
    with pytest.raises(ParamError, match=r"X must be uint8"):
        cnnbench.run({**splits, "train": (X[:40].astype(np.float32), y[:40])}, tiny)
    with pytest.raises(ParamError, match="exactly the splits"):
        cnnbench.run({"train": splits["train"]}, tiny)
    with pytest.raises(ParamError, match="^model: give a factory"):
        cnnbench.run(splits, torch.nn.Linear(2, 2))
    with pytest.warns(FutureWarning, match="'seed001-fix' is now called 'boxes-cnn-fixed'"), \
            pytest.raises(ParamError, match="baseline 'boxes-cnn-fixed' does not apply"):
        cnnbench.run(splits, "seed001-fix")  # a former name: the new one's recipe, and a warning
    with pytest.raises(ParamError, match="baseline 'boxes-cnn-fixed' does not apply"):
        cnnbench.run(splits, "boxes-cnn-fixed")


def test_import_cnnbench_does_not_import_torch():
    code = "import sys, cnnbench; cnnbench.make_lines(3); assert 'torch' not in sys.modules, 'torch'"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONWARNINGS": "error"})


def test_torch_names_are_lazy_attributes_of_the_package():
    from cnnbench.bench import protocol

    assert (cnnbench.Recipe, cnnbench.DataInfo, cnnbench.RunResult) == (
        protocol.Recipe, protocol.DataInfo, protocol.RunResult)
