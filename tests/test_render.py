"""cnnbench.board.render: the text, Markdown, CSV and JSON boards, and the static HTML page
(self-contained, and drawn by a real headless browser)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cnnbench.board.records import RunRecord
from cnnbench.board.render import (
    MODEL_COLOUR,
    OPTIMUM_COLOUR,
    REFERENCE_COLOUR,
    render,
    render_fingerprints,
    render_html,
)
from cnnbench.board.store import Leaderboard
from cnnbench.cli import main

CHROMIUM = "/usr/bin/chromium"
OPTIMUM = {"metric": "accuracy", "value": 1.0, "exact": True, "why": "noise-free"}


def _rec(name, score, seed, source="baseline", fp="c" * 64, task="classification", r2=0.5):
    metrics = ({"accuracy": score} if task == "classification"
               else {"rmse": score, "mse": score ** 2, "mae": score, "r2": r2})
    return RunRecord(name=name, source=source, fingerprint=fp, family="lines", task=task,
                     metrics=metrics, seed=seed, preset="lines-3x3" if task == "classification" else "boxes-64")


def test_render_formats(tmp_path):
    db = tmp_path / "b.sqlite"
    with Leaderboard(db) as board:
        for seed, acc in enumerate([0.5, 1.0]):
            board.add(_rec("repro", acc, seed))
        board.add(_rec("majority", 0.5, None, source="reference"))
        board.add(_rec("ridge", 0.7, 0, fp="d" * 64, task="regression"))
        boards = board.boards()
    table = render(boards, "table")
    assert "repro" in table and "majority (reference)" in table and "ref" in table
    assert "| repro |" in render(boards, "markdown") or "| 1 | repro |" in render(boards, "markdown")
    csv_text = render(boards, "csv")
    assert csv_text.splitlines()[0].startswith("fingerprint,protocol_version")
    assert len(csv_text.splitlines()) == 1 + 3
    rows = json.loads(render(boards, "json"))
    assert {"name", "metric", "score", "fingerprint"} <= set(rows[0])
    assert render_fingerprints(db, ["d" * 64], "json").count('"ridge"') == 1


@pytest.fixture
def page(tmp_path):
    db = tmp_path / "board.sqlite"
    with Leaderboard(db) as board:
        for seed, acc in enumerate([0.5, 0.5, 1.0, 0.5, 0.5]):
            board.add(_rec("seed000 <repro>", acc, seed))
        for seed in range(5):
            board.add(_rec("lines-cnn-fixed", 1.0, seed))
        board.add(_rec("majority", 0.5, None, source="reference"))
        for seed in range(3):
            board.add(_rec("coordconv", 0.4 + seed * 0.1, seed, fp="d" * 64, task="regression"))
        board.add(_rec("mean", 18.0, None, source="reference", fp="d" * 64, task="regression", r2=0.0))
        boards = board.boards(["d" * 64]) + board.boards(["c" * 64], optimum=OPTIMUM)
    return tmp_path / "board.html", db, boards


def test_cli_writes_self_contained_page(page):
    out, db, _ = page
    result = CliRunner().invoke(main, ["leaderboard", "--db", str(db), "--html", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>")
    for fetch in ("<script", "<link", "src=", "url(", "@import", "http://", "https://"):
        assert fetch not in text, fetch
    assert "seed000 &lt;repro&gt;" in text and "<svg" in text and text.count("<section") == 2
    # --html refuses to overwrite without --force
    again = CliRunner().invoke(main, ["leaderboard", "--db", str(db), "--html", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output
    forced = CliRunner().invoke(main, ["leaderboard", "--db", str(db), "--html", str(out), "--force"])
    assert forced.exit_code == 0


def test_bad_html_suffix(page):
    out, db, _ = page
    result = CliRunner().invoke(main, ["leaderboard", "--db", str(db), "--html", str(out.with_suffix(".png"))])
    assert result.exit_code == 1 and ".html" in result.output


def test_optimum_and_reference_bars_marked(page):
    _, _, boards = page
    text = render_html(boards)
    assert len(re.findall(r'class="bar optimum"', text)) == 1
    assert len(re.findall(r'class="bar reference"', text)) == 2
    assert len(re.findall(r'class="bar model"', text)) == 3
    assert 'stroke-dasharray' in text  # the optimum's line across the chart


def _hex(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])


def _pixels_near(image: np.ndarray, colour: str, tol: int = 12) -> int:
    return int((np.abs(image[..., :3].astype(int) - _hex(colour)).max(axis=-1) <= tol).sum())


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"no headless browser at {CHROMIUM} "
                    "(CI installs Debian's chromium)")
def test_screenshot_in_headless_chromium(page, tmp_path):
    out, _, boards = page
    out.write_text(render_html(boards), encoding="utf-8")
    png = tmp_path / "shot.png"
    profile = tmp_path / "profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1200,900",
           f"file://{out}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.exists(), proc.stderr[-2000:]
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape[:2] == (900, 1200)
    # The bars are drawn: model bars blue, reference bars grey, the optimum green.
    assert _pixels_near(image, MODEL_COLOUR) > 2000
    assert _pixels_near(image, REFERENCE_COLOUR) > 500
    assert _pixels_near(image, OPTIMUM_COLOUR) > 500
    shutil.rmtree(profile, ignore_errors=True)
    if os.environ.get("CNNBENCH_KEEP_SCREENSHOT"):
        shutil.copy(png, os.environ["CNNBENCH_KEEP_SCREENSHOT"])


# -- headings, outliers, rows better than the optimum -------------------------------------------

from cnnbench.board import render as report  # noqa: E402

# The chart's axis cut and the marks for rows better than the optimum live in cnnbench/report.py;
# until its change lands these tests are expected to fail (and run as ordinary tests after).
needs_report_change = pytest.mark.xfail(not hasattr(report, "axis_end"), strict=True,
                                        reason="needs the cnnbench/report.py change (axis_end, ! marks)")


def _plain(name, score, fp, source="baseline", sizes=None, preset=None, r2=0.5):
    return RunRecord(name=name, source=source, fingerprint=fp, family="boxes", task="regression",
                     metrics={"rmse": score, "mse": score ** 2, "mae": score, "r2": r2}, seed=0,
                     preset=preset, split_sizes=sizes or {"train": 100, "val": 20, "test": 20})


def test_headings_tell_apart_files_without_a_preset(tmp_path):
    with Leaderboard(tmp_path / "b.sqlite") as board:
        board.add(_plain("ridge", 0.5, "1" * 64))
        board.add(_plain("ridge", 0.6, "2" * 64, sizes={"train": 500, "val": 20, "test": 20}))
        boards = board.boards()
    headings = re.findall(r"<h2>(.*?)</h2>", render_html(boards))
    assert len(headings) == 2 and len(set(headings)) == 2
    assert "boxes 11111111 (100/20/20)" in headings and "boxes 22222222 (500/20/20)" in headings


def _bar_width(text: str, name: str) -> float:
    match = re.search(r'width="([0-9.]+)"[^>]*><title>' + re.escape(name) + ":", text)
    return float(match.group(1))


@needs_report_change
def test_one_absurd_score_does_not_flatten_the_others(tmp_path):
    fp = "3" * 64
    with Leaderboard(tmp_path / "b.sqlite") as board:
        board.add(_plain("ridge", 0.5, fp))
        board.add(_plain("cnn", 2.0, fp))
        board.add(_plain("mean", 3.5, fp, source="reference", r2=0.0))
        board.add(_plain("absurd", 3e38, fp, r2=-1e76))
        boards = board.boards()
    text = render_html(boards)
    full = _bar_width(text, "absurd")  # drawn to the axis end, which sits just past the mean's bar
    assert _bar_width(text, "mean") == pytest.approx(full / 1.05, rel=0.01)
    assert _bar_width(text, "ridge") == pytest.approx(_bar_width(text, "mean") * 0.5 / 3.5, rel=0.01)
    assert "axis cut at" in text and "» 3e+38" in text


def test_no_cut_when_scores_are_ordinary(page):
    _, _, boards = page
    assert "axis cut" not in render_html(boards)


@needs_report_change
def test_better_than_the_optimum_marked_with_a_footnote(tmp_path):
    fp = "4" * 64
    with Leaderboard(tmp_path / "b.sqlite") as board:
        board.add(_rec("leaked", 1.0, 0, fp=fp))
        board.add(_rec("honest", 0.8, 0, fp=fp))
        (b,) = board.boards([fp], optimum={"metric": "accuracy", "value": 0.9, "exact": True, "why": "noise"})
    table = report.render([b], "table")
    assert "leaked !" in table and "honest !" not in table
    assert "better than the known optimum: impossible for an exact optimum" in table
    assert "-0.1000" in table  # the signed gap
    assert 'class="model beyond"' in render_html([b]) and "leaked !" in render_html([b])
    assert "beyond_optimum" in report.render([b], "csv").splitlines()[0]
    assert "better than the known optimum" in report.render([b], "markdown")
