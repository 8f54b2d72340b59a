"""Making and reading dataset files; knows nothing of training or boards."""
