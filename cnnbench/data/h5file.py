"""HDF5 format v2: writing a dataset atomically and reading it back (see docs/format.md).

A file is readable with plain h5py: root attributes describe it, groups ``train``, ``val``
and ``test`` hold ``images`` (uint8, N x H x W x C), ``targets`` and per-family extras.

Every reader goes through :func:`open_dataset`, which validates the whole structure once
(attributes, links, dtypes, shapes, class ids) and turns anything malformed into one
:class:`FormatError` naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..atomic import check_output_path, raise_pending, remove_stale_temporaries, signals_deferred, temp_path
from ..errors import FormatError, ParamError
from . import SPLITS

FORMAT_VERSION = 2
TASK_METRIC = {"classification": "accuracy", "regression": "rmse"}
# gzip is built into every HDF5 library, so any HDF5 reader opens the files (lzf is h5py's
# own, and no faster here). Measured per family (benchmarks/bench.py, docs/performance.md):
# level 1 packs these images within 0.2 % of the raw size of level 4, at twice its speed.
# Noisy images barely shrink (to 60-85 %) for 10-25x the writing and 5-10x the reading time
# of raw storage, so uint8 arrays are stored raw unless level 1 halves a sample of them.
# The shuffle filter groups the bytes of float arrays, which gzip then packs much better.
COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
CHUNK_BYTES = 1 << 20
# The fingerprint's first line names its definition (docs/format.md#fingerprint).
FINGERPRINT_HEADER = b"cnnbench fingerprint v2\n"
# Deeper JSON than this in ``spec`` is no cnnbench spec (and could exhaust the recursion limit).
MAX_JSON_DEPTH = 16
# dtype kinds an array may have: bool, signed and unsigned integers, floats (no strings,
# objects, compounds, references).
ARRAY_KINDS = "biuf"


# -- storage: filters and chunks -------------------------------------------------------------

SAMPLE_BYTES = 1 << 18  # the sample of a first block that decides whether gzip pays


def filters(array: np.ndarray) -> dict:
    """The HDF5 filter options for an array, given its first block (see COMPRESSION)."""
    if array.dtype == np.uint8 and len(array):
        sample = np.ascontiguousarray(array[:max(1, SAMPLE_BYTES // max(1, array[:1].nbytes))]).tobytes()
        if len(zlib.compress(sample, COMPRESSION["compression_opts"])) > len(sample) // 2:
            return {}
    return COMPRESSION


def chunk_rows(n: int, row_bytes: int) -> int:
    """Rows per chunk: about CHUNK_BYTES, a power of two, so that a chunk never straddles two
    of the generator's 1024-row blocks (a straddling compressed chunk is compressed twice)."""
    rows = max(1, CHUNK_BYTES // max(1, row_bytes))
    return int(min(n, 1 << (rows.bit_length() - 1))) if n else 1


# -- the fingerprint ----------------------------------------------------------------------------

def canonical_json(value) -> str:
    """One text per value: sorted keys, no spaces, ASCII, no NaN (what the fingerprint hashes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def identity(family: str, task: str, spec: dict, optimum: dict | None, target_names: list[str]) -> dict:
    """What identifies a board: the root attributes the fingerprint covers besides the arrays.

    The number of classes is ``len(target_names)`` for a classification, so it is covered too.
    """
    return {"family": family, "task": task, "spec": spec, "optimum": optimum,
            "target_names": list(target_names)}


def identity_line(ident: dict) -> bytes:
    return b"identity|" + canonical_json(ident).encode() + b"\n"


def fingerprint_line(split: str, name: str, array_dtype: np.dtype, shape: tuple, digest: str) -> bytes:
    """One line of the fingerprint's input: the array's identity and the sha256 of its bytes."""
    return f"{split}/{name}|{np.dtype(array_dtype).str}|{','.join(map(str, shape))}|{digest}\n".encode()


def fingerprint_from(ident: dict, array_lines) -> str:
    """The fingerprint of an identity (:func:`identity`) and the arrays' lines in split, name order."""
    outer = hashlib.sha256(FINGERPRINT_HEADER)
    outer.update(identity_line(ident))
    for line in array_lines:
        outer.update(line)
    return outer.hexdigest()


class _GuardedFile(io.RawIOBase):
    """The temporary file as HDF5 sees it: a write the system refuses is remembered, not failed.

    When the disk is full or a file-size limit (``ulimit -f``) is reached, HDF5 2.0 reports
    the failed write from inside h5py's deallocation callbacks, where it cannot be caught,
    and then crashes (SIGSEGV) closing the file. Through this object HDF5 never sees the
    failure: the first OSError is kept, later writes are dropped, and the writer raises it
    as one line after closing the file cleanly and removing it.
    """

    def __init__(self, path: Path):
        super().__init__()
        self._file = open(path, "w+b", buffering=0)
        self.failed: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer) -> int:
        return self._file.readinto(buffer)

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self.failed is None:
            try:
                done = 0
                while done < len(view):
                    done += self._file.write(view[done:])
            except OSError as exc:
                self.failed = exc
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        if self.failed is None:
            try:
                return self._file.truncate(size)
            except OSError as exc:
                self.failed = exc
        return self._file.tell() if size is None else size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


