"""PNG plots of runs with matplotlib: learning curves and predicted-vs-true scatters.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, never through
``pyplot``: no display, no global figure registry, safe to call from any thread. matplotlib
is imported inside the functions so commands that never plot do not pay for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from .records import RunRecord

MAX_SCATTER_POINTS = 3000  # beyond this a scatter is a blot; the first ones are a fair sample


def _figure(rows: int, cols: int, width: float, height: float, **kw):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, list(fig.subplots(rows, cols, squeeze=False, **kw).flat)


def _save(fig, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def learning_curves(record: RunRecord, path: str | Path) -> Path:
    """Write the learning curves of ``record`` as a PNG at ``path``."""
    return _save(learning_curves_figure(record), path)


def learning_curves_figure(record: RunRecord):
    """Train loss and the val metric per epoch, one panel each; the selected epoch marked."""
    from matplotlib.ticker import MaxNLocator

    panels = [(k, [v for v in values if v is not None]) for k, values in record.curves.items() if values]
    n = max(1, len(panels))
    fig, axes = _figure(n, 1, 6.4, 2.4 * n, sharex=True)  # stacked: they share the epoch axis
    for ax, (key, values) in zip(axes, panels):
        epochs = np.arange(1, len(values) + 1)
        ax.plot(epochs, values, marker="o" if len(values) <= 60 else None, markersize=3)
        ax.set_title(f"{record.name} seed {record.seed}: {key} by epoch", fontsize=9, loc="left")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no tick at epoch 1.5
        ax.grid(alpha=0.3)
        if record.best_epoch and key.startswith("val_") and record.best_epoch <= len(values):
            ax.axvline(record.best_epoch, color="0.6", linestyle="--", linewidth=1,
                       label=f"selected (epoch {record.best_epoch})")
            ax.legend(fontsize=8, loc="best")
    axes[-1].set_xlabel("epoch")
    return fig


def scatter(predicted: np.ndarray, targets: np.ndarray, path: str | Path, title: str,
            names: list[str] | None = None) -> Path:
    """Write the predicted-vs-true scatter as a PNG at ``path``."""
    return _save(scatter_figure(predicted, targets, title, names), path)


def scatter_figure(predicted: np.ndarray, targets: np.ndarray, title: str,
                   names: list[str] | None = None):
    """Predicted against true, one panel per target column, with the diagonal; NaN left out."""
    predicted = np.asarray(predicted, dtype=np.float64).reshape(len(targets), -1)
    targets = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
    k = targets.shape[1]
    fig, axes = _figure(1, k, 3.8 * k, 3.8)
    for j, ax in enumerate(axes):
        t, p = targets[:MAX_SCATTER_POINTS, j], predicted[:MAX_SCATTER_POINTS, j]
        finite = np.isfinite(p)
        lo = float(min(t.min(), p[finite].min() if finite.any() else t.min()))
        hi = float(max(t.max(), p[finite].max() if finite.any() else t.max()))
        ax.plot([lo, hi], [lo, hi], color="0.6", linewidth=1)
        ax.scatter(t[finite], p[finite], s=4, alpha=0.6, linewidths=0)
        name = names[j] if names and j < len(names) else f"target {j}"
        ax.set_title(f"{title}: {name}", fontsize=9, loc="left")
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
    return fig
