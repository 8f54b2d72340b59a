"""Family ``boxes`` (seed 001): regress the centre (x, y) of one square, CoordConv-style splits.

Coordinates follow the project convention: x = column, y = row, pixel (row i, col j) has
its centre at (x=j, y=i) and covers [j-0.5, j+0.5) x [i-0.5, i+0.5). The square is
rendered by area coverage (anti-aliased), so a sub-pixel position shows in the pixels.

``split="quadrant"`` holds out the quadrant x > (size-1)/2 and y > (size-1)/2 for the test
split (CoordConv's Not-so-Clevr quadrant split); ``positions="grid"`` uses every integer
centre exactly once across the three splits, the split sizes coming from the layout.
Difficulty knobs: square size range, pixel noise, random colours, clutter (distractor
shapes of another colour or shape) and partial occlusion by a background-coloured bar.
See docs/families/boxes.md.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import ParamError
from .. import noise as gaussian
from ..params import Param
from . import notsoclevr
from .base import Family, Optimum

# Grid layout: the share of positions given to test (uniform split), and the share of the
# non-test positions carved out for validation (both splits).
GRID_TEST_FRACTION = 0.2
GRID_VAL_FRACTION = 0.125

PARAMS = (
    Param("size", "int", 64, "Image side in pixels.", low=2, high=4096),
    Param("channels", "int", 3, "Channels: 1 (grey) or 3 (RGB).", low=1, high=3),
    Param("box_size", "range", (8.0, 8.0),
          "Square side in pixels (LOW:HIGH draws per image, uniformly; integers unless --subpixel).",
          above=0.0),
    Param("value", "int_range", (255, 255),
          "Square intensity 0..255 (LOW:HIGH draws per image; per channel with --color).", low=0, high=255),
    Param("background", "int_range", (0, 0),
          "Background intensity 0..255 (LOW:HIGH draws per image; per channel with --color); "
          "must not overlap --value.", low=0, high=255),
    Param("color", "bool", False,
          "Draw each channel's intensity independently (random colours) instead of one grey level."),
    Param("noise", "float", 0.0, "Std of Gaussian pixel noise on the 0..255 scale.", low=0.0),
    Param("subpixel", "bool", True,
          "Continuous centres and sides, rendered anti-aliased; false: integer sides with edges "
          "on pixel boundaries (crisp squares; on the grid layout, whose centres are integers, "
          "an even side has half-covered edges)."),
    Param("margin", "int", 0, "Centres stay in [margin, size-1-margin] in both axes.", low=0),
    Param("split", "choice", "uniform",
          "'uniform': every split draws centres from the whole image; 'quadrant': test centres only "
          "in the held-out quadrant x, y > (size-1)/2, train and val in the other three.",
          choices=("uniform", "quadrant")),
    Param("positions", "choice", "random",
          "'random': centre drawn per image; 'grid': every integer centre exactly once across the "
          "splits (sizes come from the layout; n_train/n_val/n_test are ignored).",
          choices=("random", "grid")),
    Param("grid_split", "choice", "seeded",
          "With --positions grid, which positions go to test: 'seeded' draws them with "
          "--layout-seed (uniform: 20 %; quadrant: x, y > (size-1)/2); 'liu2018' recomputes "
          "Liu et al. 2018's Not-so-Clevr generator (uniform: each position with p 0.25 from "
          "numpy's legacy RandomState(20202), in their x-major order; quadrant: x/size > 0.5 "
          "and y/size > 0.5). Val is 1/8 of the other positions, drawn with --layout-seed.",
          choices=("seeded", "liu2018")),
    Param("layout_seed", "int", 0,
          "Seed of the grid positions' assignment to splits; separate from --seed so that "
          "datasets with different seeds share one split.", low=0),
    Param("clutter", "int", 0, "Distractor shapes per image, drawn under the square; to be ignored.",
          low=0, high=64),
    Param("clutter_shape", "choice", "circle", "Distractor shape.", choices=("circle", "square")),
    Param("clutter_size", "range", (4.0, 12.0), "Distractor diameter or side in pixels (LOW:HIGH).",
          above=0.0),
    Param("clutter_value", "int_range", (128, 128),
          "Distractor intensity 0..255 (LOW:HIGH; per channel with --color); for square distractors "
          "it must not overlap --value.", low=0, high=255),
    Param("occlusion", "range", (0.0, 0.0),
          "Width of a background-coloured bar across the square, as a fraction of its side "
          "(LOW:HIGH per image; 0 = none). The target stays the true centre.", low=0.0, high=0.9),
)


# ---------------------------------------------------------------------------------------------
# Geometry: where a centre may go.


def _center_limits(p: dict, side):
    """Lowest and highest allowed centre (same in x and y) for squares of ``side`` pixels.

    Continuous (subpixel) centres: any value in [lo, hi]. Lattice centres (crisp squares):
    lo, lo+1, ..., hi, with edges on pixel boundaries (centre = (side-1)/2 + integer).
    """
    side = np.asarray(side, dtype=np.float64)
    size, margin = p["size"], p["margin"]
    if p["subpixel"]:
        lo = np.maximum(margin, side / 2 - 0.5)
        hi = np.minimum(size - 1 - margin, size - 0.5 - side / 2)
    else:
        offset = ((side - 1) / 2) % 1.0  # 0 for odd sides, 0.5 for even sides
        lo = np.ceil(np.maximum(margin, (side - 1) / 2) - offset) + offset
        hi = np.floor(np.minimum(size - 1 - margin, size - 1 - (side - 1) / 2) - offset) + offset
    return lo, hi


def _threshold(size: int) -> float:
    """The held-out quadrant is x > t and y > t: for size 64, x, y > 31.5 (>= 32 on integer centres)."""
    return (size - 1) / 2


def _axis_parts(p: dict, lo, hi):
    """Start and extent of the low (<= t) and high (> t) part of each axis.

    Extent is a length for continuous centres and a count of lattice points otherwise.
    """
    t = _threshold(p["size"])
    if p["subpixel"]:
        low_len = np.clip(t - lo, 0, None)
        low_len = np.minimum(low_len, hi - lo)
        high_start = np.maximum(lo, t)
        return (lo, low_len), (high_start, np.clip(hi - high_start, 0, None))
    count = np.floor(hi - lo) + 1
    n_low = np.clip(np.floor(t - lo) + 1, 0, count)
    return (lo, n_low), (lo + n_low, count - n_low)


def _uniform_in(p: dict, rng, start, extent):
    u = rng.random(np.shape(start))
    if p["subpixel"]:
        return start + u * extent
    return start + np.minimum(np.floor(u * extent), extent - 1)


def _grid(p: dict) -> np.ndarray:
    """Every integer centre where the largest square fits, row-major: (P, 2) float64 (x, y)."""
    side = p["box_size"][1]
    lo = max(p["margin"], math.ceil(side / 2 - 0.5))
    hi = min(p["size"] - 1 - p["margin"], math.floor(p["size"] - 0.5 - side / 2))
    axis = np.arange(lo, hi + 1, dtype=np.float64)
    ys, xs = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def _grid_layout(p: dict) -> dict[str, np.ndarray]:
    """The grid's positions for each split, fixed by ``layout_seed`` (not the dataset seed)."""
    grid = _grid(p)
    rng = np.random.default_rng([p["layout_seed"], len(grid)])
    if p["grid_split"] == "liu2018":
        held = notsoclevr.test_mask(grid, p["size"], p["split"])
        test, rest = np.flatnonzero(held), rng.permutation(np.flatnonzero(~held))
    elif p["split"] == "quadrant":
        t = _threshold(p["size"])
        held = (grid[:, 0] > t) & (grid[:, 1] > t)
        test, rest = np.flatnonzero(held), rng.permutation(np.flatnonzero(~held))
    else:
        order = rng.permutation(len(grid))
        n_test = int(round(GRID_TEST_FRACTION * len(grid)))
        test, rest = np.sort(order[:n_test]), order[n_test:]
    n_val = int(round(GRID_VAL_FRACTION * len(rest)))
    return {"train": grid[np.sort(rest[n_val:])], "val": grid[np.sort(rest[:n_val])], "test": grid[test]}


