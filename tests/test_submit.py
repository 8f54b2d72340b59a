"""Submissions: scoring predictions, every bad input refused with the database byte-identical,
and the public copy without test targets."""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
import warnings

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cnnbench.bench.models import default_model_name
from cnnbench.board.predictions import SubmissionError, check_predictions, load_predictions, score_predictions
from cnnbench.board.public import export_public, secret_seed_command
from cnnbench.board.store import Leaderboard
from cnnbench.cli import main
from cnnbench.data.h5file import DatasetWriter, open_dataset
from cnnbench.data.presets import all_presets
from cnnbench.errors import CnnbenchError, FormatError

# A dataset seed nobody can guess, as a hosted leaderboard's full file would have.
SECRET_SEED = 6_125_389_240_173_852_447


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "lines.h5"
    result = CliRunner().invoke(main, ["generate", "lines", "--out", str(path), "--size", "8", "--n-train", "40",
                                       "--n-val", "20", "--n-test", "30", "--seed", str(SECRET_SEED), "-q"])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def regression_file(tmp_path_factory):
    """A tiny regression file: targets (n, 2) in pixels, as the boxes family writes them."""
    path = tmp_path_factory.mktemp("data") / "reg.h5"
    rng = np.random.default_rng(0)
    spec = {"family": "boxes", "seed": 0, "n_train": 8, "n_val": 4, "n_test": 10, "params": {}}
    attrs = {"family": "boxes", "task": "regression", "spec": json.dumps(spec),
             "optimum": json.dumps({"metric": "rmse", "value": 0.0, "exact": True, "why": "test"})}
    with DatasetWriter(path, attrs) as writer:
        for split, n in (("train", 8), ("val", 4), ("test", 10)):
            block = {"images": rng.integers(0, 255, (n, 4, 4, 1), dtype=np.uint8),
                     "targets": rng.uniform(0, 16, (n, 2)).astype(np.float32),
                     "size": rng.integers(1, 4, n)}
            writer.create_split(split, n, block, {"targets": {"names": ["x", "y"]}})
            writer.write(split, 0, block)
    return path


def targets_of(path):
    return open_dataset(path).load("test", ["targets"])["targets"]


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


@pytest.fixture
def db(tmp_path, lines_file):
    """A database with one row already, so 'unchanged' is about an existing file."""
    path = tmp_path / "board.sqlite"
    ids = targets_of(lines_file)
    np.save(tmp_path / "first.npy", ids)
    result = CliRunner().invoke(main, ["submit", str(lines_file), str(tmp_path / "first.npy"),
                                       "--name", "first", "--db", str(path)])
    assert result.exit_code == 0, result.output
    return path


# -- scoring --------------------------------------------------------------------------------

def test_perfect_predictions_score_the_optimum(lines_file, regression_file):
    ds = open_dataset(lines_file)
    assert score_predictions(ds, targets_of(lines_file))["accuracy"] == 1.0
    reg = open_dataset(regression_file)
    metrics = score_predictions(reg, targets_of(regression_file))
    assert metrics["rmse"] == 0.0 and metrics["r2"] == 1.0


def test_mean_predictions_score_r2_zero(regression_file):
    targets = targets_of(regression_file).astype(np.float64)
    mean = np.repeat(targets.mean(axis=0, keepdims=True), len(targets), axis=0)
    metrics = score_predictions(open_dataset(regression_file), mean)
    assert metrics["r2"] == pytest.approx(0.0, abs=1e-12)


def test_class_scores_and_float_ids_accepted(lines_file):
    ds = open_dataset(lines_file)
    ids = targets_of(lines_file)
    scores = np.eye(2)[ids] * 3.0 - 1.0
    assert (check_predictions(ds, scores) == ids).all()
    assert (check_predictions(ds, ids.astype(np.float32)) == ids).all()
    assert (check_predictions(ds, ids[:, None]) == ids).all()


