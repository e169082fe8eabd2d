"""Write files and folders so that a crash never leaves a half-written one at the final path.

* :func:`atomic_path` / :func:`atomic_write_text`: one file, written beside its final path and
  renamed onto it (``os.replace``) when complete.
* :func:`staged_folder`: a whole folder of outputs, written into a hidden folder beside its final
  path and renamed into place when every file is done.

A write that fails in the file system (no space left, quota, permissions) raises
:class:`~mprnet.errors.OutputError` naming the file and the cause (:func:`write_failure`), and
the previous file at the final path stays as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import OutputError

# mkstemp creates 0600 files; results on a shared cluster must get the usual umask-based mode.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file lives in the same folder so that the final ``os.replace`` is atomic
    on POSIX file systems. It is hidden (leading dot) so folder listings skip it, and keeps the
    final extension because writers such as PIL and ``torch.save`` users dispatch on it.
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{final.name}.", suffix=final.suffix if suffix is None else suffix, dir=final.parent
        )
        os.close(fd)
    except OSError as exc:
        raise write_failure(final, exc) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, final)
    except OSError as exc:
        if exc.filename not in (None, str(tmp), tmp):
            raise  # about another file the block read, not this write
        raise write_failure(final, exc) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_failure(path: str | os.PathLike, exc: OSError) -> OutputError:
    """The one-line error for ``exc`` raised while writing ``path``: the file and the cause,
    with the free space left when the cause is a full disk or quota."""
    path = Path(path)
    cause = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = shutil.disk_usage(path.parent).free
            cause += f": {free / 2**20:.1f} MiB free in {path.parent}"
        except OSError:
            pass
    return OutputError(f"{path}: not written ({cause}); whatever was there before is unchanged")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


@contextlib.contextmanager
def staged_folder(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden folder beside ``final`` to write into; move it to ``final`` if the block succeeds.

    * ``final`` absent (as Snakemake leaves a ``directory()`` output before its job) or empty:
      one ``os.rename``, so the folder appears complete at once.
    * ``final`` holding files: each new file is moved in (``os.replace``, file by file, so not
      atomic as a whole); files of ``final`` that the block did not write are kept.
    * An exception in the block removes the staging folder and propagates; nothing reaches
      ``final``. While the block runs (main thread only), SIGTERM raises ``SystemExit(143)``
      (128 + 15, the shell's convention), which cleans up the same way; the previous SIGTERM
      handler is restored afterwards. A SIGKILL may leave the staging folder behind, hidden
      (``.<name>.<random>.partial``, skipped by :func:`mprnet.images.list_images`), never at ``final``.

    The folder is created with the mode of an ordinary ``mkdir`` (``0o777`` less the umask),
    not ``tempfile.mkdtemp``'s 0700. Raises ``OSError`` if ``final`` exists and is not a folder.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))

    def _terminate(signum, frame):
        raise SystemExit(128 + signum)

    previous = None
    with contextlib.suppress(ValueError):  # signal handlers can be set from the main thread only
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_UMASK)
        try:
            os.rename(staging, final)
        except OSError:
            if not final.is_dir():
                raise
            for src in sorted(p for p in staging.rglob("*") if not p.is_dir()):
                dest = final / src.relative_to(staging)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dest)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(staging, ignore_errors=True)
