"""Stop signals: what ``mprnet train`` does when Slurm (or anyone) asks it to stop.

SIGTERM or SIGUSR1 (what Slurm sends before preemption or the time limit) makes the trainer finish
its current iteration, checkpoint and raise :class:`TrainingInterrupted`; ``mprnet train`` then
exits with :data:`RESUME_EXIT_CODE` (75, ``EX_TEMPFAIL``: "run again with ``--resume``"), and the
launcher of several processes forwards the same signals to its workers. Light on purpose: the
command's ``--help`` text quotes the exit status.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

RESUME_EXIT_CODE = 75  # EX_TEMPFAIL: "run again with --resume"
STOP_SIGNALS = ("SIGTERM", "SIGUSR1")


class TrainingInterrupted(Exception):
    """Training stopped on a signal after checkpointing; run again with ``--resume``."""

    def __init__(self, checkpoint: Path, iteration: int, signame: str):
        super().__init__(f"{signame} received: checkpoint {checkpoint} written at iteration {iteration}; "
                         f"rerun with --resume to continue")
        self.checkpoint, self.iteration, self.signame = checkpoint, iteration, signame


class StopFlag:
    """Remembers SIGTERM/SIGUSR1 so the loop can checkpoint at the end of the iteration."""

    def __init__(self) -> None:
        self.signame: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopFlag":
        if threading.current_thread() is threading.main_thread():
            for name in STOP_SIGNALS:
                signum = getattr(signal, name, None)
                if signum is not None:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signame = signal.Signals(signum).name

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave SIGTERM/SIGUSR1 to the main process.

    Slurm signals the whole process group; a worker killed by it would make the loader raise
    before the main process could checkpoint. Workers still exit when the main process does.
    """
    for name in STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None:
            signal.signal(signum, signal.SIG_IGN)
