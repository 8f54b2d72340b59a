"""Canonical dataset specs (TOML), installed as ``cnnbench.datasets``. No code lives here."""