def _grid_sizes(p: dict) -> dict:
    return {split: len(centres) for split, centres in _grid_layout(p).items()}


def _split_sizes(p: dict, requested: dict) -> dict:
    """A grid layout puts every position in exactly one split: it sets the sizes."""
    return _grid_sizes(p) if p["positions"] == "grid" else requested


def _plan(p: dict, split: str, n: int, rng: np.random.Generator):
    """Grid layout: this split's centres (n, 2), shuffled so blocks are not row-ordered."""
    if p["positions"] != "grid":
        return None
    centres = _grid_layout(p)[split]
    return centres[rng.permutation(len(centres))]


# ---------------------------------------------------------------------------------------------
# Validation across parameters.


def _overlap(a, b) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _check(p: dict) -> None:
    size = p["size"]
    if p["channels"] not in (1, 3):
        raise ParamError(f"channels: {p['channels']} must be 1 or 3")
    side_lo, side_hi = p["box_size"]
    if side_hi > size:
        raise ParamError(f"box_size: {side_hi:g} is larger than the image size {size}")
    if not p["subpixel"] and math.ceil(side_lo) > math.floor(side_hi):
        raise ParamError(f"box_size: {side_lo:g}:{side_hi:g} holds no integer side (needed with subpixel false)")
    if p["clutter"] and p["clutter_size"][1] > size:
        raise ParamError(f"clutter_size: {p['clutter_size'][1]:g} is larger than the image size {size}")
    if _overlap(p["value"], p["background"]):
        raise ParamError(f"value: {p['value'][0]}:{p['value'][1]} overlaps background "
                         f"{p['background'][0]}:{p['background'][1]}: the square could be invisible")
    if p["clutter"] and p["clutter_shape"] == "square" and _overlap(p["clutter_value"], p["value"]):
        raise ParamError(f"clutter_value: {p['clutter_value'][0]}:{p['clutter_value'][1]} overlaps value "
                         f"{p['value'][0]}:{p['value'][1]}: square distractors would look like the target")
    if p["grid_split"] != "seeded" and p["positions"] != "grid":
        raise ParamError(f"grid_split: {p['grid_split']} assigns grid positions; it needs positions grid")
    if p["positions"] == "grid":
        n = len(_grid(p))
        if n == 0 and len(_grid(dict(p, margin=0))) == 0:
            # Not the margin: the square fits only at half-integer centres (even side, about
            # as large as the image), and the grid's centres are integers.
            lo, hi = _center_limits(dict(p, subpixel=True, margin=0), side_hi)
            raise ParamError(f"positions: grid centres are integers, and a {side_hi:g}-px square fits in "
                             f"{size} px only with its centre in {lo:g}..{hi:g}")
        if n == 0:
            raise ParamError(f"margin: {p['margin']} leaves no centre for a {side_hi:g}-px square in {size} px")
        sizes = _grid_sizes(p)
        empty = [s for s, k in sizes.items() if k == 0]
        if empty:
            raise ParamError(f"positions: the {n}-position grid leaves the {empty[0]} split empty "
                             f"(split {p['split']}, size {size}, margin {p['margin']})")
        return
    # The largest square has the fewest centres; a smaller one has at least as many.
    lo, hi = _center_limits(p, side_hi)
    if hi < lo:
        raise ParamError(f"margin: {p['margin']} leaves no centre for a {side_hi:g}-px square in {size} px")
    if p["split"] == "quadrant":
        (_, low), (_, high) = _axis_parts(p, lo, hi)
        if low <= 0 or high <= 0:
            raise ParamError(f"split: quadrant needs centres on both sides of {_threshold(size):g}; "
                             f"a {side_hi:g}-px square in {size} px with margin {p['margin']} has "
                             f"centres only in {lo:g}..{hi:g}")


