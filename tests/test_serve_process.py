"""`cnnbench serve` as a real server process: concurrent submissions, an oversized upload refused
before its body is sent, `cnnbench submit --server`, kill -9 and restart, and a real browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import raw_sql

from cnnbench.cli import main
from cnnbench.data.h5file import open_dataset
from cnnbench.serve.boards import BoardDir, init_board_dir
from cnnbench.serve.client import ServerError, submit_remote

SECRET_SEED = 5_904_331_870_126_552_113
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    full = root / "lines.h5"
    result = CliRunner().invoke(main, ["generate", "lines", "--out", str(full), "--size", "4", "--n-train", "60",
                                       "--n-val", "20", "--n-test", "40", "--seed", str(SECRET_SEED), "-q"])
    assert result.exit_code == 0, result.output
    init_board_dir(root / "boards", datasets=[full], names=["tiny"], daily_limit=4, max_upload_bytes=64 * 1024)
    return root / "boards"


@pytest.fixture
def folder(template, tmp_path):
    shutil.copytree(template, tmp_path / "boards")
    return BoardDir(tmp_path / "boards")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, folder: BoardDir, port: int | None = None):
        self.folder, self.port = folder, port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(folder.path.parent / f"server-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from cnnbench.cli import main; main()", "serve", str(folder.path),
             "--port", str(self.port), "-q"], stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "OMP_NUM_THREADS": "1"})
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "/api", timeout=2).read()
                return
            except OSError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log = (folder.path.parent / f"server-{self.port}.log").read_text()[-2000:]
                    raise RuntimeError(log) from exc
                time.sleep(0.1)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture
def predictions(folder, tmp_path):
    n = open_dataset(folder.board_path("tiny") / "full.h5").split_size("test")
    path = tmp_path / "p.npy"
    np.save(path, np.zeros(n, dtype=np.int64))
    return path


def _tokens(folder, n):
    with folder.store() as store:
        return {f"p{i}": store.add_token(f"p{i}") for i in range(n)}


COUNTS = [  # (orphan submission runs, submission rows without their run, participants' submissions)
    "SELECT count(*) FROM runs r WHERE r.source = 'submission' AND NOT EXISTS"
    " (SELECT 1 FROM serve_submissions s WHERE s.run_id = r.id)",
    "SELECT count(*) FROM serve_submissions s WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = s.run_id)",
    "SELECT count(*) FROM serve_submissions WHERE participant IS NOT NULL"]


def _integrity(folder) -> tuple[str, int, int, int]:
    if isinstance(folder.database, str):  # PostgreSQL keeps its own pages consistent: the rows are checked
        return ("ok", *(raw_sql(folder.database, (sql, ()))[0][0] for sql in COUNTS))
    with sqlite3.connect(folder.db_path) as conn:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        return (check, *(conn.execute(sql).fetchone()[0] for sql in COUNTS))


def test_50_concurrent_submissions_from_10_tokens(folder, predictions):
    _fifty_concurrent_submissions(folder, predictions, [Server(folder)])


@pytest.fixture
def pg_folder(template, pg_url, tmp_path):
    """The template's board, set up with its store in a new PostgreSQL database."""
    folder = BoardDir(tmp_path / "pg-boards")
    init_board_dir(folder.path, datasets=[template.parent / "lines.h5"], names=["tiny"], daily_limit=4,
                   max_upload_bytes=64 * 1024, database=pg_url)
    assert not folder.db_path.exists() and json.loads(folder.config_path.read_text())["database"] == pg_url
    return folder


def test_50_concurrent_submissions_to_two_servers_sharing_postgres(pg_folder, tmp_path):
    """Two server processes (as behind a load balancer, on two machines) over one PostgreSQL
    database: the same guarantees as one server over SQLite."""
    n = open_dataset(pg_folder.board_path("tiny") / "full.h5").split_size("test")
    np.save(tmp_path / "p.npy", np.zeros(n, dtype=np.int64))
    servers = [Server(pg_folder)]
    try:
        servers.append(Server(pg_folder))
    except BaseException:
        servers[0].stop()
        raise
    _fifty_concurrent_submissions(pg_folder, tmp_path / "p.npy", servers)


def _fifty_concurrent_submissions(folder, predictions, servers):
    """10 tokens x 5 submissions, all at once, spread over ``servers`` (already started; stopped here)."""
    try:
        tokens = _tokens(folder, 10)
        jobs = [(who, token, k) for who, token in tokens.items() for k in range(5)]

        def send(i_job):
            i, (who, token, k) = i_job
            try:
                return who, submit_remote(servers[i % len(servers)].url, token, "tiny", predictions, f"m{k}")
            except ServerError as exc:
                return who, exc.status

        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(send, enumerate(jobs)))
    finally:
        for server in servers:
            server.stop()
    accepted = [(who, r["id"]) for who, r in results if isinstance(r, dict)]
    refused = [(who, r) for who, r in results if not isinstance(r, dict)]
    # The daily limit (4) holds exactly for each of the 10 participants: 40 in, 10 refused with 429.
    assert Counter(who for who, _ in accepted) == {who: 4 for who in tokens}
    assert sorted(status for _, status in refused) == [429] * 10
    check, orphans, missing, count = _integrity(folder)
    assert (check, orphans, missing, count) == ("ok", 0, 0, 40)
    with folder.store() as store:
        recorded = sorted((s.participant, s.id) for s in store.submissions() if s.participant)
    assert recorded == sorted(accepted)  # every accepted one recorded, exactly once


