"""A PNG grid of samples with their targets written beside each (``cnnbench show``)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw

from .atomic import atomic_path
from .h5format import check_output_path, open_dataset

CELL = 96  # target cell side in pixels; images are upscaled by an integer factor to reach it
LABEL_HEIGHT = 14


def _label(dataset, target) -> str:
    if dataset.task == "classification":
        return f"{int(target)} {dataset.target_names[int(target)]}"
    names = dataset.target_names or [f"t{k}" for k in range(len(target))]
    return " ".join(f"{n}={v:.1f}" for n, v in zip(names, target))


def render_grid(path: str | os.PathLike, out: str | os.PathLike, split: str = "train",
                n: int = 16, columns: int | None = None) -> int:
    """Write the first ``n`` samples of ``split`` as a PNG grid; return the number drawn.

    Images are upscaled with nearest-neighbour so a 3x3 image stays a crisp 3x3 grid.
    Regression targets named ``x`` and ``y`` (pixel coordinates) are marked with a cross.
    """
    check_output_path(out, force=True)
    dataset = open_dataset(path)
    n = min(n, dataset.split_size(split))
    names = ["images", "targets"] if "targets" in dataset.shapes[split] else ["images"]
    with_targets = "targets" in names
    from h5py import File  # read only the first n rows, not the split

    with File(dataset.path, "r") as f:
        arrays = {k: f[split][k][:n] for k in names}
    images = arrays["images"]
    h, w, c = images.shape[1:]
    scale = max(1, CELL // max(h, w))
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    cell_w, cell_h = max(w * scale, 90) + 4, h * scale + LABEL_HEIGHT + 4
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    xy = None
    if with_targets and dataset.task == "regression" and dataset.target_names[:2] == ["x", "y"]:
        xy = arrays["targets"][:, :2]
    for i in range(n):
        tile = images[i] if c == 3 else np.repeat(images[i][..., :1], 3, axis=2)
        tile = Image.fromarray(tile).resize((w * scale, h * scale), Image.NEAREST)
        left, top = (i % columns) * cell_w + 2, (i // columns) * cell_h + 2
        sheet.paste(tile, (left, top))
        if xy is not None:
            # Pixel centres sit at integer coordinates: pixel (0, 0) covers [-0.5, 0.5).
            cx, cy = left + (xy[i, 0] + 0.5) * scale, top + (xy[i, 1] + 0.5) * scale
            draw.line([(cx - 4, cy), (cx + 4, cy)], fill=(255, 0, 0))
            draw.line([(cx, cy - 4), (cx, cy + 4)], fill=(255, 0, 0))
        text = _label(dataset, arrays["targets"][i]) if with_targets else "(no target)"
        draw.text((left, top + h * scale + 1), text, fill=(255, 255, 0))
    with atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG")
    return n
