"""A PNG grid of samples with their targets written beside each (``cnnbench show``)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw

from ..atomic import atomic_path, check_output_path
from ..errors import ParamError
from .h5file import open_dataset

CELL = 128  # target cell side in pixels; images are upscaled by an integer factor to reach it
LABEL_HEIGHT = 14
PAD = 4  # pixels between cells


def _label(dataset, target) -> str:
    """The text under a sample: class id and name, or each target to one decimal.

    open_dataset has checked that class ids are within the names and that a regression has
    one name per target column.
    """
    if dataset.task == "classification":
        k = int(target)
        return f"{k} {dataset.target_names[k]}"
    return " ".join(f"{n}={v:.1f}" for n, v in zip(dataset.target_names, target))


def render_grid(path: str | os.PathLike, out: str | os.PathLike, split: str = "train",
                n: int = 16, columns: int | None = None, force: bool = False) -> int:
    """Write the first ``n`` samples of ``split`` as a PNG grid; return the number drawn.

    Images are upscaled with nearest-neighbour so a 3x3 image stays a crisp 3x3 grid, and a
    64x64 one is drawn at 2x. Regression targets named ``x`` and ``y`` (pixel coordinates)
    are marked with a cross whose middle is left open, so a small square stays visible.
    An existing ``out`` is refused unless ``force``.
    """
    check_output_path(out, force)
    dataset = open_dataset(path)
    n = min(n, dataset.split_size(split))
    with_targets = "targets" in dataset.shapes[split]
    arrays = dataset.load(split, ["images", "targets"] if with_targets else ["images"], rows=n)
    images = arrays["images"]
    h, w, c = images.shape[1:]
    scale = max(1, CELL // max(h, w))
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    texts = [_label(dataset, arrays["targets"][i]) if with_targets else "(no target)" for i in range(n)]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_w = max(measure.textlength(t) for t in texts)
    cell_w, cell_h = max(w * scale, int(np.ceil(text_w))) + PAD, h * scale + LABEL_HEIGHT + PAD
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    xy = None
    if with_targets and dataset.task == "regression" and dataset.target_names[:2] == ["x", "y"]:
        xy = arrays["targets"][:, :2]
    for i in range(n):
        tile = images[i] if c == 3 else np.repeat(images[i][..., :1], 3, axis=2)
        tile = Image.fromarray(tile).resize((w * scale, h * scale), Image.NEAREST)
        left, top = (i % columns) * cell_w + PAD // 2, (i // columns) * cell_h + PAD // 2
        sheet.paste(tile, (left, top))
        if xy is not None:
            # Pixel centres sit at integer coordinates: pixel (0, 0) covers [-0.5, 0.5).
            cx, cy = left + (xy[i, 0] + 0.5) * scale, top + (xy[i, 1] + 0.5) * scale
            for sx, sy in ((1, 0), (-1, 0), (0, 1), (0, -1)):  # four ticks, 3 to 7 px out
                draw.line([(cx + 3 * sx, cy + 3 * sy), (cx + 7 * sx, cy + 7 * sy)], fill=(255, 0, 0))
        draw.text((left, top + h * scale + 1), texts[i], fill=(255, 255, 0))
    try:
        with atomic_path(out) as tmp:
            sheet.save(tmp, format="PNG")
    except OSError as exc:  # e.g. a folder root may not write (read-only mount): name the output
        raise ParamError(f"cannot write {str(out)!r}: {exc.strerror or exc}") from None
    return n
