"""Reading one split of a dataset file in whole HDF5 chunks, within a memory budget.

The trainer (when a dataset does not fit its memory budget) and
:class:`cnnbench.torch.StreamingDataset` both draw their batches from here; this module
needs numpy and h5py only.

An epoch, for a given ``(seed, epoch)``:

1. The split's images are stored in chunks of ``chunk_rows`` consecutive samples (about
   1 MiB each, see ``docs/format.md``). Every read is one whole chunk (and the same rows of
   the smaller arrays), so each compressed chunk is decompressed once per epoch.
2. The chunk order is a permutation drawn from ``default_rng([seed, epoch, 0])``; shard ``s``
   of ``n`` (a DataLoader worker on a distributed rank) takes every ``n``-th chunk of it,
   from the ``s``-th on. The shards are disjoint and cover every chunk: every sample is
   read exactly once per epoch, whatever the number of shards.
3. Each shard mixes its chunks in a shuffle buffer of at most ``buffer_size`` samples (its
   own generator, ``default_rng([seed, epoch, 1, s])``): once the buffer is full, every new
   chunk sends as many randomly chosen buffered samples to the output and takes their
   slots. The work per chunk is proportional to the chunk, not the buffer. At the end of
   the epoch the buffer is emptied in a random order.

So a batch's samples come from the chunks that passed through one shard's buffer; the order
depends on (seed, epoch, shard, number of shards, buffer_size, chunk layout), never on timing.

The trainer's streamed training batches use another order, :class:`Lanes` (one lane per batch
position), whose global batches do not depend on the number of distributed ranks: each rank
reads only its own lanes, which are its share of every batch (``docs/scale.md``).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from ..errors import FormatError, ParamError
from .h5file import SPLITS, Dataset, fingerprint_from, fingerprint_line, open_dataset

# Every shipped preset fits (patches-250, the largest, holds 1.3 GB of arrays), so their runs
# keep the in-memory batch order; a fixed figure, not a share of this machine's RAM, so the
# same command takes the same path on every machine.
DEFAULT_MEMORY_BUDGET = 4 * 2**30
# Default shuffle buffer of StreamingDataset, in bytes of samples (at least one chunk).
DEFAULT_BUFFER_BYTES = 64 * 2**20
# h5py's chunk cache per array: the small arrays (targets, factors) have chunks of up to
# ~1 MiB holding many image chunks' rows; cached, each is decompressed once, not once per read.
CHUNK_CACHE_BYTES = 4 * 2**20

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(value, name: str = "memory_budget") -> int:
    """``"256MB"``, ``"4GiB"``, ``"1.5G"`` or a number of bytes -> bytes (int, at least 1)."""
    if isinstance(value, bool):
        raise ParamError(f"{name}: {value!r} is not a size")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        found = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
        if not found or found.group(2).lower() not in _UNITS:
            raise ParamError(f"{name}: {value!r} is not a size (e.g. 256MB, 4GiB or a number of bytes)")
        number, unit = float(found.group(1)), found.group(2).lower()
    size = int(number * _UNITS[unit])
    if not np.isfinite(number) or size < 1:
        raise ParamError(f"{name}: {value!r} must be at least 1 byte")
    return size


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def _open(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r", rdcc_nbytes=CHUNK_CACHE_BYTES, rdcc_nslots=521)
    except OSError:
        raise FormatError(f"{path}: not a readable HDF5 file (truncated or corrupt?)") from None


def split_nbytes(ds: Dataset) -> dict[str, int]:
    """Bytes each split's arrays take in memory, uncompressed."""
    with _open(ds.path) as f:
        return {s: sum(int(f[s][name].nbytes) for name in f[s]) for s in SPLITS}


def fits_in_memory(ds: Dataset, memory_budget) -> bool:
    """Whether every split's arrays, loaded whole, fit ``memory_budget`` (bytes or "4GiB")."""
    return sum(split_nbytes(ds).values()) <= parse_bytes(memory_budget)


