"""Label-preserving augmentations for whole batches, on any device (torch).

Every function takes a float tensor ``x`` of shape (N, C, H, W) with values in [0, 1] and
returns a tensor of the same shape, dtype and device; targets are never touched. Random
choices come only from the ``generator`` argument (a ``torch.Generator``, on any device:
draws are made on its device and moved to ``x``'s), so a run is reproducible.

The transforms match the ``patches`` family's nuisances: the eight rot90/flip symmetries
(exact, no interpolation), arbitrary rotation with small translation (bilinear), brightness
shift, gamma and Gaussian pixel noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _uniform(n: int, low: float, high: float, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    u = torch.rand(n, generator=generator, device=generator.device, dtype=torch.float64)
    return (low + (high - low) * u).to(device=like.device, dtype=like.dtype)


def _per_sample(value: torch.Tensor) -> torch.Tensor:
    return value.reshape(-1, 1, 1, 1)


def dihedral(x: torch.Tensor, ops: torch.Tensor) -> torch.Tensor:
    """Apply one of the eight square symmetries to each image: int64 ``ops`` (N,) in 0..7.

    ``op = 2 * k + f``: mirror left-right if ``f``, then ``k`` quarter
    turns counter-clockwise (as displayed). Needs H == W. Loops over the eight ops, not images.
    """
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"dihedral: images must be square, got {tuple(x.shape[-2:])}")
    out = torch.empty_like(x)
    ops = ops.to(x.device)
    for op in range(8):
        chosen = ops == op
        if not chosen.any():
            continue
        part = x[chosen]
        if op % 2:
            part = part.flip(-1)
        out[chosen] = torch.rot90(part, op // 2, dims=(-2, -1))
    return out


def rotate(x: torch.Tensor, degrees: torch.Tensor, shift: torch.Tensor | None = None,
           padding_mode: str = "border") -> torch.Tensor:
    """Rotate each image counter-clockwise (as displayed) by ``degrees`` (N,), bilinear.

    ``shift`` (N, 2) moves the content by (x, y) fractions of the image side (x right, y down).
    Corners uncovered by the turn take ``padding_mode`` ("border", "reflection" or "zeros").
    """
    n = x.shape[0]
    if n == 0:  # affine_grid refuses an empty batch; there is nothing to turn
        return x
    theta = torch.deg2rad(degrees.to(device=x.device, dtype=x.dtype))
    cos, sin = torch.cos(theta), torch.sin(theta)
    # affine_grid maps output coordinates (x right, y down, in [-1, 1]) to input ones: the
    # inverse of a display-counter-clockwise turn is (x, y) -> (x cos - y sin, x sin + y cos).
    matrix = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    matrix[:, 0, 0], matrix[:, 0, 1] = cos, -sin
    matrix[:, 1, 0], matrix[:, 1, 1] = sin, cos
    if shift is not None:
        shift = shift.to(device=x.device, dtype=x.dtype) * 2  # fraction of side -> [-1, 1] units
        matrix[:, 0, 2] = -(cos * shift[:, 0] - sin * shift[:, 1])
        matrix[:, 1, 2] = -(sin * shift[:, 0] + cos * shift[:, 1])
    grid = F.affine_grid(matrix, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def brightness(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Add ``shift`` (N,) to every pixel of each image."""
    return x + _per_sample(shift.to(device=x.device, dtype=x.dtype))


def gamma(x: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    """``x ** exponent`` per image (N,); x is clamped to [0, 1] first so the power is defined."""
    return x.clamp(0.0, 1.0) ** _per_sample(exponent.to(device=x.device, dtype=x.dtype))


def noise(x: torch.Tensor, std: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Add Gaussian noise with per-image ``std`` (N,)."""
    z = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)
    return x + _per_sample(std.to(device=x.device, dtype=x.dtype)) * z


@dataclass(frozen=True)
class Augment:
    """A random augmentation policy; ``None`` or a fixed (v, v) range turns a part off or fixes it.

    Defaults are the seed-002 advice: any rotation, flips, translation up to 5 %,
    brightness in [-0.2, 0.2], gamma in [0.8, 1.25], noise std in [0, 0.02].
    """

    dihedral: bool = True
    rotation: bool = True  # arbitrary angle (bilinear); the corners take the border pixels
    translate: float = 0.05
    brightness: tuple[float, float] | None = (-0.2, 0.2)
    gamma: tuple[float, float] | None = (0.8, 1.25)
    noise: tuple[float, float] | None = (0.0, 0.02)
    clamp: bool = True

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a batch (N, C, H, W) float in [0, 1]; same shape, dtype and device."""
        if not x.is_floating_point() or x.ndim != 4:
            raise ValueError(f"augment: expected a float (N, C, H, W) tensor, got {x.dtype} {tuple(x.shape)}")
        n = x.shape[0]
        if n == 0:  # an empty batch comes back unchanged, and draws nothing from the generator
            return x
        if self.dihedral:
            ops = torch.randint(0, 8, (n,), generator=generator, device=generator.device)
            x = dihedral(x, ops)
        if self.rotation or self.translate:
            angle = _uniform(n, 0.0, 360.0 if self.rotation else 0.0, generator, x)
            shift = torch.stack([_uniform(n, -self.translate, self.translate, generator, x)
                                 for _ in range(2)], dim=1)
            x = rotate(x, angle, shift)
        if self.gamma is not None:
            x = gamma(x, _uniform(n, *self.gamma, generator, x))
        if self.brightness is not None:
            x = brightness(x, _uniform(n, *self.brightness, generator, x))
        if self.noise is not None:
            x = noise(x, _uniform(n, *self.noise, generator, x), generator)
        return x.clamp(0.0, 1.0) if self.clamp else x
