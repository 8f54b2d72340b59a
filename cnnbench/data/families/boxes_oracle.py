"""The boxes family's oracle: an estimated floor where the optimum is unknown (noise, clutter,
occlusion).

Given a test block's recorded nuisance factors (everything but the square's position), it
re-renders the known scene, finds the square by a coarse search and an exact sub-pixel line
search, and returns each sample's squared error; the generator averages it into the
*estimated* optimum a file records. It shares the family's renderer, so the two cannot drift.
"""

from __future__ import annotations

import math

import numpy as np

from .boxes import _center_limits, _paint_clutter, _rect_coverage

# Samples per pass of the oracle (memory: a few (chunk, size, size, C) float arrays at once).
ORACLE_CHUNK = 256
# Half-width (px) of the exact line search along each axis in the sub-pixel refinement.
ORACLE_WINDOW = 0.75


def _known_scene(p: dict, block: dict) -> np.ndarray:
    """The image without the square and the bar: background and re-rendered clutter, (n, H, W, C) float32."""
    n, size, channels = len(block["images"]), p["size"], p["channels"]
    scene = np.broadcast_to(block["background"][:, None, None, :], (n, size, size, channels)).astype(np.float32)
    if p["clutter"] > 0:
        c_boxes = block["clutter_boxes"].astype(np.float64)
        _paint_clutter(p, scene, (c_boxes[..., :2] + c_boxes[..., 2:]) / 2, c_boxes[..., 2] - c_boxes[..., 0],
                       block["clutter_color"])
    return scene


def _box_sums(table: np.ndarray, top, left, height, width) -> np.ndarray:
    """Sums of rectangles from a summed-area table (n, H+1, W+1); index arrays broadcast to (n, ...)."""
    n, _, w1 = table.shape
    flat = table.reshape(n, -1)
    shape = np.broadcast_shapes(np.shape(top), np.shape(left), np.shape(height), np.shape(width))

    def at(r, c):
        index = np.broadcast_to(r * w1 + c, shape).reshape(n, -1)
        return np.take_along_axis(flat, index, axis=1).reshape(shape)
    bottom, right = top + height, left + width
    return at(bottom, right) - at(top, right) - at(bottom, left) + at(top, left)