def check_split_name(split: str) -> None:
    if split not in SPLITS:
        raise ParamError(f"split: {split!r} is not one of {', '.join(SPLITS)}")


def check_split(ds: Dataset, split: str, targets: bool = True) -> None:
    """Refuse a split that is not there, or (``targets``) whose targets a public file withholds."""
    check_split_name(split)
    if targets and "targets" not in ds.shapes[split]:
        if ds.public and split == "test":
            raise FormatError(f"{ds.path}: test targets are withheld (a public file); read the "
                              "test images alone (targets=False) to make predictions for submission")
        raise FormatError(f"{ds.path}: split {split!r} has no targets")
    if ds.split_size(split) == 0:
        raise FormatError(f"{ds.path}: split {split!r} is empty")


class ChunkReader:
    """One split of one file, read one whole images chunk at a time.

    The h5py handle is opened lazily and again in each process (h5py handles do not survive
    fork), so a reader can be handed to DataLoader workers.

    Parameters
    ----------
    dataset : Dataset or path
    split : "train", "val" or "test"
    names : arrays to read (default: every array of the split); "images" always comes first.
    """

    def __init__(self, dataset: Dataset | str | os.PathLike, split: str, names: list[str] | None = None):
        self.dataset = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
        self.split = split
        check_split(self.dataset, split, targets=names is None or "targets" in names)
        available = list(self.dataset.shapes[split])
        names = available if names is None else list(names)
        missing = [n for n in names if n not in available]
        if missing:
            raise FormatError(f"{self.dataset.path}: split {split!r} has no {missing[0]!r} array")
        self.names = ["images"] + [n for n in names if n != "images"]
        self.n = self.dataset.split_size(split)
        with _open(self.dataset.path) as f:
            chunks = f[split]["images"].chunks
            self.chunk_rows = int(chunks[0]) if chunks else self.n
            self.row_bytes = sum(int(np.prod(f[split][n].shape[1:], dtype=np.int64)) * f[split][n].dtype.itemsize
                                 for n in self.names) + 8  # + the int64 index carried along
        self._file, self._arrays, self._pid = None, {}, None

    @property
    def chunk_bytes(self) -> int:
        return self.chunk_rows * self.row_bytes

    @property
    def n_chunks(self) -> int:
        return -(-self.n // self.chunk_rows)

    def chunk_range(self, chunk: int) -> tuple[int, int]:
        lo = chunk * self.chunk_rows
        return lo, min(self.n, lo + self.chunk_rows)

    def _group(self) -> dict[str, h5py.Dataset]:
        # Opened once per process and kept: the chunk cache lives in the open array.
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = _open(self.dataset.path), os.getpid()
            self._arrays = {name: self._file[self.split][name] for name in self.names}
        return self._arrays

    def read(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Rows ``lo:hi`` of every array, plus ``index`` (their sample indices)."""
        arrays = self._group()
        out = {}
        for name in self.names:
            try:
                out[name] = arrays[name][lo:hi]
            except OSError:
                raise FormatError(f"{self.dataset.path}: array {self.split}/{name} cannot be read "
                                  "(truncated or corrupt?)") from None
        out["index"] = np.arange(lo, hi, dtype=np.int64)
        return out

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file, self._arrays = None, {}

    def __getstate__(self):  # a pickled reader (to a spawned worker) reopens the file there
        state = dict(self.__dict__)
        state["_file"], state["_arrays"], state["_pid"] = None, {}, None
        return state

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 -- interpreter shutdown: h5py may be gone already
            pass

    # -- an epoch -----------------------------------------------------------------------

    def shard_chunks(self, seed: int, epoch: int, shard: int = 0, n_shards: int = 1,
                     shuffle: bool = True) -> np.ndarray:
        """The chunks shard ``shard`` of ``n_shards`` reads this epoch, in order."""
        if shuffle:
            order = np.random.default_rng([seed, epoch, 0]).permutation(self.n_chunks)
        else:
            order = np.arange(self.n_chunks)
        return order[shard::n_shards]

    def batches(self, batch_size: int, *, seed: int = 0, epoch: int = 0, shuffle: bool = True,
                buffer_size: int | None = None, shard: int = 0, n_shards: int = 1,
                drop_last: bool = False) -> Iterator[dict[str, np.ndarray]]:
        """Yield batches (dicts of arrays, ``index`` included) of one shard's share of an epoch.

        Without ``shuffle``: the shard's chunks in file order, unmixed (evaluation). Every
        batch but the shard's last has ``batch_size`` samples (the last too with ``drop_last``,
        which then drops up to ``batch_size - 1`` samples).
        """
        check_stream_args(batch_size, seed, epoch, shard, n_shards)
        chunks = self.shard_chunks(seed, epoch, shard, n_shards, shuffle)
        buffer_size = self.chunk_rows if buffer_size is None else max(int(buffer_size), 1)
        rng = np.random.default_rng([seed, epoch, 1, shard])
        out = _Batcher(batch_size)
        pool: dict[str, np.ndarray] | None = None
        filled = 0
        for chunk in chunks:
            block = self.read(*self.chunk_range(int(chunk)))
            m = len(block["index"])
            if not shuffle:
                yield from out.add(block)
                continue
            if pool is None:  # sized from the first block's dtypes and trailing shapes
                cap = max(buffer_size, self.chunk_rows)  # so that emit <= filled below
                pool = {k: np.empty((cap,) + v.shape[1:], v.dtype) for k, v in block.items()}
            cap = len(pool["index"])
            emit = max(0, filled + m - cap)
            if emit:
                # emit <= m <= filled: random buffered samples leave, the block's first
                # ``emit`` rows take their slots, the rest fills the free tail.
                slots = rng.choice(filled, size=emit, replace=False)
                yield from out.add({k: v[slots] for k, v in pool.items()})
                for k, v in pool.items():
                    v[slots] = block[k][:emit]
            for k, v in pool.items():
                v[filled:filled + m - emit] = block[k][emit:]
            filled += m - emit
        if pool is not None and filled:
            # Batch by batch: a permuted copy of the whole buffer would double its memory.
            order = rng.permutation(filled)
            for start in range(0, filled, self.chunk_rows):
                take = order[start:start + self.chunk_rows]
                yield from out.add({k: v[take] for k, v in pool.items()})
        if not drop_last:
            yield from out.flush()

    # -- the trainer's global batches: one lane per batch position ------------------------

    def lanes(self, batch_size: int, seed: int, epoch: int) -> Lanes:
        """The epoch's global batch order for the trainer (see :class:`Lanes`)."""
        check_stream_args(batch_size, seed, epoch, 0, 1)
        return Lanes(self, batch_size, seed, epoch)

    def lane_batches(self, batch_size: int, *, seed: int, epoch: int, rank: int = 0,
                     world: int = 1) -> Iterator[tuple[dict[str, np.ndarray], int, int]]:
        """Yield ``(rows, lo, n)`` for each global batch of the epoch: this rank's rows of it
        (dict of arrays, ``index`` included; possibly empty), their first position ``lo`` in
        the global batch, and the global batch's size ``n``. ``world`` must divide
        ``batch_size``. Rank ``r`` reads only the rows of its lanes, each once, in whole
        contiguous pieces of chunks; the global batches do not depend on ``world``."""
        check_stream_args(batch_size, seed, epoch, rank, world)
        if batch_size % world:
            raise ParamError(f"world size {world} does not divide the batch size {batch_size}")
        yield from self.lanes(batch_size, seed, epoch).batches(rank, world)


class Lanes:
    """The global batch order of one training epoch, the same for any number of ranks.

    Position ``p`` of every global batch of ``B`` samples is fed by lane ``p``:

    1. The split's chunks are taken in the epoch's order (:meth:`ChunkReader.shard_chunks`),
       their rows concatenated into one sequence.
    2. Lane ``p`` is the ``p``-th of ``B`` consecutive runs of that sequence: ``n // B`` rows,
       plus one for the ``n % B`` lanes spread evenly (``((p+1)e)//B > (pe)//B``), which
       feed the last, shorter batch.
    3. A lane's run is cut where chunks end into *pieces* (contiguous rows of one chunk);
       each piece's rows are permuted (``default_rng([seed, epoch, 2])``). The lane gives
       one row a batch, piece after piece.

    So every batch mixes ``B`` places of the split (one per lane), every sample comes once
    an epoch, and the ranks of a ``W``-rank job (``W`` dividing ``B``), each taking the
    ``B / W`` consecutive lanes ``[rB/W, (r+1)B/W)``, hold exactly the contiguous share of
    each global batch that one process would give them, reading only their own rows.
    A rank holds one piece per lane: at most ``B / W`` chunks of rows.
    """

    def __init__(self, reader: ChunkReader, batch_size: int, seed: int, epoch: int):
        self.reader, self.batch_size = reader, batch_size
        n, b = reader.n, batch_size
        chunks = reader.shard_chunks(seed, epoch)
        bounds = np.array([reader.chunk_range(int(c)) for c in chunks], dtype=np.int64).reshape(-1, 2)
        lengths = bounds[:, 1] - bounds[:, 0]
        chunk_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])  # positions in the sequence
        # seq[pos]: the file row at sequence position pos (the chunks' rows back to back).
        self.seq = np.repeat(bounds[:, 0] - chunk_starts, lengths) + np.arange(n, dtype=np.int64)
        extra = n % b
        p = np.arange(b, dtype=np.int64)
        self.sizes = n // b + ((p + 1) * extra // b - p * extra // b)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.n_batches = -(-n // b)
        # Pieces: the sequence cut at every chunk end and every lane start.
        cuts = np.union1d(chunk_starts, self.starts[self.sizes > 0])
        self.piece_starts = cuts
        self.piece_ends = np.append(cuts[1:], n)
        piece = np.repeat(np.arange(len(cuts)), self.piece_ends - cuts)
        shuffle = np.lexsort((np.random.default_rng([seed, epoch, 2]).random(n), piece))
        self.order = self.seq[shuffle]  # within-piece permutation of the sequence

    def global_batch(self, k: int) -> np.ndarray:
        """The file rows of global batch ``k``, in batch order (what one process trains on)."""
        live = self.sizes > k
        return self.order[self.starts[live] + k]

    def batches(self, rank: int = 0, world: int = 1) -> Iterator[tuple[dict[str, np.ndarray], int, int]]:
        reader, b = self.reader, self.batch_size
        first, last = rank * b // world, (rank + 1) * b // world  # this rank's lanes
        starts, sizes = self.starts[first:last], self.sizes[first:last]
        # This rank's pieces: (step at which its lane reaches it, lane, sequence range).
        lo_pos = starts[0] if len(starts) else 0
        hi_pos = lo_pos + int(sizes.sum())
        mine = (self.piece_starts >= lo_pos) & (self.piece_starts < hi_pos)
        p_lo, p_hi = self.piece_starts[mine], self.piece_ends[mine]
        lane = np.searchsorted(starts, p_lo, side="right") - 1
        step = p_lo - starts[lane]
        longest = int((p_hi - p_lo).max()) if len(p_lo) else 0
        pool: dict[str, np.ndarray] | None = None
        row0 = np.zeros(len(starts), dtype=np.int64)  # first file row of each lane's piece
        loads = np.argsort(step, kind="stable")
        nxt = 0
        extra = reader.n % b
        for k in range(self.n_batches):
            while nxt < len(loads) and step[loads[nxt]] == k:
                j = loads[nxt]
                nxt += 1
                rows_lo = int(self.seq[p_lo[j]])  # a piece is contiguous rows of one chunk
                block = reader.read(rows_lo, rows_lo + int(p_hi[j] - p_lo[j]))
                if pool is None:
                    pool = {name: np.empty((len(starts), longest) + v.shape[1:], v.dtype)
                            for name, v in block.items()}
                for name, v in block.items():
                    pool[name][lane[j], :len(v)] = v
                row0[lane[j]] = rows_lo
            live = np.flatnonzero(sizes > k)
            n = b if k * b + b <= reader.n else extra
            lo = rank * n // world
            if pool is None or not len(live):
                yield {}, lo, n
                continue
            offset = self.order[starts[live] + k] - row0[live]
            yield {name: v[live, offset] for name, v in pool.items()}, lo, n

    def rows_per_rank_bytes(self, world: int) -> int:
        """Bytes one rank holds for its lanes' pieces: ``B / W`` lanes x the longest piece."""
        longest = int((self.piece_ends - self.piece_starts).max())
        return self.batch_size // world * longest * self.reader.row_bytes



