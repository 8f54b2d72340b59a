"""Family ``lines`` (seed 000): one white row (class 0) or one white column (class 1).

The seed's data is six 3x3 images, values 0 and 255: rows 0, 1, 2 and columns 0, 1, 2.
``positions="all"`` reproduces exactly that cycle; the other options make the task harder
(noise, partial or broken lines, distractor pixels, varying thickness and intensity).
"""

from __future__ import annotations

import numpy as np

from ...errors import ParamError
from .. import noise as gaussian
from ..params import Param
from .base import Family, Optimum

CLASS_NAMES = ["row", "column"]

# A block of 1024 images is drawn at once in float64: about 1.7 GB at 256 px, 0.45 GB at 128.
MAX_SIZE = 256

PARAMS = (
    Param("size", "int", 3, "Image side in pixels.", low=2, high=MAX_SIZE),
    Param("thickness", "int_range", (1, 1), "Line thickness in pixels (LOW:HIGH draws per image).", low=1),
    Param("value", "int_range", (255, 255), "Line intensity 0..255 (LOW:HIGH draws per image).", low=1, high=255),
    Param("background", "int", 0, "Background intensity 0..255.", low=0, high=255),
    Param("length", "range", (1.0, 1.0),
          "Line length as a fraction of the side (LOW:HIGH; 1 = full line, less = partial line "
          "at a random offset).", above=0.0, high=1.0),
    Param("dropout", "float", 0.0, "Fraction of line pixels removed at random (broken lines).", low=0.0, high=0.9),
    Param("distractors", "int", 0, "Random pixels lit at the line intensity, anywhere in the image.", low=0),
    Param("noise", "float", 0.0, "Std of Gaussian pixel noise on the 0..255 scale.", low=0.0),
    Param("balanced", "bool", True, "Exactly balanced classes in every block of samples."),
    Param("positions", "choice", "random",
          "'random': line position drawn per image; 'all': cycle through every (class, position) "
          "in order, as in seed 000.", choices=("random", "all")),
)


def _check(p: dict) -> None:
    size = p["size"]
    if p["thickness"][1] > size:
        raise ParamError(f"thickness: {p['thickness'][1]} is larger than the image size {size}")
    if p["value"][0] <= p["background"]:
        raise ParamError(f"value: {p['value'][0]} must be brighter than background {p['background']}")
    shortest = _pixels(p["length"][0], size)
    if shortest <= p["thickness"][1]:
        # A line no longer than it is thick looks the same as a row and as a column.
        raise ParamError(
            f"length: {p['length'][0]} of {size} px gives {shortest}-px lines, not longer than "
            f"thickness {p['thickness'][1]}: row and column would be indistinguishable")
    if p["positions"] == "all" and p["thickness"][0] != p["thickness"][1]:
        raise ParamError("positions: 'all' needs a fixed thickness")


def _pixels(fraction, size):
    return np.maximum(1, np.rint(np.asarray(fraction) * size).astype(np.int64))


def _line_mask(labels, position, thickness, offset, length, size) -> np.ndarray:
    """Boolean (n, size, size): where each sample's line lies, before dropout and distractors.

    A line is a rectangle, so its mask is the outer product of a row mask and a column mask:
    one pass over the image.
    """
    # across: the coordinate the line's thickness spans; along: the one its length spans.
    j = np.arange(size)[None, :]
    across = (j >= position[:, None]) & (j < (position + thickness)[:, None])
    along = (j >= offset[:, None]) & (j < (offset + length)[:, None])
    is_row = (labels == 0)[:, None]
    rows, cols = np.where(is_row, across, along), np.where(is_row, along, across)
    return rows[:, :, None] & cols[:, None, :]


def _draw(p: dict, split: str, start: int, stop: int, rng: np.random.Generator, plan) -> dict:
    n, size = stop - start, p["size"]
    tlo, thi = p["thickness"]
    if p["positions"] == "all":
        n_pos = size - tlo + 1
        cycle = np.arange(start, stop) % (2 * n_pos)
        labels, position = cycle // n_pos, cycle % n_pos
        thickness = np.full(n, tlo)
    else:
        if p["balanced"]:
            labels = rng.permutation(np.arange(start, stop) % 2)
        else:
            labels = rng.integers(0, 2, n)
        thickness = rng.integers(tlo, thi + 1, n)
        position = rng.integers(0, size - thickness + 1)
    length = np.minimum(size, _pixels(rng.uniform(*p["length"], n), size))
    offset = rng.integers(0, size - length + 1)
    value = rng.integers(p["value"][0], p["value"][1] + 1, n)

    mask = _line_mask(labels, position, thickness, offset, length, size)
    if p["dropout"] > 0:
        mask &= rng.random(mask.shape) >= p["dropout"]
    if p["distractors"] > 0:
        flat = rng.integers(0, size * size, (n, p["distractors"]))
        lit = np.zeros((n, size * size), dtype=bool)
        np.put_along_axis(lit, flat, True, axis=1)
        mask |= lit.reshape(n, size, size)

    clean = np.where(mask, value[:, None, None].astype(np.uint8), np.uint8(p["background"]))
    if p["noise"] > 0:
        clean = gaussian.add_to_uint8(clean, rng, p["noise"])
    images = clean[..., None]
    return {
        "images": images,
        "targets": labels.astype(np.int64),
        "position": position.astype(np.int64),
        "thickness": thickness.astype(np.int64),
        "offset": offset.astype(np.int64),
        "length": length.astype(np.int64),
        "value": value.astype(np.int64),
    }


def _optimum(p: dict) -> Optimum | None:
    if p["noise"] == 0 and p["distractors"] == 0 and p["dropout"] == 0:
        return Optimum("accuracy", 1.0, True, "noise-free lines longer than thick are unambiguous")
    return None  # the generator estimates it with _oracle


def _oracle(p: dict, block: dict) -> np.ndarray:
    """Per-sample 1/0: does the clean template nearest the image (given every recorded
    factor but the class) have the right class? An estimate of the best accuracy."""
    image = block["images"][..., 0].astype(np.float64)
    factors = [block[k] for k in ("position", "thickness", "offset", "length")]
    errors = []
    for label in (0, 1):
        mask = _line_mask(np.full(len(image), label), *factors, p["size"])
        template = np.where(mask, block["value"][:, None, None], p["background"])
        errors.append(((image - template) ** 2).sum(axis=(1, 2)))
    guess = (errors[1] < errors[0]).astype(np.int64)
    return (guess == block["targets"]).astype(np.float64)


FAMILY = Family(
    name="lines",
    task="classification",
    summary="one white row (class 0) or column (class 1); seed 000",
    params=PARAMS,
    draw=_draw,
    target_names=lambda p: list(CLASS_NAMES),
    check=_check,
    optimum=_optimum,
    oracle=_oracle,
    small={"size": 8, "noise": 10.0, "length": (0.5, 1.0), "thickness": (1, 2)},
)
