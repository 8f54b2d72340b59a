"""cnnbench: synthetic image datasets with known answers, baselines and leaderboards.

The library never imports click; the command line lives in :mod:`cnnbench.cli`.
"""

__version__ = "0.1.0"
