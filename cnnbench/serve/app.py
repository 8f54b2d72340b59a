"""The HTTP service: a Starlette app over a board folder (run by uvicorn, see cnnbench/cli/serve.py).

Every refusal is a JSON object ``{"error": MESSAGE, "status": CODE}`` and writes nothing:
401 no or bad token, 403 another participant's submission, 404 unknown board or submission,
409 a closed board, 413 an upload over the limit (refused from its Content-Length before any
of the body is read, and cut off while streaming when it has none or lies), 400 malformed
predictions or fields, 429 over the daily limit. The order of checks is cheapest first, so a
refused request costs little: token, board, closed, daily limit, declared size, then reading
the body (within the limit) and scoring.

Library work (SQLite, numpy, h5py) is blocking: it runs in Starlette's thread pool, each
thread with its own connection to the store.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .. import __version__
from ..board.records import MAX_NAME, PRIMARY_METRIC, check_name
from ..board.store import LeaderboardError
from ..errors import CnnbenchError
from . import pages
from .boards import BoardDir
from .scoring import LoadedBoard, load_upload, score_parts
from .store import QuotaError, Store, check_text, now_utc

MAX_DESCRIPTION = 1000
DIR_ENV = "CNNBENCH_SERVE_DIR"


class Refusal(HTTPException):
    """A refused request: its status and one-line message go back as JSON."""


@dataclass
class State:
    board_dir: BoardDir
    boards: dict[str, LoadedBoard]
    max_upload: int
    local: threading.local

    def store(self) -> Store:
        """This thread's connection (sqlite3 connections stay in the thread that opened them)."""
        store = getattr(self.local, "store", None)
        if store is None:
            store = self.local.store = self.board_dir.store()
        return store