# ---------------------------------------------------------------------------------------------
# Drawing.


def _coverage_1d(lo, hi, length: int, start=None) -> np.ndarray:
    """Overlap of each pixel [j-0.5, j+0.5) with [lo, hi): (n, length) float32 in [0, 1].

    Pixels j = start .. start+length-1 (``start`` (n,) ints, per sample; default 0).
    """
    j = np.arange(length, dtype=np.float32)[None, :]
    if start is not None:
        j = j + np.asarray(start, dtype=np.float32)[:, None]  # small integers: exact in float32
    lo = np.asarray(lo, dtype=np.float32)[:, None]
    hi = np.asarray(hi, dtype=np.float32)[:, None]
    return np.clip(np.minimum(j + 0.5, hi) - np.maximum(j - 0.5, lo), 0.0, 1.0)


def _rect_coverage(x0, y0, x1, y1, size: int, row0=None, col0=None) -> np.ndarray:
    """Area of each pixel covered by the axis-aligned rectangle: (n, size, size) float32.

    Separable: the overlap in x times the overlap in y. ``row0``, ``col0``: the window's
    first pixel per sample (default the whole image from 0).
    """
    return _coverage_1d(y0, y1, size, row0)[:, :, None] * _coverage_1d(x0, x1, size, col0)[:, None, :]


