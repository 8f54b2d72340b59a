"""A hosted board's folder: its config, secret full files, public copies and test splits.

::

    BOARD_DIR/
      serve.json              limits, the boards hosted, the database (hand-editable; read at start)
      leaderboard.sqlite      the leaderboard store plus tokens and submissions (store.py), unless
                              serve.json names a PostgreSQL database ("database": "postgresql://...")
      boards/NAME/full.h5     the full file, generated with a secret seed: never served
      boards/NAME/public.h5   its public copy (cnnbench export-public): served for download
      boards/NAME/split.npy   which test rows are public (ranked live) or private (ranked at close)

The full files and the split never leave the server: only the public copy, the scores on the
public part and, once the host closes a board, the scores on the private part do.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, write_text
from ..board.predictions import submission_record
from ..board.public import MIN_SECRET_SEED, export_public
from ..board.store import display, is_url
from ..data.h5file import open_dataset
from ..errors import FormatError, ParamError
from .scoring import LoadedBoard, score_parts
from .store import Store

CONFIG = "serve.json"
DB = "leaderboard.sqlite"
CONFIG_FORMAT = 1
DEFAULT_DAILY_LIMIT = 5
DEFAULT_MAX_UPLOAD = 16 * 1024 * 1024
DEFAULT_PUBLIC_FRACTION = 0.5
BOARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class Config:
    daily_limit: int | None = DEFAULT_DAILY_LIMIT  # accepted submissions per participant, board and UTC day
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    boards: dict = None  # name -> {"public_fraction": f, "daily_limit": n (optional override)}
    database: str | None = None  # a postgresql:// URL; None: leaderboard.sqlite in the folder

    def to_json(self) -> str:
        data = {"format": CONFIG_FORMAT, "daily_limit": self.daily_limit,
                "max_upload_bytes": self.max_upload_bytes, "boards": self.boards or {}}
        if self.database:
            data["database"] = self.database
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


def check_board_name(name: str) -> str:
    if not isinstance(name, str) or not BOARD_NAME.match(name):
        raise ParamError(f"board name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a "
                         f"letter or digit (it is part of URLs and paths)")
    return name


def _check_limit(value, what: str):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value > 1_000_000:
        raise ParamError(f"{what} must be a whole number in 1..1000000 (or null for no limit), not {value!r}")
    return value


class BoardDir:
    """A board folder: paths, config, and the store."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._database = None

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def db_path(self) -> Path:
        return self.path / DB

    def board_path(self, name: str) -> Path:
        return self.path / "boards" / name

    def exists(self) -> bool:
        return self.config_path.is_file()

    def config(self) -> Config:
        if not self.exists():
            raise FormatError(f"{self.path}: not a board folder (no {CONFIG}; create one with "
                              f"`cnnbench serve init {self.path} --preset NAME`)")
        try:
            data = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FormatError(f"{self.config_path}: not readable JSON ({exc})") from None
        if (not isinstance(data, dict) or data.get("format") != CONFIG_FORMAT
                or not isinstance(data.get("boards"), dict)):
            raise FormatError(f"{self.config_path}: not a cnnbench serve config (format {CONFIG_FORMAT})")
        limit = _check_limit(data.get("daily_limit"), f"{self.config_path}: daily_limit")
        size = data.get("max_upload_bytes", DEFAULT_MAX_UPLOAD)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1024:
            raise FormatError(f"{self.config_path}: max_upload_bytes must be a whole number of at least 1024")
        for name, entry in data["boards"].items():
            check_board_name(name)
            if not isinstance(entry, dict):
                raise FormatError(f"{self.config_path}: board {name!r} is not an object")
            _check_limit(entry.get("daily_limit"), f"{self.config_path}: boards.{name}.daily_limit")
        database = data.get("database")
        if database is not None:
            _check_database(database, f"{self.config_path}: database", FormatError)
        return Config(daily_limit=limit, max_upload_bytes=size, boards=data["boards"], database=database)

    def write_config(self, config: Config) -> None:
        write_text(self.config_path, config.to_json())

    @property
    def database(self) -> Path | str:
        """The store: serve.json's ``database`` (a PostgreSQL URL), else the folder's leaderboard.sqlite."""
        if self._database is None:
            self._database = (self.config().database if self.exists() else None) or self.db_path
        return self._database

    def store(self, timeout: float = 30.0) -> Store:
        return Store(self.database, timeout=timeout)

    def load_boards(self) -> dict[str, LoadedBoard]:
        """Every board, its full file checked against its fingerprint (once, at start)."""
        config = self.config()
        out = {}
        for name, entry in config.boards.items():
            folder = self.board_path(name)
            limit = entry["daily_limit"] if "daily_limit" in entry else config.daily_limit
            out[name] = LoadedBoard.load(name, folder / "full.h5", folder / "public.h5", folder / "split.npy", limit)
        return out


