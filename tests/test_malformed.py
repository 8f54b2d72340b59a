"""Malformed dataset files: every reader refuses each with one Error line naming file and fault.

One validation (``h5format.open_dataset``) runs for every command that reads a dataset; each
case below is a file that once gave a traceback (or a wrong answer) in at least one of them.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cnnbench.cli import main
from cnnbench.data.generate import build_spec, write_dataset

SECRET = 2 ** 62 + 1


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    folder = tmp_path_factory.mktemp("malformed")
    made = {"lines": folder / "lines.h5", "boxes": folder / "boxes.h5"}
    write_dataset(build_spec("lines", {"size": 5, "n_train": 30, "n_val": 8, "n_test": 8, "seed": SECRET}),
                  made["lines"])
    write_dataset(build_spec("boxes", {"size": 8, "box_size": 2, "n_train": 16, "n_val": 8, "n_test": 8,
                                       "seed": SECRET}), made["boxes"])
    (folder / "other.h5").write_bytes(made["lines"].read_bytes())
    return made


def _replace(f, name, array):
    attrs = dict(f[name].attrs)
    del f[name]
    f[name] = array
    for key, value in attrs.items():
        f[name].attrs[key] = value


def _external_storage(f, folder):
    del f["train/position"]
    raw = folder / "position.bin"
    raw.write_bytes(np.zeros(30, np.int64).tobytes())
    f.create_dataset("train/position", shape=(30,), dtype=np.int64, external=[(str(raw), 0, 240)])


def _virtual(f, folder):
    source = folder / "vsource.h5"
    with h5py.File(source, "w") as g:
        g["x"] = np.zeros(30, np.int64)
    layout = h5py.VirtualLayout(shape=(30,), dtype=np.int64)
    layout[:] = h5py.VirtualSource(str(source), "x", shape=(30,))
    del f["train/position"]
    f["train"].create_virtual_dataset("position", layout)


def _virtual_missing_source(f, folder):
    layout = h5py.VirtualLayout(shape=(30,), dtype=np.int64)
    layout[:] = h5py.VirtualSource("gone.h5", "train/position", shape=(30,))
    del f["train/position"]
    f["train"].create_virtual_dataset("position", layout)


OPTIMUM = {"metric": "accuracy", "value": 1.0, "exact": True, "why": "noise-free"}

# (family of the original, change made to a copy, words the error must hold)
CASES = {
    "spec null": ("lines", lambda f, d: f.attrs.__setitem__("spec", "null"), "attribute 'spec' is null"),
    "spec a list": ("lines", lambda f, d: f.attrs.__setitem__("spec", "[1, 2]"), "'spec' is an array"),
    "spec an int": ("lines", lambda f, d: f.attrs.__setitem__("spec", "7"), "'spec' is a number"),
    "spec deeply nested": ("lines", lambda f, d: f.attrs.__setitem__("spec", "[" * 5000 + "]" * 5000),
                           "'spec' is nested deeper"),
    "spec not JSON": ("lines", lambda f, d: f.attrs.__setitem__("spec", "{seed: 1"), "'spec' is not valid JSON"),
    "spec seed a string": ("lines", lambda f, d: f.attrs.__setitem__(
        "spec", f.attrs["spec"].replace(f'"seed": {SECRET}', '"seed": "x"')), "spec seed 'x'"),
    "optimum a string": ("lines", lambda f, d: f.attrs.__setitem__("optimum", '"best"'), "'optimum' is a string"),
    "optimum a list": ("lines", lambda f, d: f.attrs.__setitem__("optimum", "[1]"), "'optimum' is an array"),
    "optimum holds a string": ("lines", lambda f, d: f.attrs.__setitem__(
        "optimum", json.dumps({**OPTIMUM, "value": "1.0"})), "optimum value '1.0' is not a finite number"),
    "optimum in another metric": ("lines", lambda f, d: f.attrs.__setitem__(
        "optimum", json.dumps({**OPTIMUM, "metric": "rmse"})), "optimum metric 'rmse' is not 'accuracy'"),
    "unknown task": ("lines", lambda f, d: f.attrs.__setitem__("task", "ranking"), "unknown task 'ranking'"),
    "task of another family": ("lines", lambda f, d: f.attrs.__setitem__("task", "regression"),
                               "task 'regression' is not lines's (classification)"),
    "family not a name": ("lines", lambda f, d: f.attrs.__setitem__("family", 3), "family 3 is not a name"),
    "spec of another family": ("lines", lambda f, d: f.attrs.__setitem__("family", "circles"),
                               "spec family 'lines' is not the file's family 'circles'"),
    "spec without params": ("lines", lambda f, d: f.attrs.__setitem__("spec", json.dumps(
        {k: v for k, v in json.loads(f.attrs["spec"]).items() if k != "params"})), "spec has no 'params'"),
    "integer fingerprint": ("lines", lambda f, d: f.attrs.__setitem__("fingerprint", 12345),
                            "fingerprint 12345 is not 64 hexadecimal digits"),
    "public an int": ("lines", lambda f, d: f.attrs.__setitem__("public", 1), "attribute 'public' is 1"),
    "float images": ("lines", lambda f, d: _replace(f, "train/images", f["train/images"][()].astype(np.float32)),
                     "train/images have dtype float32; expected uint8"),
    "3-D images": ("lines", lambda f, d: _replace(f, "val/images", f["val/images"][()][..., 0]),
                   "val/images have shape (8, 5, 5); expected N x H x W x C"),
    "negative class ids": ("lines", lambda f, d: _replace(f, "train/targets", f["train/targets"][()] - 1),
                           "train/targets holds class id -1, outside 0..1"),
    "class id past the names": ("lines", lambda f, d: _replace(f, "val/targets", f["val/targets"][()] + 5),
                                "val/targets holds class id 6, outside 0..1"),
    "float class targets": ("lines", lambda f, d: _replace(f, "train/targets", f["train/targets"][()] + 0.5),
                            "train/targets are float64 of shape (30,); class ids are integers"),
    "fewer test targets than images": ("lines", lambda f, d: _replace(f, "test/targets", f["test/targets"][:3]),
                                       "test/targets has 3 rows for 8 images"),
    "missing train targets": ("lines", lambda f, d: f.__delitem__("train/targets"), "no train/targets array"),
    "missing test targets, not public": ("lines", lambda f, d: f.__delitem__("test/targets"),
                                         "no test/targets array; only a public copy"),
    "missing target names": ("lines", lambda f, d: f["train/targets"].attrs.__delitem__("names"),
                             "train/targets has no 'names' attribute"),
    "one class name": ("lines", lambda f, d: f["train/targets"].attrs.__setitem__("names", ["row"]),
                       "train/targets has 1 name; a classification needs at least 2"),
    "names differ between splits": ("lines", lambda f, d: f["test/targets"].attrs.__setitem__(
        "names", ["a", "b"]), "test/targets names differ from train/targets names"),
    "1-D regression targets": ("boxes", lambda f, d: _replace(f, "train/targets", f["train/targets"][:, 0]),
                               "train/targets are float32 of shape (16,); regression targets are floats, N x 2"),
    "NaN regression target": ("boxes", lambda f, d: _replace(f, "val/targets", f["val/targets"][()] * np.nan),
                              "val/targets holds NaN or infinite values"),
    "external link": ("lines", lambda f, d: f["train"].__setitem__("extra", h5py.ExternalLink(
        str(d / "other.h5"), "/test/targets")), "train/extra is an external link"),
    "soft link": ("lines", lambda f, d: f["val"].__setitem__("extra", h5py.SoftLink("/test/targets")),
                  "val/extra is a soft link"),
    "virtual dataset": ("lines", _virtual, "train/position is a virtual dataset reading x of"),
    "virtual dataset, source missing": ("lines", _virtual_missing_source,
                                        "train/position is a virtual dataset whose source 'gone.h5' is missing"),
    "external storage": ("lines", _external_storage, "train/position is stored in external files"),
    "compound extra": ("lines", lambda f, d: _replace(f, "train/position", np.zeros(30, "i4,f4")),
                       "train/position has dtype"),
    "group in a split": ("lines", lambda f, d: f["train"].create_group("more"), "train/more is a group"),
}


def _commands(path, tmp_path):
    db = tmp_path / "board.sqlite"
    return {
        "info": ["info", path],
        "show": ["show", path, "--out", tmp_path / "g.png"],
        "bench": ["bench", path, "--db", db, "-q"],
        "submit": ["submit", path, tmp_path / "p.npy", "--name", "x", "--db", db],
        "evaluate": ["evaluate", path, "--model", "nomodel.py:make", "--db", db, "-q"],
        "diagnose": ["diagnose", path, "--baseline", "mean", "--db", db],
        "export-public": ["export-public", path, "--out", tmp_path / "public.h5"],
        "leaderboard": ["leaderboard", path, "--db", db],
    }


@pytest.mark.parametrize("case", list(CASES))
def test_every_reader_refuses_a_malformed_file_in_one_line(case, originals, tmp_path):
    family, change, words = CASES[case]
    path = tmp_path / "bad.h5"
    path.write_bytes(originals[family].read_bytes())
    with h5py.File(path, "r+") as f:
        change(f, originals[family].parent)
    np.save(tmp_path / "p.npy", np.zeros(8, np.int64))
    before = sorted(p.name for p in tmp_path.iterdir())
    for command, args in _commands(path, tmp_path).items():
        result = CliRunner().invoke(main, [str(a) for a in args])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1, (command, result.output, result.exception)
        assert lines[0].startswith(f"Error: {path}: ") and words in lines[0], (command, lines[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no database made


def test_the_originals_are_read_by_every_reader(originals):
    result = CliRunner().invoke(main, ["info", str(originals["lines"])])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["info", str(originals["boxes"])])
    assert result.exit_code == 0, result.output
