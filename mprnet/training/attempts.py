"""Every attempt of a training run, recorded by the trainer in its run folder: ``attempts.csv``.

A run that is preempted, reaches a time limit, fails or is killed, and is then resumed, trains in
several processes one after another: its *attempts*. A Snakemake ``benchmark:`` file keeps only the
last of them, so the trainer keeps one row per attempt itself (:data:`ATTEMPTS`, beside
``checkpoint.pt``); the study's cost table (:mod:`mprnet.report.hours`) sums them.

The row of the attempt in progress is rewritten (the whole small file, atomically:
:func:`mprnet.atomic.atomic_write_text`) when training begins, after every checkpoint, when
training ends and on every way out the trainer controls (a stop signal, an error). A process
killed without warning (SIGKILL, out of memory, a node failure) leaves the row of its last
checkpoint, still saying ``running``: the time since that checkpoint is lost to the record, as its
iterations are lost to the run. A resumed run (``--resume``) keeps the rows of the earlier
attempts; a run started without ``--resume`` starts the file afresh. An attempt that fails before
training starts (a bad config, data or checkpoint; another trainer holds the folder) writes no row.
Written by the main process (rank 0) only, never more often than checkpoints: no cost to training.

Columns (:data:`COLUMNS`):

* ``attempt``: 1, 2, ... in the order the attempts ran;
* ``started_utc``: when the attempt's process started (ISO 8601, UTC, seconds), see below;
* ``host``, ``slurm_job`` (empty outside Slurm), ``pid``: where it ran (rank 0's process);
* ``device``: ``cpu`` or ``cuda``; ``device_name``: the GPU's name, or the CPU's model name;
* ``processes``: the run's processes (DistributedDataParallel world size; one GPU each on CUDA);
  ``threads``: torch's intra-op threads per process;
* ``start_iteration``, ``end_iteration``: finished iterations when the attempt began and at its
  last record (the next attempt starts where the last checkpoint was);
* ``wall_seconds``: wall-clock seconds from the start to the last record;
* ``cpu_seconds``: user + system CPU seconds of the attempt's processes over the same time, with
  their threads and DataLoader workers; with several processes, rank 0 adds the others' at every
  checkpoint (on an error it adds their figures of the last checkpoint);
* ``peak_rss_mb``: the largest peak resident set size (MiB, ``getrusage`` ``ru_maxrss``) of the
  run's processes, each counted alone (a job of N processes holds up to N times this; DataLoader
  workers not included);
* ``peak_gpu_mb``: the largest peak of GPU memory held by torch's caching allocator
  (``torch.cuda.max_memory_reserved``, MiB) in any process; empty on the CPU;
* ``ended``: :data:`FINISHED`, :data:`STOPPED` (by a stop signal, after its checkpoint),
  :data:`CRASHED` (an error) or :data:`RUNNING` (in progress; for an attempt that is over: killed
  without warning, counted to its last record); ``detail``: the signal (``SIGTERM``) or the
  error's class.

The clock: ``mprnet train`` counts from the start of its process (Linux ``/proc``; elsewhere from
the import of this module), interpreter start-up and imports included, and CPU time likewise; the
Python entry points (``mprnet.training.train``), run inside a longer process, count from the call.
"""

from __future__ import annotations

import csv
import datetime
import io
import multiprocessing
import os
import platform
import resource
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import DataError

ATTEMPTS = "attempts.csv"  # the file's name in a run folder (mprnet.study.layout builds the study's path from it)

FINISHED, STOPPED, CRASHED, RUNNING = "finished", "stopped", "crashed", "running"
ENDINGS = (FINISHED, STOPPED, CRASHED, RUNNING)

COLUMNS = ("attempt", "started_utc", "host", "slurm_job", "pid", "device", "device_name", "processes", "threads",
           "start_iteration", "end_iteration", "wall_seconds", "cpu_seconds", "peak_rss_mb", "peak_gpu_mb",
           "ended", "detail")
INTEGERS = ("attempt", "pid", "processes", "threads", "start_iteration", "end_iteration")
FLOATS = ("wall_seconds", "cpu_seconds", "peak_rss_mb", "peak_gpu_mb")  # all but peak_gpu_mb never empty

_IMPORTED = time.time()  # the clock's origin where the process start cannot be read
_RSS_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere


@dataclass
class Usage:
    """What the attempt's processes used so far: CPU seconds (summed), peak RSS and peak GPU
    memory (MiB, the largest of any process; GPU 0.0 on the CPU)."""

    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    peak_gpu_mb: float = 0.0


