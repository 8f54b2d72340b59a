"""Progress for long work when stderr is not a terminal (a log file, CI, a pipe).

A terminal gets click's progress bars. Elsewhere a bar would be noise, but silence for
minutes looks like a hang: :class:`ProgressLines` prints one line to stderr whenever
``every`` seconds pass without one, saying what runs, how far it is and its ETA.
"""

from __future__ import annotations

import sys
import threading
import time

# The longest silence on a non-terminal stderr during long work, in seconds.
EVERY_S = 10.0


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class ProgressLines:
    """A background thread printing ``label: done/total unit, detail, ETA`` every ``every`` s.

    ``update(done, total, detail)`` records progress; nothing is printed before ``every``
    seconds have passed, so short work stays silent. Use as a context manager.
    """

    def __init__(self, label: str, unit: str, enabled: bool = True, every: float = EVERY_S, stream=None):
        self.label, self.unit, self.every = label, unit, every
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.done, self.total, self.detail = 0, None, ""
        self.started = self.last = self.done_at = time.monotonic()
        self._stop = threading.Event()
        self._thread = None

    def update(self, done: int, total: int | None = None, detail: str = "") -> None:
        if done != self.done:
            self.done_at = time.monotonic()
        self.done, self.detail = done, detail
        if total is not None:
            self.total = total

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        parts = [f"{self.label}: "]
        if self.total:
            parts.append(f"{self.done}/{self.total} {self.unit}")
        else:  # nothing reported yet (a first epoch, a closed-form fit)
            parts.append(f"{self.done} {self.unit}" if self.done else "running")
        if self.detail:
            parts.append(f", {self.detail}")
        parts.append(f", {_duration(elapsed)}")
        eta = self.eta()
        if eta is not None:
            parts.append(f", ETA {_duration(eta)}")
        return "".join(parts)

    def eta(self) -> float | None:
        """Seconds left at the rate of the units done so far, less the time already spent on
        the unit under way (the rate counts up to the last unit's end, not up to now), and
        never less than the units not yet started; None before the first unit ends."""
        if not (self.total and self.done):
            return None
        per_unit = (self.done_at - self.started) / self.done
        left = self.total - self.done
        spent = time.monotonic() - self.done_at
        return max(per_unit * (left - 1), per_unit * left - spent, 0.0)

    def _loop(self) -> None:
        while not self._stop.wait(min(1.0, self.every / 4)):
            if time.monotonic() - self.last >= self.every:
                print(self.line(), file=self.stream, flush=True)
                self.last = time.monotonic()

    def __enter__(self) -> ProgressLines:
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, name="cnnbench-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
