"""cnnbench: synthetic image datasets with known answers, baselines and leaderboards.

From Python (see ``docs/python.md``)::

    import cnnbench
    X, y = cnnbench.make_boxes(1000, random_state=0, size=32)     # arrays, as the file's train split
    ds = cnnbench.generate("boxes.h5", "boxes", size=32)          # a file, as `cnnbench generate`
    X, y = cnnbench.load_preset("lines-16")                        # a canonical preset, cached
    result = cnnbench.run("boxes.h5", "ridge")                     # the protocol, as `cnnbench bench`
    cnnbench.record(result)                                        # onto the leaderboard
    cnnbench.run_baselines("boxes.h5", ["mean", "ridge"], seeds="0-2")  # as `cnnbench bench`
    cnnbench.run_suite(presets=["lines-3x3"])                      # as `cnnbench suite`

Torch datasets over the files live in :mod:`cnnbench.torch` (the one module, with
:mod:`cnnbench.bench.protocol`, that imports torch: ``import cnnbench`` stays fast). The library
never imports click; the command line lives in :mod:`cnnbench.cli`.
"""

__version__ = "0.1.0"

# ``generate`` is the function; the generator module is cnnbench.data.generate.
from .api import (
    boards,
    cache_dir,
    from_arrays,
    generate,
    load_preset,
    make_boxes,
    make_lines,
    make_patches,
    record,
    record_submission,
    run,
    score,
)
from .data.h5file import Dataset, open_dataset  # noqa: E402
from .errors import CnnbenchError  # noqa: E402

# Imported on first use: these need torch.
_LAZY = {"Recipe": "bench.protocol", "DataInfo": "bench.protocol", "RunResult": "bench.protocol",
         "run_baselines": "bench.runs", "run_suite": "bench.suite", "SuiteResult": "bench.suite"}


def __getattr__(name):
    import importlib

    if name == "torch":
        return importlib.import_module(".torch", __name__)
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'cnnbench' has no attribute {name!r}")


__all__ = ["CnnbenchError", "DataInfo", "Dataset", "Recipe", "RunResult", "SuiteResult", "boards", "cache_dir",
           "from_arrays", "generate", "load_preset", "make_boxes", "make_lines", "make_patches",
           "open_dataset", "record", "record_submission", "run", "run_baselines", "run_suite", "score"]
