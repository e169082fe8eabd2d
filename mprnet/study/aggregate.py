"""``results/<study>/summary.csv``: one row per (task, dataset, method) from the per-image scores.

The workflow writes a study manifest (``results/<study>/study.yaml``) listing every per-image
score file with what it scores; this module reads them and writes

* ``summary.csv``: columns ``task,dataset,method,psnr,ssim,n_images`` and then ``group``
  (``input``, ``main``, ``model_best``, ``ablation``, ``official_weights``, ``released_results``,
  ``paper``),
  ``n_seeds``, ``psnr_std``, ``ssim_std`` (standard deviation over seeds, empty for one seed),
  ``precision`` (``fp32`` or ``bf16``: the arithmetic the images were restored in; empty for the
  inputs, released results and the paper), ``train_precision`` (``fp32``, ``bf16`` or ``fp16``:
  the arithmetic the model trained in, as its model file records it; ``train.amp: auto`` makes
  it depend on the machine; empty where the study did not train the model).
  A method's PSNR/SSIM is the mean over images of each seed's run, then the mean over seeds, as
  the paper reports per-dataset means. A task whose published numbers include ``Average``
  (deraining) gets an ``Average`` row per method: the mean of its dataset means, as the paper's.
  Ablation variants and the main model both carry their config name (``full`` in both groups),
  so (task, dataset, method) is unique within a group. Then ``paper_psnr``, ``paper_ssim``,
  ``d_psnr``, ``d_ssim`` (ours − paper), ``tolerance_db`` and ``verdict``
  (:mod:`mprnet.study.verdicts`: ``reproduced``, ``not reproduced``, ``one seed: σ unknown``,
  ``σ unknown``) on the ``main``, ``official_weights`` and ``released_results`` rows of each
  published cell, and ``verdict`` ``missing`` on a ``paper`` row the study has no main number
  for; empty elsewhere;
* ``runs.csv``: the same per seed (``seed``, ``scores`` = path of the per-image CSV);
* ``metrics.json``: ``{task: {dataset: {group/method: {psnr, ssim}}}}`` for ``dvc metrics``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, atomic_write_text
from ..csv_files import read_csv_checked
from ..errors import ConfigError, DataError
from ..metrics.scoring import check_scores
from ..precision import trained_precision
from ..vocabulary import (AVERAGE, GROUP_ORDER, INPUT, MAIN, MANIFEST_SCORES, MODEL_BEST, PAPER, RUNS_COLUMNS,
                          SCORE_COLUMNS, SUMMARY_COLUMNS)
from ..yaml_files import read_yaml_mapping
from .verdicts import with_verdicts


def read_scores(path: str | Path):
    """A per-image score CSV (columns image, psnr, ssim) as a DataFrame; clear error if unusable."""
    import pandas as pd

    frame = read_csv_checked(path, SCORE_COLUMNS, "per-image score")
    if frame.empty:
        raise DataError(f"{path}: no images scored")
    for column in ("psnr", "ssim"):
        if not pd.api.types.is_numeric_dtype(frame[column]):
            bad = frame.loc[pd.to_numeric(frame[column], errors="coerce").isna(), column].iloc[0]
            raise DataError(f"{path}: column {column} holds {bad!r}, not a number")
    check_scores(frame, str(path))  # NaN or empty cells: no mean is computed from them
    return frame


def run_rows(manifest: dict, root: str | Path = ".") -> list[dict[str, Any]]:
    """One row per score file of the manifest: its identity, its mean PSNR/SSIM, the precision
    its images were restored in and the one its model trained in (read from the model file the
    entry names, ``mprnet.precision.trained_precision``; None for inputs and released files)."""
    rows, trained = [], {}
    for entry in manifest.get(MANIFEST_SCORES, []):
        frame = read_scores(Path(root, entry["path"]))
        model = entry.get("model")
        if model and model not in trained:
            trained[model] = trained_precision(Path(root, model))
        rows.append({
            "task": entry["task"], "dataset": entry["dataset"], "method": entry["method"],
            "group": entry["group"], "seed": entry.get("seed"),
            "psnr": float(frame["psnr"].mean()), "ssim": float(frame["ssim"].mean()),
            "n_images": int(len(frame)), "precision": entry.get("precision"),
            "train_precision": trained.get(model), "scores": entry["path"],
        })
    return rows


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    mean = sum(values) / len(values)
    if len(values) < 2 or not all(math.isfinite(v) for v in values):
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)  # sample std over seeds
    return mean, math.sqrt(var)


def summarise(runs: list[dict[str, Any]], published: dict, averaged_tasks: set[str]) -> list[dict]:
    """Seed-averaged rows per (group, task, dataset, method), Average rows, and the paper's rows."""
    grouped: dict[tuple, list[dict]] = {}
    for row in runs:
        grouped.setdefault((row["group"], row["task"], row["dataset"], row["method"]), []).append(row)
    out = []
    for (group, task, dataset, method), seeds in grouped.items():
        psnr, psnr_std = _mean_std([r["psnr"] for r in seeds])
        ssim, ssim_std = _mean_std([r["ssim"] for r in seeds])
        n_images = {r["n_images"] for r in seeds}
        if len(n_images) != 1:
            raise DataError(f"{task}/{dataset}/{method}: seeds scored different numbers of images "
                            f"({sorted(n_images)})")
        out.append({"task": task, "dataset": dataset, "method": method, "psnr": psnr, "ssim": ssim,
                    "n_images": n_images.pop(), "group": group, "n_seeds": len(seeds),
                    "psnr_std": psnr_std, "ssim_std": ssim_std, "precision": _precision(seeds),
                    "train_precision": _precision(seeds, "train_precision")})
    out += _average_rows(out, published, averaged_tasks)
    for task, datasets in published.items():
        for dataset, scores in datasets.items():
            out.append({"task": task, "dataset": dataset, "method": PAPER, "psnr": scores.get("psnr"),
                        "ssim": scores.get("ssim"), "n_images": None, "group": PAPER,
                        "n_seeds": None, "psnr_std": None, "ssim_std": None, "precision": None,
                        "train_precision": None})
    order = {g: i for i, g in enumerate(GROUP_ORDER)}
    out.sort(key=lambda r: (r["task"], r["dataset"] == AVERAGE, r["dataset"],
                            order.get(r["group"], len(order)), r["method"]))
    return out


