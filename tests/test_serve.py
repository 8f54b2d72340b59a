"""`cnnbench serve`: the API through Starlette's test client, one test per success path and per
refusal (each refusal checked to record nothing), and the host's commands."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sqlite3

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from cnnbench.board.metrics import score
from cnnbench.cli import main
from cnnbench.data.h5file import open_dataset
from cnnbench.serve.app import create_app
from cnnbench.serve.boards import BoardDir, init_board_dir

SECRET_SEED = 7_341_902_118_640_221_953


def _generate(path, *args):
    result = CliRunner().invoke(main, ["generate", *args, "--out", str(path), "--seed", str(SECRET_SEED), "-q"])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A board folder with a classification board `tiny` and a regression board `box`, built once."""
    root = tmp_path_factory.mktemp("serve")
    lines = _generate(root / "lines.h5", "lines", "--size", "4", "--n-train", "60", "--n-val", "20",
                      "--n-test", "40")
    boxes = _generate(root / "boxes.h5", "boxes", "--size", "8", "--box-size", "2", "--n-train", "60",
                      "--n-val", "20", "--n-test", "30", "--channels", "1")
    init_board_dir(root / "boards", datasets=[lines, boxes], names=["tiny", "box"], daily_limit=3,
                   max_upload_bytes=64 * 1024)
    return root / "boards"


@pytest.fixture
def folder(template, tmp_path):
    path = tmp_path / "boards"
    shutil.copytree(template, path)
    return BoardDir(path)


def _token(folder, who):
    with folder.store() as store:
        return store.add_token(who)


@pytest.fixture
def api(folder):
    with TestClient(create_app(folder.path)) as client:
        client.folder = folder
        client.alice = _token(folder, "alice")
        client.bob = _token(folder, "bob")
        yield client


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def _npy(values) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(values), allow_pickle=False)
    return buffer.getvalue()


def _truth(folder, board):
    ds = open_dataset(folder.board_path(board) / "full.h5")
    mask = np.load(folder.board_path(board) / "split.npy")
    return ds, ds.load("test")["targets"], mask


def _submit(api, token, board="tiny", data=None, name="cnn", filename="p.npy", **fields):
    if data is None:
        ds, targets, _ = _truth(api.folder, board)
        data = _npy(np.zeros(len(targets), dtype=np.int64))
    return api.post(f"/api/boards/{board}/submissions", headers=_auth(token) if token else {},
                    files={"file": (filename, data)}, data={"name": name, **fields})


def _counts(folder) -> tuple[int, int]:
    with sqlite3.connect(folder.db_path) as conn:
        return (conn.execute("SELECT count(*) FROM runs").fetchone()[0],
                conn.execute("SELECT count(*) FROM serve_submissions").fetchone()[0])


# -- success paths ------------------------------------------------------------------------------

def test_boards_listed_with_references_and_no_private_scores(api):
    boards = api.get("/api/boards").json()
    assert [b["name"] for b in boards] == ["box", "tiny"]
    tiny = boards[1]
    assert tiny["task"] == "classification" and tiny["metric"] == "accuracy" and not tiny["closed"]
    assert tiny["test_rows"] == {"public": 20, "private": 20} and tiny["daily_limit"] == 3
    board = api.get("/api/boards/tiny").json()
    kinds = {row["kind"] for row in board["public_ranking"]}
    assert "reference" in kinds and "private_ranking" not in board


def test_download_public_copy(api, tmp_path):
    response = api.get("/api/boards/tiny/public.h5")
    assert response.status_code == 200
    assert response.content == (api.folder.board_path("tiny") / "public.h5").read_bytes()
    path = tmp_path / "public.h5"
    path.write_bytes(response.content)
    with h5py.File(path, "r") as f:
        assert "targets" not in f["test"] and bool(f.attrs["public"])
    # The full file and the split are not reachable under any URL the app knows.
    for url in ("/api/boards/tiny/full.h5", "/api/boards/tiny/split.npy", "/boards/tiny/full.h5",
                "/api/boards/..%2ftiny/full.h5"):
        assert api.get(url).status_code == 404, url