class _Batcher:
    """Cuts a stream of blocks into batches of ``batch_size``, carrying the remainder over."""

    def __init__(self, batch_size: int):
        self.batch_size, self.carry = batch_size, None

    def add(self, block: dict) -> Iterator[dict]:
        if self.carry is not None:
            block = {k: np.concatenate([self.carry[k], v]) for k, v in block.items()}
            self.carry = None
        n, b = len(block["index"]), self.batch_size
        full = n - n % b
        for start in range(0, full, b):
            yield {k: v[start:start + b] for k, v in block.items()}
        if full < n:
            self.carry = {k: v[full:] for k, v in block.items()}

    def flush(self) -> Iterator[dict]:
        if self.carry is not None:
            yield self.carry
            self.carry = None


def check_stream_args(batch_size: int, seed: int, epoch: int, shard: int, n_shards: int) -> None:
    for name, value, low in (("batch_size", batch_size, 1), ("seed", seed, 0), ("epoch", epoch, 0),
                             ("world_size", n_shards, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ParamError(f"{name}: {value!r} must be an integer >= {low}")
    if not 0 <= shard < n_shards:
        raise ParamError(f"rank: {shard} must be in 0..{n_shards - 1}")


def buffer_rows(reader: ChunkReader, memory_budget) -> int:
    """The shuffle buffer (samples) a budget allows: it holds the buffer, one chunk being read
    and the samples on their way out (at most a chunk plus a batch), so
    ``(buffer + 3 chunks) x row bytes <= budget``. A budget below four chunks is refused."""
    budget = parse_bytes(memory_budget)
    need = 4 * reader.chunk_bytes
    if budget < need:
        raise ParamError(f"memory_budget: {human_bytes(budget)} is below what streaming "
                         f"{reader.dataset.path.name}'s {reader.split} split needs: {human_bytes(need)} "
                         f"(four chunks of {reader.chunk_rows} samples: the shuffle buffer's least, "
                         "the chunk being read, the samples on their way out)")
    return int(min(reader.n, budget // reader.row_bytes - 3 * reader.chunk_rows))


def check_fingerprint_streamed(ds: Dataset) -> None:
    """:func:`cnnbench.data.h5file.check_fingerprint`, reading each array chunk by chunk (the
    same sha256 as of the whole array's bytes) so memory stays at a few chunks."""
    if ds.public:
        raise FormatError(f"{ds.path}: is a public copy; its fingerprint covers the withheld test "
                          f"arrays and seed, so only the full file can be checked against it")
    lines = []
    with _open(ds.path) as f:
        for split in SPLITS:
            for name in sorted(f[split]):
                array = f[split][name]
                digest = hashlib.sha256()
                step = int(array.chunks[0]) if array.chunks else max(1, len(array))
                try:
                    for lo in range(0, len(array), step):
                        digest.update(np.ascontiguousarray(array[lo:lo + step]).tobytes())
                except OSError:
                    raise FormatError(f"{ds.path}: array {split}/{name} cannot be read "
                                      "(truncated or corrupt?)") from None
                lines.append(fingerprint_line(split, name, array.dtype, array.shape, digest.hexdigest()))
    if fingerprint_from(ds.identity, lines) != ds.fingerprint:
        raise FormatError(f"{ds.path}: its arrays or attributes do not match its recorded fingerprint "
                          f"{ds.fingerprint[:12]} (the file was modified after it was generated)")

