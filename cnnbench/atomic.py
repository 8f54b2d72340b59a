"""Write-then-rename: every file cnnbench writes appears whole or not at all.

Also what keeps that promise when the process is stopped: signals held during a write until a
point where stopping is safe (:func:`signals_deferred`), and temporaries left by a process
that was killed outright (kill -9, power loss) removed by the next write to the same path.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ParamError


def check_output_path(path: str | os.PathLike, force: bool) -> Path:
    """Refuse an output path that cannot be written, before any work is done."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ParamError(f"output folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise ParamError(f"output folder {str(parent)!r} is not writable")
    if path.is_dir():
        raise ParamError(f"output {str(path)!r} is a folder, not a file")
    if (path.exists() or path.is_symlink()) and not force:
        raise ParamError(f"output {str(path)!r} already exists (use force=True to overwrite)")
    return path


def temp_path(path: str | os.PathLike, keep_suffix: bool = True) -> Path:
    """The hidden temporary beside ``path`` that this process writes before renaming.

    Same folder (so the rename is atomic), this process's id in the name (so the next run can
    tell a stale one): ``.NAME.tmp-PID``, or with ``keep_suffix`` ``.STEM.tmp-PID.SUFFIX`` (for
    writers that choose a format from the name, such as PIL).
    """
    path = Path(path)
    if keep_suffix:
        return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except (OverflowError, ValueError):  # no process has such an id
        return False
    return pid > 0


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of ``path`` whose writing process no longer exists; return them.

    A process killed with SIGKILL cannot remove its temporary; the next write to the same path
    does. A temporary of a live process (another write in progress) is left alone. POSIX only:
    elsewhere there is no cheap, safe way to ask whether a process id is alive.
    """
    if os.name != "posix":
        return []
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    # Both forms of temp_path's name.
    pattern = re.compile(rf"\.(?:{re.escape(path.stem)}\.tmp-(\d+){re.escape(path.suffix)}"
                         rf"|{re.escape(path.name)}\.tmp-(\d+))")
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        found = pattern.fullmatch(entry.name)
        if not found:
            continue
        pid = int(found.group(1) or found.group(2))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    Any exception, KeyboardInterrupt included, removes it and leaves ``path`` as it was.
    Stale temporaries of ``path`` (see :func:`remove_stale_temporaries`) go first.
    """
    path = Path(path)
    remove_stale_temporaries(path)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# -- signals held during a write ----------------------------------------------------------------

_HELD = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
_pending: list[int] = []
_saved: dict[int, object] = {}
_depth = 0
_allowed = 0


def _hold(signum, frame) -> None:
    if _allowed:
        _raise_for(signum, _saved.get(signum, signal.SIG_DFL))
        return
    _pending.append(signum)


def _raise_for(signum: int, previous) -> None:
    """Do what the signal's own handler would have done, as an exception raised here."""
    if signum == getattr(signal, "SIGINT", None) and (previous is signal.default_int_handler
                                                      or not callable(previous)):
        raise KeyboardInterrupt
    if callable(previous):
        previous(signum, None)  # the CLI's handler raises SystemExit(128 + signum)
        return
    raise SystemExit(128 + signum)  # the default action would kill us before any cleanup


def raise_pending() -> None:
    """At a safe point: raise for a signal that arrived while held (no-op when none did)."""
    if _pending:
        signum = _pending[0]
        _pending.clear()
        _raise_for(signum, _saved.get(signum, signal.SIG_DFL))


@contextmanager
def signals_allowed() -> Iterator[None]:
    """Within held signals, a stretch where raising at once is safe: no h5py code runs in it.

    Drawing a block or waiting for a worker's block can take long; a signal there is raised
    at once (a held one first), so stopping does not wait for the block.
    """
    global _allowed
    raise_pending()
    _allowed += 1
    try:
        yield
    finally:
        _allowed -= 1


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP until :func:`raise_pending` is called at a safe point.

    A Python signal handler runs between any two bytecodes, including inside h5py's weakref
    and deallocation callbacks, where an exception is printed and discarded ("Exception
    ignored in ..."): Ctrl-C or SIGTERM raised there is lost and the write goes on. Held
    here, the signal is raised where the writer checks for it (between blocks), so it
    unwinds normally and the temporary file is removed. A signal still held when the block
    ends is raised then. Only the main thread can set handlers; elsewhere this does nothing.
    Signals that are ignored (SIG_IGN) stay ignored. Nested uses share the outermost's hold.
    """
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _depth == 0:
        _pending.clear()
        _saved.clear()
        for signum in _HELD:
            previous = signal.getsignal(signum)
            if previous is not signal.SIG_IGN and previous is not None:
                _saved[signum] = previous
                signal.signal(signum, _hold)
    _depth += 1
    succeeded, held = False, None
    try:
        yield
        succeeded = True
    finally:
        _depth -= 1
        if _depth == 0:
            saved = dict(_saved)
            for signum, previous in saved.items():
                signal.signal(signum, previous)
            held = _pending[0] if _pending else None
            _pending.clear()
            _saved.clear()
    # Reached only when the block succeeded: a signal held till now still stops the program.
    if succeeded and held is not None:
        _raise_for(held, saved.get(held, signal.SIG_DFL))