def _disc_coverage(cx, cy, radius, size: int, row0=None, col0=None) -> np.ndarray:
    """Approximate area coverage of a disc (1-px linear ramp at the rim): (n, size, size) float32."""
    j = np.arange(size, dtype=np.float32)
    cols = j[None, :] if col0 is None else j + np.asarray(col0, dtype=np.float32)[:, None]
    rows = j[None, :] if row0 is None else j + np.asarray(row0, dtype=np.float32)[:, None]
    dx = cols[:, None, :] - np.asarray(cx, dtype=np.float32)[:, None, None]
    dy = rows[:, :, None] - np.asarray(cy, dtype=np.float32)[:, None, None]
    dist = np.sqrt(dx * dx + dy * dy)
    return np.clip(np.asarray(radius, dtype=np.float32)[:, None, None] - dist + 0.5, 0.0, 1.0)


def _colours(p: dict, rng, bounds, n: int, k: int | None = None) -> np.ndarray:
    """Intensities drawn in ``bounds``: (n, C) or (n, k, C) uint8, grey unless ``color``."""
    shape = (n,) if k is None else (n, k)
    per = p["channels"] if p["color"] else 1
    drawn = rng.integers(bounds[0], bounds[1] + 1, shape + (per,))
    return np.broadcast_to(drawn, shape + (p["channels"],)).astype(np.uint8)


