"""The layers of docs/architecture.md, checked: imports run downward only.

cli, serve, api -> bench -> board -> data -> ground floor (errors, atomic). Every import
statement counts, including those inside functions: a lazy import is still a dependency.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cnnbench"
# What each room may import from cnnbench (besides itself and the ground floor).
ALLOWED = {
    "data": set(),
    "board": {"data"},
    "bench": {"data", "board", "baselines"},
}
GROUND = {"errors", "atomic", ""}  # "" is the package itself (__version__)


def _imports(path: Path) -> set[str]:
    """The cnnbench modules a file imports, as dotted names under cnnbench."""
    here = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = here[:-1] if here[-1] != "__init__" else here[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "cnnbench":
                target = node.module.split(".")
            else:
                continue
            names = [".".join(target[1:] + [a.name]) for a in node.names]
            out.update([".".join(target[1:])] + names)
        elif isinstance(node, ast.Import):
            out.update(".".join(a.name.split(".")[1:]) for a in node.names if a.name.startswith("cnnbench."))
    return out


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_rooms_import_downward_only(room):
    rooms = {"data", "board", "bench", "serve", "cli", "api", "torch", "baselines"}
    bad = []
    for path in sorted((PACKAGE / room).rglob("*.py")):
        for mod in _imports(path):
            top = mod.split(".")[0]
            if top in rooms and top != room and top not in ALLOWED[room]:
                bad.append(f"{path.relative_to(PACKAGE)} imports cnnbench.{mod}")
    assert not bad, "\n".join(bad)


def test_import_cnnbench_and_data_commands_do_not_load_torch():
    code = ("import sys, cnnbench, cnnbench.data.generate, cnnbench.data.describe, cnnbench.board.store, "
            "cnnbench.board.render, cnnbench.cli; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
