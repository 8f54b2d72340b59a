"""HDF5 format v1: writing a dataset atomically and reading it back (see docs/format.md).

A file is readable with plain h5py: root attributes describe it, groups ``train``, ``val``
and ``test`` hold ``images`` (uint8, N x H x W x C), ``targets`` and per-family extras.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from . import __version__
from .errors import FormatError, ParamError

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
# gzip is built into every HDF5 library, so any HDF5 reader opens the files; level 4 is
# near the best ratio of levels 1-9 on these sparse images at a fraction of level 9's cost.
# The shuffle filter groups the bytes of float arrays, which gzip then packs much better.
COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
CHUNK_BYTES = 1 << 20


def fingerprint_line(split: str, name: str, array_dtype: np.dtype, shape: tuple, digest: str) -> bytes:
    """One line of the fingerprint's input: the array's identity and the sha256 of its bytes."""
    return f"{split}/{name}|{np.dtype(array_dtype).str}|{','.join(map(str, shape))}|{digest}\n".encode()


def check_output_path(path: str | os.PathLike, force: bool) -> Path:
    """Refuse an output path that cannot be written, before any work is done."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ParamError(f"output folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise ParamError(f"output folder {str(parent)!r} is not writable")
    if path.is_dir():
        raise ParamError(f"output {str(path)!r} is a folder, not a file")
    if path.exists() and not force:
        raise ParamError(f"output {str(path)!r} already exists (use --force to overwrite)")
    return path


