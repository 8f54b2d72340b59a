"""The contract every registered family must keep (torchvision-style: one test, every family)."""

import h5py
import numpy as np
import pytest

from cnnbench.data.families import FAMILIES, SPLITS
from cnnbench.data.generate import BLOCK_SIZE, build_spec, generate_arrays, write_dataset
from cnnbench.data.h5file import compute_fingerprint, open_dataset

FAMILY_NAMES = sorted(FAMILIES)
SMALL_SIZES = {"n_train": 40, "n_val": 12, "n_test": 10}


def small_spec(name, **overrides):
    given = {"seed": 3, **SMALL_SIZES, **FAMILIES[name].small, **overrides}
    return build_spec(name, given)


@pytest.fixture(scope="module", params=FAMILY_NAMES)
def small_file(request, tmp_path_factory):
    name = request.param
    path = tmp_path_factory.mktemp(name) / "small.h5"
    spec = small_spec(name)
    write_dataset(spec, path)
    return name, spec, path


def test_file_shapes_dtypes_and_labels(small_file):
    name, spec, path = small_file
    family = FAMILIES[name]
    dataset = open_dataset(path)
    assert dataset.family == name and dataset.task == family.task
    with h5py.File(path, "r") as f:
        for split in SPLITS:
            images, targets = f[split]["images"], f[split]["targets"]
            n = spec.sizes[split]
            assert images.dtype == np.uint8 and images.ndim == 4 and images.shape[0] == n
            assert images.shape[3] in (1, 3)
            assert images.chunks is not None and images.compression in (None, "gzip")
            assert images.chunks[0] & (images.chunks[0] - 1) == 0 or images.chunks[0] == n  # 2^k rows
            for extra in f[split].values():
                assert extra.shape[0] == n, extra.name
            t = targets[()]
            if family.task == "classification":
                assert t.dtype == np.int64 and t.shape == (n,)
                assert t.min() >= 0 and t.max() < dataset.num_classes
            else:
                assert t.dtype == np.float32 and t.ndim == 2
                assert t.shape[1] == len(dataset.target_names)
                assert np.isfinite(t).all()


def test_fingerprint_matches_arrays(small_file):
    _, _, path = small_file
    assert open_dataset(path).fingerprint == compute_fingerprint(path)


def test_deterministic_byte_for_byte_whatever_the_workers(small_file, tmp_path):
    name, spec, path = small_file
    again = tmp_path / "again.h5"
    write_dataset(spec, again, workers=2)
    assert again.read_bytes() == path.read_bytes()


def test_seed_changes_the_data(small_file):
    name, spec, _ = small_file
    a = generate_arrays(spec, "train")
    b = generate_arrays(small_spec(name, seed=4), "train")
    assert not np.array_equal(a["images"], b["images"])


def test_splits_are_independent_streams(small_file):
    name, spec, _ = small_file
    if spec.sizes != {s: SMALL_SIZES[f"n_{s}"] for s in SPLITS}:
        pytest.skip("layout fixes the split sizes")
    more_test = small_spec(name, n_test=SMALL_SIZES["n_test"] + 7)
    for split in ("train", "val"):
        a, b = generate_arrays(spec, split), generate_arrays(more_test, split)
        assert all(np.array_equal(a[k], b[k]) for k in a)
    val, test = generate_arrays(spec, "val"), generate_arrays(spec, "test")
    assert not np.array_equal(val["images"][:10], test["images"][:10])


def test_full_blocks_do_not_depend_on_split_length():
    # Each block has its own stream: growing a split leaves its complete blocks unchanged.
    spec = build_spec("lines", {"size": 6, "noise": 5.0, "n_train": BLOCK_SIZE + 5})
    longer = build_spec("lines", {"size": 6, "noise": 5.0, "n_train": 2 * BLOCK_SIZE})
    a, b = generate_arrays(spec, "train"), generate_arrays(longer, "train")
    assert np.array_equal(a["images"][:BLOCK_SIZE], b["images"][:BLOCK_SIZE])


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_several_blocks_give_the_same_bytes_whatever_the_workers(name, tmp_path):
    # More than one block, so the worker pool really draws them (one block is drawn in-process).
    spec = small_spec(name, n_train=BLOCK_SIZE + 5, n_val=BLOCK_SIZE + 1)
    files = []
    for workers in (1, 2, 3):
        files.append(tmp_path / f"w{workers}.h5")
        write_dataset(spec, files[-1], workers=workers)
    assert files[0].read_bytes() == files[1].read_bytes() == files[2].read_bytes()
