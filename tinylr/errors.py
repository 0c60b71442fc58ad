"""The one exception type a user sees.

Every stage raises `TinylrError` for bad input or a missing tool, with a message that
names the problem and the fix. The CLI prints it on one line and exits non-zero;
anything else escaping is a bug in tinylr and keeps its traceback.
"""


class TinylrError(Exception):
    """A user-facing error: the message names the problem and how to fix it."""

    exit_code = 2


class OverBudgetError(TinylrError):
    """The model does not fit the board's budget beside its reservations."""

    exit_code = 3
