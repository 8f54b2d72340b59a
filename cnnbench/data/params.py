"""Declared generator parameters and their validation: the one place a bad value is caught.

Every family lists its parameters as :class:`Param` objects. :func:`resolve` fills in
defaults, converts text (from the CLI or a TOML preset) and checks ranges, so a bad value
gets a message that names the parameter and the value whatever the entry point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ParamError

# Every number a user gives has a finite, documented range: a parameter declared without an
# upper bound gets these (a count past 2**31 - 1, or a float past a million in the units of
# an image or a target, is a typo, not a request).
DEFAULT_INT_HIGH = 2**31 - 1
DEFAULT_FLOAT_HIGH = 1e6
DATASET_SEED_HIGH = 2**63 - 1  # secret seeds are drawn below 2**63 (public.secret_seed_command)

# The run options' ranges, declared once: the CLI's click types and the library functions
# that take these values use them, and --help shows them. torch segfaults past some thousands
# of threads; a billion epochs or probe steps only runs until killed.
MAX_THREADS = 256
MAX_EPOCHS = 10_000
MAX_STEPS = 10_000
MAX_WORKERS = 256


def check_run_int(what: str, value, low: int, high: int):
    """Refuse a run option (threads, epochs, steps...) outside ``low..high``; None passes."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(f"{what}: {value!r} is not an integer")
    if not low <= value <= high:
        raise ParamError(f"{what}: {value} is not in {low}..{high}")
    return value


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

    @property
    def upper(self) -> float | None:
        """The largest value allowed: the declared ``high``, else the default for its kind."""
        if self.kind not in ("int", "float", "range", "int_range"):
            return None
        if self.high is not None:
            return self.high
        return DEFAULT_INT_HIGH if self.kind in ("int", "int_range") else DEFAULT_FLOAT_HIGH

    def range_text(self) -> str:
        """The allowed values as --help shows them, e.g. ``0..1000`` or ``> 0..4``."""
        upper = self.upper
        if upper is None:
            return ""
        low = (f"> {_number(self.above)}" if self.above is not None
               else _number(self.low) if self.low is not None else "")
        return f"{low}..{_number(upper)}" if low else f"at most {_number(upper)}"

    def _check_bounds(self, number) -> None:
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            return
        if self.low is not None and number < self.low:
            raise ParamError(f"{self.name}: {number} is below the minimum {self.low:g}")
        if self.upper is not None and number > self.upper:
            raise ParamError(f"{self.name}: {number} is above the maximum {self.upper:g}")
        if self.above is not None and number <= self.above:
            raise ParamError(f"{self.name}: {number} must be greater than {self.above:g}")


def _number(value: float) -> str:
    """A bound as --help shows it: whole numbers in full (2147483647, not 2.14748e+09)."""
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e16):
        return str(int(value))
    return f"{value:g}"


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
    Param("seed", "int", 0, "Dataset seed; with the other parameters it fixes every byte.", low=0,
          high=DATASET_SEED_HIGH),
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
