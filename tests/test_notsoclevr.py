"""The notsoclevr presets hold Liu et al. 2018's Not-so-Clevr data: their positions, their split.

``tests/data/liu2018_*_test_positions.txt`` are the held-out (x, y) centres that the authors'
own ``data/not_so_clevr_generator.py`` (uber-research/CoordConv at 27fab8b) assigned when run
unmodified outside this project, with stand-ins only for OpenCV's filled rectangle and
IPython: 768 for the uniform split, 729 for the quadrant split. The presets must hold exactly
those, position for position, recomputed by cnnbench's own code.
"""

from pathlib import Path

import numpy as np
import pytest

from cnnbench.data import SPLITS
from cnnbench.data.families import notsoclevr
from cnnbench.data.generate import build_spec, generate_arrays
from cnnbench.data.presets import get_preset
from cnnbench.errors import ParamError

DATA = Path(__file__).parent / "data"


def authors_test_positions(split: str) -> list[tuple[int, int]]:
    rows = (DATA / f"liu2018_{split}_test_positions.txt").read_text().split("\n")
    return [tuple(int(v) for v in row.split()) for row in rows if row.strip()]


def centres(spec) -> dict[str, np.ndarray]:
    return {s: generate_arrays(spec, s)["targets"].astype(int) for s in SPLITS}


@pytest.mark.parametrize("split, n_test", [("uniform", 768), ("quadrant", 729)])
@pytest.mark.parametrize("kind", ["notsoclevr", "notsoclevr-squares"])
def test_presets_hold_the_authors_test_positions(kind, split, n_test):
    spec = get_preset(f"{kind}-{split}").spec()
    got = centres(spec)
    expected = authors_test_positions(split)
    assert len(expected) == n_test
    assert sorted(map(tuple, got["test"].tolist())) == expected
    # Train and val are the authors' training positions: every other centre 4..59, each once.
    rest = np.concatenate([got["train"], got["val"]])
    everything = np.concatenate([rest, got["test"]])
    assert len(everything) == 56 * 56 and len(np.unique(everything, axis=0)) == 56 * 56
    assert everything.min() == 4 and everything.max() == 59
    assert spec.sizes["val"] == round((56 * 56 - n_test) / 8)


def test_quadrant_rule_is_above_half_the_image():
    held = np.array(authors_test_positions("quadrant"))
    assert held.min() == 33 and held.max() == 59  # x/64 > 0.5: 32 stays in training


def test_mask_follows_the_authors_sweep_order():
    """The uniform draw is taken in x-major order: the same grid in another row order gets the same set."""
    axis = np.arange(4, 60)
    xs, ys = np.meshgrid(axis, axis, indexing="ij")  # x-major, the authors' own order
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(float)
    mask = notsoclevr.test_mask(grid, 64, "uniform")
    expected = np.random.RandomState(20202).random_sample(len(grid)) < 0.25
    assert np.array_equal(mask, expected)
    shuffled = np.random.default_rng(0).permutation(len(grid))
    assert np.array_equal(notsoclevr.test_mask(grid[shuffled], 64, "uniform"), mask[shuffled])


def test_renderings_are_the_authors():
    """One-hot: one pixel at 255 at (row y, col x); squares: grey 128, 9x9, centred, on black."""
    for name, side, value in [("notsoclevr-quadrant", 1, 255), ("notsoclevr-squares-uniform", 9, 128)]:
        block = generate_arrays(get_preset(name).spec(), "val")
        images, targets = block["images"][:40, ..., 0], block["targets"][:40].astype(int)
        for image, (x, y) in zip(images, targets):
            expected = np.zeros((64, 64), np.uint8)
            h = side // 2
            expected[y - h:y + h + 1, x - h:x + h + 1] = value
            assert np.array_equal(image, expected)


def test_liu2018_split_needs_the_grid():
    with pytest.raises(ParamError, match="grid_split: liu2018 assigns grid positions; it needs positions grid"):
        build_spec("boxes", {"grid_split": "liu2018", "positions": "random"})