class DatasetWriter:
    """Writes a dataset to a temporary file and renames it into place on success.

    Use as a context manager; any exception (KeyboardInterrupt included) removes the
    temporary file, so a failed or interrupted run leaves nothing at ``path``. Ctrl-C,
    SIGTERM and SIGHUP are held while it is open and raised between blocks
    (:func:`cnnbench.atomic.signals_deferred`); a full disk or file-size limit is one
    :class:`ParamError`. ``fingerprint``: record this one instead of computing it (a
    public copy records the full file's).
    """

    def __init__(self, path: str | os.PathLike, attrs: dict, force: bool = False,
                 fingerprint: str | None = None):
        self.path = check_output_path(path, force)
        self.tmp = temp_path(self.path, keep_suffix=False)
        self.attrs = attrs
        self._fixed_fingerprint = fingerprint
        self._hashes: dict[tuple[str, str], hashlib._Hash] = {}
        self._file: h5py.File | None = None
        self._raw: _GuardedFile | None = None
        self._signals = signals_deferred()

    def __enter__(self) -> DatasetWriter:
        self._signals.__enter__()
        # Anything that stops us here, SystemExit from SIGTERM included, removes what was made.
        try:
            remove_stale_temporaries(self.path)
            try:
                self._raw = _GuardedFile(self.tmp)
                self._file = h5py.File(self._raw, "w", track_order=True)
                for split in SPLITS:
                    self._file.create_group(split)
            except OSError as exc:
                raise ParamError(f"cannot write {str(self.path)!r}: {_os_reason(exc)}") from None
            self._check()
        except BaseException as exc:
            self._discard()
            self._signals.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def _check(self) -> None:
        """Between blocks: stop for a held signal or a write the system refused."""
        raise_pending()
        if self._raw is not None and self._raw.failed is not None:
            raise ParamError(f"cannot write {str(self.path)!r}: {_os_reason(self._raw.failed)}")

    def _discard(self) -> None:
        try:
            if self._file is not None:
                try:
                    self._file.close()
                except (OSError, RuntimeError):  # the file is being thrown away
                    pass
            if self._raw is not None:
                self._raw.close()
        finally:
            if self.tmp.is_file():
                self.tmp.unlink()

    def create_split(self, split: str, n: int, block: dict, attrs: dict[str, dict]) -> None:
        """Create the split's arrays with the dtypes and trailing shapes of a first block."""
        group = self._file[split]
        for name, array in block.items():
            rows = chunk_rows(n, array[:1].nbytes)
            # No rows (a shard without blocks of this split): HDF5 refuses chunks larger than
            # the data, and there is nothing to compress.
            storage = {"chunks": (rows,) + array.shape[1:], **filters(array)} if n else {}
            ds = group.create_dataset(name, shape=(n,) + array.shape[1:], dtype=array.dtype, **storage)
            for key, value in attrs.get(name, {}).items():
                ds.attrs[key] = value
            self._hashes[(split, name)] = hashlib.sha256()
        self._check()

    def write(self, split: str, start: int, block: dict) -> None:
        """Write one block; blocks of a split must arrive in order (the hash is sequential)."""
        self._check()
        group = self._file[split]
        for name, array in block.items():
            array = np.ascontiguousarray(array)
            group[name][start:start + len(array)] = array
            self._hashes[(split, name)].update(array.tobytes())
        self._check()

    def identity(self) -> dict:
        names = _decode(self._file["train"]["targets"].attrs.get("names", []))
        return identity(self.attrs["family"], self.attrs["task"], json.loads(self.attrs["spec"]),
                        json.loads(self.attrs.get("optimum", "null")), names)

    def add_root_array(self, name: str, array: np.ndarray) -> None:
        """An array beside the split groups (a shard's oracle scores); not fingerprinted."""
        self._file.create_dataset(name, data=array)
        self._check()

    def fingerprint(self) -> str:
        if self._fixed_fingerprint is not None:
            return self._fixed_fingerprint
        return fingerprint_from(self.identity(), (
            fingerprint_line(split, name, self._file[split][name].dtype, self._file[split][name].shape,
                             self._hashes[(split, name)].hexdigest())
            for split in SPLITS for name in sorted(self._file[split])))

    def __exit__(self, exc_type, exc, tb) -> None:
        # Any exception, BaseException included (Ctrl-C, SIGTERM/SIGHUP unwinding as
        # SystemExit), lands in the finally: the temporary file never outlives the writer.
        try:
            try:
                if exc_type is None:
                    root = self._file.attrs
                    root["format_version"] = FORMAT_VERSION
                    for key, value in self.attrs.items():
                        root[key] = value
                    root["fingerprint"] = self.fingerprint()
                    root["cnnbench_version"] = __version__
                    self._file.close()
                    self._raw.close()
                    self._check()
                    os.replace(self.tmp, self.path)
            except OSError as exc:
                raise ParamError(f"cannot write {str(self.path)!r}: {_os_reason(exc)}") from None
            finally:
                self._discard()
        except BaseException as error:
            self._signals.__exit__(type(error), error, error.__traceback__)
            raise
        self._signals.__exit__(exc_type, exc, tb)


