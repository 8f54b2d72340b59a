"""A predictions .h5 is read only from a plain dataset stored inside the submitted file.

h5py follows external links, virtual datasets and external raw storage on its own, so a
participant who knows where the host keeps the full file could "predict" by pointing at its
test targets. Each route below scored a perfect accuracy before predictions were read this way.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cnnbench.board.predictions import load_predictions, score_predictions
from cnnbench.cli import main
from cnnbench.data.h5file import open_dataset
from cnnbench.errors import CnnbenchError

SECRET_SEED = 7_340_011_902_116_554_031


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The host's full file (test targets inside), with a secret seed."""
    path = tmp_path_factory.mktemp("host") / "full.h5"
    result = CliRunner().invoke(main, ["generate", "lines", "--out", str(path), "--size", "6", "--n-train", "20",
                                       "--n-val", "10", "--n-test", "40", "--seed", str(SECRET_SEED), "-q"])
    assert result.exit_code == 0, result.output
    return path


def _refused(full, preds, match):
    dataset = open_dataset(full)
    with pytest.raises(CnnbenchError, match=match):
        score_predictions(dataset, load_predictions(preds))


def test_a_plain_dataset_is_still_read(full, tmp_path):
    targets = open_dataset(full).load("test", ["targets"])["targets"]
    with h5py.File(tmp_path / "p.h5", "w") as f:
        f["predictions"] = targets
    assert score_predictions(open_dataset(full), load_predictions(tmp_path / "p.h5"))["accuracy"] == 1.0


# Links to the host's file, each written into a fresh predictions file, and the word the
# refusal must use: the dataset itself, the file's only "dataset", a soft link to an external
# group, an external link to the whole test group.
LINKS = {
    "external": ({"predictions": ("external", "/test/targets")}, "external link"),
    "external, only dataset": ({"whatever": ("external", "/test/targets")}, "external link"),
    "soft to external": ({"hidden": ("external", "/test"), "predictions": ("soft", "/hidden/targets")},
                         "soft link"),
    "external group": ({"g": ("external", "/test")}, "external link"),
}


@pytest.mark.parametrize("case", sorted(LINKS))
def test_links_refused(case, full, tmp_path):
    links, word = LINKS[case]
    preds = tmp_path / "p.h5"
    with h5py.File(preds, "w") as f:
        for name, (kind, target) in links.items():
            f[name] = h5py.ExternalLink(str(full), target) if kind == "external" else h5py.SoftLink(target)
    _refused(full, preds, word)


def test_virtual_dataset_refused(full, tmp_path):
    preds = tmp_path / "p.h5"
    n = open_dataset(full).split_size("test")
    with h5py.File(full, "r") as src:
        dtype = src["test/targets"].dtype
    layout = h5py.VirtualLayout(shape=(n,), dtype=dtype)
    layout[:] = h5py.VirtualSource(str(full), "test/targets", shape=(n,))
    with h5py.File(preds, "w") as f:
        f.create_virtual_dataset("predictions", layout)
    _refused(full, preds, "virtual dataset")


def _contiguous_copy(src_path, out):
    """The same dataset (same fingerprint) with uncompressed, contiguous arrays, as another
    HDF5 writer could leave it: each array's bytes then sit at one offset in the file."""
    with h5py.File(src_path, "r") as src, h5py.File(out, "w") as dst:
        dst.attrs.update(dict(src.attrs))
        for split in src:
            group = dst.create_group(split)
            group.attrs.update(dict(src[split].attrs))
            for name, ds in src[split].items():
                group.create_dataset(name, data=ds[()])
                group[name].attrs.update(dict(ds.attrs))
    return out


def test_external_raw_storage_refused(full, tmp_path):
    """Raw data "stored" in another file: the host's own bytes at the test targets' offset."""
    host = _contiguous_copy(full, tmp_path / "host.h5")
    assert open_dataset(host).fingerprint == open_dataset(full).fingerprint
    preds = tmp_path / "p.h5"
    with h5py.File(host, "r") as src:
        ds = src["test/targets"]
        offset, dtype, shape = ds.id.get_offset(), ds.dtype, ds.shape
    assert offset is not None
    nbytes = int(np.prod(shape)) * dtype.itemsize
    with h5py.File(preds, "w") as f:
        f.create_dataset("predictions", shape=shape, dtype=dtype, external=[(str(host), offset, nbytes)])
    _refused(host, preds, "external")


@pytest.mark.parametrize("kind", ["compound", "vlen", "object"])
def test_non_plain_dtypes_refused(full, tmp_path, kind):
    preds = tmp_path / "p.h5"
    targets = open_dataset(full).load("test", ["targets"])["targets"].astype(np.int64)
    with h5py.File(preds, "w") as f:
        if kind == "compound":
            data = np.zeros(len(targets), dtype=[("id", "i8")])
            data["id"] = targets
            f["predictions"] = data
        elif kind == "vlen":
            ds = f.create_dataset("predictions", (len(targets),), dtype=h5py.vlen_dtype(np.int64))
            for i, t in enumerate(targets):
                ds[i] = np.array([t])
        else:
            f.create_dataset("predictions", (len(targets),), dtype=h5py.ref_dtype)
    _refused(full, preds, "dtype")


def test_cli_refusal_is_one_line_and_writes_nothing(full, tmp_path):
    preds = tmp_path / "p.h5"
    with h5py.File(preds, "w") as f:
        f["predictions"] = h5py.ExternalLink(str(full), "/test/targets")
    db = tmp_path / "board.sqlite"
    result = CliRunner().invoke(main, ["submit", str(full), str(preds), "--name", "x", "--db", str(db)])
    assert result.exit_code == 1
    assert result.output.startswith("Error:") and "external link" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not db.exists()
