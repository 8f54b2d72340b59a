"""The dataset commands through click's CliRunner: happy paths and every bad input."""

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cnnbench.cli import main

# cnnbench.data.generate is the public function; the module of the same name, by its full name.
generate_module = importlib.import_module("cnnbench.data.generate")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, match):
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    message = result.output.strip().splitlines()
    assert "Traceback" not in result.output
    assert match in message[-1], result.output


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "lines.h5"
    result = run("generate", "lines", "--out", path, "--size", 5, "--n-train", 30,
                 "--n-val", 8, "--n-test", 8, "--noise", 3)
    assert result.exit_code == 0, result.output
    return path


def test_generate_family_writes_a_readable_file(lines_file):
    with h5py.File(lines_file, "r") as f:
        assert f.attrs["format_version"] == 2 and f.attrs["family"] == "lines"
        spec = json.loads(f.attrs["spec"])
        assert spec["seed"] == 0 and spec["n_train"] == 30 and spec["params"]["size"] == 5
        assert f["train/images"].shape == (30, 5, 5, 1)


def test_generate_preset_matches_its_toml(tmp_path):
    out = tmp_path / "l3.h5"
    result = run("generate", "--preset", "lines-3x3", "--out", out)
    assert result.exit_code == 0, result.output
    with h5py.File(out, "r") as f:
        assert json.loads(f.attrs["spec"])["preset"] == "lines-3x3"
        assert f["test/images"].shape == (6, 3, 3, 1)


def test_presets_lists_every_toml():
    result = run("presets", "--json")
    assert result.exit_code == 0
    names = json.loads(result.output)
    assert {"lines-3x3", "lines-16"} <= set(names)


def test_info_text_and_json(lines_file):
    result = run("info", lines_file)
    assert result.exit_code == 0 and "fingerprint" in result.output and "classes" in result.output
    data = json.loads(run("info", lines_file, "--json").output)
    assert data["family"] == "lines" and data["task"] == "classification"
    assert data["splits"]["train"]["n"] == 30
    assert sum(data["splits"]["train"]["class_counts"].values()) == 30
    assert data["file_bytes"] == os.path.getsize(lines_file)


def test_show_writes_a_png(lines_file, tmp_path):
    out = tmp_path / "grid.png"
    result = run("show", lines_file, "--out", out, "-n", 4, "--split", "val")
    assert result.exit_code == 0, result.output
    from PIL import Image

    with Image.open(out) as image:
        assert image.format == "PNG" and image.width >= 2 * 80


