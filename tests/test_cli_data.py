"""The dataset commands through click's CliRunner: happy paths and every bad input."""

import json
import os

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cnnbench import generate as generate_module
from cnnbench.cli import main


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
        assert f.attrs["format_version"] == 1 and f.attrs["family"] == "lines"
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


def test_unwritable_folder(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    if os.access(folder, os.W_OK):  # root ignores permissions: make the check see what a user sees
        monkeypatch.setattr("cnnbench.h5format.os.access", lambda path, mode: False)
    try:
        assert_one_line_error(run("generate", "lines", "--out", folder / "x.h5"), "is not writable")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


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
