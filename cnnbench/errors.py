"""Exceptions raised by the cnnbench library.

The CLI turns every :class:`CnnbenchError` into a one-line ``Error:`` message and
exit status 1; anything else is a bug and keeps its traceback.
"""


class CnnbenchError(Exception):
    """Base class of every error a user can cause."""


class ParamError(CnnbenchError, ValueError):
    """A generator or command parameter is out of range or inconsistent."""


class FormatError(CnnbenchError):
    """A file is missing, unreadable, truncated or not a cnnbench file."""


class UnknownNameError(CnnbenchError, KeyError):
    """A family, preset or baseline name that is not registered."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0])


class CnnbenchWarning(UserWarning):
    """Something a user should see that does not stop the command (the CLI prints
    ``Warning: ...`` on stderr), e.g. a malformed leaderboard row that was skipped."""


class DeprecatedNameWarning(CnnbenchWarning, FutureWarning):
    """An old name that still works but will go (e.g. a renamed baseline); shown by default
    in Python too (a FutureWarning), one ``Warning:`` line on the command line."""


class DataIndexError(CnnbenchError, IndexError):
    """A sample index outside a split (an IndexError too, so iteration protocols still stop)."""
