"""Read the study's files into tidy DataFrames, whatever folder layout the workflow chose.

File locations are never hard-coded here: each reader takes explicit paths plus a *path
template* such as ``results/{study}/scores/{task}/{method}/seed{seed}/{dataset}.csv`` whose
``{fields}`` become columns. The workflow passes the same template it used to write them.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Iterable

import pandas as pd

from ..csv_files import read_csv_checked
from ..errors import DataError

SUMMARY_COLUMNS = ("task", "dataset", "method", "psnr", "ssim", "n_images")
SCORE_COLUMNS = ("image", "psnr", "ssim")

# Column names other writers may use for the same quantity; the first one present wins.
TRAINING_LOG_ALIASES = {
    "iteration": ("iteration", "iter", "step", "global_step"),
    "loss": ("loss", "train_loss", "loss_total"),
    "lr": ("lr", "learning_rate"),
    "val_psnr": ("val_psnr", "psnr_val", "valid_psnr", "val/psnr"),
    "epoch": ("epoch",),
}

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def template_regex(template: str) -> re.Pattern[str]:
    """Regex matching paths built from ``template``; a field repeated in it must repeat its value."""
    pattern = []
    seen: set[str] = set()
    pos = 0
    for m in _FIELD.finditer(template):
        pattern.append(re.escape(template[pos:m.start()]))
        name = m.group(1)
        pattern.append(f"(?P={name})" if name in seen else f"(?P<{name}>[^/]+?)")
        seen.add(name)
        pos = m.end()
    pattern.append(re.escape(template[pos:]))
    return re.compile("".join(pattern) + r"\Z")


def parse_path(template: str, path: str | os.PathLike) -> dict[str, str]:
    """The field values encoded in ``path`` by ``template`` (matched against the path's end)."""
    text = Path(path).as_posix()
    regex = template_regex(Path(template).as_posix())
    m = regex.fullmatch(text)
    if m is None:
        # Accept paths that carry an extra prefix (absolute paths, a different working directory).
        for start in [0] + [i + 1 for i, ch in enumerate(text) if ch == "/"]:
            m = regex.fullmatch(text[start:])
            if m:
                break
    if m is None:
        raise DataError(f"{path}: does not match the path template {template!r}")
    return m.groupdict()


def _identity(fields: dict[str, str]) -> dict[str, str]:
    """The workflow names a model's config ``variant``; tables call the same thing ``method``."""
    fields = dict(fields)
    if "variant" in fields and "method" not in fields:
        fields["method"] = fields.pop("variant")
    return fields


def _with_fields(frame: pd.DataFrame, fields: dict[str, str]) -> pd.DataFrame:
    frame = frame.copy()
    for key, value in _identity(fields).items():
        frame[key] = _maybe_int(value)
    return frame


def _maybe_int(value: str):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def read_summary(path: str | os.PathLike) -> pd.DataFrame:
    """``summary.csv``: one row per (task, dataset, method[, seed]); see the report issue."""
    frame = read_csv_checked(path, SUMMARY_COLUMNS, "summary")
    for col in ("task", "dataset", "method"):
        frame[col] = frame[col].astype(str)
    return frame


def read_scores(paths: Iterable[str | os.PathLike], template: str) -> pd.DataFrame:
    """Per-image score CSVs (image, psnr, ssim) stacked, with the template's fields as columns."""
    frames = []
    for path in paths:
        fields = parse_path(template, path)
        frame = read_csv_checked(path, SCORE_COLUMNS, "per-image score")
        frame["image"] = frame["image"].astype(str)
        frames.append(_with_fields(frame, fields))
    if not frames:
        raise DataError("no per-image score files given")
    return pd.concat(frames, ignore_index=True)


def read_benchmarks(paths: Iterable[str | os.PathLike], template: str) -> pd.DataFrame:
    """Snakemake ``benchmark:`` files (TSV, or JSON lines when named ``*.jsonl``).

    Columns out: the template's fields, ``seconds`` (wall clock), ``cpu_seconds`` and
    ``max_rss_mb`` (Snakemake reports max_rss in MB). With ``repeat()`` a file holds several
    runs; their mean is kept, as one run is what the table reports.
    """
    rows = []
    for path in paths:
        fields = parse_path(template, path)
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
            **{k: _maybe_int(v) for k, v in _identity(fields).items()},
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


def read_training_logs(paths: Iterable[str | os.PathLike], template: str, *, missing_ok: bool = False) -> pd.DataFrame:
    """Training-log CSVs with columns normalised to iteration, loss, lr, val_psnr (when present).

    With ``missing_ok`` a log that does not exist is skipped with a warning (a run trained
    elsewhere may come with its weights only); the figure then shows the runs that have one.
    """
    frames = []
    for path in paths:
        fields = parse_path(template, path)
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
        frames.append(_with_fields(frame, fields))
    if not frames:
        if missing_ok:
            return pd.DataFrame()
        raise DataError("no training logs given")
    return pd.concat(frames, ignore_index=True)


RUNS_COLUMNS = ("task", "dataset", "method", "group", "seed", "scores")


def read_runs(path: str | os.PathLike, root: str | os.PathLike = ".") -> pd.DataFrame:
    """``runs.csv`` of the aggregation (one row per scored run, ``scores`` = per-image CSV path)."""
    frame = read_csv_checked(path, RUNS_COLUMNS, "runs")
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
