"""cnnbench.torch: H5Dataset and StreamingDataset, alone and in DataLoaders with workers."""

import hashlib
import multiprocessing

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch.utils.data import DataLoader

import cnnbench
from cnnbench.cli import main
from cnnbench.errors import CnnbenchError, DataIndexError, FormatError, ParamError
from cnnbench.torch import H5Dataset, StreamingDataset, batch_to_tensor, to_tensor

# fork: the DataLoader workers inherit a handle the parent opened (the case h5py breaks on).
FORK = {"multiprocessing_context": multiprocessing.get_context("fork")}


@pytest.fixture(scope="module")
def boxes_file(tmp_path_factory):
    """Boxes at 32 px: 3072 bytes an image, 341 images a chunk; 3000 train images = 9 chunks."""
    path = tmp_path_factory.mktemp("torch") / "boxes.h5"
    cnnbench.generate(path, "boxes", size=32, n_train=3000, n_val=40, n_test=30, seed=5, noise=20.0)
    return path


@pytest.fixture(scope="module")
def train_arrays(boxes_file):
    return cnnbench.open_dataset(boxes_file).load("train")


def image_hashes(images) -> list[str]:
    return sorted(hashlib.sha1(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images)


def test_h5dataset_items(boxes_file, train_arrays):
    ds = H5Dataset(boxes_file, "train", return_factors=True)
    assert len(ds) == 3000
    image, target, factors = ds[17]
    assert image.dtype == torch.float32 and image.shape == (3, 32, 32)
    assert torch.equal(image, to_tensor(train_arrays["images"][17]))
    assert np.array_equal(target.numpy(), train_arrays["targets"][17])
    assert set(factors) == set(train_arrays) - {"images", "targets"}
    assert np.array_equal(factors["boxes"], train_arrays["boxes"][17])
    assert np.array_equal(ds.factors(-1)["boxes"], train_arrays["boxes"][-1])
    raw = H5Dataset(boxes_file, "val", transform=lambda im: im, target_transform=lambda t: t * 2)
    image, target = raw[0]
    assert image.dtype == np.uint8 and image.shape == (32, 32, 3)
    assert np.array_equal(target, 2 * cnnbench.open_dataset(boxes_file).load("val")["targets"][0])


def test_h5dataset_refusals(boxes_file):
    ds = H5Dataset(boxes_file, "test")
    for bad in (30, -31):
        with pytest.raises(DataIndexError, match=f"index {bad} is out of range: the test split of boxes.h5 has 30"):
            ds[bad]
    assert issubclass(DataIndexError, IndexError) and issubclass(DataIndexError, CnnbenchError)
    with pytest.raises(DataIndexError, match="not an integer"):
        ds["3"]
    with pytest.raises(ParamError, match="split: 'dev' is not one of"):
        H5Dataset(boxes_file, "dev")
    with pytest.raises(FormatError, match="no such file"):
        H5Dataset(boxes_file.with_name("missing.h5"))


def test_a_file_that_is_not_cnnbench_and_a_public_test_split(boxes_file, tmp_path):
    import h5py

    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.zeros(3)
    for cls in (H5Dataset, StreamingDataset):
        with pytest.raises(FormatError, match="not a cnnbench dataset"):
            cls(plain)
    public = tmp_path / "public.h5"
    result = CliRunner().invoke(main, ["export-public", str(boxes_file), "--out", str(public),
                                       "--allow-guessable-seed"])
    assert result.exit_code == 0, result.output
    for cls in (H5Dataset, StreamingDataset):
        with pytest.raises(FormatError, match="test targets are withheld.*targets=False"):
            cls(public, "test")
    images = H5Dataset(public, "test", targets=False)
    assert images[0].shape == (3, 32, 32) and len(images) == 30
    batches = list(StreamingDataset(public, "test", targets=False, batch_size=8, shuffle=False))
    assert torch.equal(torch.cat(batches), torch.stack([images[i] for i in range(30)]))


def test_h5dataset_two_workers_yield_every_index_once_per_epoch(boxes_file, train_arrays):
    ds = H5Dataset(boxes_file, "train", transform=lambda im: torch.from_numpy(im))
    ds[0]  # the parent holds an open handle when the workers fork
    loader = DataLoader(ds, batch_size=100, shuffle=True, num_workers=2,
                        generator=torch.Generator().manual_seed(0), **FORK)
    for _ in range(2):  # two epochs
        seen = [im for images, _ in loader for im in images.numpy()]
        assert len(seen) == 3000
        assert image_hashes(seen) == image_hashes(train_arrays["images"])
    # Batched reads (__getitems__) give what single reads give, repeated indices included.
    assert all(torch.equal(a[0], b[0]) for a, b in zip(ds.__getitems__([5, 2, 5, 2999]),
                                                      [ds[5], ds[2], ds[5], ds[2999]]))


def streamed_indices(path, *, seed, epoch, workers, world_size, **kwargs):
    """Per rank, the list of index batches the rank's DataLoader yields."""
    ranks = []
    for rank in range(world_size):
        stream = StreamingDataset(path, batch_size=64, seed=seed, epoch=epoch, rank=rank,
                                  world_size=world_size, return_index=True, **kwargs)
        loader = DataLoader(stream, batch_size=None, num_workers=workers, **(FORK if workers else {}))
        ranks.append([index.tolist() for *_, index in loader])
    return ranks


def test_streaming_two_workers_two_ranks_cover_every_index_once_deterministically(boxes_file):
    path = boxes_file
    ranks = streamed_indices(path, seed=3, epoch=0, workers=2, world_size=2, buffer_size=1500)
    everything = [i for rank in ranks for batch in rank for i in batch]
    assert sorted(everything) == list(range(3000))  # every sample exactly once
    assert all(rank for rank in ranks)  # both ranks got work
    assert all(len(b) <= 64 for rank in ranks for b in rank)
    assert ranks == streamed_indices(path, seed=3, epoch=0, workers=2, world_size=2, buffer_size=1500)
    other = streamed_indices(path, seed=3, epoch=1, workers=2, world_size=2, buffer_size=1500)
    assert other != ranks and sorted(i for r in other for b in r for i in b) == list(range(3000))
    # Mixed within the buffer: not the chunks' own order.
    assert everything != sorted(everything)


def test_streaming_batches_hold_the_files_rows(boxes_file, train_arrays):
    stream = StreamingDataset(boxes_file, batch_size=100, seed=1, return_factors=True, return_index=True)
    assert stream.num_samples() == 3000
    total = 0
    for images, targets, factors, index in stream:
        idx = index.numpy()
        assert torch.equal(images, batch_to_tensor(torch.from_numpy(train_arrays["images"][idx])))
        assert np.array_equal(targets.numpy(), train_arrays["targets"][idx])
        assert np.array_equal(factors["color"].numpy(), train_arrays["color"][idx])
        total += len(idx)
    assert total == 3000
    stream.set_epoch(4)
    first = next(iter(stream))[3]
    stream.set_epoch(4)
    assert torch.equal(first, next(iter(stream))[3])
    ordered = StreamingDataset(boxes_file, "train", batch_size=1000, shuffle=False, drop_last=True,
                               return_index=True)
    assert [b[2].tolist() for b in ordered] == [list(range(s, s + 1000)) for s in (0, 1000, 2000)]


def test_streaming_refusals(boxes_file):
    for kwargs, match in [({"batch_size": 0}, "batch_size: 0 must be an integer >= 1"),
                          ({"rank": 2, "world_size": 2}, r"rank: 2 must be in 0..1"),
                          ({"world_size": 0}, "world_size: 0 must be"),
                          ({"seed": -1}, "seed: -1 must be")]:
        with pytest.raises(ParamError, match=match):
            StreamingDataset(boxes_file, **kwargs)
    with pytest.raises(ParamError, match="epoch: -1"):
        StreamingDataset(boxes_file).set_epoch(-1)
