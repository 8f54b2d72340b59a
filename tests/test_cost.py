"""The run-time guess that orders a worker pool's jobs: larger work, larger guess."""

from __future__ import annotations

import pytest
from cnnbench.baselines import Baseline, get_baseline

from cnnbench.bench.cost import estimated_seconds
from cnnbench.data.generate import build_spec, write_dataset
from cnnbench.data.h5file import open_dataset


@pytest.fixture(scope="module")
def boxes(tmp_path_factory):
    path = tmp_path_factory.mktemp("cost") / "boxes.h5"
    write_dataset(build_spec("boxes", {"size": 32, "box_size": 4, "n_train": 1200, "n_val": 16, "n_test": 16}), path)
    return open_dataset(path)


def test_the_guess_grows_with_epochs_and_with_the_model(boxes):
    fixed, asked = get_baseline("boxes-cnn-fixed"), get_baseline("boxes-cnn-as-asked")
    assert estimated_seconds(boxes, fixed, epochs=4) > estimated_seconds(boxes, fixed, epochs=2) > 0
    # Same network; above 1,000 images the fixed recipe trains 3 epochs, the question's one.
    assert estimated_seconds(boxes, fixed) > estimated_seconds(boxes, asked)
    # The mean predictor's closed form is cheaper than the pixel ridge's normal equations.
    assert 0 < estimated_seconds(boxes, get_baseline("mean")) < estimated_seconds(boxes, get_baseline("ridge"))


def test_a_model_that_cannot_be_built_is_guessed_free(boxes):
    def broken(info):
        raise RuntimeError("no model")

    assert estimated_seconds(boxes, Baseline("broken", "raises", broken)) == 0.0


def test_a_batch_norm_model_is_guessed_and_torch_random_state_is_left_alone(boxes):
    import torch
    from torch import nn

    def bn_dropout(info):  # on one image, batch norm in training mode raises and dropout draws
        return nn.Sequential(nn.Conv2d(info.channels, 4, 3, stride=32), nn.BatchNorm2d(4), nn.ReLU(),
                             nn.Flatten(), nn.Dropout(0.5), nn.Linear(4, info.num_outputs))

    torch.manual_seed(123)
    before = torch.get_rng_state()
    assert estimated_seconds(boxes, Baseline("bn", "batch norm and dropout", bn_dropout)) > 0
    assert torch.equal(torch.get_rng_state(), before)