def test_csv_and_h5_predictions(lines_file, regression_file, tmp_path):
    ids = targets_of(lines_file)
    fp = open_dataset(lines_file).fingerprint
    csv_path = tmp_path / "p.csv"
    csv_path.write_text(f"# fingerprint: {fp}\nclass\n" + "\n".join(map(str, ids)) + "\n")
    loaded = load_predictions(csv_path)
    assert loaded.fingerprint == fp and (loaded.values == ids).all()
    targets = targets_of(regression_file)
    h5_path = tmp_path / "p.h5"
    with h5py.File(h5_path, "w") as f:
        f["predictions"] = targets
        f.attrs["fingerprint"] = open_dataset(regression_file).fingerprint
    assert score_predictions(open_dataset(regression_file), load_predictions(h5_path))["rmse"] == 0.0


def test_submit_records_and_ranks(db, lines_file, tmp_path):
    wrong = 1 - targets_of(lines_file)
    wrong[:15] = 1 - wrong[:15]  # half right
    np.save(tmp_path / "half.npy", wrong)
    result = CliRunner().invoke(main, ["submit", str(lines_file), str(tmp_path / "half.npy"), "--name", "half",
                                       "--db", str(db), "--params", "42", "--notes", "coin", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["score"] == pytest.approx(0.5) and out["rank"] == 2 and out["of"] == 2
    with Leaderboard(db) as board:
        runs = board.runs()
    assert [r.name for r in runs] == ["first", "half"]
    assert runs[1].source == "submission" and runs[1].params == 42 and runs[1].notes == "coin"
    assert runs[1].fingerprint == open_dataset(lines_file).fingerprint
    assert len(runs[1].config["predictions_sha256"]) == 64


def test_resubmitting_a_name_replaces_its_row(db, lines_file, tmp_path):
    ids = targets_of(lines_file)
    np.save(tmp_path / "bad.npy", 1 - ids)
    result = CliRunner().invoke(main, ["submit", str(lines_file), str(tmp_path / "bad.npy"), "--name", "first",
                                       "--db", str(db)])
    assert result.exit_code == 0 and "rank 1 of 1" in result.output
    with Leaderboard(db) as board:
        (b,) = board.boards()
    assert [e.name for e in b.entries if e.kind == "model"] == ["first"]
    assert b.entries[-1].score == 0.0


# -- bad input: one line, non-zero exit, database byte-identical -----------------------------

def _bad_files(tmp_path, lines_file, regression_file):
    ids = targets_of(lines_file)
    n = len(ids)
    cases = {}

    def npy(name, array):
        path = tmp_path / f"{name}.npy"
        np.save(path, array)
        return path

    cases["wrong row count"] = (lines_file, npy("short", ids[:-1]), "rows; the test split has")
    cases["wrong shape"] = (lines_file, npy("shape", np.zeros((n, 3))), "shape")
    cases["3-d"] = (lines_file, npy("cube", np.zeros((n, 2, 2))), "shape")
    nan = ids.astype(np.float64)
    nan[3] = np.nan
    cases["nan"] = (lines_file, npy("nan", nan), "NaN or inf")
    reg_inf = targets_of(regression_file).astype(np.float64)
    reg_inf[2, 1] = np.inf
    cases["inf"] = (regression_file, npy("inf", reg_inf), "NaN or inf")
    cases["regression shape"] = (regression_file, npy("regshape", np.zeros((10, 3))), "shape")
    cases["class id out of range"] = (lines_file, npy("range", np.full(n, 2)), "out of range")
    cases["negative class id"] = (lines_file, npy("neg", np.full(n, -1)), "out of range")
    cases["fractional class id"] = (lines_file, npy("frac", np.full(n, 0.5)), "not a whole number")
    cases["strings"] = (lines_file, npy("str", np.array(["a"] * n)), "expected numbers")
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}] * n, dtype=object), allow_pickle=True)
    cases["pickle"] = (lines_file, pickled, "pickles are never loaded")
    other = tmp_path / "other.csv"
    other.write_text("# fingerprint: " + "0" * 64 + "\n" + "\n".join(map(str, ids)))
    cases["another dataset"] = (lines_file, other, "another dataset")
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"\x00garbage" * 10)
    cases["unreadable npy"] = (lines_file, garbage, "not a readable .npy")
    bad_h5 = tmp_path / "bad.h5"
    bad_h5.write_bytes(b"not hdf5")
    cases["unreadable h5"] = (lines_file, bad_h5, "not a readable HDF5")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("0\n1\nx\n")
    cases["bad csv"] = (lines_file, bad_csv, "not a number")
    cases["missing file"] = (lines_file, tmp_path / "nope.npy", "no such file")
    txt = tmp_path / "p.txt"
    txt.write_text("0")
    cases["unknown suffix"] = (lines_file, txt, "unknown predictions format")
    cases["dataset as predictions"] = (lines_file, lines_file, "is a cnnbench dataset file")
    not_dataset = tmp_path / "notdata.h5"
    not_dataset.write_bytes(b"junk")
    cases["dataset unreadable"] = (not_dataset, npy("ok", ids), "not a readable HDF5")
    return cases


