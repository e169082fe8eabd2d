"""What the study cost to compute: the device-hours of every job that computes, and one headline.

Where each job's figures come from (the study manifest's ``job_costs`` list,
:meth:`mprnet.study.targets.Targets.job_costs`, names the files):

* training: every attempt of the run, from the trainer's own record ``attempts.csv``
  (:mod:`mprnet.training.attempts`). A run without one (trained elsewhere, or before the trainer
  recorded its attempts) falls back to its train job's Snakemake benchmark file, which Snakemake
  rewrites at every attempt and so holds the last one only: a lower bound, as the table and the
  headline say;
* restoring, scoring and auditing (the ruler scores and the tiles-vs-whole checks): each job's
  Snakemake benchmark file (``s``, ``cpu_time``, ``max_rss``; a retried job's earlier attempts are
  not in it). A restore ran on the device its ``restore.json`` names, and so did a tiles-vs-whole
  check of its images (the same resources and device choice); scoring and the ruler scores run on
  the CPU.

**Device-hours** are wall-clock hours × devices. A CUDA job's devices are its GPUs, one per
process: *GPU-hours*. A CPU job counts one device per process, whatever its threads: *CPU-hours*
(how busy its threads kept the CPU is its CPU time, reported beside). A job whose device is not
recorded (a training job without ``attempts.csv`` whose config says ``auto``, a restore without
``restore.json``) counts under the study's ``report.device`` label (default: ``device``).
Not counted: data preparation, the study's bookkeeping and the report's own jobs.

:func:`headline` writes the one line every place shows (the cost table's first note, the results
README, the HTML report's front page through ``cost.json``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..restore import read_record
from ..training.attempts import RUNNING, read_attempts
from ..vocabulary import COST_PHASES, COST_TABLE
from .loaders import Files, read_benchmarks
from .table import Table, format_duration, format_number, format_significant

GPU, CPU = "GPU", "CPU"
UNKNOWN_DEVICE = "device"  # the label of unrecorded devices when the study sets no report.device
FROM_ATTEMPTS, FROM_BENCHMARK = "attempts", "benchmark"  # the record a row's figures come from

COST_COLUMNS = ("job", "group", "task", "method", "seed", "dataset", "record", "attempts", "unrecorded", "seconds",
                "kind", "devices", "device_name", "device_hours", "cpu_seconds", "peak_rss_mb", "peak_gpu_mb")
IDENTITY = ("group", "task", "method", "seed", "dataset")


def device_kind(device: str | None, unknown: str = "") -> str:
    """``GPU`` for a CUDA device (``cuda``, ``cuda:1``), ``CPU`` for ``cpu``, else ``unknown`` (or
    ``device``): the unit of a job's device-hours."""
    device = str(device or "")
    if device.startswith("cuda"):
        return GPU
    if device == "cpu":
        return CPU
    return unknown or UNKNOWN_DEVICE


