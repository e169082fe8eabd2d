"""The line a study run ends with: each main model's mean PSNR/SSIM against its degraded input.

    python -m mprnet.report.gains results/demo/summary.csv

Reads the study's ``summary.csv`` (columns task, dataset, method, group, psnr, ssim; see
:mod:`mprnet.study.aggregate`) and prints, per task and test set, the ``degraded`` input row, the
``main`` group's ``full`` row and their difference (dB, SSIM). Where ``runs.csv`` lies beside it,
the PSNR gain gets a paired-bootstrap 95% CI over the test images (per-image PSNR averaged over
seeds; :func:`mprnet.report.stats.paired_bootstrap_ci`, seeded). Raises ``DataError`` naming the
file when it lacks those columns or rows.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..vocabulary import DEGRADED, FULL, INPUT, MAIN
from .loaders import read_run_scores, read_runs
from .stats import paired_bootstrap_ci


def gains_table(summary_csv: str | os.PathLike) -> str:
    """A Markdown table: task, test set, input and full-model PSNR/SSIM and the gain."""
    path = Path(summary_csv)
    try:
        summary = pd.read_csv(path)
    except (OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: unreadable summary ({exc})") from None
    missing = {"task", "dataset", "method", "group", "psnr", "ssim"} - set(summary.columns)
    if missing:
        raise DataError(f"{path}: no column(s) {', '.join(sorted(missing))}")
    inputs = summary[(summary["group"] == INPUT) & (summary["method"] == DEGRADED)]
    full = summary[(summary["group"] == MAIN) & (summary["method"] == FULL)]
    rows = inputs.merge(full, on=["task", "dataset"], suffixes=("_in", "_full"))
    if rows.empty:
        raise DataError(f"{path}: no test set with both a degraded input row and a main full-model row")
    intervals = _gain_intervals(path.parent / "runs.csv")
    lines = ["| task | test set | input PSNR / SSIM | full model PSNR / SSIM | gain | PSNR gain 95% CI |",
             "|---|---|---|---|---|---|"]
    for r in rows.sort_values(["task", "dataset"]).itertuples():
        ci = intervals.get((r.task, r.dataset))
        lines.append(f"| {r.task} | {r.dataset} | {r.psnr_in:.2f} dB / {r.ssim_in:.4f} | "
                     f"{r.psnr_full:.2f} dB / {r.ssim_full:.4f} | {r.psnr_full - r.psnr_in:+.2f} dB / "
                     f"{r.ssim_full - r.ssim_in:+.4f} | "
                     + (f"[{ci.low:+.2f}, {ci.high:+.2f}] dB over {ci.n} images |" if ci else "— |"))
    return "\n".join(lines)


def _gain_intervals(runs_csv: Path) -> dict:
    """{(task, dataset): BootstrapCI of the full model's per-image PSNR minus the input's}."""
    if not runs_csv.is_file():
        return {}
    scores = read_run_scores(read_runs(runs_csv))
    scores = scores[((scores["group"] == INPUT) & (scores["method"] == DEGRADED))
                    | ((scores["group"] == MAIN) & (scores["method"] == FULL))]
    per_image = scores.groupby(["task", "dataset", "group", "image"])["psnr"].mean().unstack("group")
    intervals = {}
    for (task, dataset), frame in per_image.groupby(level=["task", "dataset"]):
        frame = frame.dropna()
        if {INPUT, MAIN} <= set(frame.columns) and len(frame) >= 2:
            intervals[(task, dataset)] = paired_bootstrap_ci(frame[MAIN].to_numpy(), frame[INPUT].to_numpy())
    return intervals


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m mprnet.report.gains SUMMARY.csv", file=sys.stderr)
        return 2
    try:
        print(gains_table(args[0]))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
