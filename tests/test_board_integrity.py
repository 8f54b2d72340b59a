"""A board trusts only what it stored: an edited copy of a dataset file (same fingerprint,
another task, family, preset, spec, class names or optimum) is refused, never allowed to
rewrite the stored identity or to rank on the genuine board."""

from __future__ import annotations

import hashlib
import json
import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import raw_sql

from cnnbench.board.public import export_public
from cnnbench.board.records import RunRecord
from cnnbench.board.store import DatasetMismatchError, Leaderboard
from cnnbench.cli import main
from cnnbench.data.h5file import open_dataset
from cnnbench.errors import FormatError


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def forge(src, out, **changes):
    """A copy of ``src`` with root attributes (or class names) changed; arrays and the recorded
    fingerprint untouched."""
    shutil.copyfile(src, out)
    with h5py.File(out, "r+") as f:
        for key, value in changes.items():
            if key == "names":  # every split's: a reader refuses splits that disagree
                for split in ("train", "val", "test"):
                    f[split]["targets"].attrs["names"] = value
            elif key == "spec":
                spec = json.loads(f.attrs["spec"])
                spec.update(value)
                f.attrs["spec"] = json.dumps(spec, sort_keys=True)
            elif key == "params":
                spec = json.loads(f.attrs["spec"])
                spec["params"].update(value)
                f.attrs["spec"] = json.dumps(spec, sort_keys=True)
            else:
                f.attrs[key] = value
    return out


FORGERIES = {
    "task": {"task": "regression"},
    "family": {"family": "boxes"},
    "preset": {"spec": {"preset": "lines-16"}},
    "spec": {"params": {"noise": 3.0}},
    "target_names": {"names": ["column", "row"]},
    "optimum": {"optimum": json.dumps({"metric": "accuracy", "value": 0.25, "exact": True, "why": "forged"})},
}


def record_for(ds, name="honest", score=1.0) -> RunRecord:
    metric = "accuracy" if ds.task == "classification" else "rmse"
    return RunRecord(name=name, source="submission", fingerprint=ds.fingerprint, family=ds.family,
                     task=ds.task, metrics={metric: score}, preset=ds.spec.get("preset"),
                     dataset_path=str(ds.path))


def contents(db):
    """What 'nothing written' means: the SQLite file's bytes; PostgreSQL's rows."""
    if isinstance(db, str):
        return [raw_sql(db, (f"SELECT * FROM {table} ORDER BY 1", ())) for table in ("runs", "datasets")]
    return digest(db)


@pytest.fixture
def genuine_board(db, lines3):
    """A board with one honest row recorded from the genuine file (on each backend: `db`, conftest.py)."""
    ds = open_dataset(lines3)
    with Leaderboard(db) as board:
        board.add(record_for(ds), dataset=ds)
    return db, ds


# A task that is not the family's is refused by every reader before a board is consulted
# (h5format.open_dataset): such a copy never reaches the board.
REFUSED_ON_OPEN = {"task", "family"}


@pytest.mark.parametrize("what", sorted(FORGERIES))
def test_forged_identity_refused_and_stored_one_kept(what, genuine_board, tmp_path, lines3):
    db, genuine = genuine_board
    path = forge(lines3, tmp_path / "forged.h5", **FORGERIES[what])
    if what in REFUSED_ON_OPEN:
        with pytest.raises(FormatError, match="task .* is not"):
            open_dataset(path)
        return
    forged = open_dataset(path)
    assert forged.fingerprint == genuine.fingerprint  # the copy claims the genuine board
    with Leaderboard(db) as board:
        before = board.dataset_info(genuine.fingerprint)
        with pytest.raises(DatasetMismatchError, match=what):
            board.add(record_for(forged, name="forger"), dataset=forged)
        with pytest.raises(DatasetMismatchError, match=what):
            board.check_dataset(forged)
        assert board.dataset_info(genuine.fingerprint) == before
        assert [r.name for r in board.runs()] == ["honest"]
        (only,) = board.boards()
    assert only.preset == "lines-3x3" and only.task == "classification"
    assert not only.beyond_optimum_rows  # the honest row is not flagged as a leak


def test_add_dataset_never_rewrites(genuine_board, tmp_path, lines3):
    db, genuine = genuine_board
    forged = open_dataset(forge(lines3, tmp_path / "forged.h5", **FORGERIES["optimum"]))
    with Leaderboard(db) as board:
        with pytest.raises(DatasetMismatchError, match="optimum"):
            board.add_dataset(forged)
        assert board.dataset_info(genuine.fingerprint)["optimum"] == genuine.optimum


def test_a_record_disagreeing_with_its_own_file_refused(tmp_path, lines3):
    ds = open_dataset(lines3)
    record = record_for(ds)
    record.task, record.metrics = "regression", {"rmse": 0.0}
    with Leaderboard(tmp_path / "b.sqlite") as board:
        with pytest.raises(DatasetMismatchError, match="task"):
            board.add(record, dataset=ds)
    assert not (tmp_path / "b.sqlite").exists()


def test_cli_submit_of_a_task_forged_copy_refused(genuine_board, tmp_path, lines3):
    """The issue's attack: task set to regression, constant predictions of 900000."""
    db, genuine = genuine_board
    forged = forge(lines3, tmp_path / "forged.h5", task="regression")
    np.save(tmp_path / "p.npy", np.full((genuine.split_size("test"), 1), 900000.0))
    before = contents(db)
    result = CliRunner().invoke(main, ["submit", str(forged), str(tmp_path / "p.npy"), "--name", "x",
                                       "--db", str(db)])
    assert result.exit_code == 1 and result.output.startswith("Error:"), result.output
    assert len(result.output.strip().splitlines()) == 1
    assert contents(db) == before


def test_cli_leaderboard_with_a_forged_optimum_refused(genuine_board, tmp_path, lines3):
    db, genuine = genuine_board
    forged = forge(lines3, tmp_path / "forged.h5", **FORGERIES["optimum"])
    result = CliRunner().invoke(main, ["leaderboard", str(forged), "--db", str(db)])
    assert result.exit_code == 1 and "optimum" in result.output and "!" not in result.output
    result = CliRunner().invoke(main, ["leaderboard", str(lines3), "--db", str(db), "--format", "json"])
    rows = json.loads(result.output)
    assert [r["kind"] for r in rows] == ["optimum", "model"] and not rows[1]["beyond_optimum"]


def test_a_public_copy_matches_its_full_file(genuine_board, tmp_path, lines3):
    """The public copy withholds the seed: its spec is compared without it."""
    db, genuine = genuine_board
    public = export_public(lines3, tmp_path / "public.h5", allow_guessable_seed=True)
    with Leaderboard(db) as board:
        board.check_dataset(public)


def test_unknown_fields_are_filled_in_not_rewritten(db, lines3):
    """A run recorded without its file stores family and task only; the file later fills in
    the rest, and a later disagreement is still refused."""
    ds = open_dataset(lines3)
    bare = record_for(ds)
    bare.dataset_path, bare.preset = "", None
    with Leaderboard(db) as board:
        board.add(bare)
        assert board.dataset_info(ds.fingerprint)["optimum"] is None
        board.add(record_for(ds, name="second"), dataset=ds)
        info = board.dataset_info(ds.fingerprint)
        assert info["optimum"] == ds.optimum and info["preset"] == "lines-3x3"
        assert info["target_names"] == ["row", "column"] and info["spec"] == ds.spec
