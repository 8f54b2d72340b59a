"""Baseline models, installed as ``cnnbench.baselines``: one readable file per baseline."""