def _os_reason(exc: OSError) -> str:
    """The operating system's words for an OSError, also out of h5py's long messages."""
    if exc.strerror:
        return exc.strerror
    found = re.search(r"error message = '([^']*)'", str(exc))
    return found.group(1) if found else str(exc)


def _array_line(split: str, name: str, array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array)
    return fingerprint_line(split, name, array.dtype, array.shape,
                            hashlib.sha256(array.tobytes()).hexdigest())


def compute_fingerprint(dataset: Dataset | str | os.PathLike | None, arrays: dict | None = None, *,
                        ident: dict | None = None) -> str:
    """Recompute a file's fingerprint from its identity and arrays (what ``fingerprint`` should say).

    ``arrays`` (split -> name -> array, every array of every split) saves reading them again
    when they are in memory already; otherwise each is read from the file in turn. A public
    copy cannot be checked: its fingerprint covers the withheld test arrays and seed.
    ``dataset=None``: arrays that are in no file, under the identity ``ident`` (:func:`identity`).
    """
    if dataset is None:
        if arrays is None or ident is None:
            raise ValueError("compute_fingerprint(None, ...) needs the arrays and their identity")
        return fingerprint_from(ident, (_array_line(split, name, arrays[split][name])
                                        for split in SPLITS for name in sorted(arrays[split])))
    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    if ds.public:
        raise FormatError(f"{ds.path}: is a public copy; its fingerprint covers the withheld test "
                          f"arrays and seed, so only the full file can be checked against it")
    if arrays is None:
        def lines():
            for split in SPLITS:
                loaded = ds.load(split)
                yield from (_array_line(split, name, loaded[name]) for name in sorted(loaded))
        return fingerprint_from(ds.identity, lines())
    return fingerprint_from(ds.identity, (_array_line(split, name, arrays[split][name])
                                          for split in SPLITS for name in sorted(arrays[split])))