def _read_response(s: socket.socket) -> str:
    """One whole HTTP response (headers and a Content-Length body), however it is split in packets."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode()


def test_oversized_upload_refused_before_its_body_is_sent(folder):
    token = _tokens(folder, 1)["p0"]
    server = Server(folder)
    try:
        # A generous timeout: the answer must come without the body, however loaded the machine.
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as s:
            s.sendall((f"POST /api/boards/tiny/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                       "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000000\r\n\r\n").encode())
            answer = _read_response(s)  # not one byte of the body was sent
    finally:
        server.stop()
    assert answer.startswith("HTTP/1.1 413")
    assert json.loads(answer.split("\r\n\r\n", 1)[1])["status"] == 413
    assert _integrity(folder)[3] == 0


def test_submit_command_uploads_to_a_server(folder, predictions):
    token = _tokens(folder, 1)["p0"]
    server = Server(folder)
    try:
        result = CliRunner().invoke(main, ["submit", "--server", server.url, "--token", token, "tiny",
                                           str(predictions), "--name", "zeros", "--notes", "all class 0"])
        refused = CliRunner().invoke(main, ["submit", "--server", server.url, "--token", "bad", "tiny",
                                            str(predictions), "--name", "zeros"])
        missing = CliRunner().invoke(main, ["submit", "--server", server.url, "--token", token, "nope",
                                            str(predictions), "--name", "zeros"])
    finally:
        server.stop()
    assert result.exit_code == 0, result.output
    assert "p0: zeros on tiny (public part of the test set): accuracy" in result.output
    assert "3 submissions left today" in result.output
    assert refused.exit_code == 1 and refused.output == "Error: server refused (401): unknown or revoked token\n"
    assert missing.exit_code == 1 and "server refused (404): no board named 'nope'" in missing.output
    down = CliRunner().invoke(main, ["submit", "--server", server.url, "--token", token, "tiny",
                                     str(predictions), "--name", "zeros"])
    assert down.exit_code == 1 and down.output.startswith(f"Error: cannot reach {server.url}")


def test_kill_9_during_submissions_loses_nothing_accepted(folder, predictions):
    _kill_9_during_submissions(folder, predictions)


def test_kill_9_over_postgres_loses_nothing_accepted(pg_folder, tmp_path):
    n = open_dataset(pg_folder.board_path("tiny") / "full.h5").split_size("test")
    np.save(tmp_path / "p.npy", np.zeros(n, dtype=np.int64))
    _kill_9_during_submissions(pg_folder, tmp_path / "p.npy")


def _kill_9_during_submissions(folder, predictions):
    config = json.loads(folder.config_path.read_text())
    config["daily_limit"] = None
    folder.config_path.write_text(json.dumps(config))
    tokens = list(_tokens(folder, 4).values())
    server = Server(folder)
    accepted, lock, stop = [], threading.Lock(), threading.Event()

    def keep_sending(i):
        k = 0
        while not stop.is_set():
            k += 1
            try:
                answer = submit_remote(server.url, tokens[i], "tiny", predictions, f"w{i}-{k}")
            except ServerError:
                continue
            with lock:
                accepted.append((answer["id"], answer["model"]))

    threads = [threading.Thread(target=keep_sending, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(accepted) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.stop(signal.SIGKILL)  # mid-stream: requests are in flight
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert len(accepted) >= 20
    check, orphans, missing, count = _integrity(folder)
    assert (check, orphans, missing) == ("ok", 0, 0) and count >= len(accepted)
    restarted = Server(folder, server.port)
    try:
        page = urllib.request.urlopen(restarted.url + "/boards/tiny", timeout=10).read().decode()
        board = json.loads(urllib.request.urlopen(restarted.url + "/api/boards/tiny", timeout=10).read())
    finally:
        restarted.stop()
    with folder.store() as store:
        recorded = {s.id: s.model for s in store.submissions() if s.participant}
    assert all(recorded.get(i) == model for i, model in accepted)  # nothing accepted is lost
    rows = [r for r in board["public_ranking"] if r["kind"] == "model"]
    assert len(rows) == len(recorded) and page.count('<tr class="model') == len(recorded)


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"no headless browser at {CHROMIUM} "
                    "(CI installs Debian's chromium)")
def test_browser_shows_the_rows_in_rank_order(folder, tmp_path):
    ds = open_dataset(folder.board_path("tiny") / "full.h5")
    targets = ds.load("test")["targets"]
    tokens = _tokens(folder, 3)
    server = Server(folder)
    try:
        for (who, token), wrong in zip(tokens.items(), (30, 0, 12)):
            path = tmp_path / f"{who}.npy"
            predictions = targets.copy()
            predictions[:wrong] = 1 - predictions[:wrong]
            np.save(path, predictions)
            submit_remote(server.url, token, "tiny", path, f"model <{who}>")
        pages = {}
        for url in ("/", "/boards/tiny"):
            profile = tmp_path / f"profile{len(pages)}"
            proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                   "--disable-background-networking", "--disable-component-update",
                                   "--disable-sync", f"--user-data-dir={profile}", "--dump-dom",
                                   server.url + url], capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr[-2000:]
            pages[url] = proc.stdout
    finally:
        server.stop()
    assert re.search(r'<a href="/boards/tiny">tiny</a>', pages["/"])
    rows = re.findall(r'<tr class="model[^"]*"><td[^>]*>(\d+)</td><td class="name">([^<]*)</td>'
                      r'<td class="source">[^<]*</td><td[^>]*>([0-9.]+)</td>', pages["/boards/tiny"])
    names = [name for _, name, _ in rows]
    # p1 (none wrong) above p2 (12 wrong) above p0 (30 wrong), names escaped by the page, read back as text
    assert names == ["p1: model &lt;p1&gt;", "p2: model &lt;p2&gt;", "p0: model &lt;p0&gt;"]
    assert [int(rank) for rank, _, _ in rows] == [1, 2, 3]
    scores = [float(s) for _, _, s in rows]
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0