class Attempt:
    """The attempt in progress, as its row of ``<out>/attempts.csv``.

    ``out``: the run folder; ``keep_previous``: keep the rows already there (a resumed run);
    ``start_iteration``: finished iterations at the start; ``device``: the torch device the process
    trains on; ``processes``: the run's world size; ``origin``: where the attempt's clocks start
    (:func:`origin`). :meth:`record` writes the file.
    """

    def __init__(self, out: Path, *, keep_previous: bool, start_iteration: int, device, processes: int,
                 origin: tuple[float, float]):
        import torch

        self.path = Path(out) / ATTEMPTS
        self.previous = read_previous(self.path) if keep_previous else []
        self.started, self.cpu_origin = origin
        self.device = device
        self.others = Usage()  # the other processes' usage at the last checkpoint (several processes)
        self.row = {
            "attempt": len(self.previous) + 1,
            "started_utc": datetime.datetime.fromtimestamp(self.started, datetime.timezone.utc)
                                            .isoformat(timespec="seconds").replace("+00:00", "Z"),
            "host": platform.node(), "slurm_job": os.environ.get("SLURM_JOB_ID", ""), "pid": os.getpid(),
            "device": device.type, "device_name": device_name(device), "processes": processes,
            "threads": torch.get_num_threads(), "start_iteration": start_iteration,
        }

    def usage(self) -> Usage:
        """This process's usage since the attempt's origin."""
        gpu = 0.0
        if self.device.type == "cuda":
            import torch

            gpu = torch.cuda.max_memory_reserved(self.device) / 2**20
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _RSS_UNIT / 2**20
        return Usage(process_cpu_seconds() - self.cpu_origin, peak_rss, gpu)

    def record(self, iteration: int, ended: str, detail: str = "", usage: Usage | None = None) -> None:
        """Rewrite the file with this attempt's row at ``iteration`` finished iterations; ``usage``:
        of all the run's processes (default: this process's and :attr:`others`). Raises
        ``OutputError`` when the file cannot be written."""
        if usage is None:
            own = self.usage()
            usage = Usage(own.cpu_seconds + self.others.cpu_seconds, max(own.peak_rss_mb, self.others.peak_rss_mb),
                          max(own.peak_gpu_mb, self.others.peak_gpu_mb))
        row = dict(self.row, end_iteration=iteration, wall_seconds=round(time.time() - self.started, 3),
                   cpu_seconds=round(usage.cpu_seconds, 3), peak_rss_mb=round(usage.peak_rss_mb, 1),
                   peak_gpu_mb=round(usage.peak_gpu_mb, 1) if self.device.type == "cuda" else "",
                   ended=ended, detail=detail)
        atomic_write_text(self.path, format_attempts([*self.previous, row]))


def origin(whole_process: bool) -> tuple[float, float]:
    """Where an attempt's clocks start: (wall-clock seconds since the epoch, this process's CPU
    seconds then). ``whole_process`` (``mprnet train``): the process's start and 0; otherwise now."""
    if whole_process:
        return process_start_time(), 0.0
    return time.time(), process_cpu_seconds()


def format_attempts(rows: list[dict]) -> str:
    """The CSV text of ``rows`` (:data:`COLUMNS`, a header line first)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: row.get(k, "") for k in COLUMNS} for row in rows)
    return buf.getvalue()


def read_attempts(path: str | os.PathLike) -> list[dict]:
    """The rows of an ``attempts.csv``, typed (:data:`INTEGERS` int, :data:`FLOATS` float, None for
    an empty ``peak_gpu_mb``, the rest text), in file order. Raises ``FileNotFoundError`` when there is none,
    ``DataError`` naming the file and the row for one that is not an attempts record."""
    path = Path(path)
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise DataError(f"{path}: not an attempts record (no column(s) {', '.join(missing)})")
        rows = []
        for number, raw in enumerate(reader, start=2):
            try:
                row = {k: raw[k] or "" for k in COLUMNS}
                row.update({k: int(raw[k]) for k in INTEGERS})
                row.update({k: float(raw[k]) if raw[k] or k != "peak_gpu_mb" else None for k in FLOATS})
            except (TypeError, ValueError) as exc:
                raise DataError(f"{path}: line {number}: not an attempt ({exc})") from None
            if row["ended"] not in ENDINGS:
                raise DataError(f"{path}: line {number}: ended {row['ended']!r} is none of {', '.join(ENDINGS)}")
            rows.append(row)
    return rows


def read_previous(path: Path) -> list[dict]:
    """The earlier attempts of a resumed run; none (with a warning) when the file is unreadable,
    so that a damaged record never stops training."""
    try:
        return read_attempts(path)
    except FileNotFoundError:
        return []
    except (OSError, DataError) as exc:
        warnings.warn(f"{path}: the earlier attempts are not counted: {exc}", stacklevel=3)
        return []


def process_start_time() -> float:
    """When this process started (seconds since the epoch, to 0.01 s): Linux ``/proc/self/stat``
    field 22 (clock ticks after boot) against ``/proc/uptime``; elsewhere when this module was
    imported."""
    try:
        now = time.time()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        ticks = int(_proc_stat("self")[19])  # starttime
        return now - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return _IMPORTED


def _proc_stat(pid: int | str) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (index 0 is field 3, the state;
    ``proc(5)``). Raises OSError where there is no such file."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2:].split()


def process_cpu_seconds() -> float:
    """User + system CPU seconds of this process (all threads), its ended children and its live
    multiprocessing children (DataLoader workers; Linux ``/proc``)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime
    for child in multiprocessing.active_children():
        try:
            fields = _proc_stat(child.pid)
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        except (OSError, ValueError, IndexError):
            continue
    return total


def device_name(device) -> str:
    """The GPU's name for a CUDA device; the CPU's model name otherwise (``/proc/cpuinfo``, else
    ``platform.processor()`` or the machine type)."""
    if device.type == "cuda":
        import torch

        return torch.cuda.get_device_name(device)
    from ..report.provenance import cpu_name

    return cpu_name()
