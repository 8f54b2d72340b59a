"""Gaussian pixel noise, drawn by inverse-CDF lookup: 16 random bits per pixel.

Why not ``rng.standard_normal``: numpy's Gaussian costs about 20 ns a value, which made noise,
not drawing, the whole cost of the noisy presets (lines-16, the boxes rungs, patches' camera
noise). Here each value is a table lookup: the 65,536 midpoints of equal-probability bins
of N(0, 1), indexed by 16 raw bits of the generator (about 2 ns a value, one pass).

What a pixel gets is the same law to within what an 8-bit image can show: the bins are
1/65,536 of probability wide (near 0 they are 4e-5 standard deviations apart, far below one
grey level for any std cnnbench uses), and the tails are cut at the outermost midpoint,
|z| <= 4.33 (a true Gaussian puts 1.5e-5 of its pixels beyond). Values stay
independent across pixels and images, so the families' floors (least squares against
iid Gaussian noise) hold as before.
"""

from __future__ import annotations

import functools
from statistics import NormalDist

import numpy as np

BITS = 16


@functools.cache
def _table() -> np.ndarray:
    """N(0, 1)'s quantiles at the midpoints of 2^16 equal-probability bins, float32."""
    n = 1 << BITS
    inv = NormalDist().inv_cdf
    return np.array([inv((k + 0.5) / n) for k in range(n)], dtype=np.float32)


def _indices(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` uniform 16-bit indices from the generator's raw 64-bit output."""
    raw = rng.bit_generator.random_raw(-(-count // 4))  # 4 indices per 64-bit draw
    return raw.view(np.uint16)[:count]


def standard_normal(rng: np.random.Generator, shape) -> np.ndarray:
    """float32 N(0, 1) values of ``shape`` (see the module's note on the law)."""
    shape = tuple(int(d) for d in shape)
    count = int(np.prod(shape, dtype=np.int64))
    return _table().take(_indices(rng, count)).reshape(shape)


def rounded(rng: np.random.Generator, count: int, std: float) -> np.ndarray:
    """int16 noise already rounded to integers: ``rint(std * z)`` for ``count`` values.

    For integer images, ``rint(clean + noise) == clean + rint(noise)``: rounding the table
    once replaces a float pass over every pixel.
    """
    table = _rounded_table(float(std))
    return table.take(_indices(rng, count))


@functools.lru_cache(maxsize=8)
def _rounded_table(std: float) -> np.ndarray:
    # Clipped where adding 0..255 stays inside int16; the image is clipped to 0..255 anyway.
    return np.rint(_table().astype(np.float64) * std).clip(-32000, 32000).astype(np.int16)


def add_to_uint8(clean: np.ndarray, rng: np.random.Generator, std: float) -> np.ndarray:
    """uint8 ``clip(rint(clean + N(0, std^2)), 0, 255)`` for an integer image ``clean``."""
    out = rounded(rng, clean.size, std).reshape(clean.shape)
    out += clean  # int16: no overflow for 0..255 plus noise of any std cnnbench allows
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)