@pytest.mark.parametrize("fmt", ["npy", "csv", "h5"])
def test_submit_scores_the_public_part_only(api, tmp_path, fmt):
    ds, targets, mask = _truth(api.folder, "tiny")
    predictions = targets.copy()
    predictions[:7] = 1 - predictions[:7]  # some wrong rows, in both parts
    if fmt == "npy":
        data = _npy(predictions)
    elif fmt == "csv":
        data = ("class\n" + "\n".join(map(str, predictions)) + "\n").encode()
    else:
        with h5py.File(tmp_path / "p.h5", "w") as f:
            f["predictions"] = predictions
        data = (tmp_path / "p.h5").read_bytes()
    response = _submit(api, api.alice, data=data, filename=f"preds.{fmt}", description="a test")
    assert response.status_code == 201, response.text
    body = response.json()
    public = score("classification", predictions[mask], targets[mask], 2)["accuracy"]
    private = score("classification", predictions[~mask], targets[~mask], 2)["accuracy"]
    assert body["score"] == pytest.approx(public) and body["public"]["accuracy"] == pytest.approx(public)
    assert "private" not in body and "per_class_accuracy" not in body["public"]
    assert body["model"] == "alice: cnn" and body["rank"] == 1 and body["remaining_today"] == 2
    with api.folder.store() as store:
        (sub,) = store.submissions("alice")
    assert sub.private_metrics["accuracy"] == pytest.approx(private)


def test_regression_board(api):
    ds, targets, mask = _truth(api.folder, "box")
    predictions = targets.astype(np.float64) + 0.5
    response = _submit(api, api.alice, board="box", data=_npy(predictions))
    assert response.status_code == 201, response.text
    assert response.json()["metric"] == "rmse"
    assert response.json()["score"] == pytest.approx(0.5)


def test_own_submissions_listed_and_others_forbidden(api):
    first = _submit(api, api.alice).json()["id"]
    _submit(api, api.bob, name="other")
    mine = api.get("/api/submissions", headers=_auth(api.alice)).json()
    assert mine["participant"] == "alice" and [s["id"] for s in mine["submissions"]] == [first]
    assert api.get(f"/api/submissions/{first}", headers=_auth(api.alice)).json()["model"] == "alice: cnn"
    # 403: another participant's submission
    refused = api.get(f"/api/submissions/{first}", headers=_auth(api.bob))
    assert refused.status_code == 403 and refused.json()["error"] == f"submission {first} is not yours"
    assert api.get("/api/submissions/999", headers=_auth(api.bob)).status_code == 404
    assert api.get("/api/submissions?board=nope", headers=_auth(api.bob)).status_code == 404


def test_pages_index_and_board_escape_names(api):
    hostile = "<script>alert(1)</script>"
    assert _submit(api, api.alice, name=hostile).status_code == 201
    for url in ("/", "/boards/tiny"):
        page = api.get(url)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<script" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    board = api.get("/boards/tiny").text
    assert "live ranking (public part, 20 test rows)" in board and "final ranking" not in board
    assert 'class="bar reference"' in board and "known optimum" in board
    missing = api.get("/boards/%3Cb%3E")
    assert missing.status_code == 404 and "&lt;b&gt;" in missing.text and "<b>" not in missing.text


def test_close_shows_the_private_ranking(api):
    ds, targets, mask = _truth(api.folder, "tiny")
    # good on the public part, wrong on the private part, and the other way round
    public_fit = np.where(mask, targets, 1 - targets)
    private_fit = np.where(mask, 1 - targets, targets)
    assert _submit(api, api.alice, data=_npy(public_fit), name="overfit").status_code == 201
    assert _submit(api, api.bob, data=_npy(private_fit), name="honest").status_code == 201
    live = [r["name"] for r in api.get("/api/boards/tiny").json()["public_ranking"] if r["kind"] == "model"]
    assert live == ["alice: overfit", "bob: honest"]
    result = CliRunner().invoke(main, ["serve", "close", str(api.folder.path), "tiny"])
    assert result.exit_code == 0, result.output
    board = api.get("/api/boards/tiny").json()
    assert board["closed"]
    final = [r for r in board["private_ranking"] if r["kind"] == "model"]
    assert [r["name"] for r in final] == ["bob: honest", "alice: overfit"]
    assert final[0]["score"] == 1.0 and final[1]["score"] == 0.0
    page = api.get("/boards/tiny").text
    assert page.index("final ranking (private part") < page.index("live ranking (public part")
    mine = api.get("/api/submissions", headers=_auth(api.alice)).json()["submissions"]
    assert mine[0]["private"]["accuracy"] == 0.0
    # 409: a closed board takes no submissions
    before = _counts(api.folder)
    refused = _submit(api, api.alice)
    assert refused.status_code == 409 and "closed" in refused.json()["error"]
    assert _counts(api.folder) == before


# -- refusals: each records nothing -------------------------------------------------------------

def test_401_without_a_token_or_with_a_bad_or_revoked_one(api):
    before = _counts(api.folder)
    for token in (None, "cbt_nonsense"):
        refused = _submit(api, token)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["status"] == 401
    assert api.get("/api/submissions").status_code == 401
    result = CliRunner().invoke(main, ["serve", "token", "revoke", str(api.folder.path), "alice"])
    assert result.exit_code == 0, result.output
    refused = _submit(api, api.alice)
    assert refused.status_code == 401 and refused.json()["error"] == "unknown or revoked token"
    assert _counts(api.folder) == before
    assert _submit(api, api.bob).status_code == 201  # bob's token still works


