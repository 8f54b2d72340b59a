"""The family registry: one module per family, each exposing ``FAMILY``, listed once here."""

from __future__ import annotations

from ...errors import UnknownNameError
from . import boxes, lines, patches
from .base import SPLITS, Family, Optimum

FAMILIES: dict[str, Family] = {f.name: f for f in (boxes.FAMILY, lines.FAMILY, patches.FAMILY)}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise UnknownNameError(f"unknown family {name!r} (known: {', '.join(FAMILIES)})") from None


__all__ = ["FAMILIES", "SPLITS", "Family", "Optimum", "get_family"]
