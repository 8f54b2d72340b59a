"""The best score any model can reach on a dataset's test split: one typed value.

Files and boards keep it as JSON (:meth:`Optimum.as_dict`); every reader turns that back into
an :class:`Optimum` (:meth:`Optimum.of`) before using it, so no module reads it by key.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Optimum:
    """The best score any model can reach on the test split, where the generator knows it.

    ``exact`` is False when the value is an estimate (e.g. from an oracle given the
    recorded nuisance factors) rather than a consequence of how the data was made.
    """

    metric: str  # "accuracy" or "rmse"
    value: float
    exact: bool
    why: str

    def as_dict(self) -> dict:
        """The JSON form a file's ``optimum`` attribute and a board's identity table keep."""
        return {"metric": self.metric, "value": self.value, "exact": self.exact, "why": self.why}

    @classmethod
    def of(cls, value: Optimum | dict | None) -> Optimum | None:
        """``value`` as an Optimum: itself, or the dict a file or a board stored (None: unknown)."""
        if not value or isinstance(value, cls):
            return value or None
        return cls(value.get("metric"), value.get("value"), value.get("exact"), value.get("why", ""))
