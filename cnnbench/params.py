"""Declared generator parameters and their validation: the one place a bad value is caught.

Every family lists its parameters as :class:`Param` objects. :func:`resolve` fills in
defaults, converts text (from the CLI or a TOML preset) and checks ranges, so a bad value
gets a message that names the parameter and the value whatever the entry point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from .errors import ParamError


@dataclass(frozen=True)
class Param:
    """One generator parameter.

    ``kind`` is ``"int"``, ``"float"``, ``"bool"``, ``"choice"``, ``"range"`` (a pair
    ``(low, high)`` of floats with low <= high; one number means a fixed value) or
    ``"int_range"`` (the same with integers). ``low``/``high`` bound every number
    (inclusive); ``above`` is an exclusive lower bound.
    """

    name: str
    kind: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    above: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def option(self) -> str:
        """The CLI option, e.g. ``--n-train``."""
        return "--" + self.name.replace("_", "-")

    def metavar(self) -> str:
        if self.kind == "choice":
            return "[" + "|".join(self.choices) + "]"
        if self.kind in ("range", "int_range"):
            return "LOW[:HIGH]"
        return {"int": "INT", "float": "FLOAT", "bool": "BOOL"}[self.kind]

    def convert(self, value: Any) -> Any:
        """Turn text or a TOML value into this parameter's type, then check its range."""
        if self.kind == "int":
            value = _to_number(self, value, int)
        elif self.kind == "float":
            value = _to_number(self, value, float)
        elif self.kind == "bool":
            value = _to_bool(self, value)
        elif self.kind == "choice":
            if value not in self.choices:
                raise ParamError(f"{self.name}: {value!r} is not one of {', '.join(self.choices)}")
        elif self.kind in ("range", "int_range"):
            number = int if self.kind == "int_range" else float
            value = _to_range(self, value, number)
        else:  # pragma: no cover - a declaration bug, not a user error
            raise AssertionError(f"unknown parameter kind {self.kind}")
        for number in value if isinstance(value, tuple) else (value,):
            self._check_bounds(number)
        return value

    def _check_bounds(self, number) -> None:
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            return
        if self.low is not None and number < self.low:
            raise ParamError(f"{self.name}: {number} is below the minimum {self.low:g}")
        if self.high is not None and number > self.high:
            raise ParamError(f"{self.name}: {number} is above the maximum {self.high:g}")
        if self.above is not None and number <= self.above:
            raise ParamError(f"{self.name}: {number} must be greater than {self.above:g}")


def _to_number(param: Param, value: Any, number: type):
    if isinstance(value, bool):
        raise ParamError(f"{param.name}: {value!r} is not a number")
    try:
        result = number(value)
    except (TypeError, ValueError):
        raise ParamError(f"{param.name}: {value!r} is not {'an integer' if number is int else 'a number'}") from None
    if number is int and isinstance(value, float) and value != result:
        raise ParamError(f"{param.name}: {value!r} is not an integer")
    if number is float and not math.isfinite(result):
        raise ParamError(f"{param.name}: {value!r} is not a finite number")
    return result


def _to_bool(param: Param, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ParamError(f"{param.name}: {value!r} is not true or false")


def _to_range(param: Param, value: Any, number: type) -> tuple:
    if isinstance(value, str):
        parts = value.split(":")
    elif isinstance(value, Sequence):
        parts = list(value)
    else:
        parts = [value]
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2:
        raise ParamError(f"{param.name}: {value!r} is not a value or a LOW:HIGH range")
    low, high = (_to_number(param, part, number) for part in parts)
    if low > high:
        raise ParamError(f"{param.name}: range {low}:{high} has low > high")
    return (low, high)


# Parameters every dataset has, whatever its family.
COMMON_PARAMS: tuple[Param, ...] = (
    Param("seed", "int", 0, "Dataset seed; with the other parameters it fixes every byte.", low=0),
    Param("n_train", "int", 1000, "Number of training samples.", low=1),
    Param("n_val", "int", 200, "Number of validation samples.", low=1),
    Param("n_test", "int", 200, "Number of test samples.", low=1),
)


def resolve(
    params: Sequence[Param],
    given: Mapping[str, Any],
    check: Callable[[dict], None] | None = None,
) -> dict:
    """Return a full, validated parameter dict from ``given`` (missing names take defaults).

    Unknown names are refused, so a typo in a preset is not silently ignored.
    ``check`` runs after every value is converted, for rules across parameters.
    """
    by_name = {p.name: p for p in params}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        raise ParamError(f"unknown parameter {unknown[0]!r} (known: {', '.join(sorted(by_name))})")
    resolved = {}
    for p in params:
        value = given.get(p.name)
        resolved[p.name] = p.default if value is None else p.convert(value)
    if check is not None:
        check(resolved)
    return resolved