def test_404_unknown_board(api):
    before = _counts(api.folder)
    refused = _submit(api, api.alice, board="nope", data=_npy(np.zeros(40, dtype=np.int64)))
    assert refused.status_code == 404 and refused.json() == {"error": "no board named 'nope'", "status": 404}
    assert api.get("/api/boards/nope").status_code == 404
    assert api.get("/api/boards/nope/public.h5").status_code == 404
    assert _counts(api.folder) == before


def test_413_over_the_size_limit(api):
    before = _counts(api.folder)
    big = b"\x93NUMPY" + b"0" * (64 * 1024)
    refused = _submit(api, api.alice, data=big)
    assert refused.status_code == 413 and "limit of 65536 bytes" in refused.json()["error"]

    def chunks():  # no Content-Length: cut off while streaming
        for _ in range(100):
            yield b"x" * 4096

    streamed = api.post("/api/boards/tiny/submissions", headers={**_auth(api.alice),
                        "content-type": "multipart/form-data; boundary=b"}, content=chunks())
    assert streamed.status_code == 413
    assert _counts(api.folder) == before


def _pickled() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}] * 40, dtype=object), allow_pickle=True)
    return buffer.getvalue()


@pytest.mark.parametrize("case,expected", [
    ("rows", "predictions have 39 rows; the test split has 40"),
    ("pickle", "p.npy: holds Python objects"),
    ("suffix", "unknown predictions format '.txt'"),
    ("garbage", "p.npy: not a readable .npy file"),
    ("range", "class id 5 at row 0 is out of range 0..1"),
    ("name", "name holds a control or invisible character (\\x1b)"),
    ("empty name", "name must not be empty"),
    ("no file", "no predictions"),
    ("not multipart", "send the predictions as multipart/form-data"),
])
def test_400_malformed_predictions_or_fields(api, case, expected):
    before = _counts(api.folder)
    zeros = np.zeros(40, dtype=np.int64)
    if case == "no file":
        refused = api.post("/api/boards/tiny/submissions", headers=_auth(api.alice),
                           files={"name": (None, "x")})
    elif case == "not multipart":
        refused = api.post("/api/boards/tiny/submissions", headers=_auth(api.alice), content=_npy(zeros))
    else:
        data, name, filename = _npy(zeros), "cnn", "p.npy"
        if case == "rows":
            data = _npy(zeros[:39])
        elif case == "pickle":
            data = _pickled()
        elif case == "suffix":
            filename = "p.txt"
        elif case == "garbage":
            data = b"not numpy at all"
        elif case == "range":
            data = _npy(zeros + 5)
        elif case == "name":
            name = "evil\x1b[2J"
        elif case == "empty name":
            name = "   "
        refused = _submit(api, api.alice, data=data, name=name, filename=filename)
    assert refused.status_code == 400, refused.text
    assert expected in refused.json()["error"], refused.json()
    assert "/tmp" not in refused.json()["error"]  # the server's temporary path is not shown
    assert _counts(api.folder) == before


def test_429_over_the_daily_limit(api):
    for _ in range(3):
        assert _submit(api, api.alice).status_code == 201
    before = _counts(api.folder)
    refused = _submit(api, api.alice)
    assert refused.status_code == 429 and "daily limit reached: 3 of 3" in refused.json()["error"]
    assert _counts(api.folder) == before
    assert _submit(api, api.bob).status_code == 201  # the limit is per participant
    assert _submit(api, api.alice, board="box", data=_npy(np.zeros((30, 2)))).status_code == 201  # and per board


def test_refused_submissions_do_not_count_against_the_limit(api):
    for _ in range(4):
        assert _submit(api, api.alice, data=b"junk").status_code == 400
    assert [_submit(api, api.alice).status_code for _ in range(4)] == [201, 201, 201, 429]


# -- the host's commands ------------------------------------------------------------------------

