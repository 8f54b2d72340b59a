"""CLI-wide behaviour: one-line errors, and a killed command leaves nothing half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from cnnbench.cli import main


@pytest.mark.parametrize("args, problem", [
    (["generate", "lines", "--seed", "3"], "Missing option '--out'"),
    (["nosuch"], "No such command 'nosuch'"),
    (["info"], "Missing argument 'PATH'"),
    (["presets", "--bogus"], "No such option '--bogus'"),
])
def test_usage_errors_are_one_line(args, problem):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and problem in lines[0], result.output
    assert "--help" in lines[0]


def test_running_out_of_memory_is_one_line(monkeypatch):
    import cnnbench.cli.data as data

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(data, "write_dataset", exhausted)
    result = CliRunner().invoke(main, ["generate", "lines", "--out", "x.h5"])
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        "Error: out of memory: the requested data does not fit (fewer or smaller images, or a smaller batch)"]


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name != "posix", reason="POSIX signals")
def test_sigterm_midway_leaves_no_file(tmp_path):
    out = tmp_path / "p.h5"
    child = subprocess.Popen(
        [sys.executable, "-c", "from cnnbench.cli import main; main()", "generate", "patches",
         "--out", str(out), "--n-train", "5000", "--n-val", "10", "--n-test", "10", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".p.h5.tmp") for p in tmp_path.iterdir()):
        assert child.poll() is None and time.monotonic() < deadline, "generation never started writing"
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_info_on_a_public_copy_says_the_seed_is_withheld(tmp_path):
    full, public = tmp_path / "full.h5", tmp_path / "public.h5"
    runner = CliRunner()
    assert runner.invoke(main, ["generate", "lines", "--out", str(full), "--n-train", "8", "--n-val", "4",
                                "--n-test", "4", "--seed", str(2**40 + 7), "-q"]).exit_code == 0
    assert runner.invoke(main, ["export-public", str(full), "--out", str(public)]).exit_code == 0
    text = runner.invoke(main, ["info", str(public)]).output
    assert "seed         withheld (public copy)" in text and str(2**40 + 7) not in text


def test_bare_commands_show_their_help_and_exit_2():
    for args in ([], ["generate"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, args
        assert result.output.startswith("Usage: ") and "Error" not in result.output, args


def test_diagnose_refuses_a_seed_above_the_limit(lines3):
    result = CliRunner().invoke(main, ["diagnose", str(lines3), "--baseline", "lines-cnn-fixed",
                                       "--seed", str(2**64)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "--seed" in result.output


@pytest.mark.skipif(sys.platform != "linux", reason="forkserver is Linux's default from Python 3.14")
def test_workers_still_draw_when_the_default_start_method_is_forkserver(tmp_path):
    # The pool's workers check that their parent is alive; under forkserver their parent is
    # the fork server, and an earlier version restarted them forever.
    script = (
        "import multiprocessing, sys\n"
        "multiprocessing.set_start_method('forkserver')\n"
        "from cnnbench.data.generate import build_spec, write_dataset\n"
        "spec = build_spec('lines', {'size': 4, 'n_train': 3000, 'n_val': 8, 'n_test': 8})\n"
        "write_dataset(spec, sys.argv[1], workers=2)\n")
    out = tmp_path / "l.h5"
    done = subprocess.run([sys.executable, "-c", script, str(out)], timeout=120, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert out.exists()


def test_library_messages_name_parameters_and_the_cli_says_flags():
    from cnnbench.cli import flag_words

    assert flag_words("output 'a.h5' already exists (use force=True to overwrite)") == \
        "output 'a.h5' already exists (use --force to overwrite)"
    assert flag_words("model: x.py: no such file") == "--model: x.py: no such file"
    assert flag_words("out 'a.h5' is the input file") == "--out 'a.h5' is the input file"
    assert flag_words("a.h5: would not hide its labels (or pass allow_guessable_seed=True)") == \
        "a.h5: would not hide its labels (or pass --allow-guessable-seed)"
    # Family parameters keep their names, as the generator has always written them; an
    # unknown keyword=True and a word inside the message stay as they are.
    assert flag_words("n_train: 0 is below the minimum 1") == "n_train: 0 is below the minimum 1"
    assert flag_words("size: 1 means out of range; strict=True") == "size: 1 means out of range; strict=True"
    # A parameter with a placeholder value (capitals) becomes the flag and its metavar.
    assert flag_words("give exactly one of model=FILE.py:FACTORY or baseline=NAME") == \
        "give exactly one of --model FILE.py:FACTORY or --baseline NAME"
    assert flag_words("server needs a token: token=TOKEN or $CNNBENCH_TOKEN") == \
        "server needs a token: --token TOKEN or $CNNBENCH_TOKEN"
    assert flag_words("server refused (429): limit") == "server refused (429): limit"  # a word, not a flag
    assert flag_words("noise=0.5 is not a placeholder; thickness=T is no flag") == \
        "noise=0.5 is not a placeholder; thickness=T is no flag"


def test_diagnose_and_serve_refusals_name_parameters_in_python(tmp_path, monkeypatch):
    from cnnbench.bench.diagnose.setup import resolve_model
    from cnnbench.errors import ParamError
    from cnnbench.serve.boards import init_board_dir
    from cnnbench.serve.client import submit_remote

    with pytest.raises(ParamError, match=r"^give exactly one of model=FILE.py:FACTORY or baseline=NAME$"):
        resolve_model()
    monkeypatch.delenv("CNNBENCH_TOKEN", raising=False)
    with pytest.raises(ParamError, match=r"^server needs a token: token=TOKEN or \$CNNBENCH_TOKEN$"):
        submit_remote("http://localhost:1", "", "b", tmp_path / "p.npz", "me")
    with pytest.raises(ParamError, match=r"^public_fraction 1.5 must be"):
        init_board_dir(tmp_path / "boards", presets=["lines-3x3"], public_fraction=1.5)
    with pytest.raises(ParamError, match=r"^daily_limit must be a whole number"):
        init_board_dir(tmp_path / "boards", presets=["lines-3x3"], daily_limit=0)


def test_refusals_name_parameters_in_python_and_flags_on_the_command_line(lines3, tmp_path):
    import cnnbench
    from cnnbench.board.public import export_public
    from cnnbench.errors import FormatError, ParamError

    out = tmp_path / "public.h5"
    with pytest.raises(ParamError, match=r"^out '.*' is the input file$"):
        export_public(lines3, lines3, force=True)
    with pytest.raises(ParamError, match=r"\(or pass allow_guessable_seed=True\)"):
        export_public(lines3, out)
    with pytest.raises(FormatError, match="^model: .*missing.py: no such file"):
        cnnbench.run(lines3, str(tmp_path / "missing.py") + ":make")
    result = CliRunner().invoke(main, ["export-public", str(lines3), "--out", str(out)])
    assert result.exit_code == 1 and "(or pass --allow-guessable-seed)" in result.output
    assert not out.exists()