@pytest.mark.parametrize("args, match", [
    (["generate", "circles", "--out", "x.h5"], "unknown family 'circles'"),
    (["generate", "--preset", "nope", "--out", "x.h5"], "unknown preset 'nope'"),
    (["generate", "lines", "--out", "x.h5", "--size", "1"], "size: 1 is below the minimum 2"),
    (["generate", "lines", "--out", "x.h5", "--n-val", "0"], "n_val: 0 is below the minimum 1"),
    (["generate", "lines", "--out", "x.h5", "--n-train", "-5"], "n_train: -5"),
    (["generate", "lines", "--out", "x.h5", "--size", "3", "--thickness", "4"], "thickness: 4 is larger"),
    (["generate", "lines", "--out", "missing/x.h5"], "output folder 'missing' does not exist"),
])
def test_bad_generate_input(args, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert_one_line_error(result, match)
    assert not any(tmp_path.rglob("*.h5")) and not any(tmp_path.rglob(".*tmp*"))


def test_existing_output_needs_force(lines_file):
    before = lines_file.read_bytes()
    result = run("generate", "lines", "--out", lines_file, "--size", 4)
    assert_one_line_error(result, "already exists (use --force to overwrite)")
    assert lines_file.read_bytes() == before


def test_options_before_the_family_name_are_honoured(lines_file, tmp_path):
    out = _copy(lines_file, tmp_path)
    result = run("generate", "--force", "--quiet", "--workers", 2, "lines", "--out", out, "--size", 4,
                 "--n-train", 2100, "--n-val", 4, "--n-test", 4)
    assert result.exit_code == 0 and result.output == "", result.output
    with h5py.File(out, "r") as f:
        assert f["train/images"].shape == (2100, 4, 4, 1)  # overwritten, as --force asked


def test_group_workers_are_used(tmp_path, monkeypatch):
    import cnnbench.cli.data as data

    seen = []
    monkeypatch.setattr(data, "write_dataset", lambda spec, out, **kw: seen.append(kw["workers"]) or "0" * 64)
    assert run("generate", "--workers", 3, "lines", "--out", tmp_path / "a.h5", "-q").exit_code == 0
    assert run("generate", "--workers", 3, "lines", "--out", tmp_path / "b.h5", "--workers", 2, "-q").exit_code == 0
    assert seen == [3, 2]  # the family's own option wins where both are given


@pytest.mark.parametrize("flags, color", [
    ([], False), (["--color"], True), (["--color", "true"], True), (["--color", "false"], False),
    (["--color=yes"], True), (["--no-color"], False), (["--color", "--noise", "1"], True),
])
def test_boolean_options_work_as_flags_and_take_values(tmp_path, flags, color):
    out = tmp_path / "b.h5"
    result = run("generate", "boxes", "--out", out, "--size", 8, "--box-size", 2, "--n-train", 2,
                 "--n-val", 2, "--n-test", 2, "-q", *flags)
    assert result.exit_code == 0, result.output
    with h5py.File(out, "r") as f:
        assert json.loads(f.attrs["spec"])["params"]["color"] is color


def test_a_boolean_and_its_negation_together_are_refused(tmp_path):
    assert_one_line_error(run("generate", "boxes", "--out", tmp_path / "b.h5", "--color", "--no-color"),
                          "--color and --no-color contradict each other")


def test_every_preset_output_is_checked_before_any_is_written(tmp_path):
    (tmp_path / "lines-16.h5").write_bytes(b"already here")
    result = run("generate", "--preset", "lines-3x3", "--preset", "lines-16", "--out-dir", tmp_path)
    assert_one_line_error(result, "lines-16.h5' already exists")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lines-16.h5"]
    result = run("generate", "--preset", "lines-3x3", "--preset", "lines-3x3", "--out-dir", tmp_path, "-q")
    assert result.exit_code == 0, result.output  # a preset named twice is written once


def test_unwritable_folder(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    if os.access(folder, os.W_OK):  # root ignores permissions: make the check see what a user sees
        monkeypatch.setattr("cnnbench.data.h5file.os.access", lambda path, mode: False)
    try:
        assert_one_line_error(run("generate", "lines", "--out", folder / "x.h5"), "is not writable")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_file_creation_refused_by_the_system_is_one_line(tmp_path, monkeypatch):
    # What root sees in a folder it cannot write (a read-only mount): os.access says yes,
    # then HDF5 fails with a long message holding the errno.
    def refuse(name, *args, **kwargs):
        raise OSError(f"Unable to synchronously create file (unable to open file: name = '{name}', "
                      "errno = 30, error message = 'Read-only file system', flags = 13, o_flags = 242)")

    monkeypatch.setattr("cnnbench.data.h5file.h5py.File", refuse)
    out = tmp_path / "x.h5"
    result = run("generate", "lines", "--out", out)
    assert_one_line_error(result, f"cannot write '{out}': Read-only file system")
    assert "errno" not in result.output and list(tmp_path.iterdir()) == []


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    real_draw = generate_module._draw_block
    calls = []

    def dying_draw(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what Ctrl-C does midway through a split
        return real_draw(*args)

    monkeypatch.setattr(generate_module, "_draw_block", dying_draw)
    out = tmp_path / "big.h5"
    result = run("generate", "lines", "--out", out, "--n-train", 5000, "--size", 4)
    assert result.exit_code != 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content, match", [
    (None, "no such file"),
    (b"definitely not hdf5", "not a readable HDF5 file"),
])
def test_info_and_show_refuse_bad_files(tmp_path, content, match):
    path = tmp_path / "bad.h5"
    if content is not None:
        path.write_bytes(content)
    assert_one_line_error(run("info", path), match)
    assert_one_line_error(run("show", path, "--out", tmp_path / "g.png"), match)
    assert not (tmp_path / "g.png").exists()


def test_truncated_and_foreign_hdf5_files(lines_file, tmp_path):
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(lines_file.read_bytes()[:4000])
    assert_one_line_error(run("info", truncated), "truncated or corrupt")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(3)
    assert_one_line_error(run("info", foreign), "not a cnnbench dataset")


def _copy(path, tmp_path, name="copy.h5"):
    out = tmp_path / name
    out.write_bytes(path.read_bytes())
    return out


def _corrupt_chunk(path, array):
    """Overwrite the stored bytes of ``array``'s first chunk: the file opens, that read fails."""
    with h5py.File(path, "r") as f:
        info = f[array].id.get_chunk_info(0)
    with open(path, "r+b") as raw:
        raw.seek(info.byte_offset)
        raw.write(b"\xff" * info.size)


def test_show_refused_by_the_system_names_the_png(lines_file, tmp_path, monkeypatch):
    def refuse(self, fp, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(fp))

    monkeypatch.setattr("PIL.Image.Image.save", refuse)
    out = tmp_path / "g.png"
    assert_one_line_error(run("show", lines_file, "--out", out), f"cannot write '{out}': Permission denied")
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_chunk_is_one_line_naming_the_file_and_the_array(lines_file, tmp_path):
    broken = _copy(lines_file, tmp_path)
    _corrupt_chunk(broken, "train/images")
    assert_one_line_error(run("show", broken, "--out", tmp_path / "g.png"),
                          f"{broken}: array train/images cannot be read (truncated or corrupt?)")
    # diagnose reads its train sample through the same validated Dataset: the same line
    assert_one_line_error(run("diagnose", broken, "--baseline", "majority"),
                          f"{broken}: array train/images cannot be read (truncated or corrupt?)")
    _corrupt_chunk(broken, "train/targets")
    assert_one_line_error(run("info", broken), f"{broken}: array train/targets cannot be read")
    assert_one_line_error(run("diagnose", broken, "--baseline", "majority"),
                          f"{broken}: array train/targets cannot be read")
    assert not (tmp_path / "g.png").exists()


def test_load_rows_reads_what_load_reads(lines_file):
    from cnnbench.data.h5file import open_dataset
    from cnnbench.errors import FormatError

    ds = open_dataset(lines_file)
    rows = np.array([0, 3, 4, ds.split_size("train") - 1])
    whole, some = ds.load("train"), ds.load_rows("train", rows)
    assert sorted(some) == sorted(whole)
    for name, array in some.items():
        np.testing.assert_array_equal(array, whole[name][rows])
    assert ds.load_rows("train", [], ["images"])["images"].shape == (0,) + whole["images"].shape[1:]
    with pytest.raises(FormatError, match="has no 'nothing' array"):
        ds.load_rows("train", rows, ["nothing"])


def test_a_format_version_of_another_type_is_shown_as_such(lines_file, tmp_path):
    odd = _copy(lines_file, tmp_path)
    with h5py.File(odd, "r+") as f:
        f.attrs["format_version"] = "1"
    assert_one_line_error(run("info", odd), "format version '1' is not supported (this cnnbench reads version 2")


def _cell_width(png, columns):
    from PIL import Image

    with Image.open(png) as image:
        return image.width / columns


def test_show_cells_hold_their_labels_and_small_images_are_enlarged(tmp_path):
    from PIL import Image, ImageDraw

    patches = tmp_path / "p.h5"
    assert run("generate", "patches", "--out", patches, "--render-size", 32, "--output-size", 16,
               "--n-train", 4, "--n-val", 2, "--n-test", 2, "-q").exit_code == 0
    assert run("show", patches, "--out", tmp_path / "p.png", "-n", 4).exit_code == 0
    label = "concentration=000.0"  # the widest a label in 80..350 gets
    assert _cell_width(tmp_path / "p.png", 2) >= ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(label)
    boxes = tmp_path / "b.h5"
    assert run("generate", "boxes", "--out", boxes, "--size", 64, "--n-train", 4, "--n-val", 2,
               "--n-test", 2, "-q").exit_code == 0
    assert run("show", boxes, "--out", tmp_path / "b.png", "-n", 4).exit_code == 0
    assert _cell_width(tmp_path / "b.png", 2) >= 2 * 64  # drawn at 2x: the cross does not hide a square


def _all_commands(group, prefix=()):
    for name, command in group.commands.items():
        yield prefix + (name,), command
        if hasattr(command, "commands"):
            yield from _all_commands(command, prefix + (name,))


def test_every_command_has_help():
    for path, command in _all_commands(main):
        assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
        result = run(*path, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output, path


# The child draws block 0 at once, then stalls in every later block: a signal then lands
# midway, with the output's temporary file open and (with --workers 2) blocks in flight.
SLOW_CHILD = """
import multiprocessing, sys, time
multiprocessing.set_start_method("fork", force=True)  # workers inherit the stalling draw
import importlib
generate = importlib.import_module("cnnbench.data.generate")
real_draw = generate._draw_block
def stalling_draw(*job):
    if job[4] > 0:
        time.sleep(120)
    return real_draw(*job)
generate._draw_block = stalling_draw
from cnnbench.cli import main
main(sys.argv[1:])
"""


def _children(pid):
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def slow_generation(tmp_path):
    """Start the stalling generation with N workers; whatever the test does, kill what is left."""
    started = []

    def start(workers):
        out = tmp_path / "x.h5"
        child = subprocess.Popen([sys.executable, "-c", SLOW_CHILD, "generate", "lines", "--out", str(out),
                                  "--size", "4", "--n-train", str(6 * 1024), "--workers", str(workers), "-q"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started.append(child.pid)
        deadline = time.monotonic() + 60
        while not (any(p.name.startswith(".x.h5.tmp") for p in tmp_path.iterdir())
                   and len(_children(child.pid)) >= (workers if workers > 1 else 0)):
            assert child.poll() is None and time.monotonic() < deadline, child.communicate()
            time.sleep(0.05)
        time.sleep(0.3)  # block 0 written, the next ones stalled
        started.extend(_children(child.pid))
        return child, started[1:]

    yield start
    for pid in started:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists() or os.name != "posix",
                                reason="POSIX signals and /proc")


@needs_proc
@pytest.mark.parametrize("workers, signum", [(1, signal.SIGHUP), (2, signal.SIGTERM), (2, signal.SIGHUP)])
def test_a_signal_midway_removes_the_temporary_file_and_stops_the_workers(tmp_path, slow_generation,
                                                                         workers, signum):
    child, workers_seen = slow_generation(workers)
    assert len(workers_seen) == (workers if workers > 1 else 0)
    child.send_signal(signum)
    # Promptly: the blocks in flight (stalled for minutes) are not waited for.
    assert child.wait(timeout=20) == 128 + signum
    assert list(tmp_path.iterdir()) == []
    assert not any(_alive(pid) for pid in workers_seen)


@needs_proc
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_workers_die_with_a_killed_parent(slow_generation):
    child, workers_seen = slow_generation(2)
    child.kill()  # no unwinding at all
    child.wait(timeout=20)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers_seen):
        assert time.monotonic() < deadline, "workers outlived their parent"
        time.sleep(0.05)


LARGE_GENERATION = ["generate", "lines", "--size", "4", "--n-train", "3000000", "-q"]


@needs_proc
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_large_generation_at_once(tmp_path, signum):
    # Writing millions of tiny samples spends most of its time in h5py, where a signal raised
    # from its handler landed in a weakref callback and was discarded: the write went on.
    out = tmp_path / "t.h5"
    child = subprocess.Popen([sys.executable, "-c", "from cnnbench.cli import main; main()",
                              *LARGE_GENERATION, "--out", str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not any(p.name.startswith(".t.h5.tmp") and p.stat().st_size > 100_000
                      for p in tmp_path.iterdir()):
            assert child.poll() is None and time.monotonic() < deadline, child.communicate()
            time.sleep(0.05)
        child.send_signal(signum)
        sent = time.monotonic()
        code = child.wait(timeout=30)
        stopped_after = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    stderr = child.stderr.read().decode()
    assert code != 0 and "Exception ignored" not in stderr and "Traceback" not in stderr, stderr
    # A liveness bound, not a speed figure: unstopped, the write goes on for minutes.
    assert stopped_after < 3, stopped_after
    assert list(tmp_path.iterdir()) == []


@needs_proc
def test_a_file_size_limit_is_one_line_and_leaves_nothing(tmp_path):
    # ulimit -f: HDF5 reported the refused write from a deallocation callback, then crashed
    # (SIGSEGV, exit 139) closing the file, and left the temporary behind.
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    out = tmp_path / "big.h5"
    child = subprocess.run([sys.executable, "-c", "from cnnbench.cli import main; main()", "generate", "lines",
                            "--size", "8", "--n-train", "6000", "--noise", "20", "--out", str(out)],
                           preexec_fn=limit, capture_output=True, text=True, timeout=120)
    assert child.returncode == 1, (child.returncode, child.stderr)
    assert child.stderr.strip() == f"Error: cannot write '{out}': File too large", child.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    from cnnbench.data import h5file as h5format

    written = []
    real_write = h5format._GuardedFile.write

    def filling_write(self, data):
        written.append(len(data))
        if sum(written) > 30_000:
            self._file.write = lambda view: (_ for _ in ()).throw(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        return real_write(self, data)

    monkeypatch.setattr(h5format._GuardedFile, "write", filling_write)
    out = tmp_path / "big.h5"
    result = run("generate", "lines", "--size", "8", "--n-train", "6000", "--noise", "20", "--out", out)
    assert_one_line_error(result, f"cannot write '{out}': No space left on device")
    assert list(tmp_path.iterdir()) == []