def check_fingerprint(ds: Dataset, arrays: dict | None = None) -> None:
    """Refuse a file whose identity or arrays no longer match its recorded fingerprint.

    Boards group scores by fingerprint: an edited file (arrays, or the root attributes that
    identify a board: family, task, spec, optimum, target names) must not be scored, or
    copied, under the original's.
    """
    if compute_fingerprint(ds, arrays) != ds.fingerprint:
        raise FormatError(f"{ds.path}: its arrays or attributes do not match its recorded fingerprint "
                          f"{ds.fingerprint[:12]} (the file was modified after it was generated)")


def _open(path: str | os.PathLike) -> h5py.File:
    path = Path(path)
    if not path.exists():
        raise FormatError(f"{path}: no such file")
    if path.is_dir():
        raise FormatError(f"{path}: is a folder, not a dataset file")
    try:
        return h5py.File(path, "r")
    except OSError:
        raise FormatError(f"{path}: not a readable HDF5 file (truncated or corrupt?)") from None


@dataclass(frozen=True)
class Dataset:
    """A cnnbench file's description, read from its attributes (arrays stay on disk)."""

    path: Path
    family: str
    task: str
    spec: dict
    fingerprint: str
    format_version: int
    cnnbench_version: str
    target_names: list[str]
    optimum: dict | None
    shapes: dict[str, dict[str, tuple]]  # split -> array name -> shape
    public: bool  # test targets withheld (a hosted leaderboard's public copy)
    attrs: dict  # every root attribute, decoded

    @property
    def num_classes(self) -> int:
        return len(self.target_names) if self.task == "classification" else 0

    @property
    def identity(self) -> dict:
        """The root attributes the fingerprint covers (see :func:`identity`)."""
        return identity(self.family, self.task, self.spec, self.optimum, self.target_names)

    def split_size(self, split: str) -> int:
        return self.shapes[split]["images"][0]

    def load(self, split: str, names: list[str] | None = None,
             rows: int | None = None) -> dict[str, np.ndarray]:
        """Read whole arrays of one split into memory (one read per array, never per item).

        ``rows``: only the first ``rows`` samples of each array.
        """
        with _open(self.path) as f:
            group = f[split]
            names = list(group) if names is None else names
            missing = [n for n in names if n not in group]
            if missing:
                raise FormatError(f"{self.path}: split {split!r} has no {missing[0]!r} array"
                                  + (" (a public file withholds test targets)" if self.public else ""))
            return {name: _read(self.path, group[name], rows) for name in names}

    def load_rows(self, split: str, indices: np.ndarray, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Read the rows ``indices`` (sorted, unique) of arrays of one split: each array read
        once, one slice per chunk (see :func:`read_rows`); a corrupt chunk is one FormatError."""
        indices = np.asarray(indices, dtype=np.int64)
        with _open(self.path) as f:
            group = f[split]
            names = list(group) if names is None else names
            missing = [n for n in names if n not in group]
            if missing:
                raise FormatError(f"{self.path}: split {split!r} has no {missing[0]!r} array")
            out = {}
            for name in names:
                try:
                    out[name] = read_rows(group[name], indices)
                except (OSError, RuntimeError):
                    raise FormatError(f"{self.path}: array {group[name].name.lstrip('/')} cannot be read "
                                      "(truncated or corrupt?)") from None
            return out


def _read(path: Path, ds: h5py.Dataset, rows: int | None = None) -> np.ndarray:
    try:
        return ds[()] if rows is None else ds[:rows]
    except (OSError, RuntimeError):
        raise FormatError(f"{path}: array {ds.name.lstrip('/')} cannot be read "
                          "(truncated or corrupt?)") from None


def read_rows(array: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """``array[rows]`` for sorted unique rows, one slice per chunk they fall in (h5py's own
    fancy indexing selects point by point, several times slower)."""
    if not len(rows):
        return array[0:0]
    step = array.chunks[0] if array.chunks else len(array)
    chunk = rows // step
    cuts = np.flatnonzero(np.diff(chunk)) + 1
    parts = []
    for group in np.split(rows, cuts):
        lo, hi = int(group[0]), int(group[-1]) + 1
        parts.append(array[lo:hi][group - lo])
    return np.concatenate(parts)


def _decode(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_decode(v) for v in value.tolist()]
    return value


# -- validation: one place, run by every reader -------------------------------------------------

def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_depth(value) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _parse_json(attrs: dict, key: str, bad) -> object:
    text = attrs[key]
    if not isinstance(text, str):
        bad(f"attribute {key!r} is a {type(text).__name__}, not JSON text")
    if text.count("[") + text.count("{") > 10_000 or len(text) > 1_000_000:
        bad(f"attribute {key!r} is far too large for a cnnbench {key}")
    try:
        value = json.loads(text)
    except RecursionError:
        bad(f"attribute {key!r} is nested deeper than any cnnbench {key} ({MAX_JSON_DEPTH} levels)")
    except ValueError:
        bad(f"attribute {key!r} is not valid JSON")
    if _json_depth(value) > MAX_JSON_DEPTH:
        bad(f"attribute {key!r} is nested deeper than any cnnbench {key} ({MAX_JSON_DEPTH} levels)")
    return value


def _json_kind(value) -> str:
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


def _check_spec(spec, family: str, known: bool, public: bool, bad) -> None:
    """The spec's fields, with their types. A file of a family this cnnbench does not know
    (written with :class:`DatasetWriter` by other code) needs only ``family``; the generator's
    fields are checked wherever present."""
    if not isinstance(spec, dict):
        bad(f"attribute 'spec' is {_json_kind(spec)}, not a JSON object")
    if spec.get("family") != family:
        bad(f"spec family {spec.get('family')!r} is not the file's family {family!r}")
    generated = ("seed", "n_train", "n_val", "n_test", "params")
    if known:
        missing = [key for key in generated if key not in spec]
        if missing:
            bad(f"spec has no {missing[0]!r} (a {family} file records every generator parameter)")
    for key in ("n_train", "n_val", "n_test"):
        if key in spec and (not _is_int(spec[key]) or spec[key] < 1):
            bad(f"spec {key} {spec[key]!r} is not a positive integer")
    if "params" in spec and not isinstance(spec["params"], dict):
        bad("spec params is not a JSON object")
    if "seed" in spec:
        seed = spec["seed"]
        withheld = public and spec.get("seed_withheld") is True and seed is None
        if not withheld and not (_is_int(seed) and seed >= 0):
            bad(f"spec seed {seed!r} is not a non-negative integer")
    if "preset" in spec and not isinstance(spec["preset"], str):
        bad(f"spec preset {spec['preset']!r} is not a name")


def _check_optimum(optimum, task: str, bad) -> None:
    if optimum is None:
        return
    if not isinstance(optimum, dict):
        bad(f"attribute 'optimum' is {_json_kind(optimum)}, not a JSON object or null")
    metric, value = optimum.get("metric"), optimum.get("value")
    if metric != TASK_METRIC[task]:
        bad(f"optimum metric {metric!r} is not {TASK_METRIC[task]!r}, the metric of a {task}")
    if not _is_number(value) or not math.isfinite(value):
        bad(f"optimum value {value!r} is not a finite number")
    if (metric == "accuracy" and not 0 <= value <= 1) or (metric == "rmse" and value < 0):
        bad(f"optimum {metric} {value!r} is out of range")
    if not isinstance(optimum.get("exact"), bool) or not isinstance(optimum.get("why"), str):
        bad("optimum needs 'exact' (true or false) and 'why' (text)")


def _check_links(f: h5py.File, bad) -> None:
    """Refuse soft and external links anywhere (h5py would follow them into other files)."""
    found = []

    def visit(name, link):
        if not isinstance(link, h5py.HardLink) and not found:
            found.append((name, link))

    f.visititems_links(visit)
    if found:
        name, link = found[0]
        kind = "an external link" if isinstance(link, h5py.ExternalLink) else "a soft link"
        bad(f"{name} is {kind}; a dataset file holds its arrays itself")


def _check_virtual(ds: h5py.Dataset, where: str, folder: Path, bad) -> None:
    """A virtual dataset only as ``cnnbench merge --virtual`` writes one: each source the same
    array of a file beside this one (relative name, in the same folder), which exists. Anything
    else could read another file's data, or fill values where a source is missing."""
    for source in ds.virtual_sources():
        name = source.file_name
        inside = name not in (".", "") and not os.path.isabs(name) and os.path.dirname(os.path.normpath(name)) == ""
        if not inside or source.dset_name.lstrip("/") != where:
            bad(f"{where} is a virtual dataset reading {source.dset_name} of {name!r}; only the same array "
                f"of a shard beside the file is allowed (cnnbench merge --virtual)")
        if not (folder / name).is_file():
            bad(f"{where} is a virtual dataset whose source {name!r} is missing (it must stay beside the file)")


def _check_arrays(f: h5py.File, public: bool, shard: bool, folder: Path, bad) -> dict[str, dict[str, h5py.Dataset]]:
    """``shard``: a split may hold no rows (cnnbench generate --shard)."""
    arrays = {}
    for split in SPLITS:
        group = f.get(split)
        if not isinstance(group, h5py.Group):
            bad(f"not a complete cnnbench dataset (no {split} group)")
        if "images" not in group:
            bad(f"not a complete cnnbench dataset (no {split}/images)")
        arrays[split] = {}
        for name in group:
            ds = group[name]
            where = f"{split}/{name}"
            if not isinstance(ds, h5py.Dataset):
                bad(f"{where} is a group, not an array")
            if ds.external:
                bad(f"{where} is stored in external files; a dataset file holds its arrays itself")
            if ds.is_virtual:
                _check_virtual(ds, where, folder, bad)
            if ds.dtype.kind not in ARRAY_KINDS or ds.dtype.fields is not None:
                bad(f"{where} has dtype {ds.dtype}; arrays hold plain numbers")
            if ds.ndim == 0:
                bad(f"{where} is a scalar, not an array of samples")
            arrays[split][name] = ds
        images = arrays[split]["images"]
        if images.dtype != np.uint8:
            bad(f"{split}/images have dtype {images.dtype}; expected uint8")
        if images.ndim != 4 or images.shape[3] not in (1, 3) or min(images.shape[1:3]) < 1:
            bad(f"{split}/images have shape {images.shape}; expected N x H x W x C with C = 1 or 3")
        if images.shape[0] < 1 and not shard:
            bad(f"{split}/images hold no samples")
        if images.shape[1:] != arrays["train"]["images"].shape[1:]:
            bad(f"{split}/images are {images.shape[1:]}, train/images {arrays['train']['images'].shape[1:]}")
        for name, ds in arrays[split].items():
            if ds.shape[0] != images.shape[0]:
                bad(f"{split}/{name} has {ds.shape[0]} rows for {images.shape[0]} images")
        withheld = public and split == "test"
        if "targets" not in arrays[split] and not withheld:
            bad(f"the {split} split has no targets (no {split}/targets array"
                + ("; only a public copy withholds test targets, and this file is not marked public)"
                   if split == "test" else ")"))
        if "targets" in arrays[split] and withheld:
            bad("a public copy holds test/targets")
    return arrays


def _check_targets(path: Path, arrays: dict, task: str, bad) -> list[str]:
    names = _decode(arrays["train"]["targets"].attrs.get("names"))
    if names is None:
        bad("train/targets has no 'names' attribute (the class or target names)")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        bad("train/targets 'names' is not a list of names")
    needed = 2 if task == "classification" else 1
    if len(names) < needed:
        bad(f"train/targets has {len(names)} name{'s' * (len(names) != 1)}; a {task} needs at least {needed}")
    for split, members in arrays.items():
        targets = members.get("targets")
        if targets is None:
            continue
        where = f"{split}/targets"
        if split != "train" and _decode(targets.attrs.get("names")) != names:
            bad(f"{where} names differ from train/targets names")
        if task == "classification":
            if targets.dtype.kind not in "iu" or targets.ndim != 1:
                bad(f"{where} are {targets.dtype} of shape {targets.shape}; class ids are integers, "
                    f"one per sample")
            values = _read(path, targets)
            low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
            if low < 0 or high >= len(names):
                bad(f"{where} holds class id {low if low < 0 else high}, outside 0..{len(names) - 1} "
                    f"({len(names)} class names)")
        else:
            if targets.dtype.kind != "f" or targets.ndim != 2 or targets.shape[1] != len(names):
                bad(f"{where} are {targets.dtype} of shape {targets.shape}; regression targets are "
                    f"floats, N x {len(names)} (one column per target name)")
            if not np.isfinite(_read(path, targets)).all():
                bad(f"{where} holds NaN or infinite values")
    return names


def format_version_of(path: str | os.PathLike):
    """The ``format_version`` attribute of an HDF5 file, unvalidated; None if it has none or is
    not readable (for telling a file of an older cnnbench from anything else)."""
    try:
        with h5py.File(path, "r") as f:
            return _decode(f.attrs.get("format_version"))
    except (OSError, TypeError, ValueError):
        return None


def open_dataset(path: str | os.PathLike) -> Dataset:
    """Open and validate a cnnbench dataset file; raise :class:`FormatError` if it is not one.

    The one validation every reader runs (info, show, bench, submit, evaluate, diagnose,
    export-public): attributes of the right types, spec and optimum well-formed JSON, a known
    task (the family's, for a family this cnnbench generates), no links, virtual or external
    storage, uint8 N x H x W x C images, every array one row per image, class ids within the
    class names, finite regression targets.
    Reads the targets, never the images.
    """
    from .families import FAMILIES  # the registry imports numpy code only; kept out of import time

    path = Path(path)

    def bad(message: str):
        raise FormatError(f"{path}: {message}")

    with _open(path) as f:
        try:
            attrs = {k: _decode(v) for k, v in f.attrs.items()}
        except (OSError, TypeError, ValueError):
            bad("its attributes cannot be read (truncated, corrupt or not a cnnbench file)")
        if "format_version" not in attrs:
            bad("not a cnnbench dataset (no format_version attribute)")
        version = attrs["format_version"]
        if not _is_int(version) or version != FORMAT_VERSION:  # repr: the string "1" is not 1
            older = " (written by an older cnnbench: generate it again)" if _is_int(version) and \
                version < FORMAT_VERSION else ""
            bad(f"format version {version!r} is not supported (this cnnbench reads version "
                f"{FORMAT_VERSION}, an integer){older}")
        required = ("family", "task", "spec", "fingerprint", "cnnbench_version")
        missing = [k for k in required if k not in attrs]
        if missing:
            bad(f"not a complete cnnbench dataset (missing attribute {missing[0]!r})")
        family, task = attrs["family"], attrs["task"]
        if not isinstance(family, str) or not family:
            bad(f"family {family!r} is not a name")
        if task not in TASK_METRIC:
            bad(f"unknown task {task!r} (known: {', '.join(TASK_METRIC)})")
        known = family in FAMILIES
        if known and task != FAMILIES[family].task:
            bad(f"task {task!r} is not {family}'s ({FAMILIES[family].task})")
        fingerprint = attrs["fingerprint"]
        if not isinstance(fingerprint, str) or not re.fullmatch(r"[0-9a-f]{64}", fingerprint):
            bad(f"fingerprint {fingerprint!r} is not 64 hexadecimal digits")
        if not isinstance(attrs["cnnbench_version"], str):
            bad("attribute 'cnnbench_version' is not text")
        public = attrs.get("public", False)
        if not isinstance(public, bool):
            bad(f"attribute 'public' is {public!r}, not true or false")
        spec = _parse_json(attrs, "spec", bad)
        _check_spec(spec, family, known, public, bad)
        optimum = _parse_json(attrs, "optimum", bad) if "optimum" in attrs else None
        _check_optimum(optimum, task, bad)
        _check_links(f, bad)
        arrays = _check_arrays(f, public, "shard" in attrs, path.resolve().parent, bad)
        names = _check_targets(path, arrays, task, bad)
        shapes = {split: {name: ds.shape for name, ds in members.items()} for split, members in arrays.items()}
    return Dataset(
        path=path, family=family, task=task, spec=spec, fingerprint=fingerprint,
        format_version=version, cnnbench_version=attrs["cnnbench_version"], target_names=names,
        optimum=optimum, shapes=shapes, public=public, attrs=attrs,
    )
