"""Read the study's files into tidy DataFrames, whatever folder layout the workflow chose.

File locations are never derived here: each reader takes the files it is handed as
``(fields, path)`` pairs, where ``fields`` is what the file is about (e.g. a run's ``group``,
``task``, ``variant``, ``seed`` and a ``dataset``); the fields become columns. The workflow's
report jobs take those pairs from the study manifest (:func:`manifest_files`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from ..csv_files import read_csv_checked
from ..errors import DataError
from ..vocabulary import RUNS_REQUIRED, SCORE_COLUMNS, SUMMARY_REQUIRED
from ..yaml_files import read_yaml_mapping

# Column names other writers may use for the same quantity; the first one present wins.
TRAINING_LOG_ALIASES = {
    "iteration": ("iteration", "iter", "step", "global_step"),
    "loss": ("loss", "train_loss", "loss_total"),
    "lr": ("lr", "learning_rate"),
    "val_psnr": ("val_psnr", "psnr_val", "valid_psnr", "val/psnr"),
    "epoch": ("epoch",),
}

Files = Iterable[tuple[Mapping[str, object], "str | os.PathLike"]]  # (fields, path) pairs


def _identity(fields: Mapping[str, object]) -> dict[str, object]:
    """The workflow names a model's config ``variant``; tables call the same thing ``method``."""
    fields = dict(fields)
    if "variant" in fields and "method" not in fields:
        fields["method"] = fields.pop("variant")
    return fields


def with_fields(frame: pd.DataFrame, fields: Mapping[str, object]) -> pd.DataFrame:
    """``frame`` with one constant column per field (``variant`` named ``method``)."""
    frame = frame.copy()
    for key, value in _identity(fields).items():
        frame[key] = value
    return frame


def read_summary(path: str | os.PathLike) -> pd.DataFrame:
    """``summary.csv``: one row per (task, dataset, method[, seed]); see the report issue."""
    frame = read_csv_checked(path, SUMMARY_REQUIRED, "summary")
    for col in ("task", "dataset", "method"):
        frame[col] = frame[col].astype(str)
    return frame


def read_benchmarks(files: Files) -> pd.DataFrame:
    """Snakemake ``benchmark:`` files (TSV, or JSON lines when named ``*.jsonl``).

    Columns out: the fields, ``seconds`` (wall clock), ``cpu_seconds`` and
    ``max_rss_mb`` (Snakemake reports max_rss in MB). With ``repeat()`` a file holds several
    runs; their mean is kept, as one run is what the table reports.
    """
    rows = []
    for fields, path in files:
        try:
            if str(path).endswith(".jsonl"):
                frame = pd.read_json(path, lines=True)
            else:
                frame = pd.read_csv(path, sep="\t", na_values=["NA", "-"])
        except FileNotFoundError:
            raise DataError(f"{path}: no such benchmark file") from None
        except (ValueError, pd.errors.ParserError) as exc:
            raise DataError(f"{path}: unreadable benchmark file ({exc})") from None
        if "s" not in frame.columns or frame.empty:
            raise DataError(f"{path}: not a Snakemake benchmark file (no 's' column or no rows)")
        rows.append({
            **_identity(fields),
            "seconds": float(pd.to_numeric(frame["s"], errors="coerce").mean()),
            "cpu_seconds": _mean_or_nan(frame, "cpu_time"),
            "max_rss_mb": _mean_or_nan(frame, "max_rss"),
        })
    if not rows:
        raise DataError("no benchmark files given")
    return pd.DataFrame(rows)


def _mean_or_nan(frame: pd.DataFrame, column: str) -> float:
    if column not in frame.columns:
        return float("nan")
    return float(pd.to_numeric(frame[column], errors="coerce").mean())


def read_training_logs(files: Files, *, missing_ok: bool = False) -> pd.DataFrame:
    """Training-log CSVs with columns normalised to iteration, loss, lr, val_psnr (when present).

    With ``missing_ok`` a log that does not exist is skipped with a warning (a run trained
    elsewhere may come with its weights only); the figure then shows the runs that have one.
    """
    frames = []
    for fields, path in files:
        if missing_ok and not Path(path).exists():
            warnings.warn(f"{path}: no training log, its curve is left out", stacklevel=2)
            continue
        frame = read_csv_checked(path, (), "training log")
        renamed = {}
        for canonical, aliases in TRAINING_LOG_ALIASES.items():
            for alias in aliases:
                if alias in frame.columns:
                    renamed[alias] = canonical
                    break
        frame = frame.rename(columns=renamed)
        if "iteration" not in frame.columns:
            raise DataError(f"{path}: training log has no iteration/step column (has {', '.join(map(str, frame.columns))})")
        frames.append(with_fields(frame, fields))
    if not frames:
        if missing_ok:
            return pd.DataFrame()
        raise DataError("no training logs given")
    return pd.concat(frames, ignore_index=True)


def read_runs(path: str | os.PathLike, root: str | os.PathLike = ".") -> pd.DataFrame:
    """``runs.csv`` of the aggregation (one row per scored run, ``scores`` = per-image CSV path)."""
    frame = read_csv_checked(path, RUNS_REQUIRED, "runs")
    for col in ("task", "dataset", "method", "group"):
        frame[col] = frame[col].astype(str)
    frame["scores_path"] = [str(Path(root, p)) for p in frame["scores"]]
    return frame


def read_run_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """Every per-image score file listed in ``runs`` stacked with its run's identity columns."""
    frames = []
    for run in runs.itertuples(index=False):
        frame = read_csv_checked(run.scores_path, SCORE_COLUMNS, "per-image score")[list(SCORE_COLUMNS)].copy()
        frame["image"] = frame["image"].astype(str)
        for col in ("task", "dataset", "method", "group", "seed"):
            frame[col] = getattr(run, col)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["task", "dataset", "method", "group", "seed", *SCORE_COLUMNS])
    return pd.concat(frames, ignore_index=True)


def manifest_files(manifest: str | os.PathLike, key: str) -> list[tuple[dict, str]]:
    """The ``(fields, path)`` pairs of one list of the study manifest (``results/<study>/study.yaml``,
    :meth:`mprnet.study.targets.Targets.manifest_record`; ``key``: a ``vocabulary.MANIFEST_*`` name).
    Raises DataError naming the file when it has no such list."""
    entries = read_yaml_mapping(manifest, missing="no such study manifest").get(key)
    if not isinstance(entries, list):
        raise DataError(f"{manifest}: not a study manifest with a {key!r} list")
    return [({k: v for k, v in entry.items() if k != "path"}, entry["path"]) for entry in entries]


ABLATION_STATS_TEXT = {"task": str, "dataset": str, "method": str}


# pandas 3 parses floats exactly (and deprecates the option); pandas 2 does with round_trip.
EXACT_FLOATS = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


def read_ablation_stats(path: str | os.PathLike) -> pd.DataFrame:
    """The ablation statistics written by :func:`mprnet.report.jobs.ablation_statistics`, every float
    read back exactly as computed (written as its shortest repr)."""
    return read_csv_checked(path, ("task", "dataset", "method", "psnr_mean", "dpsnr"), "ablation statistics",
                            dtype=ABLATION_STATS_TEXT, **EXACT_FLOATS)