def _coarse_centres(p: dict, residual, square_gain, bar_gain, side, bar_rel) -> np.ndarray:
    """Least-squares integer placement of a crisp k x k square (k = side rounded), bar included: (n, 2).

    ``residual`` is image - known scene; ``square_gain`` and ``bar_gain`` (n, 1, 1, C) what the
    square and the bar add to the known scene. The error of a placement is a sum over the
    pixels it covers of a per-pixel map, so summed-area tables give every placement at once.
    """
    n, size = len(residual), p["size"]

    def summed(gain):
        per_pixel = (gain * (gain - 2 * residual)).sum(axis=3, dtype=np.float64)
        table = np.zeros((n, size + 1, size + 1))
        table[:, 1:, 1:] = per_pixel.cumsum(axis=1).cumsum(axis=2)
        return table
    k = np.clip(np.rint(side), 1, size).astype(np.int64)[:, None, None]
    r = np.arange(size)[None, :, None]
    c = np.arange(size)[None, None, :]
    valid = (r <= size - k) & (c <= size - k)
    r, c = np.minimum(r, size - k), np.minimum(c, size - k)
    cost = _box_sums(summed(square_gain), r, c, k, k)
    if bar_rel is not None:
        # The bar (relative to the square's top-left corner), scaled to the k-px square.
        rel = np.clip(np.rint(bar_rel * (k[:, :, 0] / side[:, None])), 0, k[:, :, 0]).astype(np.int64)
        x0, y0, x1, y1 = (rel[:, i, None, None] for i in range(4))
        correction = summed(bar_gain - square_gain)  # the bar's pixels show it, not the square
        cost = cost + _box_sums(correction, r + y0, c + x0, y1 - y0, x1 - x0)
    cost = np.where(valid, cost, np.inf).reshape(n, -1)
    best = cost.argmin(axis=1)
    half = (k[:, 0, 0] - 1) / 2
    return np.stack([best % size + half, best // size + half], axis=1).astype(np.float64)


def _render_crop(scene, square_gain, background, side, centre, origin, bar_rel) -> np.ndarray:
    """The noise-free image in a crop whose top-left pixel is ``origin`` (n, 2) (x, y): (n, W, W, C).

    What ``_draw`` paints, over the crop of the known scene: the square (``square_gain`` is its
    colour minus the scene), then the bar, which turns the square's area under it to the
    background colour.
    """
    width = scene.shape[1]
    local = centre - origin
    lo, hi = local - side[:, None] / 2, local + side[:, None] / 2
    image = scene + _rect_coverage(lo[:, 0], lo[:, 1], hi[:, 0], hi[:, 1], width)[..., None] * square_gain
    if bar_rel is not None:
        bar = bar_rel + np.concatenate([lo, lo], axis=1)
        image += _rect_coverage(*bar.T, width)[..., None] * (background - scene - square_gain)
    return image


def _estimate_centres(p: dict, block: dict) -> np.ndarray:
    """Least-squares centres (n, 2) given every recorded factor but the centre; see ``_oracle``."""
    n, size = len(block["images"]), p["size"]
    image = block["images"].astype(np.float32)
    scene = _known_scene(p, block)
    side = block["box_size"].astype(np.float64)
    colour, background = block["color"], block["background"]
    bar_rel = None
    if "occluder" in block:
        # The bar's place relative to the square, as drawn (its orientation, width and offset
        # inside the square); its absolute place would give the centre away.
        corner = block["boxes"][:, :2].astype(np.float64)
        bar_rel = block["occluder"].astype(np.float64) - np.concatenate([corner, corner], axis=1)

    # 1. Coarse: the best integer placement of a crisp square of the rounded side.
    residual = image - scene
    square_gain = colour[:, None, None, :].astype(np.float32) - scene
    bar_gain = background[:, None, None, :].astype(np.float32) - scene
    centre = _coarse_centres(p, residual, square_gain, bar_gain, side, bar_rel)

    # 2. Sub-pixel: Gauss-Newton on the squared error against the anti-aliased rendering, in a
    # crop around the coarse centre (pixels outside it do not depend on small moves).
    lo, hi = _center_limits(dict(p, subpixel=True), side)
    width = min(size, int(math.ceil(side.max())) + 7)
    origin = np.clip(np.rint(centre) - width // 2, 0, size - width).astype(np.int64)
    lo = np.maximum(lo[:, None], origin + side[:, None] / 2 - 0.5)
    hi = np.minimum(hi[:, None], origin + width - 0.5 - side[:, None] / 2)
    rows = (origin[:, 1, None] + np.arange(width))[:, :, None]
    cols = (origin[:, 0, None] + np.arange(width))[:, None, :]
    pick = (np.arange(n)[:, None, None], rows, cols)
    image, scene, square_gain = image[pick], scene[pick], square_gain[pick]
    background = background[:, None, None, :].astype(np.float32)

    def render(c):
        return _render_crop(scene, square_gain, background, side, c, origin, bar_rel)

    def error(c):
        return ((image - render(c)) ** 2).sum(axis=(1, 2, 3), dtype=np.float64)

    # The coarse square's centre can be up to half a pixel off in each axis (rounded side,
    # integer placement): start from the best of a 3 x 3 neighbourhood at half-pixel spacing,
    # which keeps a thin strip beside the bar from holding the refinement in a local minimum.
    best, start = np.full(n, np.inf), centre
    for d in np.array([(dx, dy) for dy in (-0.5, 0.0, 0.5) for dx in (-0.5, 0.0, 0.5)]):
        trial = np.clip(start + d, lo, hi)
        e = error(trial)
        better = e < best
        centre = np.where(better[:, None], trial, centre)
        best = np.where(better, e, best)
    # Moving along one axis, every pixel's coverage (by the square or by the bar) is linear in
    # the centre between the places where an edge crosses a pixel boundary, and so is the
    # rendering: render at those kinks and half way between them, and minimise the error on
    # each piece (fitted as a quadratic rendering, a quartic error, which covers the linear
    # case). Alternating x and y, this is the minimum along each axis within ORACLE_WINDOW px,
    # where a local method would stall at the kinks.
    edges = [-side / 2, side / 2]
    if bar_rel is not None:
        edges += [bar_rel[:, i] - side / 2 for i in range(4)]
    edges = np.stack(edges, axis=1)  # (n, E) offsets from the centre, by axis below
    grid = np.linspace(0.0, 1.0, 33)
    for axis in (0, 1, 0, 1):
        offsets = edges[:, [0, 1] + ([2 + axis, 4 + axis] if bar_rel is not None else [])]
        start = np.maximum(centre[:, axis] - ORACLE_WINDOW, lo[:, axis])
        stop = np.minimum(centre[:, axis] + ORACLE_WINDOW, hi[:, axis])
        first = np.ceil(start[:, None] + offsets - 0.5) + 0.5 - offsets  # first kink of each edge
        kinks = np.concatenate([first + m for m in range(math.ceil(2 * ORACLE_WINDOW))], axis=1)
        points = np.sort(np.concatenate([start[:, None], np.clip(kinks, start[:, None], stop[:, None]),
                                         stop[:, None]], axis=1), axis=1)

        def render_at(x, axis=axis):  # bound now: called within this iteration
            at = centre.copy()
            at[:, axis] = x
            return render(at)
        ends = [render_at(points[:, j]) for j in range(points.shape[1])]
        for j in range(points.shape[1] - 1):
            middle = render_at((points[:, j] + points[:, j + 1]) / 2)
            curve = 2 * (ends[j] + ends[j + 1] - 2 * middle)
            slope = ends[j + 1] - ends[j] - curve
            r = image - ends[j]  # error(t) = |r - t slope - t^2 curve|^2 on t in [0, 1]

            def dot(u, v):
                return (u * v).sum(axis=(1, 2, 3), dtype=np.float64)[:, None]
            coef = [dot(r, r), -2 * dot(r, slope), dot(slope, slope) - 2 * dot(r, curve),
                    2 * dot(slope, curve), dot(curve, curve)]
            def value(t, coef=coef):
                return sum(c * t ** k for k, c in enumerate(coef))
            t = grid[np.argmin(value(grid[None, :]), axis=1)][:, None]
            for _ in range(3):  # Newton on the derivative, from the best grid point
                d1 = sum(k * c * t ** (k - 1) for k, c in enumerate(coef) if k)
                d2 = sum(k * (k - 1) * c * t ** (k - 2) for k, c in enumerate(coef) if k > 1)
                t_new = np.clip(t - d1 / np.where(d2 > 0, d2, np.inf), 0.0, 1.0)
                t = np.where(value(t_new) < value(t), t_new, t)
            e, t = value(t)[:, 0], t[:, 0]
            better = e < best - 1e-6 * best
            centre[better, axis] = points[better, j] + t[better] * (points[better, j + 1] - points[better, j])
            best[better] = e[better]
        best = error(centre)  # the exact error, from a fresh rendering

    if p["positions"] == "grid" or not p["subpixel"]:
        # Centres on a lattice: the best of the (up to 4) lattice points around the estimate.
        offset = 0.0 if p["positions"] == "grid" else ((side - 1) / 2) % 1.0
        offset = np.broadcast_to(offset, (n,))[:, None]
        floor = np.floor(centre - offset) + offset
        best, chosen = np.full(n, np.inf), centre.copy()
        for d in ((0, 0), (1, 0), (0, 1), (1, 1)):
            trial = np.clip(floor + np.array(d, dtype=np.float64), lo, hi)
            e = error(trial)
            better = e < best
            chosen[better], best[better] = trial[better], e[better]
        centre = chosen
    return centre


def oracle(p: dict, block: dict) -> np.ndarray:
    """Per-sample squared error (mean over x and y) of the least-squares centre.

    Given everything recorded but the centre (side, colours, background, clutter shapes and
    colours, the bar's place relative to the square), the noise-free image is a known function
    of the centre; with iid Gaussian noise, least squares against it is maximum likelihood
    (ignoring uint8 rounding and clipping at 0 and 255). Coarse integer search by summed-area
    tables, then exact minimisation along x and y in turn against the anti-aliased rendering;
    an estimate of the floor. See docs/families/boxes.md.
    """
    n = len(block["images"])
    centres = np.concatenate([
        _estimate_centres(p, {k: v[i:i + ORACLE_CHUNK] for k, v in block.items()})
        for i in range(0, n, ORACLE_CHUNK)]) if n else np.zeros((0, 2))
    return ((centres - block["targets"].astype(np.float64)) ** 2).mean(axis=1)