def job_costs(files: Files, *, unknown_device: str = "") -> pd.DataFrame:
    """One row per job that computed (per device kind, should a run have changed device between
    attempts), columns :data:`COST_COLUMNS`: seconds of wall clock, ``devices`` (the most at
    once), ``device_hours`` (Σ wall hours × devices), ``cpu_seconds``, the memory peaks (MiB, NaN
    where not recorded), ``attempts`` (training; NaN for other jobs) and ``unrecorded`` (attempts
    killed without warning, counted to their last record).

    ``files``: the manifest's ``job_costs`` pairs (fields with ``job`` and its records, the
    Snakemake benchmark file); ``unknown_device``: the label of unrecorded devices. A run without
    ``attempts.csv`` is counted from its benchmark file. Raises DataError naming an attempts file
    that is unreadable, or a benchmark file that is missing or unreadable where it is the record
    (a run without ``attempts.csv``, a restore, a score).
    """
    rows = []
    for fields, path in files:
        fields = dict(fields)
        job = fields.pop("job", None)
        if job not in COST_PHASES:
            raise DataError(f"{path}: a cost entry of no known job ({job!r}; known: {', '.join(COST_PHASES)})")
        attempts, restored = fields.pop("attempts", None), fields.pop("restored", None)
        device, processes = fields.pop("device", None), int(fields.pop("processes", 1) or 1)
        fields.setdefault("method", fields.pop("variant", None))  # a run's variant is the tables' method
        identity = {k: fields.get(k) for k in IDENTITY if k in fields}
        recorded = _read_attempts(attempts) if job == "train" and attempts else []
        if recorded:
            rows += _from_attempts(job, identity, recorded, unknown_device)
            continue
        bench = read_benchmarks([({}, path)]).iloc[0]
        if restored:  # a restore, or a tiles check (restored where its source's restore job ran)
            record = read_record(restored)
            device = record.get("device") if record else None
        elif job == "score":
            device = "cpu"
        # "audit": the ruler scores say cpu
        devices = processes if job == "train" else 1
        rows.append({
            "job": job, **identity, "record": FROM_BENCHMARK, "attempts": 1 if job == "train" else np.nan,
            "unrecorded": 0, "seconds": bench["seconds"], "kind": device_kind(device, unknown_device),
            "devices": devices, "device_name": "", "device_hours": bench["seconds"] * devices / 3600.0,
            "cpu_seconds": bench["cpu_seconds"], "peak_rss_mb": bench["max_rss_mb"], "peak_gpu_mb": np.nan,
        })
    if not rows:
        raise DataError("no jobs to count: the study manifest lists no job costs")
    frame = pd.DataFrame(rows).reindex(columns=list(COST_COLUMNS))
    for column in ("seed", "attempts"):  # whole numbers, missing where a job has none
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    return frame


def _read_attempts(path: str | os.PathLike) -> list[dict]:
    try:
        return read_attempts(path)
    except FileNotFoundError:
        return []


def _from_attempts(job: str, identity: dict, attempts: list[dict], unknown_device: str) -> list[dict]:
    """The rows of one run from its attempts: one per device kind it trained on."""
    by_kind: dict[str, list[dict]] = {}
    for attempt in attempts:
        by_kind.setdefault(device_kind(attempt["device"], unknown_device), []).append(attempt)
    rows = []
    for kind, group in by_kind.items():
        peak_gpu = [a["peak_gpu_mb"] for a in group if a["peak_gpu_mb"] is not None]
        rows.append({
            "job": job, **identity, "record": FROM_ATTEMPTS, "attempts": len(group),
            "unrecorded": sum(a["ended"] == RUNNING for a in group),
            "seconds": sum(a["wall_seconds"] for a in group), "kind": kind,
            "devices": max(a["processes"] for a in group),
            "device_name": "; ".join(dict.fromkeys(a["device_name"] for a in group if a["device_name"])),
            "device_hours": sum(a["wall_seconds"] * a["processes"] for a in group) / 3600.0,
            "cpu_seconds": sum(a["cpu_seconds"] for a in group),
            "peak_rss_mb": max(a["peak_rss_mb"] for a in group),
            "peak_gpu_mb": max(peak_gpu) if peak_gpu else np.nan,
        })
    return rows


# --------------------------------------------------------------------------------------------
# The totals and the headline