def _precision(rows: list[dict], column: str = "precision") -> str | None:
    """The precision (``column``) shared by ``rows`` (``a+b`` if they differ; None where none)."""
    values = sorted({r.get(column) for r in rows if r.get(column)})
    return "+".join(values) or None


def _average_rows(rows: list[dict], published: dict, averaged_tasks: set[str]) -> list[dict]:
    """The paper's deraining "Average": the mean of the per-dataset means, per method."""
    averages = []
    for task in sorted(averaged_tasks):
        datasets = [d for d in published.get(task, {}) if d != AVERAGE]
        by_method: dict[tuple, dict[str, dict]] = {}
        for row in rows:
            if row["task"] == task:
                by_method.setdefault((row["group"], row["method"]), {})[row["dataset"]] = row
        for (group, method), per_dataset in by_method.items():
            if not datasets or any(d not in per_dataset for d in datasets):
                continue  # an Average over a subset would not be the paper's
            chosen = [per_dataset[d] for d in datasets]
            averages.append({
                "task": task, "dataset": AVERAGE, "method": method,
                "psnr": sum(r["psnr"] for r in chosen) / len(chosen),
                "ssim": sum(r["ssim"] for r in chosen) / len(chosen),
                "n_images": sum(r["n_images"] for r in chosen), "group": group,
                "n_seeds": min(r["n_seeds"] for r in chosen), "psnr_std": None, "ssim_std": None,
                "precision": _precision(chosen), "train_precision": _precision(chosen, "train_precision"),
            })
    return averages


def _frame(rows: list[dict], columns):
    import pandas as pd  # only the aggregation job needs it

    return pd.DataFrame(rows, columns=list(columns))


def aggregate(manifest_path: str | Path, summary: str | Path, runs_csv: str | Path | None = None,
              metrics: str | Path | None = None, root: str | Path = ".") -> list[dict]:
    """Read the study manifest and every score file it lists; write the summary files atomically."""
    manifest = read_yaml_mapping(manifest_path, missing="no such study manifest")
    if MANIFEST_SCORES not in manifest:
        raise ConfigError(f"{manifest_path}: not a study manifest (no 'scores' list)")
    published = manifest.get("published") or {}
    runs = run_rows(manifest, root)
    averaged = {t for t, d in published.items() if AVERAGE in d}
    rows = with_verdicts(summarise(runs, published, averaged), manifest.get("online_test_sets") or ())
    with atomic_path(summary) as tmp:
        _frame(rows, SUMMARY_COLUMNS).to_csv(tmp, index=False, float_format="%.10g")
    if runs_csv:
        with atomic_path(runs_csv) as tmp:
            _frame(runs, RUNS_COLUMNS).to_csv(tmp, index=False, float_format="%.10g")
    if metrics:
        nested: dict = {}
        for r in rows:
            if r["group"] == PAPER:
                continue
            key = r["method"] if r["group"] in (MAIN, INPUT, MODEL_BEST) else f"{r['group']}/{r['method']}"
            nested.setdefault(r["task"], {}).setdefault(r["dataset"], {})[key] = {
                "psnr": _json_number(r["psnr"]), "ssim": _json_number(r["ssim"])}
        atomic_write_text(metrics, json.dumps(nested, indent=2, sort_keys=True) + "\n")
    return rows


def _json_number(value: float | None) -> float | str | None:
    if value is None:
        return None
    return round(value, 4) if math.isfinite(value) else str(value)  # JSON has no inf
