"""cnnbench.bench.augment: exact symmetries, label-preserving, shape/dtype/device kept, reproducible."""

import numpy as np
import pytest
import torch

from cnnbench.bench.augment import Augment, brightness, dihedral, gamma, noise, rotate


def batch(n=8, c=3, size=12, dtype=torch.float32):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(0), dtype=dtype)


def test_dihedral_gives_each_of_the_eight_symmetries():
    x = batch(n=1).expand(8, -1, -1, -1).contiguous()
    out = dihedral(x, torch.arange(8))
    expected = [torch.rot90(x[0].flip(-1) if op % 2 else x[0], op // 2, dims=(-2, -1)) for op in range(8)]
    for op in range(8):
        assert torch.equal(out[op], expected[op])
    # eight distinct images: the group acts freely on a random image
    assert len({out[i].numpy().tobytes() for i in range(8)}) == 8


def test_rotate_by_90_matches_rot90_and_0_is_identity():
    x = batch(dtype=torch.float64)
    assert torch.allclose(rotate(x, torch.zeros(8)), x, atol=1e-12)
    turned = rotate(x, torch.full((8,), 90.0))
    assert torch.allclose(turned, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-9)


def test_shift_moves_content_right_and_down():
    x = torch.zeros(1, 1, 20, 20, dtype=torch.float64)
    x[0, 0, 10, 10] = 1.0
    moved = rotate(x, torch.zeros(1), torch.tensor([[0.1, 0.05]]), padding_mode="zeros")
    assert moved[0, 0, 11, 12] == pytest.approx(1.0)


def test_photometric_transforms_are_what_they_say():
    x = batch()
    assert torch.allclose(brightness(x, torch.full((8,), 0.1)), x + 0.1)
    assert torch.allclose(gamma(x, torch.full((8,), 2.0)), x ** 2)
    g = torch.Generator().manual_seed(1)
    noisy = noise(torch.zeros(4, 1, 64, 64), torch.tensor([0.0, 0.01, 0.02, 0.04]), g)
    assert noisy[0].abs().max() == 0
    assert np.allclose(noisy[1:].std(dim=(1, 2, 3)).numpy(), [0.01, 0.02, 0.04], rtol=0.1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_augment_keeps_shape_dtype_and_range(dtype):
    # Images only: the protocol passes targets past it (every transform keeps the label).
    x = batch(dtype=dtype)
    out = Augment()(x, torch.Generator().manual_seed(2))
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    assert out.min() >= 0 and out.max() <= 1 and not torch.equal(out, x)


def test_augment_is_reproducible_from_the_generator():
    x = batch()
    a = Augment()(x, torch.Generator().manual_seed(5))
    b = Augment()(x, torch.Generator().manual_seed(5))
    c = Augment()(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_everything_off_is_identity():
    x = batch()
    off = Augment(dihedral=False, rotation=False, translate=0.0, brightness=None, gamma=None, noise=None)
    assert torch.equal(off(x, torch.Generator()), x)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="float"):
        Augment()(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.Generator())
    with pytest.raises(ValueError, match="square"):
        dihedral(torch.zeros(2, 1, 4, 5), torch.zeros(2, dtype=torch.int64))


def test_an_empty_batch_comes_back_unchanged():
    empty = torch.zeros(0, 3, 12, 12)
    g = torch.Generator().manual_seed(0)
    out = Augment()(empty, g)
    assert out.shape == (0, 3, 12, 12)
    assert rotate(empty, torch.zeros(0)).shape == empty.shape
    assert torch.equal(torch.rand(1, generator=g), torch.rand(1, generator=torch.Generator().manual_seed(0)))
