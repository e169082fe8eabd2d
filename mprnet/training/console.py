"""Console output of ``mprnet train`` that can neither stop training nor be lost with a pipe.

Before preemption or a time limit Slurm sends SIGTERM to every process of the job, not only to
the trainer: a shell pipe's reader (``| tee``) dies at once, and the trainer's next write to
the pipe (its progress bar) raises ``BrokenPipeError`` before the stop checkpoint is written.
So the trainer writes its own log file (``mprnet train --log FILE``, append mode, one header
line per attempt), and every write to stdout/stderr goes through ``GuardedStream``, which
drops a console that has gone away instead of raising.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import platform
import signal
import sys
import traceback
from pathlib import Path
from typing import Iterator, TextIO

from ..errors import MPRNetError, one_line


class GuardedStream:
    """A writable text stream over ``stream`` whose ``write`` and ``flush`` never raise.

    Text is written to ``stream`` and, when ``copy_to`` is given (an open text file), also to
    ``copy_to``. The first ``OSError`` of ``stream`` (EPIPE after its reader died, EIO or EBADF
    for a closed terminal or descriptor) or ``ValueError`` (a closed file object) drops it for
    the rest of the run; if it sits on a file descriptor, that descriptor is pointed at
    ``os.devnull``, so that C-level writes and the interpreter's final flush succeed as well.
    A failing ``copy_to`` is dropped the same way (the descriptor is left alone). Other
    attributes (``encoding``, ``buffer``, ...) are those of ``stream``.
    """

    def __init__(self, stream: TextIO | None, copy_to: TextIO | None = None):
        self._original = stream
        self._stream = stream
        self._copy = copy_to

    def write(self, text: str) -> int:
        if self._copy is not None:
            try:
                self._copy.write(text)
            except (OSError, ValueError):
                self._copy = None
        if self._stream is not None:
            try:
                self._stream.write(text)
            except (OSError, ValueError):
                self._drop()
        return len(text)

    def flush(self) -> None:
        if self._copy is not None:
            try:
                self._copy.flush()
            except (OSError, ValueError):
                self._copy = None
        if self._stream is not None:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._drop()

    def isatty(self) -> bool:
        try:
            return self._stream is not None and self._stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        if self._stream is None:
            raise io.UnsupportedOperation("the console of this stream is gone")
        return self._stream.fileno()

    def writable(self) -> bool:
        return True

    @property
    def lost(self) -> bool:
        """True once the console stream failed and was dropped."""
        return self._stream is None and self._original is not None

    def __getattr__(self, name: str):
        if name.startswith("_"):  # not set yet (copy, pickle): no recursion through _original
            raise AttributeError(name)
        return getattr(self._original, name)

    def _drop(self) -> None:
        stream, self._stream = self._stream, None
        try:
            fd = stream.fileno()
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            return
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, fd)
            finally:
                os.close(devnull)
        except OSError:
            pass


@contextlib.contextmanager
def guarded_console(log: str | os.PathLike | None = None, *, header: str = "") -> Iterator[TextIO | None]:
    """Route ``sys.stdout``/``sys.stderr`` through ``GuardedStream`` while the block runs.

    ``log``: a file that gets a copy of everything written (opened in append mode, line
    buffered, so every attempt of a resumed run is kept; its folder is created). The file first
    gets one line ``== <header> <ISO time> host=<name> pid=<pid>[ slurm_job=<id>]``; an
    exception leaving the block is appended as its traceback (the console gets it from the
    caller, as before). SIGPIPE is ignored (Python's default, made explicit), so a write to a
    pipe without reader raises ``BrokenPipeError``, which the guard absorbs, instead of killing
    the process. Yields the log file object (``None`` without ``log``).
    """
    fh = None
    if log is not None:
        path = Path(log)
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a", buffering=1, encoding="utf-8")
        job = os.environ.get("SLURM_JOB_ID")
        stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        fh.write(f"== {header} {stamp} host={platform.node()} pid={os.getpid()}"
                 + (f" slurm_job={job}" if job else "") + "\n")
    previous_pipe = None
    if hasattr(signal, "SIGPIPE"):
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            previous_pipe = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = GuardedStream(out, fh), GuardedStream(err, fh)
    try:
        yield fh
    except BaseException as exc:
        if fh is not None:
            with contextlib.suppress(OSError, ValueError):
                if isinstance(exc, MPRNetError):
                    fh.write(f"error: {one_line(exc)}\n")
                else:
                    fh.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        raise
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        sys.stdout, sys.stderr = out, err
        if previous_pipe is not None:
            signal.signal(signal.SIGPIPE, previous_pipe)
        if fh is not None:
            with contextlib.suppress(OSError, ValueError):
                fh.close()
