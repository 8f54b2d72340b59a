"""Fixtures shared by the test modules."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch

from cnnbench.data.generate import write_dataset
from cnnbench.data.presets import get_preset

# Tiny models train faster on one thread than they synchronise two.
torch.set_num_threads(1)
# Commands run their trainings in this process unless a test asks for workers (--jobs N):
# starting worker interpreters would cost more than the tests' tiny runs.
os.environ["CNNBENCH_JOBS"] = "1"


@pytest.fixture(scope="session")
def lines3(tmp_path_factory):
    """The lines-3x3 preset (seed 000's six images), written once; tests only read it."""
    path = tmp_path_factory.mktemp("lines3") / "lines-3x3.h5"
    write_dataset(get_preset("lines-3x3").spec(), path)
    return path


# -- a real PostgreSQL server for the store's tests on its second backend ------------------------

def _postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl are: $CNNBENCH_PG_BIN, PATH, or Debian's /usr/lib/postgresql/VER/bin
    (newest first; Debian's packages do not put them on PATH)."""
    candidates = [os.environ.get("CNNBENCH_PG_BIN")]
    on_path = shutil.which("initdb")
    candidates.append(str(Path(on_path).resolve().parent) if on_path else None)
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(versioned, key=lambda p: int(re.sub(r"\D", "", Path(p).parent.name) or 0), reverse=True)
    for folder in filter(None, candidates):
        if all((Path(folder) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


@pytest.fixture(scope="session")
def postgres_server():
    """A throw-away PostgreSQL server (unix socket only, fsync off) for this test run.

    Skips, saying why, without psycopg or without server binaries. initdb refuses to run as
    root, so as root the server runs as the unprivileged ``postgres`` user (Debian's package
    creates it)."""
    pytest.importorskip("psycopg", reason="psycopg not installed: pip install -e '.[postgres]' (or '.[test]')")
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin: "
                    "install postgresql (apt-get install postgresql) to test the PostgreSQL store")
    run_as = {}
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, and initdb refuses root: no 'postgres' user to run the server as")
        run_as = {"user": pw.pw_uid, "group": pw.pw_gid}
    home = Path(tempfile.mkdtemp(prefix="cnnbench-pg-"))  # short: a socket path is at most ~100 bytes
    if run_as:
        os.chown(home, run_as["user"], run_as["group"])
    data = home / "data"

    def pg(*args):
        return subprocess.run([str(bindir / args[0]), *args[1:]], capture_output=True, text=True, cwd=home,
                              timeout=120, **run_as)

    try:
        done = pg("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C",
                  "--no-sync")
        if done.returncode:
            pytest.fail(f"initdb failed: {done.stderr.strip()[-500:]}")
        options = f"-k {home} -c listen_addresses='' -F -c shared_buffers=16MB -c max_connections=150"
        done = pg("pg_ctl", "-D", str(data), "-l", str(home / "log"), "-w", "-t", "60", "-o", options, "start")
        if done.returncode:
            log = (home / "log").read_text(errors="replace")[-800:] if (home / "log").exists() else ""
            pytest.fail(f"the PostgreSQL server did not start: {done.stderr.strip()[-300:]} {log}")
        import psycopg

        with psycopg.connect(f"postgresql://postgres@/postgres?host={home}", autocommit=True) as admin:
            admin.execute("CREATE DATABASE cnnbench")
        yield f"postgresql://postgres@/cnnbench?host={home}"
    finally:
        pg("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)


_schemas = itertools.count()


@pytest.fixture
def pg_url(postgres_server):
    """The URL of a new, empty schema on the test run's PostgreSQL server (one database; a
    schema per test is far cheaper than a database, and tests the store outside ``public``)."""
    import psycopg

    name = f"t{os.getpid()}_{next(_schemas)}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    return f"{postgres_server}&options=-csearch_path%3D{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """A leaderboard location on each backend: an SQLite file's path, a PostgreSQL URL."""
    if request.param == "sqlite":
        return tmp_path / "board.sqlite"
    return request.getfixturevalue("pg_url")


def created(db) -> bool:
    """Whether anything has been written to a leaderboard location (either backend)."""
    from cnnbench.board.db import open_backend

    return open_backend(db, 5.0, True).exists()


def raw_sql(db, *statements) -> list:
    """Run SQL statements ``(sql, args)`` on either backend as they are, outside the store's
    checks (to plant malformed rows, a newer schema...); the last one's rows."""
    from cnnbench.board.db import open_backend

    conn = open_backend(db, 5.0, True).writer(lambda conn: None)
    rows = []
    try:
        for sql, args in statements:
            cursor = conn.execute(sql, args)
            rows = cursor.fetchall() if cursor.description else []
    finally:
        conn.close()
    return rows
