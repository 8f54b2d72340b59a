"""Server-rendered pages (no script): an index of boards and one page per board.

A board page is the static HTML export (:func:`cnnbench.board.render.render_html`: ranking, chart,
known optimum, reference rows) of the live board, ranked on the public part of the test set,
and, once the host has closed the board, of the final board ranked on the private part, first.
Both are ranked by :func:`cnnbench.board.ranking.rank`, from runs read in one snapshot, so a
page never shows a run without its submission row or the other way round.
"""

from __future__ import annotations

import html
from dataclasses import replace

from ..board.ranking import Board, rank
from ..board.records import PRIMARY_METRIC
from ..board.render import render_html
from .scoring import LoadedBoard
from .store import Store


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def ranked(store: Store, board: LoadedBoard, closed: bool) -> tuple[Board | None, Board | None]:
    """(live board on the public part, final board on the private part or None)."""
    with store.transaction(immediate=False):  # one snapshot of runs and submissions
        rows = store._rows(board.dataset.fingerprint)
        private = {s.run_id: s.private_metrics for s in store.submissions(board=board.name)}
    rows = [(i, r) for i, r in rows if i in private]  # runs recorded by this board's server only
    if not rows:
        return None, None
    optimum = board.dataset.optimum
    live = rank(rows, optimum, preset=f"{board.name}: live ranking (public part, {board.sizes['public']} test rows)")
    final = None
    if closed:
        final_rows = [(i, replace(r, metrics=private[i])) for i, r in rows]
        final = rank(final_rows, optimum,
                     preset=f"{board.name}: final ranking (private part, {board.sizes['private']} test rows)")
    return live, final


_STYLE = ("body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1a202c}"
          "table{border-collapse:collapse}th,td{padding:3px 10px;border-bottom:1px solid #e2e8f0;text-align:left}"
          "th{background:#f7fafc}p.meta{color:#4a5568;font-size:13px}")


def _shell(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>\n")


def index_page(store: Store, boards: dict[str, LoadedBoard]) -> str:
    closed = store.closed()
    rows = []
    for name, board in boards.items():
        ds = board.dataset
        metric, higher = PRIMARY_METRIC[ds.task]
        live, _ = ranked(store, board, False)
        models = [e for e in live.entries if e.kind == "model"] if live else []
        leader = models[0] if models else None
        best = f"{leader.score:.4f} ({_esc(leader.name)})" if leader else "-"
        state = f"closed {closed[name]}" if name in closed else "open"
        rows.append(f'<tr class="board"><td><a href="/boards/{_esc(name)}">{_esc(name)}</a></td>'
                    f"<td>{_esc(ds.family)}</td><td>{_esc(ds.task)}</td>"
                    f"<td>{_esc(metric)} ({'higher' if higher else 'lower'} is better)</td>"
                    f"<td>{len(models)}</td><td>{best}</td><td>{_esc(state)}</td>"
                    f'<td><a href="/api/boards/{_esc(name)}/public.h5">public copy</a></td></tr>')
    table = ("<table><thead><tr><th>board</th><th>family</th><th>task</th><th>metric</th><th>models</th>"
             "<th>leader (public part)</th><th>state</th><th>data</th></tr></thead><tbody>"
             + "".join(rows) + "</tbody></table>") if rows else "<p>No boards hosted.</p>"
    body = ("<h1>cnnbench boards</h1><p class=\"meta\">Train on a board's public copy, submit test "
            "predictions with your token (see the server's docs/serve.md). The live ranking uses the "
            "public part of the test set; the final ranking, shown when the host closes a board, "
            "uses the private part.</p>" + table)
    return _shell("cnnbench boards", body)


def board_page(store: Store, board: LoadedBoard) -> str:
    closed = store.closed()
    is_closed = board.name in closed
    live, final = ranked(store, board, is_closed)
    shown = [b for b in (final, live) if b is not None]
    state = (f"closed {closed[board.name]}: the final ranking on the private part comes first"
             if is_closed else "open: ranked live on the public part; the private part is scored at the close")
    nav = (f'<p class="meta"><a href="/">all boards</a> · <a href="/api/boards/{_esc(board.name)}/public.h5">'
           f"public copy</a> · board {_esc(state)}</p>")
    page = render_html(shown, title=f"cnnbench board {board.name}")
    return page.replace("</h1>", "</h1>" + nav, 1)


def not_found(name: str) -> str:
    return _shell("not found", f'<h1>No board named {_esc(name)}</h1><p><a href="/">all boards</a></p>')
