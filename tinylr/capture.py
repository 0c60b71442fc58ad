"""Keeping noisy tools quiet: capture what they print, show it only when they fail.

TensorFlow and onnx2tf write through Python and straight from C++; the user should see
their output only when something went wrong, and then only the end of it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import warnings


class CapturedOutput:
    """Context manager sending fds 1 and 2 to a temp file; `.text` holds what was written.

    onnx2tf and TensorFlow write through Python and straight from C++, so the file
    descriptors are redirected, and sys.stdout/err (which pytest or Jupyter may have
    replaced) point at them meanwhile. Those streams are never closed: a logger
    created inside the block keeps one and later writes to the real stderr.
    Python warnings are recorded into the same text.
    """

    _fd_streams: tuple = ()

    def __init__(self) -> None:
        self.text = ""

    def __enter__(self) -> CapturedOutput:
        if not CapturedOutput._fd_streams:
            CapturedOutput._fd_streams = tuple(open(fd, "w", buffering=1, closefd=False, errors="replace")
                                               for fd in (1, 2))
        self._warnings = warnings.catch_warnings(record=True)
        self._caught = self._warnings.__enter__()
        warnings.simplefilter("always")
        sys.stdout.flush()
        sys.stderr.flush()
        self._file = tempfile.TemporaryFile()
        self._saved = (os.dup(1), os.dup(2), sys.stdout, sys.stderr)
        os.dup2(self._file.fileno(), 1)
        os.dup2(self._file.fileno(), 2)
        sys.stdout, sys.stderr = CapturedOutput._fd_streams
        return self

    def __exit__(self, *exc) -> None:
        for stream in CapturedOutput._fd_streams:
            stream.flush()
        fd1, fd2, sys.stdout, sys.stderr = self._saved
        for fd, saved in ((1, fd1), (2, fd2)):
            os.dup2(saved, fd)
            os.close(saved)
        self._file.seek(0)
        self.text += self._file.read().decode(errors="replace")
        self._file.close()
        self.text += "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in self._caught)
        self._warnings.__exit__(*exc)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)  # onnx2tf colours its log


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(plain(text).strip().splitlines()[-lines:]) or "(no output)"
