"""Leaderboard boards as text: a terminal table, Markdown, CSV, JSON (and HTML, see :mod:`.html`).

Reference predictors are marked ``(ref)`` and the dataset's known optimum ``*``, with the
gap to the optimum per row, so "beats the mean" and "distance to the optimum" show at a glance.
"""

from __future__ import annotations

import csv
import io
import json
import os

from .leaderboard import COLLAPSE_R2, Board, Entry, Leaderboard

FORMATS = ("table", "markdown", "csv", "json")


def _num(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if abs(value) < 1e5 else f"{value:.4g}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{round(100 * value)}%"


def _marker(entry: Entry) -> str:
    if entry.kind == "optimum":
        return "*"
    return "ref" if entry.kind == "reference" else str(entry.rank)


def _share_header(board: Board) -> str:
    return "solved" if board.task == "classification" else f"collapsed"


def header(board: Board) -> str:
    direction = "higher" if board.higher_is_better else "lower"
    return (f"{board.title} ({board.family}, {board.task}): {board.metric}, {direction} is better; "
            f"fingerprint {board.fingerprint[:12]}, protocol v{board.protocol_version}")


def _cells(board: Board, entry: Entry) -> list[str]:
    name = entry.name
    if entry.kind == "optimum":
        name = f"{entry.name} ({'exact' if entry.exact else 'estimated'})"
    elif entry.kind == "reference":
        name = f"{entry.name} (reference)"
    spread = "-" if entry.std is None else f"±{_num(entry.std)}"
    span = "-" if entry.min is None or entry.n_seeds < 2 else f"{_num(entry.min)}..{_num(entry.max)}"
    share = entry.solved_share if board.task == "classification" else entry.collapsed_share
    return [_marker(entry), name, entry.source, _num(entry.score), spread, span,
            str(entry.n_seeds) if entry.kind != "optimum" else "-", _share(share),
            _num(entry.gap_to_optimum), "-" if entry.params is None else f"{entry.params:,}"]


def _columns(board: Board) -> list[str]:
    return ["#", "name", "source", board.metric, "std", "min..max", "seeds", _share_header(board),
            "gap", "params"]


def _legend(board: Board) -> str:
    if board.task == "classification":
        target = "the optimum" if board.optimum else "the best accuracy recorded"
        share = f"solved = share of seeds reaching {target} ({_num(board.solved_target)})"
    else:
        share = f"collapsed = share of seeds with test R² <= {COLLAPSE_R2} (predicting about the mean)"
    gap = "gap = distance to the known optimum (*)" if board.optimum else "optimum unknown for this dataset"
    return f"{share}; {gap}; ref = reference predictor, not ranked"


def format_table(board: Board) -> str:
    cols = _columns(board)
    rows = [_cells(board, e) for e in board.entries]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    right = {0, 3, 4, 6, 7, 8, 9}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [header(board), line(cols), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    out.append(_legend(board))
    return "\n".join(out)


def format_markdown(board: Board) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    out = [f"### {esc(board.title)}", "", esc(header(board)), "",
           "| " + " | ".join(_columns(board)) + " |",
           "|" + "|".join("---:" if i in (0, 3, 4, 6, 7, 8, 9) else "---" for i in range(10)) + "|"]
    for entry in board.entries:
        cells = [esc(c) for c in _cells(board, entry)]
        if entry.kind != "model":
            cells[1] = f"*{cells[1]}*"
        out.append("| " + " | ".join(cells) + " |")
    out += ["", esc(_legend(board))]
    return "\n".join(out)


CSV_FIELDS = ("fingerprint", "protocol_version", "dataset", "family", "task", "metric", "kind", "rank",
              "name", "source", "score", "std", "min", "max", "n_seeds", "solved_share",
              "collapsed_share", "gap_to_optimum", "params")


def format_csv(boards: list[Board]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for board in boards:
        for row in board.rows():
            writer.writerow({k: ("" if row[k] is None else row[k]) for k in CSV_FIELDS})
    return buffer.getvalue()


def format_json(boards: list[Board]) -> str:
    return json.dumps([row for board in boards for row in board.rows()], indent=2)


def render(boards: list[Board], fmt: str = "table") -> str:
    """Boards in one of :data:`FORMATS`; an empty list gives a one-line note (or ``[]``)."""
    if fmt == "json":
        return format_json(boards)
    if fmt == "csv":
        return format_csv(boards)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    if not boards:
        return "no runs recorded yet"
    one = format_table if fmt == "table" else format_markdown
    return "\n\n".join(one(b) for b in boards)


def render_fingerprints(db: str | os.PathLike | Leaderboard, fingerprints: list[str],
                        fmt: str = "table") -> str:
    """The boards of some dataset fingerprints as text: what ``bench``/``suite`` print at the end."""
    if isinstance(db, Leaderboard):
        return render(db.boards(fingerprints), fmt)
    with Leaderboard(db) as board:
        return render(board.boards(fingerprints), fmt)
