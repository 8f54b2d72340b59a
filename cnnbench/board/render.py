"""Leaderboard boards as text: a terminal table, Markdown, CSV, JSON (and HTML, see :mod:`.html`).

Reference predictors are marked ``(ref)`` and the dataset's known optimum ``*``, with the
signed gap to the optimum per row, so "beats the mean" and "distance to the optimum" show at a
glance. A row better than the optimum is marked ``!`` with a footnote: it is impossible when the
optimum is exact, unless the test labels leaked.
"""

from __future__ import annotations

import csv
import io
import json
import os

from .ranking import Board, Entry
from .records import COLLAPSE_RULE, hidden_chars
from .store import Leaderboard

FORMATS = ("table", "markdown", "csv", "json")


def printable(text) -> str:
    """``text`` with every control or invisible character written as an escape (``\\x1b``),
    so a stored name can never drive a terminal (ESC sequences) or hide text (bidi overrides).
    Names are refused with such characters at recording; older rows may still hold them."""
    text = str(text)
    bad = set(hidden_chars(text))
    return "".join(ascii(c)[1:-1] if c in bad else c for c in text) if bad else text


def _num(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if abs(value) < 1e5 else f"{value:.4g}"


def _share(value: float | None) -> str:
    if value is None:
        return "-"
    # 1 seed in 300 is not "0%", and 299 in 300 is not "100%".
    if 0 < value < 0.005:
        return "<1%"
    if 0.995 <= value < 1:
        return ">99%"
    return f"{round(100 * value)}%"


def _marker(entry: Entry) -> str:
    if entry.kind == "optimum":
        return "*"
    return "ref" if entry.kind == "reference" else str(entry.rank)


def _share_header(board: Board) -> str:
    return "solved" if board.task == "classification" else "collapsed"


def header(board: Board) -> str:
    direction = "higher" if board.higher_is_better else "lower"
    return printable(f"{board.title} ({board.family}, {board.task}): {board.metric}, {direction} is better; "
                     f"fingerprint {board.fingerprint[:12]}, protocol v{board.protocol_version}")


BEYOND_MARK = "!"


def _cells(board: Board, entry: Entry) -> list[str]:
    name = entry.name
    if entry.kind == "optimum":
        name = f"{entry.name} ({'exact' if entry.exact else 'estimated'})"
    elif entry.kind == "reference":
        name = f"{entry.name} (reference)"
    if entry.beyond_optimum:
        name = f"{name} {BEYOND_MARK}"
    spread = "-" if entry.std is None else f"±{_num(entry.std)}"
    span = "-" if entry.min is None or entry.n_seeds < 2 else f"{_num(entry.min)}..{_num(entry.max)}"
    share = entry.solved_share if board.task == "classification" else entry.collapsed_share
    return [_marker(entry), printable(name), printable(entry.source), _num(entry.score), spread, span,
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
        share = f"collapsed = share of seeds predicting about the mean ({COLLAPSE_RULE})"
    gap = ("gap = how far a row falls short of the known optimum (*), negative when better"
           if board.optimum else "optimum unknown for this dataset")
    return f"{share}; {gap}; ref = reference predictor, not ranked" + _beyond_note(board)


def _beyond_note(board: Board) -> str:
    """The footnote for rows better than the known optimum, when there are any."""
    if not board.beyond_optimum_rows:
        return ""
    if board.optimum.exact:
        why = "impossible for an exact optimum: the test labels leaked, or a bug"
    else:
        why = "the optimum is an estimate, and these rows show it is not a bound"
    return f"\n{BEYOND_MARK} = better than the known optimum: {why}"


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


# Markdown's own punctuation, escaped with a backslash so a name cannot become a link,
# emphasis or a table cell of its own.
_MARKDOWN_PUNCTUATION = "\\`*_[]|#"


def markdown_text(text) -> str:
    """Text for a Markdown document: HTML escaped (a name holding ``<script>`` or ``<img
    onerror>`` stays text), Markdown punctuation escaped, control characters written as escapes."""
    import html

    text = html.escape(printable(text), quote=False)
    return "".join("\\" + c if c in _MARKDOWN_PUNCTUATION else c for c in text)


def format_markdown(board: Board) -> str:
    esc = markdown_text

    out = [f"### {esc(board.title)}", "", esc(header(board)), "",
           "| " + " | ".join(_columns(board)) + " |",
           "|" + "|".join("---:" if i in (0, 3, 4, 6, 7, 8, 9) else "---" for i in range(10)) + "|"]
    for entry in board.entries:
        cells = [esc(c) for c in _cells(board, entry)]
        if entry.kind != "model":
            cells[1] = f"*{cells[1]}*"
        out.append("| " + " | ".join(cells) + " |")
    out += ["", esc(_legend(board)).replace("\n", "  \n")]
    return "\n".join(out)


CSV_FIELDS = ("fingerprint", "protocol_version", "dataset", "family", "task", "metric", "kind", "rank",
              "name", "source", "score", "std", "min", "max", "n_seeds", "solved_share",
              "collapsed_share", "gap_to_optimum", "beyond_optimum", "params",
              "torch_threads", "torch_version", "device")

# A spreadsheet reads a cell starting with one of these as a formula (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A CSV cell: numbers as they are; text with control characters escaped and, when it
    would start a formula, prefixed with ``'`` so a spreadsheet shows it as text."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return value
    text = str(value)
    if text.startswith(FORMULA_START):
        text = "'" + text
    return printable(text)


def format_csv(boards: list[Board]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for board in boards:
        for row in board.rows():
            writer.writerow({k: csv_cell(row[k]) for k in CSV_FIELDS})
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


# -- HTML -----------------------------------------------------------------------------------

MODEL_COLOUR, REFERENCE_COLOUR, OPTIMUM_COLOUR = "#2b6cb0", "#a0aec0", "#2f855a"

_CSS = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1a202c; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 2px; }
p.meta { color: #4a5568; margin: 0 0 10px; font-size: 13px; }
table { border-collapse: collapse; margin: 8px 0 12px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e2e8f0; text-align: right; }
th { background: #f7fafc; }
td.name, th.name, td.source, th.source { text-align: left; }
tr.reference td { color: #4a5568; font-style: italic; }
tr.optimum td { color: #22543d; font-weight: 600; background: #f0fff4; }
tr.beyond td { background: #fff5f5; }
p.legend { color: #4a5568; font-size: 12px; }
svg text { font: 12px system-ui, sans-serif; }
"""


def _esc(value) -> str:
    import html

    return html.escape(str(value), quote=True)


# A bar longer than this many times the board's reference level (its worst reference row, else
# its median model) is cut at the axis end, so one absurd score does not flatten every other bar.
CLIP_FACTOR = 3.0


def axis_end(board: Board) -> tuple[float, bool]:
    """The chart's axis end, and whether some bars are longer and drawn cut."""
    values = [v for e in board.entries for v in (e.score, e.max) if v is not None]
    if board.metric == "accuracy" and max(values) <= 1.0:
        return 1.0, False
    references = [e.score for e in board.entries if e.kind == "reference"]
    models = sorted(e.score for e in board.entries if e.kind == "model")
    level = max(references) if references else models[(len(models) - 1) // 2] if models else max(values)
    limit = CLIP_FACTOR * level
    shown = [v for v in values if v <= limit]
    clipped = len(shown) < len(values) and limit > 0
    top = max(shown) if clipped else max(values)
    return (top * 1.05 or 1.0), clipped


def _chart(board: Board, width: int = 720) -> str:
    """An inline SVG bar chart: models blue, reference rows grey, the optimum green.

    Bars past :func:`axis_end` are drawn to the axis end, marked ``»``, with their value
    written beside them, and a note under the chart says so.
    """
    entries = board.entries
    label_w, value_w, row_h, top = 220, 70, 22, 8
    bar_w = width - label_w - value_w
    hi, clipped = axis_end(board)

    def x(v: float) -> float:
        return label_w + bar_w * max(0.0, min(v, hi)) / hi

    height = top * 2 + row_h * len(entries) + 18 + (18 if clipped else 0)
    parts = [f'<svg role="img" aria-label="{_esc(board.metric)} by model" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}">']
    for i, e in enumerate(entries):
        y = top + i * row_h
        colour = {"model": MODEL_COLOUR, "reference": REFERENCE_COLOUR}.get(e.kind, OPTIMUM_COLOUR)
        label = e.name if len(e.name) <= 28 else e.name[:27] + "…"
        label += f" {BEYOND_MARK}" if e.beyond_optimum else ""
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{_esc(label)}</text>')
        parts.append(f'<rect class="bar {e.kind}" x="{label_w}" y="{y + 3}" width="{x(e.score) - label_w:.1f}" '
                     f'height="{row_h - 6}" fill="{colour}"><title>{_esc(e.name)}: {_num(e.score)}</title></rect>')
        if e.n_seeds > 1 and e.min is not None and e.max != e.min:
            cy = y + row_h / 2
            parts.append(f'<line x1="{x(e.min):.1f}" x2="{x(e.max):.1f}" y1="{cy}" y2="{cy}" '
                         f'stroke="#1a202c" stroke-width="1.5"/>')
        cut = "» " if e.score > hi else ""
        parts.append(f'<text x="{x(e.score) + 4:.1f}" y="{y + 15}">{cut}{_num(e.score)}</text>')
    axis_y = top + row_h * len(entries) + 2
    parts.append(f'<line x1="{label_w}" x2="{label_w + bar_w}" y1="{axis_y}" y2="{axis_y}" stroke="#718096"/>')
    for frac in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{label_w + bar_w * frac:.1f}" y="{axis_y + 14}" text-anchor="middle" '
                     f'fill="#4a5568">{_num(hi * frac, 2)}</text>')
    if board.optimum:
        ox = x(board.optimum.value)
        parts.append(f'<line x1="{ox:.1f}" x2="{ox:.1f}" y1="{top}" y2="{axis_y}" stroke="{OPTIMUM_COLOUR}" '
                     f'stroke-dasharray="4 3" stroke-width="1.5"/>')
    if clipped:
        parts.append(f'<text class="clipped" x="{label_w}" y="{axis_y + 32}" fill="#4a5568">axis cut at '
                     f'{_num(hi, 2)}: bars marked » are longer (value beside them)</text>')
    parts.append("</svg>")
    return "".join(parts)


def _html_table(board: Board) -> str:
    cols = _columns(board)
    head = "".join(f'<th class="{"name" if c == "name" else "source" if c == "source" else ""}">{_esc(c)}</th>'
                   for c in cols)
    body = []
    for entry in board.entries:
        cells = _cells(board, entry)
        tds = "".join(f'<td class="{"name" if i == 1 else "source" if i == 2 else ""}">{_esc(c)}</td>'
                      for i, c in enumerate(cells))
        beyond = " beyond" if entry.beyond_optimum else ""
        body.append(f'<tr class="{entry.kind}{beyond}">{tds}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(boards: list[Board], title: str = "cnnbench leaderboard") -> str:
    """A self-contained static page: inline CSS and SVG, no script, no network fetch."""
    sections = []
    for board in boards:
        legend = _esc(_legend(board)).replace("\n", "<br>")
        sections.append(
            f'<section id="{_esc(board.fingerprint[:12])}-v{board.protocol_version}">'
            f"<h2>{_esc(board.title)}</h2><p class=\"meta\">{_esc(header(board))}</p>"
            f"{_chart(board)}{_html_table(board)}<p class=\"legend\">{legend}</p></section>")
    if not sections:
        sections.append("<p>No runs recorded yet.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_esc(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{_esc(title)}</h1>"
            "<p class=\"meta\">Ranked per dataset fingerprint and protocol version. Blue: models "
            "(mean over training seeds, line: min..max); grey: reference predictors; green: the "
            "dataset's known optimum.</p>" + "".join(sections) + "</body></html>\n")
