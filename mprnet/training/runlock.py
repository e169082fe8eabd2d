"""One trainer per run folder: ``<out>/train.lock``, held while ``mprnet train`` runs.

Two trainers on one folder (a second ``mprnet train --resume``, a job started twice) would
both write ``checkpoint.pt`` and the model files; on a GPU the last writer would win silently.
The lock is an advisory ``flock`` on ``train.lock``, held by the process for as long as it
trains: the kernel releases it when the process ends, however it ends (done, an error, exit 75
after SIGTERM, SIGKILL), so a lock is never stale; the file stays, and only says who held it
last (pid, host, time, Slurm job), for the error the next trainer prints while it is held. A
trainer refused before it wrote anything removes the folder it created for the lock.

With ``runtime.processes: N`` the launching ``mprnet train`` holds the lock for the whole run
and tells its workers so (``HELD_ENV``); they take no lock of their own. Started by an
outside ``torchrun``, rank 0 takes it. A file system without ``flock`` (rare network mounts)
gets a warning and no lock.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import os
import platform
import warnings
from pathlib import Path
from typing import Iterator

from ..errors import MPRNetError

LOCK_NAME = "train.lock"
HELD_ENV = "MPRNET_TRAIN_LOCK_HELD"  # the lock file a launching process holds for its workers


class RunLocked(MPRNetError):
    """Another trainer holds the run folder's lock."""


@contextlib.contextmanager
def run_lock(out_dir: str | os.PathLike) -> Iterator[Path | None]:
    """Hold ``out_dir/train.lock`` while the block runs; ``RunLocked`` naming the holder if
    another process holds it. Yields the lock file (None where a launcher holds it for this
    process, or the file system has no ``flock``). While held, ``HELD_ENV`` names it, so that
    processes started in the block (a launch's workers) know it is theirs."""
    path = Path(out_dir).absolute() / LOCK_NAME
    if os.environ.get(HELD_ENV) == str(path):
        yield None
        return
    created = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                warnings.warn(f"{path}: cannot lock ({exc.strerror}); a second trainer in {path.parent} "
                              "would not be stopped", stacklevel=3)
                yield None
                return
            holder = os.pread(fd, 500, 0).decode(errors="replace").strip() or "a process that wrote nothing yet"
            raise RunLocked(f"{path.parent}: another trainer is running in this run folder ({holder}; it holds "
                            f"{path}); one trainer per run folder: wait for it, or stop it (SIGTERM checkpoints) "
                            "and resume") from None
        held = True
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder().encode(), 0)
        previous = os.environ.get(HELD_ENV)
        os.environ[HELD_ENV] = str(path)
        try:
            yield path
        finally:
            if previous is None:
                os.environ.pop(HELD_ENV, None)
            else:
                os.environ[HELD_ENV] = previous
    finally:
        if held and created and [p.name for p in path.parent.iterdir()] == [LOCK_NAME]:
            # A run refused before it wrote anything leaves no folder behind.
            with contextlib.suppress(OSError):
                path.unlink()
                path.parent.rmdir()
        os.close(fd)  # releases the lock


def _holder() -> str:
    stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    job = os.environ.get("SLURM_JOB_ID")
    return f"pid {os.getpid()} on {platform.node()} since {stamp}" + (f", slurm job {job}" if job else "") + "\n"
