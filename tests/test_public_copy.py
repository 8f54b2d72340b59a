"""The public copy of a hosted board's dataset: what it must not hold, and what it must refuse.

Also the fingerprint's cover of the root attributes that identify a board (issue 11, items
1, 3 and 12).
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cnnbench.board.public import export_public
from cnnbench.cli import main
from cnnbench.data.generate import build_spec, write_dataset
from cnnbench.data.h5file import check_fingerprint, compute_fingerprint, open_dataset
from cnnbench.data.presets import get_preset
from cnnbench.errors import CnnbenchError, FormatError

SECRET_SEED = 7_340_912_553_017_264_381


@pytest.fixture(scope="module", params=["lines", "boxes"])
def full(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("full") / f"{request.param}.h5"
    given = {"lines": {"size": 8, "noise": 10}, "boxes": {"size": 12, "box_size": 3}}[request.param]
    write_dataset(build_spec(request.param, {**given, "n_train": 64, "n_val": 16, "n_test": 40,
                                             "seed": SECRET_SEED}), path)
    return path


def _stored_chunks(path, name):
    """The bytes HDF5 stored for an array (compressed chunks), as they would sit in a copy."""
    with h5py.File(path, "r") as f:
        ds = f[name]
        return [ds.id.read_direct_chunk(ds.id.get_chunk_info(i).chunk_offset)[1]
                for i in range(ds.id.get_num_chunks())]


def test_the_public_file_holds_neither_the_seed_nor_any_test_answer(full, tmp_path):
    public = tmp_path / "public.h5"
    result = CliRunner().invoke(main, ["export-public", str(full), "--out", str(public)])
    assert result.exit_code == 0, result.output
    raw = public.read_bytes()
    # The seed as decimal text anywhere (an overwritten attribute's old bytes included) and
    # as the spec's JSON wrote it.
    assert str(SECRET_SEED).encode() not in raw
    assert json.dumps({"seed": SECRET_SEED})[1:-1].encode() not in raw
    assert hex(SECRET_SEED).encode() not in raw and SECRET_SEED.to_bytes(8, "little") not in raw
    with h5py.File(full, "r") as f:
        withheld = [f"test/{name}" for name in f["test"] if name != "images"]
        targets = f["test/targets"][()]
    assert "test/targets" in withheld and len(withheld) > 1  # the extras are withheld too
    for name in withheld:
        with h5py.File(full, "r") as f:
            array = f[name][()]
        if np.unique(array).size == 1:
            continue  # a constant (all-zero offsets) tells nothing and matches any run of zeros
        assert array.tobytes() not in raw, name
        for chunk in _stored_chunks(full, name):
            assert chunk not in raw, name
    for row in targets.reshape(len(targets), -1):  # each test target on its own
        if targets.dtype.kind == "f":
            assert row.tobytes() not in raw
    # Only what the format lists for a public copy: nothing copied along unseen.
    with h5py.File(public, "r") as f:
        assert set(f.attrs) == {"format_version", "family", "task", "spec", "optimum", "public",
                                "fingerprint", "cnnbench_version"}
        assert set(f) == {"train", "val", "test"} and list(f["test"]) == ["images"]
        assert all(not f[s].attrs for s in f)


def test_a_public_copy_keeps_the_full_files_fingerprint_and_cannot_be_checked(full, tmp_path):
    public = export_public(full, tmp_path / "public.h5")
    assert public.fingerprint == open_dataset(full).fingerprint
    assert public.identity == {**open_dataset(full).identity, "spec": public.spec}
    with pytest.raises(FormatError, match="is a public copy; its fingerprint covers the withheld"):
        check_fingerprint(public)


# -- the fingerprint covers what identifies a board ---------------------------------------------

def _forge(path, tmp_path, **attrs):
    forged = tmp_path / "forged.h5"
    forged.write_bytes(path.read_bytes())
    with h5py.File(forged, "r+") as f:
        for key, value in attrs.items():
            if key == "names":
                f["train/targets"].attrs["names"] = value
                f["val/targets"].attrs["names"] = value
                f["test/targets"].attrs["names"] = value
            else:
                f.attrs[key] = value
    return forged


def _forgeries(path):
    with h5py.File(path, "r") as f:
        spec, optimum = json.loads(f.attrs["spec"]), json.loads(f.attrs["optimum"])
        names = [n.decode() if isinstance(n, bytes) else n for n in f["train/targets"].attrs["names"]]
    better = {**optimum, "value": 0.5, "exact": True} if optimum else {"metric": "rmse", "value": 0.0,
                                                                      "exact": True, "why": "forged"}
    return {
        "optimum": {"optimum": json.dumps(better)},
        "spec preset": {"spec": json.dumps({**spec, "preset": "lines-3x3"})},
        "spec seed": {"spec": json.dumps({**spec, "seed": spec["seed"] + 1})},
        "spec params": {"spec": json.dumps({**spec, "params": {**spec["params"], "size": 99}})},
        "target names": {"names": [n + "!" for n in names]},
    }


@pytest.mark.parametrize("what", ["optimum", "spec preset", "spec seed", "spec params", "target names"])
def test_a_forged_identity_no_longer_matches_the_fingerprint(full, tmp_path, what):
    forged = _forge(full, tmp_path, **_forgeries(full)[what])
    dataset = open_dataset(forged)  # well-formed: only the fingerprint can tell
    with pytest.raises(FormatError, match="do not match its recorded fingerprint"):
        check_fingerprint(dataset)
    np.save(tmp_path / "p.npy", open_dataset(full).load("test", ["targets"])["targets"])
    result = CliRunner().invoke(main, ["submit", str(forged), str(tmp_path / "p.npy"), "--name", "x",
                                       "--db", str(tmp_path / "db.sqlite")])
    assert result.exit_code == 1 and "do not match its recorded fingerprint" in result.output, result.output
    assert not (tmp_path / "db.sqlite").exists()
    with pytest.raises(CnnbenchError, match="do not match its recorded fingerprint"):
        export_public(forged, tmp_path / "public.h5")


def test_the_genuine_file_matches_and_the_fingerprint_moves_with_each_identity_field(full, tmp_path):
    genuine = open_dataset(full)
    check_fingerprint(genuine)
    assert compute_fingerprint(full) == genuine.fingerprint
    seen = {genuine.fingerprint}
    for attrs in _forgeries(full).values():
        forged = _forge(full, tmp_path, **attrs)
        seen.add(compute_fingerprint(forged))
        forged.unlink()
    assert len(seen) == 1 + len(_forgeries(full))


# -- a secret seed that changes nothing --------------------------------------------------------

def test_a_seed_independent_file_is_not_exported(tmp_path):
    # lines-3x3 is the same six images whatever the seed: with a secret seed its labels are
    # still everyone's.
    full = tmp_path / "l3.h5"
    write_dataset(get_preset("lines-3x3").spec(SECRET_SEED), full)
    out = tmp_path / "public.h5"
    result = CliRunner().invoke(main, ["export-public", str(full), "--out", str(out)])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert "its test labels do not depend on its seed" in result.output
    assert "a secret seed hides nothing" in result.output and not out.exists()
