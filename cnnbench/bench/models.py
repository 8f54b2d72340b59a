"""Users' own models: a ``FILE.py:FACTORY`` or ``package.module:FACTORY`` loaded and trained
under the protocol (``cnnbench evaluate``, ``diagnose``).

Loading runs the user's code (the module's top level), which is why it happens only when
the user names it.
"""


from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..board.records import check_name, check_notes
from ..data.h5file import open_dataset
from ..data.params import MAX_EPOCHS, check_run_int
from ..data.shards import refuse_shard
from ..errors import CnnbenchError, FormatError, ParamError


def _split_model(spec: str) -> tuple[str, str, bool]:
    """``(module or file, factory, is_file)`` of a ``--model`` value."""
    module_part, sep, attr = spec.rpartition(":")
    if not sep or not module_part or not attr:
        raise ParamError(f"model {spec!r}: expected FILE.py:FACTORY or package.module:FACTORY")
    return module_part, attr, module_part.endswith(".py") or os.sep in module_part or "/" in module_part


def default_model_name(spec: str) -> str:
    """The leaderboard name of ``--model``: ``mynet:make`` for ``dir/mynet.py:make``, the module
    in full for ``package.module:make``."""
    module_part, attr, is_file = _split_model(spec)
    return f"{Path(module_part).stem if is_file else module_part}:{attr}"


def load_factory(spec: str):
    """The model factory named by ``FILE.py:FACTORY`` or ``package.module:FACTORY``.

    This runs the user's code (the module's top level), which is why it happens only when
    the user names it. A module is looked up with the current folder first on ``sys.path``,
    as ``python -m`` does. Returns a callable ``factory(info)``; a factory written without
    parameters is called without the :class:`~cnnbench.bench.protocol.DataInfo`.
    """
    import importlib
    import importlib.util
    import inspect
    import sys

    module_part, attr, is_file = _split_model(spec)
    if is_file:
        path = Path(module_part)
        if not path.is_file():
            raise FormatError(f"model: {module_part}: no such file")
        name = f"cnnbench_user_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # dataclasses and pickling look the module up by name
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise ParamError(f"model: importing {module_part} failed: {one_line(exc)}") from None
    else:
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())  # the console script, unlike `python -m`, leaves it out
        try:
            module = importlib.import_module(module_part)
        except ModuleNotFoundError as exc:
            raise ParamError(f"model: no module named {exc.name!r} (is it installed, or on PYTHONPATH?)") from None
        except Exception as exc:
            raise ParamError(f"model: importing {module_part} failed: {one_line(exc)}") from None
    factory = getattr(module, attr, None)
    if factory is None:
        raise ParamError(f"model: {module_part} has no {attr!r}")
    if not callable(factory):
        raise ParamError(f"model: {module_part}:{attr} is a {type(factory).__name__}, not a function or class")
    try:
        takes_info = len(inspect.signature(factory).parameters) > 0
    except (TypeError, ValueError):
        takes_info = True

    def call(info):
        try:
            return factory(info) if takes_info else factory()
        except Exception as exc:
            raise ParamError(f"model: {attr}() raised {one_line(exc)}") from None

    call.__name__ = attr
    return call


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def evaluate_model(dataset_path, model: str, *, name: str | None = None, seeds=(0,), epochs: int | None = None,
                   device: str = "auto", notes: str = "", progress=None, memory_budget=None):
    """Train a user's model under the baselines' protocol, once per seed; yield (dataset, record).

    A public file is refused before any user code runs. Errors in the user's model during
    training become one-line :class:`ParamError` messages.
    """
    from . import protocol as train  # torch only when a model is trained

    dataset = open_dataset(dataset_path)
    refuse_shard(dataset)  # before any user code runs
    if dataset.public or "targets" not in dataset.shapes["test"]:
        raise FormatError(f"{dataset.path}: test targets are withheld (a public file); train and "
                          f"predict on it, then `cnnbench submit` the predictions to whoever holds the full file")
    check_run_int("epochs", epochs, 1, MAX_EPOCHS)
    name = check_name(name or default_model_name(model))  # before the user's code runs
    notes = check_notes(notes or "")
    factory = load_factory(model)
    arrays = train.prepare_data(dataset, memory_budget or train.DEFAULT_MEMORY_BUDGET)
    for seed in seeds:
        try:
            result = train.run(dataset, factory, name=name, seed=seed, epochs=epochs, device=device,
                               source="user", arrays=arrays, notes=notes,
                               progress=(lambda *a, s=seed: progress(s, *a)) if progress else None)
        except CnnbenchError:
            raise
        except Exception as exc:
            raise ParamError(f"model {model}: training failed (seed {seed}): {one_line(exc)}") from None
        yield dataset, result.record