class DatasetWriter:
    """Writes a dataset to a temporary file and renames it into place on success.

    Use as a context manager; any exception (KeyboardInterrupt included) removes the
    temporary file, so a failed or interrupted run leaves nothing at ``path``.
    """

    def __init__(self, path: str | os.PathLike, attrs: dict, force: bool = False):
        self.path = check_output_path(path, force)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.attrs = attrs
        self._hashes: dict[tuple[str, str], hashlib._Hash] = {}
        self._file: h5py.File | None = None

    def __enter__(self) -> "DatasetWriter":
        # Anything that stops us here, SystemExit from SIGTERM included, removes what was made.
        try:
            with self._writing():
                self._file = h5py.File(self.tmp, "w", track_order=True)
                for split in SPLITS:
                    self._file.create_group(split)
        except BaseException:
            self._discard()
            raise
        return self

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn h5py's OS errors (errno text inside a long message) into one line naming the file."""
        try:
            yield
        except OSError as exc:
            raise ParamError(f"cannot write {str(self.path)!r}: {_os_reason(exc)}") from None

    def _discard(self) -> None:
        try:
            if self._file is not None:
                self._file.close()
        finally:
            if self.tmp.is_file():
                self.tmp.unlink()

    def create_split(self, split: str, n: int, block: dict, attrs: dict[str, dict]) -> None:
        """Create the split's arrays with the dtypes and trailing shapes of a first block."""
        group = self._file[split]
        for name, array in block.items():
            row_bytes = max(1, array[:1].nbytes)
            chunk_rows = int(max(1, min(n, CHUNK_BYTES // row_bytes)))
            # No rows (a shard without blocks of this split): HDF5 refuses chunks larger than
            # the data, and there is nothing to compress.
            storage = {"chunks": (chunk_rows,) + array.shape[1:], **COMPRESSION} if n else {}
            with self._writing():
                ds = group.create_dataset(name, shape=(n,) + array.shape[1:], dtype=array.dtype,
                                          **storage)
                for key, value in attrs.get(name, {}).items():
                    ds.attrs[key] = value
            self._hashes[(split, name)] = hashlib.sha256()

    def write(self, split: str, start: int, block: dict) -> None:
        """Write one block; blocks of a split must arrive in order (the hash is sequential)."""
        group = self._file[split]
        for name, array in block.items():
            array = np.ascontiguousarray(array)
            with self._writing():
                group[name][start:start + len(array)] = array
            self._hashes[(split, name)].update(array.tobytes())

    def add_root_array(self, name: str, array: np.ndarray) -> None:
        """An array beside the split groups (a shard's oracle scores); not fingerprinted."""
        with self._writing():
            self._file.create_dataset(name, data=array)

    def fingerprint(self) -> str:
        outer = hashlib.sha256()
        for split in SPLITS:
            group = self._file[split]
            for name in sorted(group):
                ds = group[name]
                outer.update(fingerprint_line(split, name, ds.dtype, ds.shape,
                                              self._hashes[(split, name)].hexdigest()))
        return outer.hexdigest()

    def __exit__(self, exc_type, exc, tb) -> None:
        # Any exception, BaseException included (Ctrl-C, SIGTERM/SIGHUP unwinding as
        # SystemExit), lands in the finally: the temporary file never outlives the writer.
        try:
            if exc_type is None:
                with self._writing():
                    root = self._file.attrs
                    root["format_version"] = FORMAT_VERSION
                    for key, value in self.attrs.items():
                        root[key] = value
                    root["fingerprint"] = self.fingerprint()
                    root["cnnbench_version"] = __version__
                    self._file.close()
                os.replace(self.tmp, self.path)
        finally:
            self._discard()


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


def compute_fingerprint(path: str | os.PathLike, arrays: dict | None = None) -> str:
    """Recompute a file's fingerprint from its arrays (what ``fingerprint`` should say).

    ``arrays`` (split -> name -> array, every array of every split) saves reading them again
    when they are in memory already; otherwise each is read from ``path`` in turn.
    """
    outer = hashlib.sha256()
    if arrays is not None:
        for split in SPLITS:
            for name in sorted(arrays[split]):
                outer.update(_array_line(split, name, arrays[split][name]))
        return outer.hexdigest()
    with _open(path) as f:
        for split in SPLITS:
            for name in sorted(f[split]):
                outer.update(_array_line(split, name, f[split][name][()]))
    return outer.hexdigest()


def check_fingerprint(ds: "Dataset", arrays: dict | None = None) -> None:
    """Refuse a file whose arrays no longer match its recorded fingerprint.

    Boards group scores by fingerprint: an edited file must not be scored, or copied, under
    the original's.
    """
    if compute_fingerprint(ds.path, arrays) != ds.fingerprint:
        raise FormatError(f"{ds.path}: its arrays do not match its recorded fingerprint "
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
            out = {}
            for name in names:
                try:
                    out[name] = group[name][()] if rows is None else group[name][:rows]
                except OSError:
                    raise FormatError(f"{self.path}: array {split}/{name} cannot be read "
                                      "(truncated or corrupt?)") from None
            return out


def _decode(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_decode(v) for v in value.tolist()]
    return value


def open_dataset(path: str | os.PathLike) -> Dataset:
    """Open and validate a cnnbench dataset file; raise :class:`FormatError` if it is not one."""
    with _open(path) as f:
        attrs = {k: _decode(v) for k, v in f.attrs.items()}
        if "format_version" not in attrs:
            raise FormatError(f"{path}: not a cnnbench dataset (no format_version attribute)")
        version = attrs["format_version"]
        if isinstance(version, bool) or version != FORMAT_VERSION:  # repr: the string "1" is not 1
            raise FormatError(f"{path}: format version {version!r} is not supported "
                              f"(this cnnbench reads version {FORMAT_VERSION}, an integer)")
        required = ("family", "task", "spec", "fingerprint", "cnnbench_version")
        missing = [k for k in required if k not in attrs]
        if missing:
            raise FormatError(f"{path}: not a complete cnnbench dataset (missing attribute {missing[0]!r})")
        shapes = {}
        for split in SPLITS:
            if split not in f or "images" not in f[split]:
                raise FormatError(f"{path}: not a complete cnnbench dataset (no {split}/images)")
            shapes[split] = {name: f[split][name].shape for name in f[split]}
        targets = f["train"].get("targets")
        names = _decode(targets.attrs.get("names", [])) if targets is not None else []
    try:
        spec = json.loads(attrs["spec"])
        optimum = json.loads(attrs.get("optimum", "null"))
    except json.JSONDecodeError:
        raise FormatError(f"{path}: spec or optimum attribute is not valid JSON") from None
    return Dataset(
        path=Path(path), family=attrs["family"], task=attrs["task"], spec=spec,
        fingerprint=attrs["fingerprint"], format_version=attrs["format_version"],
        cnnbench_version=attrs["cnnbench_version"], target_names=list(names),
        optimum=optimum, shapes=shapes, public=bool(attrs.get("public", False)), attrs=attrs,
    )
