"""The pixel noise's law: Gaussian to within what uint8 pixels show, iid, deterministic."""

from __future__ import annotations

import numpy as np

from cnnbench.data import noise


def test_standard_normal_has_the_gaussian_moments_and_quantiles():
    z = noise.standard_normal(np.random.default_rng(0), (400_000,)).astype(np.float64)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    # Quantiles of N(0, 1): 2.5 %, 16 %, 50 %, 84 %, 97.5 %.
    q = np.quantile(z, [0.025, 0.16, 0.5, 0.84, 0.975])
    assert np.allclose(q, [-1.96, -0.994, 0.0, 0.994, 1.96], atol=0.02)
    assert np.abs(z).max() <= 4.34  # the table's outermost midpoint


def test_values_are_independent_across_neighbouring_pixels():
    z = noise.standard_normal(np.random.default_rng(1), (2000, 16, 16)).astype(np.float64)
    for a, b in ((z[:, :, 1:], z[:, :, :-1]), (z[:, 1:], z[:, :-1]), (z[1:], z[:-1])):
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.01


def test_same_seed_same_values_and_the_stream_moves_on():
    a = noise.standard_normal(np.random.default_rng(5), (3, 7))
    b = noise.standard_normal(np.random.default_rng(5), (3, 7))
    rng = np.random.default_rng(5)
    first, second = noise.standard_normal(rng, (3, 7)), noise.standard_normal(rng, (3, 7))
    assert np.array_equal(a, b) and np.array_equal(a, first) and not np.array_equal(first, second)


def test_add_to_uint8_is_the_rounded_clipped_sum():
    clean = np.random.default_rng(2).integers(0, 256, (50, 9, 9)).astype(np.uint8)
    got = noise.add_to_uint8(clean, np.random.default_rng(3), 20.0)
    z = noise.standard_normal(np.random.default_rng(3), clean.shape).astype(np.float64)
    want = np.clip(clean + np.rint(20.0 * z), 0, 255).astype(np.uint8)
    assert got.dtype == np.uint8 and np.array_equal(got, want)
    # A huge std saturates without wrapping around int16.
    loud = noise.add_to_uint8(clean, np.random.default_rng(3), 1e6)
    assert np.array_equal(loud, np.clip(clean + np.rint(1e6 * z), 0, 255).astype(np.uint8))
