"""PNG plots with pillow (no matplotlib): learning curves and predicted-vs-true scatters."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .atomic import atomic_path
from .records import RunRecord

W, H, MARGIN = 640, 420, 56
COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14)]


def _ticks(lo: float, hi: float, integer: bool = False) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / 4))
    if integer:  # epochs: no tick at 1.5
        step = max(step, 1)
    for mult in (1, 2, 5, 10):
        if (hi - lo) / (step * mult) <= 6:
            step *= mult
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _label(v: float) -> str:
    return f"{v:.3g}"


class _Axes:
    def __init__(self, draw: ImageDraw.ImageDraw, box, xlim, ylim, title, integer_x: bool = False):
        self.draw, (self.x0, self.y0, self.x1, self.y1) = draw, box
        self.xlim, self.ylim = _pad(xlim), _pad(ylim)
        draw.rectangle(box, outline=(0, 0, 0))
        draw.text((self.x0, self.y0 - 16), title, fill=(0, 0, 0))
        for t in _ticks(*self.xlim, integer=integer_x):
            x, _ = self.map(t, self.ylim[0])
            label = _label(t)
            draw.line([(x, self.y1), (x, self.y1 + 4)], fill=(0, 0, 0))
            draw.text((x - draw.textlength(label) / 2, self.y1 + 6), label, fill=(0, 0, 0))
        for t in _ticks(*self.ylim):
            _, y = self.map(self.xlim[0], t)
            label = _label(t)
            draw.line([(self.x0 - 4, y), (self.x0, y)], fill=(0, 0, 0))
            # Right-aligned against this panel's own axis (not the image's left edge).
            draw.text((self.x0 - 6 - draw.textlength(label), y - 6), label, fill=(0, 0, 0))

    def map(self, x: float, y: float) -> tuple[float, float]:
        fx = (x - self.xlim[0]) / (self.xlim[1] - self.xlim[0])
        fy = (y - self.ylim[0]) / (self.ylim[1] - self.ylim[0])
        return self.x0 + fx * (self.x1 - self.x0), self.y1 - fy * (self.y1 - self.y0)


def _pad(lim):
    lo, hi = float(lim[0]), float(lim[1])
    if not math.isfinite(lo) or not math.isfinite(hi):
        return (0.0, 1.0)
    if hi <= lo:
        return (lo - 0.5, hi + 0.5)
    return (lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo))


def learning_curves(record: RunRecord, path: str | Path) -> Path:
    """Train loss and the val metric per epoch, one panel each; the selected epoch marked."""
    img = Image.new("RGB", (W, 2 * H // 2 + 40), "white")
    draw = ImageDraw.Draw(img)
    panels = [(k, v) for k, v in record.curves.items() if v]
    height = (img.height - 20) // max(1, len(panels))
    for i, (key, values) in enumerate(panels):
        values = [v for v in values if v is not None]
        top = 20 + i * height + 16
        box = (MARGIN, top, W - 16, top + height - 44)
        epochs = np.arange(1, len(values) + 1)
        axes = _Axes(draw, box, (1, max(2, len(values))), (min(values), max(values)),
                     f"{record.name} seed {record.seed}: {key} by epoch", integer_x=True)
        points = [axes.map(e, v) for e, v in zip(epochs, values) if math.isfinite(v)]
        if len(points) > 1:
            draw.line(points, fill=COLOURS[i % len(COLOURS)], width=2)
        for p in points if len(points) <= 60 else []:
            draw.ellipse([p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2], fill=COLOURS[i % len(COLOURS)])
        if record.best_epoch and key.startswith("val_") and record.best_epoch <= len(values):
            x, _ = axes.map(record.best_epoch, values[0])
            draw.line([(x, box[1]), (x, box[3])], fill=(150, 150, 150))
            label = f"selected (epoch {record.best_epoch})"
            width = draw.textlength(label)
            # Beside the line, on whichever side leaves room inside the panel.
            tx = x + 3 if x + 3 + width <= box[2] - 2 else x - 3 - width
            draw.text((tx, box[1] + 2), label, fill=(120, 120, 120))
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)


def scatter(predicted: np.ndarray, targets: np.ndarray, path: str | Path, title: str,
            names: list[str] | None = None) -> Path:
    """Predicted against true, one panel per target column, with the diagonal."""
    predicted = np.asarray(predicted, dtype=np.float64).reshape(len(targets), -1)
    targets = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
    k = targets.shape[1]
    side = 360
    img = Image.new("RGB", (k * side + 20, side + 40), "white")
    draw = ImageDraw.Draw(img)
    for j in range(k):
        t, p = targets[:, j], predicted[:, j]
        lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
        box = (j * side + MARGIN, 36, (j + 1) * side - 8, side - 8)
        name = names[j] if names and j < len(names) else f"target {j}"
        axes = _Axes(draw, box, (lo, hi), (lo, hi), f"{title}: {name} (x true, y predicted)")
        draw.line([axes.map(lo, lo), axes.map(hi, hi)], fill=(160, 160, 160))
        for tv, pv in zip(t[:3000], p[:3000]):
            x, y = axes.map(tv, pv)
            draw.rectangle([x - 1, y - 1, x + 1, y + 1], fill=COLOURS[0])  # a pixel is too small
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)