def _check_database(value, what: str, error=ParamError) -> str:
    if not isinstance(value, str) or not is_url(value):
        raise error(f"{what} must be a postgresql://user@host/dbname URL (or absent: the folder's "
                         f"{DB}), not {value!r}")
    return value


def secret_seed() -> int:
    """A dataset seed nobody can guess (63 random bits, at least the library's secret bound)."""
    while True:
        seed = secrets.randbits(63)
        if seed >= MIN_SECRET_SEED:
            return seed


def _split_mask(n: int, fraction: float) -> np.ndarray:
    """A secret random choice of round(fraction * n) public rows (at least one in each part)."""
    if n < 2:
        raise ParamError(f"the test split has {n} row; a public/private split needs at least 2")
    k = min(n - 1, max(1, round(fraction * n)))
    rng = np.random.default_rng(secrets.randbits(128))
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=k, replace=False)] = True
    return mask


def init_board_dir(path, presets=(), datasets=(), names=None, public_fraction: float = DEFAULT_PUBLIC_FRACTION,
                   daily_limit: int | None = None, max_upload_bytes: int | None = None, references: bool = True,
                   workers: int = 1, progress=None, database: str | None = None) -> list[str]:
    """Create (or add boards to) a board folder; return the names of the boards added.

    ``presets``: each generated with a fresh secret seed. ``datasets``: full files the host
    generated already (with a secret seed), copied in. Each board gets its public copy
    (:func:`cnnbench.board.public.export_public`, which refuses a file whose seed can be guessed),
    a secret public/private split of its test rows and, with ``references``, the reference
    predictors' rows scored on both parts. A board is assembled in a hidden folder and renamed
    into place, then the config is rewritten: an interrupted init leaves no half board.
    ``database``: a PostgreSQL URL for the store (tokens, submissions, runs), so that several
    server processes on several machines can share it; fixed when the folder is created.
    """
    from ..data.generate import write_dataset
    from ..data.presets import get_preset

    say = progress or (lambda text: None)
    if not 0 < public_fraction < 1:
        raise ParamError(f"public_fraction {public_fraction} must be between 0 and 1 (exclusive)")
    _check_limit(daily_limit, "daily_limit")
    if max_upload_bytes is not None and max_upload_bytes < 1024:
        raise ParamError(f"max_upload_bytes {max_upload_bytes} must be at least 1024 (1 KiB)")
    sources = [("preset", get_preset(p)) for p in presets] + [("file", Path(d)) for d in datasets]
    if not sources:
        raise ParamError("give at least one preset or dataset file to make a board of")
    names = list(names or [])
    if len(names) > len(sources):
        raise ParamError(f"{len(names)} board names for {len(sources)} boards: at most one name per board")
    chosen = []
    for i, (kind, source) in enumerate(sources):
        if i < len(names):
            chosen.append(check_board_name(names[i]))
        elif kind == "preset":
            chosen.append(source.name)
        else:
            spec_preset = open_dataset(source).spec.get("preset")
            chosen.append(check_board_name(spec_preset or source.stem))
    if len(set(chosen)) != len(chosen):
        raise ParamError(f"two boards would share a name ({', '.join(chosen)}): give each board its own name")

    board_dir = BoardDir(path)
    if board_dir.path.exists() and not board_dir.path.is_dir():
        raise ParamError(f"{board_dir.path}: is a file, not a folder")
    config = board_dir.config() if board_dir.exists() else Config(boards={})
    if not board_dir.exists() and board_dir.path.is_dir() and any(board_dir.path.iterdir()):
        raise ParamError(f"{board_dir.path}: folder is not empty and not a board folder")
    taken = [n for n in chosen if n in config.boards or board_dir.board_path(n).exists()]
    if taken:
        raise ParamError(f"board {taken[0]!r} exists already in {board_dir.path}")
    for kind, source in sources:
        if kind == "file":
            ds = open_dataset(source)
            if ds.public:
                raise ParamError(f"{source}: is a public copy; give the full file")
    if daily_limit is not None:
        config.daily_limit = daily_limit
    if max_upload_bytes is not None:
        config.max_upload_bytes = max_upload_bytes
    if database is not None:
        _check_database(database, "--db")
        if board_dir.exists() and config.database != database:
            raise ParamError(f"{board_dir.path}: its store is {display(config.database or board_dir.db_path)}; "
                             f"--db cannot move it (edit {CONFIG} by hand after moving the data)")
        config.database = database
    board_dir._database = config.database or board_dir.db_path

    (board_dir.path / "boards").mkdir(parents=True, exist_ok=True)
    store = board_dir.store()
    try:
        store.create_schema()
        for name, (kind, source) in zip(chosen, sources):
            final = board_dir.board_path(name)
            staging = final.with_name(f".{name}.tmp-{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            try:
                full = staging / "full.h5"
                if kind == "preset":
                    say(f"{name}: generating preset {source.name} with a secret seed")
                    write_dataset(source.spec(seed=secret_seed()), full, workers=workers)
                else:
                    say(f"{name}: copying {source}")
                    with atomic_path(full) as tmp:
                        shutil.copyfile(source, tmp)
                export_public(full, staging / "public.h5")
                dataset = open_dataset(full)
                mask = _split_mask(dataset.split_size("test"), public_fraction)
                with atomic_path(staging / "split.npy") as tmp:
                    np.save(tmp, mask, allow_pickle=False)
                os.replace(staging, final)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            board = LoadedBoard.load(name, final / "full.h5", final / "public.h5", final / "split.npy", None)
            if references:
                for ref_name in record_references(store, board):
                    say(f"{name}: reference {ref_name} recorded")
            config.boards[name] = {"public_fraction": public_fraction}
            board_dir.write_config(config)
    finally:
        store.close()
    return chosen


def record_references(store: Store, board: LoadedBoard) -> list[str]:
    """Fit the quick reference predictors (majority/mean, ridge...) on the full file and record
    their test predictions like a submission, scored on both parts; return their names."""
    from ..baselines import applicable
    from ..bench import protocol as train

    dataset = board.dataset
    info = train.DataInfo.from_dataset(dataset)
    arrays = train.load_splits(dataset)
    done = []
    for baseline in applicable(dataset.family, dataset.task, quick_only=True):
        if baseline.source != "reference" or not baseline.fits(info.image_shape):
            continue
        result = train.run(dataset, baseline.make, name=baseline.name, source="reference", arrays=arrays,
                           device="cpu")
        public, private = score_parts(board, result.test_predicted)
        record = replace(result.record, metrics=public, curves={}, diagnostics={})
        store.record(board.name, None, record, dataset, private)
        done.append(baseline.name)
    return done


def submission_for(board: LoadedBoard, predictions, participant: str, model: str, notes: str,
                   params: int | None, public: dict):
    """The run record of an accepted upload: the library's submission row, with the public
    part's metrics and the participant in its config (so two participants' models never merge)."""
    record = submission_record(board.dataset, predictions, public, f"{participant}: {model}", notes, params)
    record.config = {**record.config, "participant": participant}
    return record

