"""Every command that writes a file refuses an existing one without --force (issue 11, item 6).

A refused command changes nothing: the file keeps its bytes, no database is made, no run is
trained. With --force the file is replaced.
"""

from __future__ import annotations

import h5py
import pytest
from click.testing import CliRunner

from cnnbench.cli import main
from cnnbench.data.h5file import open_dataset

KEEP = b"keep me: not cnnbench's to overwrite"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _commands(lines3, tmp_path):
    """(command, the existing file it would write, does a --force run finish in a moment)."""
    db = tmp_path / "board.sqlite"
    plots = tmp_path / "plots"
    plots.mkdir()
    return {
        "show --out": (["show", lines3, "--out", tmp_path / "grid.png"], tmp_path / "grid.png", True),
        "suite --report onto the database": (
            ["suite", "--preset", "lines-3x3", "-b", "majority", "--data-dir", tmp_path / "data", "--db", db,
             "--report", db, "-q"], db, False),
        "suite --report": (["suite", "--preset", "lines-3x3", "-b", "majority", "--data-dir", tmp_path / "data",
                            "--db", db, "--report", tmp_path / "results.md", "-q"], tmp_path / "results.md", True),
        "suite --data-dir": (["suite", "--preset", "lines-3x3", "-b", "majority", "--data-dir", tmp_path,
                              "--db", db, "-q"], tmp_path / "lines-3x3.h5", True),
        "bench --plot": (["bench", lines3, "-b", "lines-cnn-fixed", "--epochs", "1", "--plot", plots, "--db", db, "-q"],
                         plots / "lines-3x3_lines-cnn-fixed_seed0_curves.png", True),
        "leaderboard --html": (["leaderboard", "--db", db, "--html", tmp_path / "board.html"],
                               tmp_path / "board.html", True),
        "generate --out": (["generate", "lines", "--out", tmp_path / "d.h5", "-q"], tmp_path / "d.h5", True),
        "export-public --out": (["export-public", lines3, "--out", tmp_path / "p.h5", "--allow-guessable-seed"],
                                tmp_path / "p.h5", True),
    }


@pytest.mark.parametrize("command", ["show --out", "suite --report onto the database", "suite --report",
                                     "suite --data-dir", "bench --plot", "leaderboard --html",
                                     "generate --out", "export-public --out"])
def test_an_existing_output_is_refused_without_force(command, lines3, tmp_path):
    args, existing, quick = _commands(lines3, tmp_path)[command]
    existing.write_bytes(KEEP)
    result = invoke(*args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert str(existing) in lines[0] and "--force" in lines[0], lines[0]
    assert existing.read_bytes() == KEEP
    others = {p for p in tmp_path.rglob("*") if p.is_file()} - {existing}
    assert others == set(), others  # no database, no plot, no dataset, no temporary
    if quick:
        forced = invoke(*args, "--force")
        assert forced.exit_code == 0, forced.output
        assert existing.read_bytes() != KEEP


def test_suite_regenerates_its_own_stale_preset_file_without_force(tmp_path):
    # A preset file written by an older cnnbench (another format version) is the suite's own
    # cache: made again, no --force needed. A file of the preset with a secret seed is not.
    data = tmp_path / "data"
    data.mkdir()
    args = ["suite", "--preset", "lines-3x3", "-b", "majority", "--data-dir", data, "--db", tmp_path / "b.sqlite", "-q"]
    assert invoke(*args).exit_code == 0
    with h5py.File(data / "lines-3x3.h5", "r+") as f:
        f.attrs["format_version"] = 1
    assert invoke(*args).exit_code == 0
    assert open_dataset(data / "lines-3x3.h5").format_version == 2
    secret = invoke("generate", "--preset", "lines-3x3", "--seed", 2 ** 40, "--out", data / "lines-3x3.h5",
                    "--force", "-q")
    assert secret.exit_code == 0, secret.output
    before = (data / "lines-3x3.h5").read_bytes()
    refused = invoke(*args)
    assert refused.exit_code == 1 and "holds another dataset than preset lines-3x3" in refused.output
    assert (data / "lines-3x3.h5").read_bytes() == before
