"""Family `lines`: the seed 000 images, and every knob doing what it says."""

import numpy as np
import pytest

from cnnbench.data.generate import build_spec, generate_arrays
from cnnbench.data.presets import get_preset
from cnnbench.errors import ParamError


def arrays(split="train", **given):
    return generate_arrays(build_spec("lines", given), split)


def test_lines_3x3_is_exactly_seed_000_in_every_split():
    spec = get_preset("lines-3x3").spec()
    expected_rows = [np.zeros((3, 3), np.uint8) for _ in range(6)]
    for k in range(3):
        expected_rows[k][k, :] = 255  # class 0: white row k
        expected_rows[3 + k][:, k] = 255  # class 1: white column k
    for split in ("train", "val", "test"):
        out = generate_arrays(spec, split)
        assert out["images"].shape == (6, 3, 3, 1)
        assert np.array_equal(out["images"][..., 0], np.stack(expected_rows))
        assert out["targets"].tolist() == [0, 0, 0, 1, 1, 1]


def test_row_is_class_0_and_column_class_1():
    out = arrays(size=7, n_train=200, thickness="1:3")
    images, labels = out["images"][..., 0] > 0, out["targets"]
    row_lit = images.all(axis=2).any(axis=1)  # some full row is lit
    col_lit = images.all(axis=1).any(axis=1)
    assert np.array_equal(row_lit, labels == 0)
    assert np.array_equal(col_lit, labels == 1)
    assert np.array_equal(images.sum(axis=(1, 2)), 7 * out["thickness"])


def test_balanced_classes_are_exactly_half():
    out = arrays(size=5, n_train=1000)
    assert np.bincount(out["targets"]).tolist() == [500, 500]


def test_partial_lines_have_recorded_length_and_offset():
    out = arrays(size=16, n_train=300, length="0.25:0.75")
    lit = (out["images"][..., 0] > 0).sum(axis=(1, 2))
    assert np.array_equal(lit, out["length"])
    assert out["length"].min() >= 4 and out["length"].max() <= 12


def test_noise_dropout_and_distractors_change_the_pixels_as_documented():
    clean = arrays(size=16, n_train=100)["images"].astype(int)
    noisy = arrays(size=16, n_train=100, noise=30.0)["images"].astype(int)
    assert 10 < np.abs(noisy - clean).mean() < 30
    broken = arrays(size=16, n_train=100, dropout=0.5)["images"]
    assert 0.3 < (broken > 0).sum() / (clean > 0).sum() < 0.7
    cluttered = arrays(size=16, n_train=100, distractors=5)["images"]
    extra = (cluttered > 0).sum(axis=(1, 2, 3)) - (clean > 0).sum(axis=(1, 2, 3))
    assert extra.min() >= 0 and extra.max() <= 5 and extra.mean() > 3


@pytest.mark.parametrize("given, match", [
    ({"size": 1}, "size: 1 is below the minimum 2"),
    ({"size": 100000, "n_train": 2}, "size: 100000 is above the maximum 256"),  # not a MemoryError
    ({"size": 4, "thickness": 5}, "thickness: 5 is larger than the image size 4"),
    ({"n_train": 0}, "n_train: 0"),
    ({"n_test": -3}, "n_test: -3"),
    ({"noise": -1}, "noise: -1"),
    ({"length": "0.9:0.2"}, "low > high"),
    ({"size": 8, "thickness": 3, "length": 0.25}, "indistinguishable"),
    ({"positions": "diagonal"}, "positions: 'diagonal' is not one of"),
    ({"colour": 3}, "unknown parameter 'colour'"),
    ({"size": "abc"}, "size: 'abc' is not an integer"),
])
def test_bad_parameters_name_the_value(given, match):
    with pytest.raises(ParamError, match=match):
        build_spec("lines", given)


def test_noisy_files_record_an_estimated_optimum_from_the_oracle(tmp_path):
    import json

    import h5py

    from cnnbench.data.generate import write_dataset

    clean, noisy = tmp_path / "clean.h5", tmp_path / "noisy.h5"
    write_dataset(build_spec("lines", {"size": 8, "n_test": 400}), clean)
    write_dataset(build_spec("lines", {"size": 8, "n_test": 400, "noise": 150.0,
                                       "length": "0.5:1", "distractors": 6}), noisy)
    with h5py.File(clean) as f:
        assert json.loads(f.attrs["optimum"]) == {
            "metric": "accuracy", "value": 1.0, "exact": True,
            "why": "noise-free lines longer than thick are unambiguous"}
    with h5py.File(noisy) as f:
        optimum = json.loads(f.attrs["optimum"])
    # Heavy noise makes some lines ambiguous even to an oracle that knows where they lie.
    assert optimum["exact"] is False and 0.6 < optimum["value"] < 1.0