CASES = ["wrong row count", "wrong shape", "3-d", "nan", "inf", "regression shape", "class id out of range",
         "negative class id", "fractional class id", "strings", "pickle", "another dataset", "unreadable npy",
         "unreadable h5", "bad csv", "missing file", "unknown suffix", "dataset as predictions",
         "dataset unreadable"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_refused_db_unchanged(case, db, lines_file, regression_file, tmp_path):
    dataset, predictions, message = _bad_files(tmp_path, lines_file, regression_file)[case]
    before = digest(db)
    result = CliRunner().invoke(main, ["submit", str(dataset), str(predictions), "--name", "x", "--db", str(db)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error:") and len(result.output.strip().splitlines()) == 1
    assert message in result.output
    assert digest(db) == before


def test_all_cases_listed(tmp_path, lines_file, regression_file):
    assert sorted(_bad_files(tmp_path, lines_file, regression_file)) == sorted(CASES)


@pytest.mark.parametrize("args, message", [
    (["--name", ""], "must not be empty"),
    (["--name", "a\nb"], "control"),
    (["--name", "x", "--params", "-3"], "--params"),
])
def test_bad_options_db_unchanged(args, message, db, lines_file, tmp_path):
    np.save(tmp_path / "ok.npy", targets_of(lines_file))
    before = digest(db)
    result = CliRunner().invoke(main, ["submit", str(lines_file), str(tmp_path / "ok.npy"), "--db", str(db), *args])
    assert result.exit_code in (1, 2) and message in result.output  # 2: click's range check
    assert digest(db) == before


def test_corrupt_db_refused_unchanged(lines_file, tmp_path):
    db = tmp_path / "bad.sqlite"
    db.write_bytes(b"garbage" * 500)
    before = digest(db)
    np.save(tmp_path / "ok.npy", targets_of(lines_file))
    result = CliRunner().invoke(main, ["submit", str(lines_file), str(tmp_path / "ok.npy"), "--name", "x",
                                       "--db", str(db)])
    assert result.exit_code == 1 and "corrupt or not SQLite" in result.output
    assert digest(db) == before


# -- the public copy ------------------------------------------------------------------------

def test_export_public(lines_file, tmp_path):
    out = tmp_path / "public.h5"
    result = CliRunner().invoke(main, ["export-public", str(lines_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    full, public = open_dataset(lines_file), open_dataset(out)
    assert public.public and not full.public
    assert public.fingerprint == full.fingerprint
    assert set(public.shapes["test"]) == {"images"}
    assert (public.load("test", ["images"])["images"] == full.load("test", ["images"])["images"]).all()
    assert (public.load("train")["targets"] == full.load("train")["targets"]).all()
    with pytest.raises(FormatError, match="public file withholds test targets"):
        public.load("test", ["targets"])
    with h5py.File(out, "r") as f:
        assert bool(f.attrs["public"]) and "targets" not in f["test"]


def test_submit_against_public_copy_refused(lines_file, tmp_path):
    out = export_public(lines_file, tmp_path / "public.h5")
    with pytest.raises(CnnbenchError, match="public copy withholds test targets"):
        score_predictions(out, targets_of(lines_file))


def test_predictions_made_on_public_copy_score_on_full(lines_file, tmp_path):
    public = export_public(lines_file, tmp_path / "public.h5")
    csv_path = tmp_path / "p.csv"
    csv_path.write_text(f"# fingerprint: {public.fingerprint}\n" + "\n".join(map(str, targets_of(lines_file))))
    assert score_predictions(open_dataset(lines_file), load_predictions(csv_path))["accuracy"] == 1.0


def test_export_public_refuses_existing_output(lines_file, tmp_path):
    out = tmp_path / "public.h5"
    out.write_text("keep me")
    result = CliRunner().invoke(main, ["export-public", str(lines_file), "--out", str(out)])
    assert result.exit_code == 1 and "already exists" in result.output
    assert out.read_text() == "keep me"


def test_submission_error_is_a_cnnbench_error():
    assert issubclass(SubmissionError, CnnbenchError)


@pytest.mark.parametrize("command", ["submit", "export-public", "leaderboard", "evaluate"])
def test_help(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0 and len(result.output) > 200


# -- evaluate: a user's model trained under the protocol --------------------------------------

USER_MODEL = '''
from torch import nn

from cnnbench.bench.protocol import Recipe, sgd


def make(info):
    h, w, c = info.image_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(h * w * c, info.num_outputs))


def make_recipe(info):
    h, w, c = info.image_shape
    model = nn.Sequential(nn.Flatten(), nn.Linear(h * w * c, 16), nn.ReLU(), nn.Linear(16, info.num_outputs))
    return Recipe(model, optimizer=sgd(0.1), epochs=2, batch_size=8, config={"lr": 0.1})


def no_args():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 2))


def returns_number(info):
    return 3


def raises(info):
    raise RuntimeError("boom")


def wrong_shape(info):
    return nn.Sequential(nn.Flatten(), nn.Linear(5, 2))


NOT_CALLABLE = 42
'''


@pytest.fixture
def user_model(tmp_path):
    path = tmp_path / "user_model.py"
    path.write_text(USER_MODEL)
    return path


def test_evaluate_trains_and_records(db, lines_file, user_model):
    result = CliRunner().invoke(main, ["evaluate", str(lines_file), "--model", f"{user_model}:make",
                                       "--epochs", "2", "--seeds", "0-1", "--db", str(db), "-q"])
    assert result.exit_code == 0, result.output
    assert "user_model:make on" in result.output and "over 2 seeds" in result.output
    with Leaderboard(db) as board:
        runs = [r for r in board.runs() if r.source == "user"]
    assert [r.seed for r in runs] == [0, 1]
    assert runs[0].name == "user_model:make" and runs[0].epochs == 2 and runs[0].params == 8 * 8 * 2 + 2
    assert 0.0 <= runs[0].score <= 1.0 and runs[0].fingerprint == open_dataset(lines_file).fingerprint


def test_evaluate_recipe_and_zero_arg_factory(db, lines_file, user_model):
    for factory, name in (("make_recipe", "mlp"), ("no_args", "bare")):
        result = CliRunner().invoke(main, ["evaluate", str(lines_file), "--model", f"{user_model}:{factory}",
                                           "--name", name, "--db", str(db), "--epochs", "1"])
        assert result.exit_code == 0, result.output
    with Leaderboard(db) as board:
        names = {r.name: r for r in board.runs() if r.source == "user"}
    assert names["mlp"].config["lr"] == 0.1 and names["mlp"].config["batch_size"] == 8
    assert "SGD" in names["mlp"].config["optimizer"]


@pytest.mark.parametrize("model, message", [
    ("{file}:missing", "has no 'missing'"),
    ("{file}:NOT_CALLABLE", "not a function"),
    ("{file}:returns_number", "must return a torch.nn.Module"),
    ("{file}:raises", "raises() raised RuntimeError: boom"),
    ("{file}:wrong_shape", "training failed"),
    ("{dir}/absent.py:make", "no such file"),
    ("{dir}/broken.py:make", "importing"),
    ("no_such_package_xyz.models:make", "no module named"),
    ("{file}", "expected FILE.py:FACTORY"),
])
def test_evaluate_bad_factory_db_unchanged(model, message, db, lines_file, user_model, tmp_path):
    (tmp_path / "broken.py").write_text("def make(:\n")
    before = digest(db)
    spec = model.format(file=user_model, dir=tmp_path)
    result = CliRunner().invoke(main, ["evaluate", str(lines_file), "--model", spec, "--epochs", "1",
                                       "--db", str(db), "-q"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error:") and len(result.output.strip().splitlines()) == 1
    assert message in result.output
    assert digest(db) == before


def test_evaluate_refuses_public_file_before_user_code(db, lines_file, tmp_path):
    public = tmp_path / "public.h5"
    export_public(lines_file, public)
    marker = tmp_path / "ran"
    (tmp_path / "m.py").write_text(f"open({str(marker)!r}, 'w').write('x')\ndef make(info):\n    pass\n")
    before = digest(db)
    result = CliRunner().invoke(main, ["evaluate", str(public), "--model", f"{tmp_path / 'm.py'}:make",
                                       "--db", str(db)])
    assert result.exit_code == 1 and "withheld" in result.output
    assert not marker.exists() and digest(db) == before


def test_evaluate_epochs_zero_refused(db, lines_file, user_model):
    result = CliRunner().invoke(main, ["evaluate", str(lines_file), "--model", f"{user_model}:make",
                                       "--epochs", "0", "--db", str(db)])
    assert result.exit_code == 2 and "'--epochs': 0 is not in the range 1<=x<=" in result.output


# -- the public copy hides the seed --------------------------------------------------------------

def test_export_public_withholds_the_seed(lines_file, tmp_path):
    out = tmp_path / "public.h5"
    export_public(lines_file, out)
    full, public = open_dataset(lines_file), open_dataset(out)
    assert full.spec["seed"] == SECRET_SEED
    assert public.spec["seed"] is None and public.spec["seed_withheld"] is True
    assert {k: v for k, v in public.spec.items() if k not in ("seed", "seed_withheld")} == \
        {k: v for k, v in full.spec.items() if k != "seed"}
    with h5py.File(out, "r") as f:
        everything = " ".join(str(v) for v in f.attrs.values())
        everything += " ".join(str(v) for s in f for v in f[s].attrs.values())
    assert str(SECRET_SEED) not in everything
    # readers still cope: info (text and JSON) and the summary behind it
    for args in (["info", str(out)], ["info", str(out), "--json"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert str(SECRET_SEED) not in result.output


def test_export_public_refuses_a_canonical_preset(lines3, tmp_path):
    out = tmp_path / "public.h5"
    result = CliRunner().invoke(main, ["export-public", str(lines3), "--out", str(out)])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert "preset lines-3x3 with its published seed 0" in result.output
    assert "cnnbench generate --preset lines-3x3 --seed " in result.output and "--allow-guessable-seed" in result.output
    assert not out.exists()
    forced = CliRunner().invoke(main, ["export-public", str(lines3), "--out", str(out), "--allow-guessable-seed"])
    assert forced.exit_code == 0, forced.output
    assert open_dataset(out).spec["seed"] is None


def test_export_public_refuses_a_small_seed(regression_file, tmp_path):
    with pytest.raises(CnnbenchError, match="seed 0 is small enough to find"):
        export_public(regression_file, tmp_path / "public.h5")
    assert not (tmp_path / "public.h5").exists()


@pytest.mark.parametrize("name", sorted(all_presets()))
def test_secret_seed_command_regenerates_the_preset_but_its_seed(name, tmp_path):
    preset = all_presets()[name]
    words = shlex.split(secret_seed_command(preset).replace("$(python3 -c 'import secrets; "
                                                            "print(secrets.randbits(63))')", "123"))
    assert words[:2] == ["cnnbench", "generate"] and words[-2:] == ["--out", "FULL.h5"]
    spec, canonical = preset.spec(123), preset.spec()
    assert spec.seed == 123 and (spec.params, spec.sizes) == (canonical.params, canonical.sizes)
    # The command itself, through the CLI (a small preset only: writing each would be slow).
    if name == "lines-3x3":
        out = tmp_path / "FULL.h5"
        result = CliRunner().invoke(main, words[1:-1] + [str(out), "-q"])
        assert result.exit_code == 0, result.output
        assert open_dataset(out).spec["seed"] == 123 and open_dataset(out).spec["preset"] == name


def test_export_public_refuses_a_public_file(lines_file, tmp_path):
    export_public(lines_file, tmp_path / "public.h5")
    with pytest.raises(CnnbenchError, match="already a public copy"):
        export_public(tmp_path / "public.h5", tmp_path / "again.h5")


# -- the dataset file must match its fingerprint ---------------------------------------------

@pytest.fixture
def edited_file(lines_file, tmp_path):
    """A copy of lines_file whose test targets were flipped after generation."""
    path = tmp_path / "edited.h5"
    path.write_bytes(lines_file.read_bytes())
    with h5py.File(path, "r+") as f:
        f["test/targets"][...] = 1 - f["test/targets"][()]
    return path


def test_submit_refuses_an_edited_dataset(edited_file, db, tmp_path):
    np.save(tmp_path / "p.npy", targets_of(edited_file))  # perfect on the edited labels
    before = digest(db)
    result = CliRunner().invoke(main, ["submit", str(edited_file), str(tmp_path / "p.npy"), "--name", "x",
                                       "--db", str(db)])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "do not match its recorded fingerprint" in result.output
    assert digest(db) == before


def test_export_public_refuses_an_edited_dataset(edited_file, tmp_path):
    with pytest.raises(FormatError, match="do not match its recorded fingerprint"):
        export_public(edited_file, tmp_path / "public.h5")
    assert not (tmp_path / "public.h5").exists()


# -- absurd values: one line, no numpy warnings, nothing recorded ------------------------------

@pytest.mark.parametrize("value, dtype", [(1e200, np.float64), (1e308, np.float64), (3e38, np.float32)])
def test_huge_regression_predictions_refused(value, dtype, regression_file, tmp_path):
    np.save(tmp_path / "huge.npy", np.full((10, 2), value, dtype=dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy RuntimeWarning would fail the test
        with pytest.raises(SubmissionError, match="wrong units or scaling"):
            score_predictions(open_dataset(regression_file), load_predictions(tmp_path / "huge.npy"))
    fresh = tmp_path / "fresh.sqlite"
    result = CliRunner().invoke(main, ["submit", str(regression_file), str(tmp_path / "huge.npy"), "--name", "x",
                                       "--db", str(fresh)])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert not fresh.exists()


def test_plausible_far_predictions_still_scored(regression_file):
    targets = targets_of(regression_file).astype(np.float64)
    metrics = score_predictions(open_dataset(regression_file), targets + 1000.0)
    assert metrics["rmse"] == pytest.approx(1000.0)


def test_metrics_overflow_refused_without_warnings(regression_file, monkeypatch):
    import cnnbench.board.predictions as predictions

    monkeypatch.setattr(predictions, "PLAUSIBLE_FACTOR", float("inf"))  # the last guard alone
    huge = np.full((10, 2), 1e300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(SubmissionError, match="non-finite rmse"):
            score_predictions(open_dataset(regression_file), huge)


def test_huge_float_class_ids_refused_without_warnings(lines_file):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(SubmissionError, match="out of range"):
            check_predictions(open_dataset(lines_file), np.full(30, 3e38, dtype=np.float32))
    scores = np.zeros((30, 2), dtype=np.float32)
    scores[:, 1] = 3e38  # class scores may be any finite size: only their argmax counts
    assert (check_predictions(open_dataset(lines_file), scores) == 1).all()


@pytest.mark.parametrize("suffix", [".npy", ".h5"])
def test_bool_predictions_refused(suffix, lines_file, regression_file, tmp_path, db):
    path = tmp_path / f"b{suffix}"
    ids = targets_of(lines_file).astype(bool)
    if suffix == ".npy":
        np.save(path, ids)
    else:
        with h5py.File(path, "w") as f:
            f["predictions"] = ids
    before = digest(db)
    result = CliRunner().invoke(main, ["submit", str(lines_file), str(path), "--name", "x", "--db", str(db)])
    assert result.exit_code == 1 and "dtype bool" in result.output
    assert digest(db) == before
    with pytest.raises(SubmissionError, match="dtype bool; expected numbers"):
        check_predictions(open_dataset(regression_file), np.ones((10, 2), dtype=bool))


# -- ties ------------------------------------------------------------------------------------

def test_tied_submissions_share_a_rank(db, lines_file, tmp_path):
    """db holds 'first', perfect; two more perfect ones tie with it, a worse one ranks 4th."""
    ids = targets_of(lines_file)
    np.save(tmp_path / "perfect.npy", ids)
    wrong = ids.copy()
    wrong[0] = 1 - wrong[0]
    np.save(tmp_path / "wrong.npy", wrong)
    lines = []
    for name, file in (("second", "perfect.npy"), ("third", "perfect.npy"), ("fourth", "wrong.npy")):
        result = CliRunner().invoke(main, ["submit", str(lines_file), str(tmp_path / file), "--name", name,
                                           "--db", str(db)])
        assert result.exit_code == 0, result.output
        lines.append(result.output.splitlines()[-1])
    assert [ln.split(" by ")[0] for ln in lines] == ["rank 1 of 2", "rank 1 of 3", "rank 4 of 4"]


# -- evaluate: module form, names, threads, help -----------------------------------------------

def test_evaluate_finds_a_package_in_the_current_folder(db, lines_file, tmp_path, monkeypatch):
    package = tmp_path / "work" / "mymodels_pkg_cwd"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(USER_MODEL)
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path / "work"))])
    result = CliRunner().invoke(main, ["evaluate", str(lines_file), "--model", "mymodels_pkg_cwd.nets:make",
                                       "--epochs", "1", "--db", str(db), "-q"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("mymodels_pkg_cwd.nets:make on ")


def test_default_model_names():
    assert default_model_name("models/mynet.py:make") == "mynet:make"
    assert default_model_name("mypackage.models:make") == "mypackage.models:make"


def test_evaluate_threads(db, lines_file, user_model):
    import torch

    before = torch.get_num_threads()
    try:
        result = CliRunner().invoke(main, ["evaluate", str(lines_file), "--model", f"{user_model}:make",
                                           "--epochs", "1", "--threads", "2", "--db", str(db), "-q"])
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    bad = CliRunner().invoke(main, ["evaluate", str(lines_file), "--model", f"{user_model}:make",
                                    "--threads", "0", "--db", str(db)])
    assert bad.exit_code == 2


def test_evaluate_help_says_what_it_does():
    text = " ".join(CliRunner().invoke(main, ["evaluate", "--help"]).output.split())
    assert "cross-entropy" in text and "cross- entropy" not in text
    assert "--threads" in text and "mypackage.models:make" in text and "FILE:FACTORY" not in text
