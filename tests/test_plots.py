"""cnnbench.board.plots: matplotlib figures of one run (curves, scatter), written atomically."""

import numpy as np
from PIL import Image

from cnnbench.board.plots import learning_curves, learning_curves_figure, scatter, scatter_figure
from cnnbench.board.records import RunRecord


def _record(**kw):
    base = dict(name="mlp", source="baseline", fingerprint="f" * 16, family="lines",
                task="classification", metrics={"accuracy": 1.0}, seed=3, best_epoch=2,
                curves={"train_loss": [0.9, 0.5, 0.4], "val_accuracy": [0.5, 1.0, 1.0]})
    base.update(kw)
    return RunRecord(**base)


def test_curves_one_panel_per_curve_ticks_on_whole_epochs_selected_epoch_marked():
    fig = learning_curves_figure(_record())
    axes = fig.get_axes()
    assert [ax.get_title(loc="left") for ax in axes] == [
        "mlp seed 3: train_loss by epoch", "mlp seed 3: val_accuracy by epoch"]
    ticks = axes[0].get_xticks()
    assert np.array_equal(ticks, np.round(ticks))  # three epochs: no tick at 1.5
    marker = [line for line in axes[1].get_lines() if line.get_label() == "selected (epoch 2)"]
    assert len(marker) == 1 and list(marker[0].get_xdata()) == [2, 2]
    assert not [line for line in axes[0].get_lines() if line.get_label().startswith("selected")]


def test_curves_png_written(tmp_path):
    path = learning_curves(_record(), tmp_path / "c.png")
    assert Image.open(path).format == "PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"]  # no temporary file left


def test_scatter_panel_per_target_with_names_and_nan_left_out(tmp_path):
    targets = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    predicted = np.array([[1.0, np.nan], [3.5, 4.0], [5.0, 6.5]])
    fig = scatter_figure(predicted, targets, "ridge", ["x", "y"])
    axes = fig.get_axes()
    assert [ax.get_title(loc="left") for ax in axes] == ["ridge: x", "ridge: y"]
    assert len(axes[0].collections[0].get_offsets()) == 3
    assert len(axes[1].collections[0].get_offsets()) == 2  # the NaN prediction is not drawn
    assert Image.open(scatter(predicted, targets, tmp_path / "s.png", "ridge")).size[0] > 0
