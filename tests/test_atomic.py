import pytest

from cnnbench.atomic import atomic_path, write_text


def test_success_replaces_the_file_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "report.md"
    out.write_text("old")
    write_text(out, "new")
    assert out.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    out = tmp_path / "grid.png"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            assert tmp.suffix == ".png" and tmp.parent == tmp_path
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit(143)])
def test_a_dataset_writer_stopped_while_opening_leaves_nothing(tmp_path, monkeypatch, stop):
    # SIGTERM unwinds as SystemExit: it may land while the temporary HDF5 file is being set up,
    # before the with-block (and so __exit__) is entered.
    import h5py

    from cnnbench.h5format import DatasetWriter

    def interrupted(self, name, *args, **kwargs):
        raise stop

    monkeypatch.setattr(h5py.Group, "create_group", interrupted)
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        with DatasetWriter(tmp_path / "d.h5", {}):
            pass
    assert list(tmp_path.iterdir()) == []