def _json(data, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def _state(request: Request) -> State:
    return request.app.state.serve


def _board(request: Request) -> LoadedBoard:
    board = _state(request).boards.get(request.path_params["board"])
    if board is None:
        raise Refusal(404, f"no board named {request.path_params['board']!r}")
    return board


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _participant(request: Request) -> str:
    token = _bearer(request)
    if token is None:
        raise Refusal(401, "no token: send 'Authorization: Bearer TOKEN' (the host issues tokens)")
    who = await run_in_threadpool(lambda: _state(request).store().participant(token))
    if who is None:
        raise Refusal(401, "unknown or revoked token")
    return who


def _board_summary(state: State, board: LoadedBoard, closed: dict) -> dict:
    ds = board.dataset
    metric, higher = PRIMARY_METRIC[ds.task]
    return {"name": board.name, "family": ds.family, "task": ds.task, "metric": metric,
            "higher_is_better": higher, "fingerprint": ds.fingerprint, "optimum": ds.optimum,
            "test_rows": board.sizes, "daily_limit": board.daily_limit,
            "closed": board.name in closed, "closed_at": closed.get(board.name),
            "public_copy": f"/api/boards/{board.name}/public.h5", "page": f"/boards/{board.name}"}


def _submission_json(sub, closed: dict) -> dict:
    out = {"id": sub.id, "board": sub.board, "participant": sub.participant, "model": sub.model,
           "created_at": sub.created_at, "public": sub.public_metrics}
    if sub.board in closed:  # the private part's scores only once the host has closed the board
        out["private"] = sub.private_metrics
    return out


# -- API --------------------------------------------------------------------------------------

async def api_index(request: Request) -> Response:
    return _json({"service": "cnnbench serve", "version": __version__, "boards": "/api/boards",
                  "submissions": "/api/submissions", "docs": "docs/serve.md"})


async def api_boards(request: Request) -> Response:
    state = _state(request)
    closed = await run_in_threadpool(lambda: state.store().closed())
    return _json([_board_summary(state, b, closed) for b in state.boards.values()])


async def api_board(request: Request) -> Response:
    state, board = _state(request), _board(request)

    def read():
        store = state.store()
        closed = store.closed()
        live, final = pages.ranked(store, board, board.name in closed)
        return closed, live, final

    closed, live, final = await run_in_threadpool(read)
    out = _board_summary(state, board, closed)
    out["public_ranking"] = live.rows() if live else []
    if board.name in closed:
        out["private_ranking"] = final.rows() if final else []
    return _json(out)


async def api_public_copy(request: Request) -> Response:
    board = _board(request)
    return FileResponse(board.public_path, media_type="application/x-hdf5",
                        filename=f"{board.name}-public.h5")


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, at most ``limit`` bytes: refused from Content-Length before reading, and cut off
    as soon as a body without one (chunked) or with a false one passes the limit."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Refusal(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise Refusal(413, f"upload of {int(declared)} bytes is over this server's limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refusal(413, f"upload is over this server's limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _form(request: Request, body: bytes):
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise Refusal(400, "send the predictions as multipart/form-data: file=@PREDICTIONS, name=MODEL "
                           "(curl -F), optional description=TEXT")
    sent = False

    async def replay():  # the body, already read within the limit, handed to the form parser
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        return await Request(request.scope, replay).form(max_files=1, max_fields=8)
    except HTTPException as exc:
        raise Refusal(400, f"malformed form: {exc.detail}") from None
    except Exception as exc:  # the multipart parser's own errors
        raise Refusal(400, f"malformed form: {exc}") from None


def _field(form, key: str) -> str:
    value = form.get(key, "")
    if not isinstance(value, str):
        raise Refusal(400, f"field {key!r} must be text, not a file")
    return value


async def api_submit(request: Request) -> Response:
    state = _state(request)
    participant = await _participant(request)
    board = _board(request)
    store_closed = await run_in_threadpool(lambda: state.store().closed())
    if board.name in store_closed:
        raise Refusal(409, f"board {board.name} is closed (since {store_closed[board.name]}); its final "
                           f"ranking is on its page")
    today = now_utc().date().isoformat()
    if board.daily_limit is not None:
        used = await run_in_threadpool(lambda: state.store().used_today(participant, board.name, today))
        if used >= board.daily_limit:
            raise Refusal(429, f"daily limit reached: {used} of {board.daily_limit} submissions to {board.name} "
                               f"today (UTC); the count starts again at midnight UTC")
    body = await _read_body(request, state.max_upload)
    form = await _form(request, body)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise Refusal(400, "no predictions: send them as the form's file field (curl -F file=@preds.npy)")
    try:
        model = check_text(_field(form, "name"), "name", MAX_NAME - len(participant) - 2)
        model = check_name(model)
        description = check_text(_field(form, "description"), "description", MAX_DESCRIPTION, newlines=True)
        params_text = _field(form, "params").strip()
        params = None
        if params_text:
            if not params_text.isdigit() or len(params_text) > 15:
                raise Refusal(400, "params must be a whole number of parameters (at most 15 digits)")
            params = int(params_text)
    except CnnbenchError as exc:
        raise Refusal(400, str(exc)) from None
    data = await upload.read()
    filename = upload.filename or ""

    def work():
        from .boards import submission_for

        predictions = load_upload(data, filename)
        public, private = score_parts(board, predictions)
        record = submission_for(board, predictions, participant, model, description, params, public)
        store = state.store()
        sub = store.record(board.name, participant, record, board.dataset, private, limit=board.daily_limit)
        live, _ = pages.ranked(store, board, False)
        entry = next((e for e in live.entries if sub.run_id in e.run_ids), None) if live else None
        ranked = sum(e.rank is not None for e in live.entries) if live else 0
        used = store.used_today(participant, board.name, sub.day)
        return sub, entry, ranked, used

    try:
        sub, entry, ranked, used = await run_in_threadpool(work)
    except QuotaError as exc:
        raise Refusal(429, str(exc)) from None
    except LeaderboardError:
        raise
    except CnnbenchError as exc:
        raise Refusal(400, str(exc)) from None
    out = _submission_json(sub, {})
    out.update({"metric": live_metric(board), "score": sub.public_metrics[live_metric(board)],
                "rank": entry.rank if entry else None, "of": ranked,
                "remaining_today": None if board.daily_limit is None else max(0, board.daily_limit - used)})
    return _json(out, 201)


def live_metric(board: LoadedBoard) -> str:
    return PRIMARY_METRIC[board.dataset.task][0]


async def api_my_submissions(request: Request) -> Response:
    state = _state(request)
    participant = await _participant(request)
    board = request.query_params.get("board")
    if board is not None and board not in state.boards:
        raise Refusal(404, f"no board named {board!r}")

    def read():
        store = state.store()
        return store.submissions(participant, board), store.closed()

    subs, closed = await run_in_threadpool(read)
    return _json({"participant": participant, "submissions": [_submission_json(s, closed) for s in subs]})


async def api_submission(request: Request) -> Response:
    state = _state(request)
    participant = await _participant(request)
    raw = request.path_params["id"]
    sub = await run_in_threadpool(lambda: state.store().submission(raw))
    if sub is None:
        raise Refusal(404, f"no submission {raw}")
    if sub.participant != participant:
        raise Refusal(403, f"submission {raw} is not yours")
    closed = await run_in_threadpool(lambda: state.store().closed())
    return _json(_submission_json(sub, closed))


# -- pages ------------------------------------------------------------------------------------

async def page_index(request: Request) -> Response:
    state = _state(request)
    html = await run_in_threadpool(lambda: pages.index_page(state.store(), state.boards))
    return HTMLResponse(html)


async def page_board(request: Request) -> Response:
    state = _state(request)
    name = request.path_params["board"]
    board = state.boards.get(name)
    if board is None:
        return HTMLResponse(pages.not_found(name), status_code=404)
    html = await run_in_threadpool(lambda: pages.board_page(state.store(), board))
    return HTMLResponse(html)


# -- errors -----------------------------------------------------------------------------------

async def _http_error(request: Request, exc: HTTPException) -> Response:
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    # 413 before the body was read: close the connection rather than read a body we refused.
    if exc.status_code == 413:
        headers = {"Connection": "close"}
    return JSONResponse({"error": detail, "status": exc.status_code}, status_code=exc.status_code,
                        headers=headers)


async def _library_error(request: Request, exc: CnnbenchError) -> Response:
    # The store busy past its timeout, or a damaged file: the server's problem, not the request's.
    return JSONResponse({"error": str(exc), "status": 503}, status_code=503)


def create_app(board_dir: str | os.PathLike) -> Starlette:
    """The app for a board folder: boards loaded and their full files checked once, here."""
    folder = BoardDir(board_dir)
    config = folder.config()
    store = folder.store()
    try:
        store.check_schema()
    finally:
        store.close()
    boards = folder.load_boards()
    routes = [
        Route("/", page_index),
        Route("/boards/{board}", page_board),
        Route("/api", api_index),
        Route("/api/boards", api_boards),
        Route("/api/boards/{board}", api_board),
        Route("/api/boards/{board}/public.h5", api_public_copy),
        Route("/api/boards/{board}/submissions", api_submit, methods=["POST"]),
        Route("/api/submissions", api_my_submissions),
        Route("/api/submissions/{id:int}", api_submission),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error,
                                                       CnnbenchError: _library_error})
    app.state.serve = State(folder, boards, config.max_upload_bytes, threading.local())
    return app


def app_from_env() -> Starlette:
    """The app of ``$CNNBENCH_SERVE_DIR``: uvicorn's factory for several worker processes."""
    return create_app(os.environ[DIR_ENV])
