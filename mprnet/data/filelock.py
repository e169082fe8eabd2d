"""Advisory locks so that parallel jobs (Snakemake runs several ``mprnet prepare --fetch`` at once)
never download the same source, unpack the same archive or rewrite the sha256 lock together.

POSIX ``flock`` on a small hidden file (or on a folder): released by the kernel when the process
ends, so a killed job leaves nothing stale behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def exclusive(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing; a folder is locked as it is)."""
    path = Path(path)
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY if path.is_dir() else os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
