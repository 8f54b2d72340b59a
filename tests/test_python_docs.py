"""docs/python.md: every ```python block runs, in order, in one namespace (a doc that lies fails)."""

import contextlib
import io
import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "python.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_every_python_block_in_docs_python_md_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CNNBENCH_DB", str(tmp_path / "default.sqlite"))
    blocks = python_blocks()
    assert len(blocks) >= 8
    namespace: dict = {"__name__": "docs_python_md"}
    printed = io.StringIO()
    for number, block in enumerate(blocks, start=1):
        with contextlib.redirect_stdout(printed):
            exec(compile(block, f"docs/python.md block {number}", "exec"), namespace)
    out = printed.getvalue()
    # What the comments promise.
    assert "(500, 32, 32, 3) uint8 (500, 2)" in out
    assert "size: 1 is below the minimum 2" in out
    assert "streamed True" in out
    assert (tmp_path / "cache" / "cnnbench" / "lines-3x3.h5").is_file()
    assert (tmp_path / "board.sqlite").is_file() and not (tmp_path / "default.sqlite").exists()
    assert "train mean" in out


def test_the_readme_python_block_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CNNBENCH_DB", str(tmp_path / "board.sqlite"))
    readme = (DOC.parent.parent / "README.md").read_text()
    [block] = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    assert (tmp_path / "boxes.h5").is_file() and (tmp_path / "board.sqlite").is_file()