def _paint(image: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """Composite ``colour`` (n, C) over ``image`` (n, H, W, C) with coverage ``alpha`` (n, H, W)."""
    a = alpha[..., None]
    image *= 1.0 - a
    image += a * colour[:, None, None, :].astype(np.float32)


def _paint_clutter(p: dict, image: np.ndarray, centre, side, colour, row0=None, col0=None) -> None:
    """Paint the distractors, centres (n, K, 2), sides (n, K), colours (n, K, C), onto ``image``
    (the whole image, or a window whose first pixel is ``row0``, ``col0``)."""
    size = image.shape[1]
    for i in range(side.shape[1]):  # a few shapes: loop over shapes, vectorised over the block
        cx, cy, s = centre[:, i, 0], centre[:, i, 1], side[:, i]
        if p["clutter_shape"] == "circle":
            alpha = _disc_coverage(cx, cy, s / 2, size, row0, col0)
        else:
            alpha = _rect_coverage(cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2, size, row0, col0)
        _paint(image, alpha, colour[:, i])


def _scene(p: dict, f: dict, width: int, row0=None, col0=None) -> np.ndarray:
    """The noise-free image, float32 (n, width, width, C'), on a window (or the whole image).

    Painted in order: background, clutter, the square, the bar. C' is 1 for grey images
    (every channel is the same; the caller broadcasts), else the channel count.
    """
    grey = not p["color"]
    pick = (lambda a: a[..., :1]) if grey else (lambda a: a)  # noqa: E731
    background = pick(f["background"])
    n, channels = len(background), background.shape[-1]
    image = np.broadcast_to(background[:, None, None, :], (n, width, width, channels)).astype(np.float32)
    if "clutter_size" in f:
        _paint_clutter(p, image, f["clutter_centre"], f["clutter_size"], pick(f["clutter_color"]), row0, col0)
    _paint(image, _rect_coverage(*f["boxes"].T, width, row0, col0), pick(f["color"]))
    if "bar" in f:
        # The bar lies inside the square, so the area of a pixel it covers is area the square
        # covered: that area turns from the square's colour to the background's. (Blending the
        # bar over the pixel would leave the square's anti-aliased edge showing through it.)
        change = pick(f["background"]).astype(np.float32) - pick(f["color"]).astype(np.float32)
        image += _rect_coverage(*f["bar"].T, width, row0, col0)[..., None] * change[:, None, None, :]
    return image


def _window_rows(image: np.ndarray, row0, col0, height: int, width: int):
    """The rows of a per-sample window of ``image`` (n, S, S, C), as one item each.

    Returns a 1-D array of byte strings (numpy void items ``width * C`` elements long, one
    starting at every byte of ``image``; writes go through to it) and the (n, height) indices
    of the window's rows. Indexing with them moves each row as one item: about 50x faster
    than fancy-indexing the window's elements one by one.
    """
    n, size, _, channels = image.shape
    item = width * channels * image.itemsize
    flat = image.reshape(-1).view(np.uint8)
    rows = np.ndarray((flat.size - item + 1,), dtype=f"V{item}", buffer=flat, strides=(1,))
    first = (np.arange(n)[:, None] * size + np.asarray(row0)[:, None] + np.arange(height)) * size
    return rows, (first + np.asarray(col0)[:, None]) * (channels * image.itemsize)


def _put_window(image: np.ndarray, row0, col0, values: np.ndarray) -> None:
    """image[i, row0[i]:row0[i]+h, col0[i]:col0[i]+w] = values[i] for every sample i."""
    n, h, w, _ = values.shape
    rows, index = _window_rows(image, row0, col0, h, w)
    values = np.ascontiguousarray(values, dtype=image.dtype)
    rows[index] = values.view(np.uint8).reshape(n, h, -1).view(rows.dtype)[..., 0]


def _get_window(image: np.ndarray, row0, col0, h: int, w: int) -> np.ndarray:
    """image[i, row0[i]:row0[i]+h, col0[i]:col0[i]+w] for every sample i: (n, h, w, C)."""
    rows, index = _window_rows(image, row0, col0, h, w)
    return rows[index].view(np.uint8).view(image.dtype).reshape(len(image), h, w, image.shape[3])


def _render(p: dict, f: dict, noise) -> np.ndarray:
    """The images, uint8 (n, S, S, C), from the drawn factors ``f`` and the noise (or None).

    Only pixels near a shape differ from the background (before noise): each shape's
    window (its bounding box and a pixel of margin) is painted with every shape that
    reaches into it, in the same order and float32 arithmetic as a whole-image rendering,
    so the bytes are the same; the rest is a fill. Many large shapes: the whole image at once.
    """
    size, channels = p["size"], p["channels"]
    n = len(f["boxes"])
    corners = [f["boxes"][:, :2]]
    extent = p["box_size"][1]
    if "clutter_size" in f:
        corners += [f["clutter_centre"][:, i] - f["clutter_size"][:, i, None] / 2
                    for i in range(f["clutter_size"].shape[1])]
        extent = max(extent, p["clutter_size"][1])
    # A shape of side s covers pixels floor(x0 + 0.5) .. floor(x0 + s + 0.5): at most
    # ceil(s) + 1 of them; one more on each side against float32 rounding.
    width = int(math.ceil(extent)) + 3
    if width >= size or len(corners) * width * width >= size * size:
        width, starts = size, [(np.zeros(n, np.int64), np.zeros(n, np.int64))]
    else:
        starts = [tuple(np.clip(np.floor(c[:, a] + 0.5) - 1, 0, size - width).astype(np.int64) for a in (1, 0))
                  for c in corners]
    if noise is not None:
        # Off the shapes: background + noise, the same float32 sum as on a painted image.
        image = noise + f["background"][:, None, None, :].astype(np.float32)
    else:
        image = np.empty((n, size, size, channels), np.uint8)
        flat = image.reshape(n, -1)
        if not p["color"]:
            flat[...] = f["background"][:, :1]  # one value per row: a fast fill
        else:
            # Per-channel colours: write one pixel, then double the filled part (a broadcast
            # of (n, C) over the pixels is about 10x slower).
            flat[:, :channels] = f["background"]
            done = channels
            while done < flat.shape[1]:
                more = min(done, flat.shape[1] - done)
                flat[:, done:done + more] = flat[:, :more]
                done += more
    for row0, col0 in starts:
        window = _scene(p, f, width, row0, col0)  # grey: one channel, broadcast below
        if noise is not None:
            window = window + _get_window(noise, row0, col0, width, width)
        else:
            window = np.clip(np.rint(window), 0, 255).astype(np.uint8)
        _put_window(image, row0, col0, np.broadcast_to(window, (n, width, width, channels)))
    if noise is None:
        return image
    np.rint(image, out=image)
    return np.clip(image, 0, 255, out=image).astype(np.uint8)


def _sides(p: dict, rng, bounds, n: int) -> np.ndarray:
    if p["subpixel"]:
        return rng.uniform(bounds[0], bounds[1], n)
    return rng.integers(math.ceil(bounds[0]), math.floor(bounds[1]) + 1, n).astype(np.float64)


def _random_centres(p: dict, split: str, side: np.ndarray, rng) -> np.ndarray:
    """Centres (n, 2) for random positions, honouring the quadrant split."""
    n = len(side)
    lo, hi = _center_limits(p, side)
    if p["split"] == "uniform":
        extent = hi - lo if p["subpixel"] else np.floor(hi - lo) + 1
        return np.stack([_uniform_in(p, rng, lo, extent), _uniform_in(p, rng, lo, extent)], axis=1)
    (low_start, low_ext), (high_start, high_ext) = _axis_parts(p, lo, hi)
    if split == "test":
        return np.stack([_uniform_in(p, rng, high_start, high_ext),
                         _uniform_in(p, rng, high_start, high_ext)], axis=1)
    # Train/val: one of the three other quadrants, chosen in proportion to its area (or its
    # number of lattice points), then uniform inside it: uniform over the L-shaped region.
    areas = np.stack([low_ext * low_ext, low_ext * high_ext, high_ext * low_ext], axis=1)
    cumulative = np.cumsum(areas, axis=1)
    pick = (rng.random(n)[:, None] * cumulative[:, -1:] >= cumulative[:, :-1]).sum(axis=1)
    x_high, y_high = pick == 2, pick == 1
    x = np.where(x_high, _uniform_in(p, rng, high_start, high_ext), _uniform_in(p, rng, low_start, low_ext))
    y = np.where(y_high, _uniform_in(p, rng, high_start, high_ext), _uniform_in(p, rng, low_start, low_ext))
    return np.stack([x, y], axis=1)


def _draw(p: dict, split: str, start: int, stop: int, rng: np.random.Generator, plan) -> dict:
    n, size, channels = stop - start, p["size"], p["channels"]
    side = _sides(p, rng, p["box_size"], n)
    if plan is not None:
        centres = plan[start:stop]
    else:
        centres = _random_centres(p, split, side, rng)
    boxes = np.concatenate([centres - side[:, None] / 2, centres + side[:, None] / 2], axis=1)
    colour = _colours(p, rng, p["value"], n)
    background = _colours(p, rng, p["background"], n)
    f = {"boxes": boxes, "color": colour, "background": background}
    out = {}
    if p["clutter"] > 0:
        k = p["clutter"]
        c_size = _sides(p, rng, p["clutter_size"], n * k).reshape(n, k)
        # Anywhere the shape fits entirely; it may lie under the target, which is drawn on top.
        c_centre = c_size[..., None] / 2 - 0.5 + rng.random((n, k, 2)) * (size - c_size[..., None])
        c_colour = _colours(p, rng, p["clutter_value"], n, k)
        f.update(clutter_centre=c_centre, clutter_size=c_size, clutter_color=c_colour)
        out["clutter_boxes"] = np.concatenate([c_centre - c_size[..., None] / 2,
                                               c_centre + c_size[..., None] / 2], axis=2).astype(np.float32)
        out["clutter_color"] = c_colour

    if p["occlusion"][1] > 0:
        # A background-coloured bar across the whole square, horizontal or vertical, at a
        # random offset inside it; it hides part of the square, not the true centre.
        width = rng.uniform(*p["occlusion"], n) * side
        offset = rng.random(n) * (side - width)
        vertical = rng.random(n) < 0.5
        along0 = np.where(vertical, boxes[:, 0], boxes[:, 1]) + offset
        f["bar"] = np.where(vertical[:, None],
                            np.stack([along0, boxes[:, 1], along0 + width, boxes[:, 3]], axis=1),
                            np.stack([boxes[:, 0], along0, boxes[:, 2], along0 + width], axis=1))
        out["occluder"] = f["bar"].astype(np.float32)

    noise = None
    if p["noise"] > 0:
        noise = gaussian.standard_normal(rng, (n, size, size, channels))
        noise *= np.float32(p["noise"])
    return {
        "images": _render(p, f, noise),
        "targets": centres.astype(np.float32),
        "boxes": boxes.astype(np.float32),
        "box_size": side.astype(np.float32),
        "color": colour,
        "background": background,
        **out,
    }


def _oracle(p: dict, block: dict) -> np.ndarray:
    """Per-sample squared error of the best guess from the nuisance factors (boxes_oracle.py)."""
    from .boxes_oracle import oracle  # imported when used: it builds on this module's renderer

    return oracle(p, block)


def _optimum(p: dict) -> Optimum | None:
    if p["noise"] > 0 or p["clutter"] > 0 or p["occlusion"][1] > 0:
        return None
    if p["positions"] == "grid" or not p["subpixel"]:
        return Optimum("rmse", 0.0, True,
                       "noise-free, clutter-free square on a 1-px lattice of centres: the pixels "
                       "determine the centre exactly")
    if p["box_size"][0] < 2:
        # A side of 2 px or more always covers a full row and column of pixels, which give
        # the square's intensity and, at their ends, each edge's coverage alone. Smaller
        # squares can confound intensity, size and position.
        return None
    # The smallest difference between square and background intensity any image can have.
    contrast = max(p["value"][0] - p["background"][1], p["background"][0] - p["value"][1])
    return Optimum("rmse", 0.0, False,
                   "noise-free, clutter-free anti-aliased square of side >= 2 px: the coverage "
                   "of its edge pixels gives each edge; only their uint8 rounding remains, at "
                   f"most {0.5 / contrast:.3g} px per edge at contrast {contrast}")


FAMILY = Family(
    name="boxes",
    task="regression",
    summary="regress the centre (x, y) of one square; uniform or CoordConv quadrant split; seed 001",
    params=PARAMS,
    draw=_draw,
    target_names=lambda p: ["x", "y"],
    check=_check,
    small={"size": 16, "box_size": (2.0, 5.0), "noise": 5.0, "color": True,
           "clutter": 1, "occlusion": (0.0, 0.3)},
    plan=_plan,
    optimum=_optimum,
    oracle=_oracle,
    split_sizes=_split_sizes,
)
