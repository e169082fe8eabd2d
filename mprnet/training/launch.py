"""``mprnet train`` in N processes on one machine (``runtime.processes: N``), as a cluster job.

The processes are started by torch's elastic launcher, the engine of ``torchrun``, with the
arguments of ``torchrun --standalone --nproc-per-node N -m mprnet.cli train ...``: one process
per GPU (``LOCAL_RANK`` picks it), a rendezvous on a free local port, each process with
``data.batch_size / N`` samples of the global batch. It runs inside the ``mprnet train``
process rather than as the ``torchrun`` command because a cluster job needs two things the
command does not do (measured with torch 2.13):

* **Signals.** Slurm sends SIGTERM (or the ``--signal`` of the job, e.g. SIGUSR1) to every
  process of the job. ``torchrun`` answers it by raising, sending SIGTERM to its workers,
  killing them 30 s later and exiting with status 1 and a traceback. Here the launcher passes
  SIGTERM/SIGUSR1 on to its workers (which may have got it already: they only note it) and
  waits for them: they agree on the iteration to stop at, rank 0 writes the checkpoint, all
  exit with 75.
* **Exit status.** ``torchrun`` exits 1 whenever a worker failed. Here: 0 when all finished,
  ``RESUME_EXIT_CODE`` (75) when the workers that ended stopped for a resume, otherwise the
  status of the first worker that failed (128 + signal number for one killed by a signal).

The workers' output goes where the launcher's goes; only rank 0 appends to ``--log``. Each
worker gets the launcher's thread counts (e.g. a Snakemake job's threads) divided by N
(``share_threads``). Several machines are not started from here: see docs/workflow.md (``srun`` with a
``torchrun`` rendezvous per node; ``runtime.processes`` is then ignored).
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Iterator

from .signals import RESUME_EXIT_CODE, STOP_SIGNALS
# The thread counts Snakemake sets to a job's threads (and torch/NumPy's libraries read).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
# torchrun's default list less the two above, which the launcher handles itself.
TORCHRUN_SIGNALS = "SIGINT,SIGHUP,SIGQUIT"


def is_worker() -> bool:
    """True inside a process started by ``torchrun``/this launcher (or any ``WORLD_SIZE`` setter)."""
    return "WORLD_SIZE" in os.environ or "TORCHELASTIC_RUN_ID" in os.environ


def is_main_worker() -> bool:
    """True in the process that writes checkpoints and the log: rank 0, or the only process."""
    return os.environ.get("RANK", "0") == "0"


def launch(worker_args: list[str], processes: int) -> int:
    """Run ``python -m mprnet.cli train *worker_args`` in ``processes`` processes; returns the
    exit status described in the module docstring (0, 75 or the first failure's)."""
    import torch.distributed.run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    share_threads(os.environ, processes)
    args = torchrun.parse_args([
        "--standalone", f"--nproc-per-node={processes}", "--max-restarts=0",
        f"--signals-to-handle={TORCHRUN_SIGNALS}", "--module", "mprnet.cli",
    ])
    # Set after parsing: torchrun's parser would take `--log` for an abbreviation of its `--log-dir`.
    args.training_script_args = ["train", *worker_args]
    with _forwarding_stop_signals():
        try:
            torchrun.run(args)
        except ChildFailedError as exc:
            return failure_status({rank: f.exitcode for rank, f in exc.failures.items()},
                                  first=exc.get_first_failure()[0])
        except SignalException as exc:
            return 128 + int(exc.sigval)
    return 0


def share_threads(env: dict, processes: int) -> None:
    """Divide the thread counts in ``env`` (e.g. a Snakemake job's threads, which it writes to
    every variable of ``THREAD_VARIABLES``) by ``processes``, at least 1; ``OMP_NUM_THREADS`` is
    1 when unset (torchrun's default). Left at the job's count, N processes each running that
    many threads were 7x slower (2 processes, 2 threads each, on 2 cores)."""
    env.setdefault("OMP_NUM_THREADS", "1")
    for name in THREAD_VARIABLES:
        if env.get(name, "").isdigit():
            env[name] = str(max(1, int(env[name]) // processes))


def failure_status(exit_codes: dict[int, int], first: int) -> int:
    """The launcher's exit status from the failed workers' ``{rank: exit code}`` (negative: the
    signal that killed it) and the rank that failed ``first``."""
    if exit_codes and all(code == RESUME_EXIT_CODE for code in exit_codes.values()):
        return RESUME_EXIT_CODE
    code = exit_codes[first]
    return 128 - code if code < 0 else (code or 1)


@contextlib.contextmanager
def _forwarding_stop_signals() -> Iterator[None]:
    """While the block runs, SIGTERM/SIGUSR1 to this process go to its child processes instead."""

    def forward(signum, frame) -> None:
        for pid in _children():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)

    previous = {}
    for name in STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None:
            previous[signum] = signal.signal(signum, forward)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _children() -> list[int]:
    """The process ids whose parent is this process (Linux ``/proc``; empty elsewhere)."""
    me, found = os.getpid(), []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == me:
            found.append(int(entry.name))
    return found
