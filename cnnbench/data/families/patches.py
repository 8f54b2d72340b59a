"""Family ``patches`` (seed 002): a round well of coloured liquid on a bench; target its concentration.

The image is rendered analytically: every pixel's centre is mapped into the scene frame
(undoing the pose: translation, rotation, flips), so any rotation angle is exact, with no
resampling. Each pixel is computed directly at ``output_size`` as the area average of a fine
rendering would show it (edges as one-pixel ramps, textures and glints filtered by the pixel;
see ``render_scene``); camera nuisances (gamma, brightness, noise) act on the small image, as
an augmentation would.

Colour model (linear light, values in [0, 1]; see docs/families/patches.md):
Beer-Lambert transmission ``T_ch = exp(-(A_ch * c + B_ch * d) / 100)`` for concentration ``c``
and an optional second dye ``d``; the well shows ``WELL_WHITE * T``, lit by the illuminant.

Randomness: the plan draws one seed per group of 1024 *original* scenes (prefix-stable, so
growing a split leaves earlier groups alone); scene factors come from the group's generator,
pixel noise and the poses of augmented copies from the block's generator.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import ParamError
from .. import noise as gaussian
from ..params import Param
from .base import Family, Optimum

# --- the scene, in units of the image side, origin at the well centre -----------------------
# Absorbance per 100 concentration units (R, G, B): the dye absorbs blue most, so the well
# goes from pale yellow (c = 80) to orange-red (c = 350). Exponential: monotone, non-linear.
ABSORB = np.array([0.06, 0.28, 0.62])
# The second dye absorbs red: it shifts the hue towards green (a confound, not a label).
ABSORB_DYE2 = np.array([0.45, 0.12, 0.05])
WELL_WHITE = 0.8  # reflectance of the empty well
WELL_RADIUS, RIM_RADIUS, RIM_REFLECT = 0.26, 0.29, 0.35
BENCH = np.array([0.55, 0.50, 0.42])  # nominal bench colour (light wood)
SPOT_CENTRE, SPOT_RADIUS, SPOT_REFLECT = (-0.28, 0.28), 0.05, 0.75  # grey calibration card
# Asymmetric features, fixed to the well: a meniscus highlight at 30 degrees and a dark
# mark at 150 degrees (120 degrees apart, so mirror images differ from rotations).
# (Python floats, not numpy float64 scalars: those would turn float32 pixel arithmetic into float64.)
HIGHLIGHT_AT, HIGHLIGHT_SIGMA = (0.17 * math.cos(math.pi / 6), -0.17 * math.sin(math.pi / 6)), (0.07, 0.025)
MARK_AT, MARK_RADIUS, MARK_REFLECT = (0.2 * math.cos(5 * math.pi / 6), -0.2 * math.sin(5 * math.pi / 6)), 0.03, 0.08
N_TEXTURE = 4  # sinusoids summed into the well's texture
GROUP = 1024  # original scenes per group generator (part of the format, like BLOCK_SIZE)
LUMA = np.array([0.2126, 0.7152, 0.0722])  # Rec. 709 luminance, for grayscale output
GLARE_SIGMA = 0.06  # width of the glare blob, exp(-(r / sigma)^2)

PARAMS = (
    Param("render_size", "int", 250,
          "Side of the scene the image stands for (kept for older specs): the image is what a "
          "render this size area-averaged to output_size shows, computed directly at output_size.",
          low=8, high=1024),
    Param("output_size", "int", 64, "Side of the written image.", low=4),
    Param("channels", "choice", "rgb", "'rgb' or 'gray' (Rec. 709 luminance).", choices=("rgb", "gray")),
    Param("concentration", "range", (80.0, 350.0), "Concentration range LOW:HIGH, drawn uniformly.", low=0.0),
    Param("label_noise", "float", 0.0, "Std of Gaussian measurement noise added to the target.", low=0.0),
    Param("rotate", "bool", True, "Rotate each scene by a uniform angle in [0, 360)."),
    Param("flip_prob", "float", 0.5, "Probability of a horizontal flip, and (independently) a vertical one.",
          low=0.0, high=1.0),
    Param("translate", "float", 0.05, "Largest shift of the scene, as a fraction of the image side.",
          low=0.0, high=0.05),
    Param("brightness", "range", (-0.2, 0.2), "Brightness shift added after gamma (LOW:HIGH).", low=-0.5, high=0.5),
    Param("gamma", "range", (0.8, 1.25), "Gamma exponent on the [0, 1] image (LOW:HIGH).", above=0.0, high=4.0),
    Param("noise", "range", (0.0, 0.02), "Std of Gaussian pixel noise on the [0, 1] scale (LOW:HIGH per image).",
          low=0.0, high=0.5),
    Param("texture", "float", 0.1, "Amplitude of the smooth texture inside the well (relative).", low=0.0, high=0.5),
    Param("asymmetric", "bool", True, "Meniscus highlight and rim mark, so rotation and flips are visible."),
    Param("lighting", "float", 0.0,
          "Illuminant change: per-channel gain exp(-U(0, lighting)) on the whole scene.", low=0.0, high=2.0),
    Param("bench_jitter", "float", 0.0,
          "Per-sample bench colour change, gain exp(U(-j, j)) per channel; > 0 stops the bench "
          "being a colour reference.", low=0.0, high=0.5),
    Param("spot", "bool", False, "A grey calibration card on the bench: a lighting reference."),
    Param("dye2", "float", 0.0, "Largest concentration of a second dye that shifts the hue (a confound).",
          low=0.0, high=500.0),
    Param("glare", "float", 0.0, "Probability of a specular glare spot over the well.", low=0.0, high=1.0),
    Param("bubbles", "int", 0, "Largest number of bubbles in the well (uniform 0..N per image).", low=0, high=20),
    Param("augment_copies", "int", 0,
          "Augmented copies of each training image (new pose and camera draw); the train split "
          "holds n_train * (K + 1) rows (the spec keeps n_train).", low=0, high=100),
)


def _check(p: dict) -> None:
    lo, hi = p["concentration"]
    if lo >= hi:
        raise ParamError(f"concentration: range {lo:g}:{hi:g} needs low < high")
    if p["output_size"] > p["render_size"]:
        raise ParamError(f"output_size: {p['output_size']} is larger than render_size {p['render_size']}")


def identifiable(p: dict) -> bool:
    """Whether the image determines the concentration (up to noise): lighting needs a reference."""
    return p["lighting"] == 0 or p["spot"] or p["bench_jitter"] == 0


# --- factors -----------------------------------------------------------------------------------

def draw_scene(rng: np.random.Generator, n: int, p: dict) -> dict:
    """Scene factors of ``n`` original images (what augmented copies share). float64 arrays."""
    c = rng.uniform(*p["concentration"], n)
    bubbles = rng.integers(0, p["bubbles"] + 1, n)
    b_r, b_a = 0.2 * np.sqrt(rng.random((n, p["bubbles"]))), rng.uniform(0, 2 * np.pi, (n, p["bubbles"]))
    b_size = rng.uniform(0.015, 0.035, (n, p["bubbles"]))
    g_r, g_a = 0.2 * np.sqrt(rng.random(n)), rng.uniform(0, 2 * np.pi, n)
    freq, direction = rng.uniform(3, 8, (n, N_TEXTURE)), rng.uniform(0, 2 * np.pi, (n, N_TEXTURE))
    return {
        "concentration": c,
        "targets": c + rng.normal(0.0, 1.0, n) * p["label_noise"],
        "dye2": rng.uniform(0.0, p["dye2"], n),
        "illuminant": np.exp(-rng.uniform(0.0, p["lighting"], (n, 3))),
        "bench": BENCH * np.exp(rng.uniform(-p["bench_jitter"], p["bench_jitter"], (n, 3))),
        # Texture: N_TEXTURE plane waves (fx, fy, phase) in the well frame, cycles per image side.
        "texture": np.stack([freq * np.cos(direction), freq * np.sin(direction),
                             rng.uniform(0, 2 * np.pi, (n, N_TEXTURE))], axis=-1),
        "n_bubbles": bubbles,
        # Bubbles (x, y, radius) in the well frame; radius 0 where absent.
        "bubble_xyr": np.stack([b_r * np.cos(b_a), b_r * np.sin(b_a),
                                np.where(np.arange(p["bubbles"]) < bubbles[:, None], b_size, 0.0)], axis=-1),
        # Glare (x, y) in the image frame, over the well; strength 0 where absent.
        "glare": np.stack([g_r * np.cos(g_a), g_r * np.sin(g_a),
                           np.where(rng.random(n) < p["glare"], 0.9, 0.0)], axis=-1),
    }


def draw_pose(rng: np.random.Generator, n: int, p: dict) -> dict:
    """Pose and camera factors of ``n`` images: what an augmented copy draws anew."""
    return {
        "angle": rng.uniform(0.0, 360.0, n) if p["rotate"] else np.zeros(n),
        "hflip": rng.random(n) < p["flip_prob"],
        "vflip": rng.random(n) < p["flip_prob"],
        "offset": rng.uniform(-p["translate"], p["translate"], (n, 2)),
        "brightness": rng.uniform(*p["brightness"], n),
        "gamma": rng.uniform(*p["gamma"], n),
        "noise": rng.uniform(*p["noise"], n),
    }


# --- rendering ----------------------------------------------------------------------------------

def _disc(x, y, cx, cy, radius, pixel):
    """Anti-aliased coverage of a disc: 1 inside, 0 outside, a one-pixel ramp at the edge."""
    dx, dy = x - cx, y - cy
    return np.clip((radius - np.sqrt(dx * dx + dy * dy)) / pixel + 0.5, 0.0, 1.0)[:, None]


def _widened(sigma: float, pixel: float) -> tuple[float, float]:
    """A Gaussian bump ``exp(-(u / sigma)^2)`` averaged over pixels of side ``pixel``.

    Approximating the pixel's box by a Gaussian of the same variance (pixel^2 / 12 per axis,
    and a square's covariance is the same in every direction, so this holds for a rotated
    bump too): the width grows to sqrt(sigma^2 + pixel^2 / 6) and the height falls by
    sigma / that, keeping the bump's integral. Returns (new sigma, height factor).
    """
    wide = float(np.sqrt(sigma * sigma + pixel * pixel / 6))
    return wide, sigma / wide


def render_scene(f: dict, p: dict) -> np.ndarray:
    """Linear-light scene at ``output_size``: float32 (n, 3, S, S), channels first, in [0, 1].

    Each pixel is what the area average of a much finer rendering gives, computed
    analytically at the output resolution: edges of discs as a ramp one pixel wide (the
    average of a sharp edge over a pixel), plane waves (texture, wood grain) scaled by their
    pixel-box gain sinc(fx p) sinc(fy p) in the image frame, Gaussian bumps (highlight,
    glare) widened by the pixel's variance. See docs/families/patches.md.

    ``f`` holds the scene and pose factors of n images. Angle is counter-clockwise as
    displayed (degrees); a flip mirrors the scene before it is rotated. Channels come first
    because numpy broadcasts a per-image colour over (n, 3, S, S) far faster than over a
    trailing channel axis.
    """
    size = p["output_size"]
    pixel = np.float32(1.0 / size)
    grid = ((np.arange(size, dtype=np.float32) - (size - 1) / 2) * pixel)
    n = len(f["angle"])
    col = lambda a: np.asarray(a, dtype=np.float32).reshape(n, 1, 1)  # noqa: E731
    rgb = lambda a: np.asarray(a, dtype=np.float32).reshape(n, 3, 1, 1)  # noqa: E731
    # Image-frame vector from the scene origin (x right, y down), then undo the rotation
    # (display counter-clockwise: (x, y) -> (x cos + y sin, -x sin + y cos)) and the flips.
    dx = grid[None, None, :] - col(f["offset"][:, 0])
    dy = grid[None, :, None] - col(f["offset"][:, 1])
    theta = np.deg2rad(f["angle"])
    hx, vy = np.where(f["hflip"], -1.0, 1.0), np.where(f["vflip"], -1.0, 1.0)
    cos, sin = col(np.cos(theta)), col(np.sin(theta))
    x = (dx * cos - dy * sin) * col(hx)
    y = (dx * sin + dy * cos) * col(vy)
    del dx, dy

    def box_gain(fx, fy):
        """Pixel-box gain of a scene-frame plane wave of frequency (fx, fy), cycles per side."""
        ix = fx * hx * np.cos(theta) + fy * vy * np.sin(theta)  # its image-frame frequency
        iy = -fx * hx * np.sin(theta) + fy * vy * np.cos(theta)
        return np.sinc(ix / size) * np.sinc(iy / size)

    # Bench: a fixed wood grain (it turns with the scene), coloured per sample; its pixel
    # gain is the one of its main frequency, 9 cycles per side along the scene's y.
    grain = np.sin(2 * np.pi * (9.0 * y + 0.6 * np.sin(2 * np.pi * 1.5 * x)))
    grain *= col(0.06 * box_gain(0.0, 9.0))
    grain += 1.0
    image = grain[:, None] * rgb(f["bench"])
    del grain
    if p["spot"]:
        spot = _disc(x, y, *SPOT_CENTRE, SPOT_RADIUS, pixel)
        image += spot * (SPOT_REFLECT - image)

    # The well and its rim lie within RIM_RADIUS + translate of the image centre: the rest
    # of the scene is drawn on that crop only.
    inside = np.flatnonzero(np.abs(grid) <= RIM_RADIUS + p["translate"] + 2 * pixel)
    lo, hi = inside[0], inside[-1] + 1
    crop = image[:, :, lo:hi, lo:hi]
    # Distance from the well's centre: the pose's rotation and flips do not change it.
    dx = grid[None, None, lo:hi] - col(f["offset"][:, 0])
    dy = grid[None, lo:hi, None] - col(f["offset"][:, 1])
    radius = np.sqrt(dx * dx + dy * dy)
    del dx, dy
    rim = np.clip((RIM_RADIUS - radius) / pixel + 0.5, 0.0, 1.0)[:, None]
    crop += rim * (RIM_REFLECT - crop)
    del rim
    # Contiguous copies: numpy's vectorised sin, exp and sqrt take slower paths on strided views.
    x, y = np.ascontiguousarray(x[:, lo:hi, lo:hi]), np.ascontiguousarray(y[:, lo:hi, lo:hi])
    colour = WELL_WHITE * np.exp(-(ABSORB * f["concentration"][:, None]
                                   + ABSORB_DYE2 * f["dye2"][:, None]) / 100.0)
    wave = np.zeros_like(x)
    for k in range(N_TEXTURE):  # a handful of plane waves, each over the whole block
        fx, fy, phase = (f["texture"][:, k, i] for i in range(3))
        wave += np.sin(2 * np.pi * (col(fx) * x + col(fy) * y) + col(phase)) * col(box_gain(fx, fy))
    wave *= np.float32(p["texture"] / np.sqrt(N_TEXTURE / 2))
    wave += 1.0
    liquid = wave[:, None] * rgb(colour)
    del wave
    for k in range(f["bubble_xyr"].shape[1]):  # bubbles: pale discs with a dark edge
        if not f["bubble_xyr"][:, k, 2].any():
            continue
        bx, by, br = (col(f["bubble_xyr"][:, k, i]) for i in range(3))
        dist = np.sqrt((x - bx) ** 2 + (y - by) ** 2)
        edge = np.clip((1.3 * br - dist) / pixel + 0.5, 0.0, 1.0)[:, None]
        inner = np.clip((br - dist) / pixel + 0.5, 0.0, 1.0)[:, None]
        liquid += edge * (0.3 * liquid - liquid) + inner * (0.9 - 0.3 * liquid)
    if p["asymmetric"]:
        mark = _disc(x, y, *MARK_AT, MARK_RADIUS, pixel)
        liquid += mark * (MARK_REFLECT - liquid)
        # Meniscus highlight: an elongated blob along the rim's tangent at 30 degrees.
        (s_along, h_along), (s_across, h_across) = (_widened(s, float(pixel)) for s in HIGHLIGHT_SIGMA)
        u, v = x - HIGHLIGHT_AT[0], y - HIGHLIGHT_AT[1]
        along, across = u * 0.5 + v * (math.sqrt(3) / 2), u * (math.sqrt(3) / 2) - v * 0.5
        shine = np.float32(0.7 * h_along * h_across) * np.exp(-(along / s_along) ** 2 - (across / s_across) ** 2)
        liquid += shine[:, None] * (0.95 - liquid)
    well = np.clip((WELL_RADIUS - radius) / pixel + 0.5, 0.0, 1.0)[:, None]
    crop += well * (liquid - crop)
    del liquid, x, y

    image *= rgb(f["illuminant"])
    # Glare sits in the image frame (it comes from the lamp, not the well) and saturates.
    if f["glare"][:, 2].any():
        wide, height = _widened(GLARE_SIGMA, float(pixel))
        gx, gy, strength = (col(f["glare"][:, i]) for i in range(3))
        blob = (strength * height * height) * np.exp(
            -((grid[None, None, :] - gx) ** 2 + (grid[None, :, None] - gy) ** 2) / wide ** 2)
        image += blob[:, None] * (1.0 - image)
    return np.clip(image, 0.0, 1.0, out=image)


def camera(small: np.ndarray, f: dict, p: dict, rng: np.random.Generator | None) -> np.ndarray:
    """Gamma, brightness shift, Gaussian noise, then uint8: (n, H, W, C) float -> uint8.

    ``rng`` draws the pixel noise; None means no noise (for tests).
    """
    if p["channels"] == "gray":
        small = (small @ LUMA.astype(np.float32))[..., None]
    col = lambda a: np.asarray(a, dtype=np.float32)[:, None, None, None]  # noqa: E731
    image = small ** col(f["gamma"])
    image += col(f["brightness"])
    if rng is not None:
        noise = gaussian.standard_normal(rng, image.shape)
        noise *= col(f["noise"])
        image += noise
        del noise
    np.clip(image, 0.0, 1.0, out=image)
    image *= 255
    return np.rint(image, out=image).astype(np.uint8)


STEP_PIXELS = 1 << 18  # pixels per sub-batch


def render_images(f: dict, p: dict, rng: np.random.Generator | None = None) -> np.ndarray:
    """Full pipeline for factors ``f``: uint8 (n, output_size, output_size, C).

    Renders in sub-batches of about 2^20 pixels, so the float arrays stay at tens of MB.
    """
    n, size = len(f["angle"]), p["output_size"]
    step = max(1, STEP_PIXELS // (size * size))
    out = []
    for lo in range(0, n, step):
        part = {k: v[lo:lo + step] for k, v in f.items()}
        small = np.ascontiguousarray(render_scene(part, p).transpose(0, 2, 3, 1))
        out.append(camera(small, part, p, rng))
    return np.concatenate(out)


# --- the family ---------------------------------------------------------------------------------

def _copies(p: dict, split: str) -> int:
    return p["augment_copies"] if split == "train" else 0


def _rows(p: dict, sizes: dict) -> dict:
    """Train grows to n_train * (K + 1) rows: each original followed by its K copies."""
    return {**sizes, "train": sizes["train"] * (p["augment_copies"] + 1)}


def _plan(p: dict, split: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """One seed per group of GROUP original scenes; integers() is prefix-stable in n."""
    originals = -(-n // (_copies(p, split) + 1))
    return rng.integers(0, 2 ** 63, size=max(1, -(-originals // GROUP)))


def _scenes(p: dict, plan, first: int, last: int, rng: np.random.Generator) -> dict:
    """Scene and original-pose factors of originals first..last-1, from their group seeds."""
    parts = []
    for g in range(first // GROUP, (last - 1) // GROUP + 1):
        group_rng = np.random.default_rng(int(plan[g])) if plan is not None else rng
        f = draw_scene(group_rng, GROUP, p)
        f.update(draw_pose(group_rng, GROUP, p))
        lo, hi = max(first, g * GROUP) - g * GROUP, min(last, (g + 1) * GROUP) - g * GROUP
        parts.append({k: v[lo:hi] for k, v in f.items()})
    return {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}


def _draw(p: dict, split: str, start: int, stop: int, rng: np.random.Generator, plan) -> dict:
    k = _copies(p, split)
    index = np.arange(start, stop)
    original, copy = index // (k + 1), index % (k + 1)
    first = original[0]
    f = _scenes(p, plan, first, original[-1] + 1, rng)
    f = {name: v[original - first] for name, v in f.items()}
    if k:
        fresh = draw_pose(rng, stop - start, p)
        is_copy = copy > 0
        for name, v in fresh.items():
            f[name] = np.where(is_copy.reshape((-1,) + (1,) * (v.ndim - 1)), v, f[name])
    images = render_images(f, p, rng)
    out = {
        "images": images,
        "targets": f["targets"].astype(np.float32)[:, None],
        "concentration": f["concentration"].astype(np.float32),
        "angle": f["angle"].astype(np.float32),
        "hflip": f["hflip"].astype(np.uint8),
        "vflip": f["vflip"].astype(np.uint8),
        "offset": f["offset"].astype(np.float32),
        "brightness": f["brightness"].astype(np.float32),
        "gamma": f["gamma"].astype(np.float32),
        "noise": f["noise"].astype(np.float32),
        "dye2": f["dye2"].astype(np.float32),
        "illuminant": f["illuminant"].astype(np.float32),
        "bench": f["bench"].astype(np.float32),
        "texture": f["texture"].astype(np.float32),
        "glare": f["glare"].astype(np.float32),
        "n_bubbles": f["n_bubbles"].astype(np.int64),
    }
    if p["bubbles"]:
        out["bubble_xyr"] = f["bubble_xyr"].astype(np.float32)
    if k:
        out["copy_of"] = (original * (k + 1)).astype(np.int64)  # row of the original in the file
        out["copy"] = copy.astype(np.int64)
    return out


def _optimum(p: dict) -> Optimum:
    s = p["label_noise"]
    if identifiable(p):
        why = (f"label noise std {s:g}: no model beats RMSE {s:g} on average; the image determines "
               "the concentration (pose, camera and any lighting are recoverable from parts of "
               "known colour) only up to pixel noise, texture and uint8 rounding, so the best "
               "reachable RMSE is slightly above it")
    else:
        why = (f"lower bound only (label noise std {s:g}): lighting without a visible reference "
               "(bench_jitter > 0, no spot) hides part of the concentration; the true floor is "
               "higher and unknown")
    return Optimum("rmse", s, False, why)


FAMILY = Family(
    name="patches",
    task="regression",
    summary="a coloured well on a bench, any rotation/flip; target the concentration; seed 002",
    params=PARAMS,
    draw=_draw,
    target_names=lambda p: ["concentration"],
    check=_check,
    plan=_plan,
    optimum=_optimum,
    rows=_rows,
    small={"render_size": 48, "output_size": 16, "label_noise": 2.0, "bubbles": 2, "glare": 0.5},
)