def totals(costs: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Device-hours by job (``COST_PHASES`` order, jobs the study has) and device kind."""
    out: dict[str, dict[str, float]] = {}
    for job in COST_PHASES:
        rows = costs[costs["job"] == job]
        if not rows.empty:
            out[job] = {kind: float(hours) for kind, hours in rows.groupby("kind", sort=False)["device_hours"].sum().items()}
    return out


def _kinds(costs: pd.DataFrame) -> list[str]:
    """The device kinds of ``costs``, GPU first, then CPU, then any other label."""
    present = list(dict.fromkeys(costs["kind"]))
    return sorted(present, key=lambda k: ({GPU: 0, CPU: 1}.get(k, 2), present.index(k)))


def _amount(hours: dict[str, float], kinds: list[str], *, unit: bool) -> str:
    """``0.051`` or ``12 GPU-hours and 0.40 CPU-hours``: device-hours of each kind, 2 significant figures."""
    parts = [f"{format_significant(hours[k])}" + (f" {k}-hours" if unit else "") for k in kinds if k in hours]
    return " and ".join(parts)


def is_lower_bound(costs: pd.DataFrame) -> bool:
    """Whether some training is counted from its benchmark file only (its last attempt)."""
    train = costs[costs["job"] == "train"]
    return bool((train["record"] == FROM_BENCHMARK).any())


def headline(costs: pd.DataFrame) -> str:
    """The study's cost in one line, e.g. ``Reproducing these results cost 0.051 CPU-hours (training
    0.046 over 7 attempts, restoring 0.0035, scoring 0.0012).``: device-hours (module docstring) of
    every attempt of every training run, every restore and every score job of ``costs``
    (:func:`job_costs`), to 2 significant figures; "at least" where some training is counted from
    its benchmark file only; each kind of device named where there are several."""
    by_job, kinds = totals(costs), _kinds(costs)
    total = {k: float(costs.loc[costs["kind"] == k, "device_hours"].sum()) for k in kinds}
    several = len(kinds) > 1
    bound = "at least " if is_lower_bound(costs) else ""
    phrase = []
    for job, hours in by_job.items():
        text = f"{COST_PHASES[job]} {bound if job == 'train' else ''}{_amount(hours, kinds, unit=several)}"
        if job == "train":
            attempts = int(costs.loc[costs["job"] == "train", "attempts"].sum())
            text += f" over {attempts} attempt{'s' if attempts != 1 else ''}"
        phrase.append(text)
    return (f"Reproducing these results cost {bound}{_amount(total, kinds, unit=True)} "
            f"({', '.join(phrase)}).")


def summary(costs: pd.DataFrame) -> dict:
    """The record of ``cost.json``: the headline, device-hours in all and by job (each by device
    kind), CPU-hours, the training attempts, and whether the figures are a lower bound."""
    kinds = _kinds(costs)
    return {
        "headline": headline(costs),
        "device_hours": {k: float(costs.loc[costs["kind"] == k, "device_hours"].sum()) for k in kinds},
        "device_hours_by_job": {COST_PHASES[job]: hours for job, hours in totals(costs).items()},
        "cpu_hours": None if costs["cpu_seconds"].isna().all() else float(costs["cpu_seconds"].sum() / 3600.0),
        "training_attempts": int(costs.loc[costs["job"] == "train", "attempts"].sum()),
        "lower_bound": is_lower_bound(costs),
    }


def read_headline(path: str | os.PathLike) -> str:
    """The headline of a ``cost.json`` (:func:`summary`); DataError naming the file otherwise."""
    try:
        record = json.loads(Path(path).read_text())
        return str(record["headline"])
    except FileNotFoundError:
        raise DataError(f"{path}: no such cost record") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a cost record with a headline ({type(exc).__name__}: {exc})") from None


# --------------------------------------------------------------------------------------------
# The table


def _label(row: pd.Series) -> str:
    parts = [str(row[k]) for k in ("group", "task", "method") if isinstance(row[k], str) and row[k]]
    if pd.notna(row["seed"]) and row["seed"] != "":
        parts.append(f"seed {int(row['seed'])}")
    return " / ".join(parts) or "run"


def _device(kind: str, devices: float) -> str:
    return kind if pd.isna(devices) or int(devices) == 1 else f"{int(devices)} × {kind}"


def _cells(attempts: str, seconds: float, device: str, hours: float, cpu_seconds: float, rss_mb: float,
           gpu_mb: float) -> list[str]:
    return [attempts, format_duration(seconds), device, format_significant(hours, 3),
            format_significant(cpu_seconds / 3600.0, 3), format_number(rss_mb / 1024.0, 2),
            format_number(gpu_mb / 1024.0, 1)]


def cost_table(costs: pd.DataFrame, *, name: str = COST_TABLE) -> Table:
    """One row per trained model (every attempt), one per kind of job after them (restoring,
    scoring: their jobs summed), a total per device kind; the :func:`headline` is the first note.
    ``costs``: :func:`job_costs`."""
    header = [("", "Attempts"), ("", "Wall time"), ("", "Device"), ("", "Device-hours"), ("", "CPU time (h)"),
              ("", "Peak RSS (GiB)"), ("", "Peak GPU memory (GiB)")]
    rows, rules = [], set()
    train = costs[costs["job"] == "train"].copy()
    train["_seed"] = pd.to_numeric(train["seed"], errors="coerce")
    train = train.sort_values(["group", "task", "method", "_seed", "kind"], key=_group_order, kind="stable")
    for _, r in train.iterrows():
        attempts = f"≥ {int(r['attempts'])}" if r["record"] == FROM_BENCHMARK else f"{int(r['attempts'])}"
        rows.append((_label(r), _cells(attempts, r["seconds"], _device(r["kind"], r["devices"]), r["device_hours"],
                                       r["cpu_seconds"], r["peak_rss_mb"], r["peak_gpu_mb"])))
    if rows:
        rules.add(len(rows))  # the other jobs after the trained models
    for job in (j for j in COST_PHASES if j != "train"):
        jobs = costs[costs["job"] == job]
        for kind, group in jobs.groupby("kind", sort=False):
            rows.append((f"{COST_PHASES[job].capitalize()} ({len(group)} job{'s' if len(group) != 1 else ''})",
                         _cells("–", group["seconds"].sum(), kind, group["device_hours"].sum(),
                                group["cpu_seconds"].sum(min_count=1), group["peak_rss_mb"].max(),
                                group["peak_gpu_mb"].max())))
    kinds = _kinds(costs)
    rules.add(len(rows))
    for kind in kinds:
        group = costs[costs["kind"] == kind]
        attempts = group.loc[group["job"] == "train", "attempts"].sum()
        rows.append(("Total" if len(kinds) == 1 else f"Total, {kind}",
                     _cells(f"{int(attempts)}" if pd.notna(attempts) and attempts else "–", group["seconds"].sum(), kind,
                            group["device_hours"].sum(), group["cpu_seconds"].sum(min_count=1),
                            group["peak_rss_mb"].max(), group["peak_gpu_mb"].max())))
    return Table(name=name, title="Cost of the study: every job that computed", row_header="Job",
                 header=header, rows=rows, data=costs.reset_index(drop=True), notes=_notes(costs),
                 rules_before=rules)


def _group_order(column: pd.Series) -> pd.Series:
    """Sort key: the main runs before the ablation runs, the rest as they come."""
    if column.name == "group":
        return column.map({"main": 0, "ablation": 1}).fillna(2)
    return column


def _notes(costs: pd.DataFrame) -> list[str]:
    notes = [headline(costs),
             "Device-hours: wall-clock hours × devices; a CUDA job counts its GPUs (one per process: GPU-hours), "
             "a CPU job one device per process whatever its threads (CPU-hours; CPU time says how busy they were).",
             "Training: every attempt of each run, from the trainer's record attempts.csv (a run stopped by "
             "preemption, a time limit, an error or a kill resumes as a new attempt). Restoring, scoring and auditing "
             "(the ruler scores, the tiles-vs-whole checks): each job's Snakemake benchmark file (its last attempt)."]
    train = costs[costs["job"] == "train"]
    fallback = train[train["record"] == FROM_BENCHMARK]
    if not fallback.empty:
        names = ", ".join(_label(r) for _, r in fallback.iterrows())
        notes.append(f"Lower bound: {len(fallback)} run{'s have' if len(fallback) != 1 else ' has'} no attempts.csv "
                     f"({names}: trained elsewhere, or before the trainer recorded its attempts); counted from "
                     "the train job's Snakemake benchmark file, which keeps the last attempt only.")
    killed = int(train["unrecorded"].sum())
    if killed:
        notes.append(f"{killed} attempt{'s' if killed != 1 else ''} ended without a word (killed without warning: "
                     f"SIGKILL, out of memory, a node failure) and count{'' if killed != 1 else 's'} up to "
                     "their last checkpoint.")
    names = list(dict.fromkeys(n for value in train["device_name"].dropna() for n in str(value).split("; ") if n))
    if names:
        notes.append(f"Trained on: {'; '.join(names)}.")
    unknown = [k for k in _kinds(costs) if k not in (GPU, CPU)]
    if unknown:
        notes.append(f"{', '.join(unknown)}: the device of jobs that recorded none (a restore without restore.json, "
                     "a training without attempts.csv configured with device auto), as the study's report.device "
                     "names it.")
    notes.append("Peak RSS: the largest of one process (a job of N processes holds up to N times it); peak GPU "
                 "memory: what torch's allocator held. Not counted: data preparation and the report's own jobs.")
    return notes