def test_tokens_are_stored_hashed_listed_and_revocable(folder):
    runner = CliRunner()
    added = runner.invoke(main, ["serve", "token", "add", str(folder.path), "carol"])
    assert added.exit_code == 0, added.output
    token = added.stdout.strip().splitlines()[0]
    assert token.startswith("cbt_") and len(token) > 40
    raw = folder.db_path.read_bytes() + b"".join(p.read_bytes() for p in folder.path.glob("*-wal"))
    assert token.encode() not in raw and hashlib.sha256(token.encode()).hexdigest().encode() in raw
    listed = runner.invoke(main, ["serve", "token", "list", str(folder.path), "--json"])
    assert json.loads(listed.stdout)[0]["participant"] == "carol" and token not in listed.stdout
    assert runner.invoke(main, ["serve", "token", "revoke", str(folder.path), "carol"]).exit_code == 0
    again = runner.invoke(main, ["serve", "token", "revoke", str(folder.path), "carol"])
    assert again.exit_code == 1 and "Error: 'carol' has no live token" in again.output
    bad = runner.invoke(main, ["serve", "token", "add", str(folder.path), "eve\x1b[2J"])
    assert bad.exit_code == 1 and bad.output.startswith("Error: participant name holds a control")


def test_init_refusals_write_nothing(folder, tmp_path):
    runner = CliRunner()
    config = folder.config_path.read_text()
    again = runner.invoke(main, ["serve", "init", str(folder.path), "--dataset",
                                 str(folder.board_path("tiny") / "full.h5"), "--name", "tiny"])
    assert again.exit_code == 1 and "Error: board 'tiny' exists already" in again.output
    public = runner.invoke(main, ["serve", "init", str(tmp_path / "new"), "--dataset",
                                  str(folder.board_path("tiny") / "public.h5"), "--name", "p"])
    assert public.exit_code == 1 and "is a public copy" in public.output
    guessable = _generate(tmp_path / "g.h5", "lines", "--size", "4", "--n-train", "10", "--n-val", "4",
                          "--n-test", "6")
    with h5py.File(guessable, "r") as f:
        spec = json.loads(f.attrs["spec"])
    assert spec["seed"] == SECRET_SEED
    small = tmp_path / "small.h5"
    result = runner.invoke(main, ["generate", "lines", "--out", str(small), "--size", "4", "--n-train", "10",
                                  "--n-val", "4", "--n-test", "6", "--seed", "12", "-q"])
    assert result.exit_code == 0
    refused = runner.invoke(main, ["serve", "init", str(folder.path), "--dataset", str(small), "--name", "s"])
    assert refused.exit_code == 1 and "would not hide its test labels" in refused.output
    assert not folder.board_path("s").exists() and not list((folder.path / "boards").glob(".*"))
    assert folder.config_path.read_text() == config
    for bad, message in ((["--public-fraction", "1"], "--public-fraction"), (["--daily-limit", "0"], "--daily-limit"),
                         (["--db", "other.sqlite"], "--db must be a postgresql://")):
        out = runner.invoke(main, ["serve", "init", str(tmp_path / "x"), "--dataset", str(guessable), *bad])
        assert out.exit_code == 1 and message in out.output and not (tmp_path / "x").exists()
    moved = runner.invoke(main, ["serve", "init", str(folder.path), "--dataset", str(guessable), "--name", "m",
                                 "--db", "postgresql://u@db.example/boards"])
    assert moved.exit_code == 1 and "--db cannot move it" in moved.output
    assert folder.config_path.read_text() == config


def test_a_bad_database_in_the_config_is_one_line(folder):
    config = json.loads(folder.config_path.read_text())
    folder.config_path.write_text(json.dumps({**config, "database": "board.sqlite"}))
    out = CliRunner().invoke(main, ["serve", "token", "list", str(folder.path)])
    assert out.exit_code == 1 and out.output.startswith("Error:") and "database must be a postgresql://" in out.output


def test_serve_refuses_a_folder_that_is_not_a_board_folder(tmp_path):
    result = CliRunner().invoke(main, ["serve", str(tmp_path)])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "not a board folder" in result.output
    result = CliRunner().invoke(main, ["serve", "close", str(tmp_path), "x"])
    assert result.exit_code == 1 and "not a board folder" in result.output


def test_close_unknown_board(folder):
    result = CliRunner().invoke(main, ["serve", "close", str(folder.path), "nope"])
    assert result.exit_code == 1 and "Error: no board named 'nope'" in result.output


# -- issue 11's fixes, through the server -------------------------------------------------------

# Uploads are read by cnnbench.board.predictions.load_predictions: a link to the host's full file
# is refused there (issue 11 item 2), and so through the server.


def test_an_external_link_to_the_full_file_is_refused(api, tmp_path):
    full = api.folder.board_path("tiny").resolve() / "full.h5"
    with h5py.File(tmp_path / "p.h5", "w") as f:
        f["predictions"] = h5py.ExternalLink(str(full), "/test/targets")
    before = _counts(api.folder)
    refused = _submit(api, api.alice, data=(tmp_path / "p.h5").read_bytes(), filename="p.h5")
    assert refused.status_code == 400 and "external link" in refused.json()["error"]
    assert _counts(api.folder) == before
