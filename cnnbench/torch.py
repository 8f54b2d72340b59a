"""Torch datasets over cnnbench files, for your own training loop (see ``docs/python.md``).

- :class:`H5Dataset`: map-style, one sample per index, for ``DataLoader(shuffle=True)``.
- :class:`StreamingDataset`: iterable, yields whole batches read in HDF5 chunks through a
  bounded shuffle buffer; for data larger than memory, and for speed.

Both open their h5py handle lazily, again in each process: h5py handles do not survive
fork, so they are safe in ``DataLoader(num_workers>0)``. This is the module that imports
torch; ``import cnnbench`` does not.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset as _TorchDataset
from torch.utils.data import IterableDataset, get_worker_info

from .data.h5file import Dataset, open_dataset, read_rows
from .data.streaming import DEFAULT_BUFFER_BYTES, ChunkReader, check_split, check_stream_args
from .errors import DataIndexError

# h5py's chunk cache per array for H5Dataset: a random index decompresses its whole chunk
# (~1 MiB); kept, the chunk's other samples cost no second decompression.
H5DATASET_CACHE_BYTES = 64 * 2**20


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> float32 (C, H, W) in [0, 1] (the protocol's default preprocessing)."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


def batch_to_tensor(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float32 (N, C, H, W) in [0, 1]."""
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def _as_dataset(path) -> Dataset:
    return path if isinstance(path, Dataset) else open_dataset(path)


class H5Dataset(_TorchDataset):
    """One split of a cnnbench file as a map-style torch ``Dataset``.

    Parameters
    ----------
    path : path of a cnnbench ``.h5`` file, or an opened :class:`cnnbench.Dataset`
    split : "train", "val" or "test"
    transform : callable(uint8 ndarray (H, W, C)) -> image, default :func:`to_tensor`
        (float32 tensor (C, H, W) in [0, 1])
    target_transform : callable(target) -> target. Targets are an int64 class id
        (classification) or a float32 ndarray (k,) in the targets' units (regression);
        without a transform, a tensor.
    targets : False to yield images alone (a public file's test split, for predictions)
    return_factors : also yield the sample's nuisance factors (dict of ndarrays)
    cache_bytes : HDF5 chunk cache per array and worker (default 64 MiB). A random index
        decompresses its whole ~1 MiB chunk unless the chunk is cached: a cache that holds
        the split makes random access cheap after the first epoch.

    Returns per index: ``(image, target)``, ``(image, target, factors)``, or the image alone.
    ``DataLoader`` batches through :meth:`__getitems__`: one read per array for the batch.
    """

    def __init__(self, path, split: str = "train", transform: Callable | None = None,
                 target_transform: Callable | None = None, *, targets: bool = True,
                 return_factors: bool = False, cache_bytes: int = H5DATASET_CACHE_BYTES):
        self.dataset = _as_dataset(path)
        self.cache_bytes = int(cache_bytes)
        check_split(self.dataset, split, targets=targets)
        self.split, self.transform, self.target_transform = split, transform, target_transform
        self.targets, self.return_factors = targets, return_factors
        self.factor_names = sorted(n for n in self.dataset.shapes[split] if n not in ("images", "targets"))
        self.n = self.dataset.split_size(split)
        self._file, self._arrays, self._pid = None, {}, None

    def __len__(self) -> int:
        return self.n

    def _group(self) -> dict[str, h5py.Dataset]:
        """The split's arrays, opened once per process: HDF5's chunk cache lives in the open
        array, so reopening one per item would decompress its chunk every time."""
        if self._file is None or self._pid != os.getpid():  # a forked worker opens its own
            self._file = h5py.File(self.dataset.path, "r", rdcc_nbytes=self.cache_bytes, rdcc_nslots=10007)
            self._arrays = {name: self._file[self.split][name] for name in self._file[self.split]}
            self._pid = os.getpid()
        return self._arrays

    def _index(self, index) -> int:
        if isinstance(index, torch.Tensor) and index.numel() == 1:
            index = index.item()
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise DataIndexError(f"index {index!r} is not an integer")
        i = int(index) + (self.n if index < 0 else 0)
        if not 0 <= i < self.n:
            raise DataIndexError(f"index {int(index)} is out of range: the {self.split} split of "
                                 f"{self.dataset.path.name} has {self.n} samples")
        return i

    def factors(self, index: int) -> dict[str, np.ndarray]:
        """The sample's nuisance factors (box bounds, colours, rotation ...), by name."""
        i, group = self._index(index), self._group()
        return {name: group[name][i] for name in self.factor_names}

    def __getitem__(self, index):
        i = self._index(index)
        group = self._group()
        rows = {"images": group["images"][i]}
        if self.targets:
            rows["targets"] = group["targets"][i]
        if self.return_factors:
            rows.update({name: group[name][i] for name in self.factor_names})
        return self._sample(rows)

    def __getitems__(self, indices) -> list:
        """A batch of samples (what ``DataLoader`` asks for): each array read once, in index order."""
        wanted = np.array([self._index(i) for i in indices], dtype=np.int64)
        unique, where = np.unique(wanted, return_inverse=True)
        group = self._group()
        names = ["images"] + (["targets"] if self.targets else []) + (self.factor_names if self.return_factors else [])
        arrays = {name: read_rows(group[name], unique) for name in names}
        return [self._sample({name: a[j] for name, a in arrays.items()}) for j in where]

    def _sample(self, rows: dict):
        image = (self.transform or to_tensor)(rows.pop("images"))
        if not self.targets:
            return image
        target = rows.pop("targets")
        if self.target_transform is not None:
            target = self.target_transform(target)
        else:
            target = torch.as_tensor(target)
        return (image, target, rows) if self.return_factors else (image, target)

    def __getstate__(self):  # to a spawned worker: the handle is reopened there
        state = dict(self.__dict__)
        state["_file"], state["_arrays"], state["_pid"] = None, {}, None
        return state


