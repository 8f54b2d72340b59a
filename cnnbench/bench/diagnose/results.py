"""What a diagnosis returns: the checks, the ranked causes, and their JSON form."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from ...board.records import finite_json
from ...errors import CnnbenchError

PASS, WARN, FAIL, SKIP, INFO = "PASS", "WARN", "FAIL", "SKIP", "INFO"
STATUSES = (PASS, WARN, FAIL, SKIP, INFO)


class DiagnoseError(CnnbenchError):
    """The model could not be probed (it raised, or returned something unusable)."""


@dataclass
class CheckResult:
    """One line of the checklist.

    name : short name ("input scale")
    status : PASS, WARN, FAIL, SKIP (not applicable) or INFO (context, no verdict)
    evidence : one line with the measured numbers
    advice : one line pointing at the fix ("" when there is nothing to do)
    values : the measured numbers, for ``--json`` and tests
    cause : the cause this result points at when it fires (a key of ``verdict.CAUSES``), or ""
    """

    name: str
    status: str
    evidence: str
    advice: str = ""
    values: dict = field(default_factory=dict)
    cause: str = ""

    def as_dict(self) -> dict:
        return finite_json(asdict(self))


@dataclass
class Cause:
    """One ranked explanation of why the recipe does not learn.

    key : stable name ("frozen-parameters"), what the diagnosis benchmark scores
    title : a few words for people
    strength : FAIL or WARN, the strongest status of its evidence
    evidence : the checks that point at it
    why : why it ranks where it does
    advice : what to change first
    """

    key: str
    title: str
    strength: str
    evidence: list[str]
    why: str
    advice: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Diagnosis:
    """What :func:`diagnose` returns: the checklist, the ranked causes and what was probed."""

    dataset: str
    fingerprint: str
    family: str
    task: str
    preset: str | None
    model: str
    seed: int
    steps: int
    params: int
    probe_samples: int
    wall_time_s: float
    checks: list[CheckResult]
    causes: list[Cause] = field(default_factory=list)  # most likely root cause first

    def check(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def cause(self) -> Cause | None:
        """The most likely root cause, or None when nothing stops the recipe from learning."""
        return self.causes[0] if self.causes else None

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in STATUSES}

    def as_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("checks", "causes")}
        out["counts"] = self.counts()
        out["verdict"] = self.cause.key if self.cause else None
        out["causes"] = [c.as_dict() for c in self.causes]
        out["checks"] = [c.as_dict() for c in self.checks]
        return finite_json(out)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, allow_nan=False)


def fmt(v: float | None) -> str:
    """A number in three significant digits, for evidence lines."""
    if v is None or not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    a = abs(v)
    return f"{v:.3g}" if 1e-3 <= a < 1e4 else f"{v:.2e}"
