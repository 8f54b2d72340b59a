"""Making and reading dataset files; knows nothing of training or boards."""

# Every dataset has these splits, in this order; the one definition (files, specs, runs).
SPLITS = ("train", "val", "test")