class StreamingDataset(IterableDataset):
    """One split streamed in whole HDF5 chunks: an iterable of shuffled batches.

    Each epoch reads every chunk of the split once, in an order drawn from (seed, epoch),
    split between DataLoader workers and distributed ranks, and mixes samples through a
    shuffle buffer of at most ``buffer_size`` samples per worker (see
    :mod:`cnnbench.data.streaming`). Every sample comes exactly once per epoch, over all ranks
    and workers; the same (seed, epoch, rank, world_size, workers, buffer_size) give the
    same batches.

    Use it with ``DataLoader(stream, batch_size=None, num_workers=...)`` (it yields batches
    already) and call :meth:`set_epoch` before each epoch.

    Parameters
    ----------
    path : path of a cnnbench ``.h5`` file, or an opened :class:`cnnbench.Dataset`
    split : "train", "val" or "test"
    batch_size : samples per batch; each worker's last batch of an epoch may be smaller
        (unless ``drop_last``)
    shuffle : False reads chunks in file order, unmixed (evaluation)
    seed, epoch : the order's seed (not the dataset's) and the epoch (also :meth:`set_epoch`)
    buffer_size : shuffle buffer in samples per worker (default: 64 MiB of samples, at least
        one chunk). Memory per worker: about buffer + 3 chunks.
    rank, world_size : this process's share in distributed training (e.g.
        ``torch.distributed.get_rank()``, ``get_world_size()``); ranks may differ by one chunk.
    drop_last : drop each worker's last, smaller batch
    transform : callable(uint8 tensor (N, H, W, C)) -> batch, default :func:`batch_to_tensor`
    targets : False to yield images alone (a public file's test split)
    return_factors, return_index : also yield the factors (dict of tensors) and the samples'
        indices in the split (int64 tensor)

    Yields ``(images, targets[, factors][, index])``, or ``images[, ...]`` without targets.
    """

    def __init__(self, path, split: str = "train", *, batch_size: int = 64, shuffle: bool = True,
                 seed: int = 0, epoch: int = 0, buffer_size: int | None = None, rank: int = 0,
                 world_size: int = 1, drop_last: bool = False, transform: Callable | None = None,
                 targets: bool = True, return_factors: bool = False, return_index: bool = False):
        super().__init__()
        ds = _as_dataset(path)
        check_split(ds, split, targets=targets)
        check_stream_args(batch_size, seed, epoch, rank, world_size)
        factors = sorted(n for n in ds.shapes[split] if n not in ("images", "targets")) if return_factors else []
        self.reader = ChunkReader(ds, split, ["images"] + (["targets"] if targets else []) + factors)
        self.factor_names = factors
        self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, epoch
        if buffer_size is None:
            buffer_size = max(self.reader.chunk_rows, DEFAULT_BUFFER_BYTES // self.reader.row_bytes)
        self.buffer_size = int(buffer_size)
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.transform, self.targets = transform, targets
        self.return_factors, self.return_index = return_factors, return_index

    def set_epoch(self, epoch: int) -> None:
        """The next iteration's epoch (each epoch has its own order). Workers get the
        dataset as it is when iteration starts (unless ``persistent_workers``)."""
        check_stream_args(self.batch_size, self.seed, epoch, self.rank, self.world_size)
        self.epoch = epoch

    def num_samples(self) -> int:
        """Samples this rank reads this epoch, over all its workers (no ``__len__``: a
        DataLoader would take it for the number of batches)."""
        chunks = self.reader.shard_chunks(self.seed, self.epoch, self.rank, self.world_size, self.shuffle)
        return sum(hi - lo for lo, hi in (self.reader.chunk_range(int(c)) for c in chunks))

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        # Shards are (rank, worker) pairs: rank r's workers take shards r*W .. r*W + W-1.
        shard, n_shards = self.rank * workers + worker, self.world_size * workers
        for batch in self.reader.batches(self.batch_size, seed=self.seed, epoch=self.epoch,
                                         shuffle=self.shuffle, buffer_size=self.buffer_size,
                                         shard=shard, n_shards=n_shards, drop_last=self.drop_last):
            images = (self.transform or batch_to_tensor)(torch.from_numpy(batch["images"]))
            out = [images]
            if self.targets:
                out.append(torch.from_numpy(batch["targets"]))
            if self.return_factors:
                out.append({name: torch.from_numpy(batch[name]) for name in self.factor_names})
            if self.return_index:
                out.append(torch.from_numpy(batch["index"]))
            yield out[0] if len(out) == 1 else tuple(out)


__all__ = ["H5Dataset", "StreamingDataset", "batch_to_tensor", "to_tensor"]
