"""Liu et al. 2018's Not-so-Clevr train/test assignment, recomputed (``boxes --grid-split liu2018``).

The facts, read in the authors' repository (uber-research/CoordConv,
``data/not_so_clevr_generator.py``; no code taken from it):

- ``objectsweep_generator`` places one object at every centre ``range(4, 60)`` of a 64x64
  canvas, x (the column) in the outer loop and y (the row) in the inner one: 3,136 samples in
  that order.
- Before each split is written the generator calls ``np.random.seed(20202)``
  (``MAGIC_SEED_OF_WONDER``); ``dataset_writer`` then asks the split function about each
  sample in sweep order, and a sample for which it answers true goes to the held-out set
  (their ``val_*`` arrays, which ``train.py`` reports as the test of generalisation).
- ``random_split`` (the uniform split) answers ``np.random.random() < 0.25``: one draw per
  sample from numpy's legacy global generator. That gives 768 held-out and 2,368 training
  positions, the shapes ``train.py``'s comments note.
- ``quadrant_split`` answers ``x / 64 > 0.5 and y / 64 > 0.5`` on the normalised location:
  x and y from 33 to 59, 729 held-out positions (not 32: 32/64 is not above 0.5).

numpy's legacy ``RandomState`` stream is frozen (NEP 19), so ``RandomState(20202)`` here
draws what their ``np.random.seed(20202)`` drew. ``tests/test_notsoclevr.py`` checks the
sets position for position against the lists their generator printed.
"""

from __future__ import annotations

import numpy as np

# np.random.seed(MAGIC_SEED_OF_WONDER) before each split in the authors' generator.
AUTHORS_SEED = 20202
# random_split's pct: the share of positions sent to the held-out set.
AUTHORS_TEST_SHARE = 0.25


def sweep_order(grid: np.ndarray) -> np.ndarray:
    """Indices of ``grid`` rows ((x, y) centres) in the authors' sweep order: x outer, y inner."""
    return np.lexsort((grid[:, 1], grid[:, 0]))


def test_mask(grid: np.ndarray, size: int, split: str) -> np.ndarray:
    """Which centres of ``grid`` (P, 2) the authors' generator holds out, as a bool (P,) array.

    ``split`` is ``"uniform"`` (their ``random_split``, drawn in their sweep order) or
    ``"quadrant"`` (their ``quadrant_split``).
    """
    x, y = grid[:, 0], grid[:, 1]
    if split == "quadrant":
        return (x / float(size) > 0.5) & (y / float(size) > 0.5)
    draws = np.random.RandomState(AUTHORS_SEED).random_sample(len(grid))
    mask = np.zeros(len(grid), dtype=bool)
    mask[sweep_order(grid)] = draws < AUTHORS_TEST_SHARE
    return mask
