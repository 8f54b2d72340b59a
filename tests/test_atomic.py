import os

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

    from cnnbench.data.h5file import DatasetWriter

    def interrupted(self, name, *args, **kwargs):
        raise stop

    monkeypatch.setattr(h5py.Group, "create_group", interrupted)
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        with DatasetWriter(tmp_path / "d.h5", {}):
            pass
    assert list(tmp_path.iterdir()) == []


def test_a_signal_landing_in_a_weakref_callback_still_stops_the_writer(tmp_path):
    # What Ctrl-C or SIGTERM did during a large write: the handler ran inside h5py's weakref
    # callback, its exception was printed as "Exception ignored" and the write went on.
    import signal
    import weakref

    import numpy as np

    from cnnbench.data.h5file import DatasetWriter

    def exit_on_signal(signum, frame):  # what the CLI installs for SIGTERM and SIGHUP
        raise SystemExit(128 + signum)

    class Handle:
        pass

    previous = signal.signal(signal.SIGHUP, exit_on_signal)
    try:
        block = {"images": np.zeros((4, 2, 2, 1), np.uint8)}
        with pytest.raises(SystemExit) as stopped:
            with DatasetWriter(tmp_path / "d.h5", {}) as writer:
                writer.create_split("train", 8, block, {})
                handle = Handle()
                weakref.finalize(handle, os.kill, os.getpid(), signal.SIGHUP)
                del handle  # the signal arrives while the callback runs
                writer.write("train", 0, block)
                writer.write("train", 4, block)
        assert stopped.value.code == 128 + signal.SIGHUP
        assert list(tmp_path.iterdir()) == []
        assert signal.getsignal(signal.SIGHUP) is exit_on_signal  # the writer's hold is lifted
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_a_kill_9_leftover_is_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process id that no longer exists
    mine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [tmp_path / f".grid.tmp-{dead.pid}.png", tmp_path / f".d.h5.tmp-{dead.pid}"]
        live = tmp_path / f".grid.tmp-{mine.pid}.png"  # another write still in progress
        for path in stale + [live]:
            path.write_bytes(b"half")
        write_text(tmp_path / "grid.png", "new")
        from cnnbench.data.h5file import DatasetWriter

        with pytest.raises(RuntimeError):
            with DatasetWriter(tmp_path / "d.h5", {}):
                raise RuntimeError("stopped: only the start of a write matters here")
    finally:
        mine.kill()
        mine.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "grid.png"])
