"""Statistics behind the ablation table and figure: mean ± std over seeds and a paired bootstrap CI.

The CI answers "how sure are we that variant and full differ on this test set": it resamples
the test images (the pairing unit), not the seeds, so it measures how much the difference
depends on which images were drawn. The spread over seeds is reported separately (± std).
:func:`ablation_stats` computes both for every variant; the workflow runs it once
(``tables/ablation_stats.csv``) for the ablation table and the ablation figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ..vocabulary import FULL, METRICS, NOT_TRAINED


@dataclass(frozen=True)
class BootstrapCI:
    """Mean paired difference and its percentile-bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    n: int
    level: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def paired_bootstrap_ci(
    variant: np.ndarray,
    reference: np.ndarray,
    *,
    n_resamples: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapCI:
    """Percentile-bootstrap CI of mean(variant − reference) over paired samples (test images).

    ``variant[i]`` and ``reference[i]`` must be scores of the same image. The generator is
    seeded, so the same inputs always give the same interval. With fewer than two pairs the
    interval is undefined and returned as NaN.
    """
    variant = np.asarray(variant, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if variant.shape != reference.shape or variant.ndim != 1:
        raise ValueError(f"paired samples must be 1-D and of equal length, got {variant.shape} and {reference.shape}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    diff = variant - reference
    n = diff.size
    if n == 0:
        return BootstrapCI(float("nan"), float("nan"), float("nan"), 0, level)
    mean = float(diff.mean())
    if n < 2:
        return BootstrapCI(mean, float("nan"), float("nan"), n, level)
    rng = np.random.default_rng(seed)
    # Resample in chunks so 10^4 resamples of a 3000-image test set (Test2800) stay small in memory.
    means = np.empty(n_resamples)
    chunk = max(1, 4_000_000 // n)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diff[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return BootstrapCI(mean, float(low), float(high), n, level)


def mean_std(values) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof=1) and count of the finite values.

    One value has no spread: its std is NaN, and the tables print the mean alone.
    """
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    n = int(arr.size)
    if n == 0:
        return float("nan"), float("nan"), 0
    std = float(arr.std(ddof=1)) if n > 1 else float("nan")
    return float(arr.mean()), std, n


def ablation_stats(
    scores: pd.DataFrame,
    *,
    reference: str = FULL,
    methods: Sequence[str] | None = None,
    n_resamples: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Per (task, dataset, method): mean ± std over seeds and the paired-bootstrap Δ to ``reference``.

    ``scores`` is the stacked per-image table (task, dataset, method, [seed,] image, psnr, ssim).
    Each seed's dataset mean gives the mean ± std. For the CI each image's score is first
    averaged over seeds, then paired with the reference's score of the same image.
    """
    frame = scores.copy()
    if "seed" not in frame.columns:
        frame["seed"] = 0
    if methods is None:
        methods = [m for m in frame["method"].unique() if m not in NOT_TRAINED]
    methods = list(dict.fromkeys([reference, *methods]))
    frame = frame[frame["method"].isin(methods)]
    rows = []
    for (task, dataset), group in frame.groupby(["task", "dataset"], sort=False):
        if reference not in set(group["method"]):
            raise DataError(f"ablation on {task}/{dataset}: no per-image scores for the reference {reference!r}")
        per_image = group.groupby(["method", "image"])[list(METRICS)].mean()
        ref = per_image.loc[reference]
        for method in [m for m in methods if m in set(group["method"])]:
            m_rows = group[group["method"] == method]
            per_seed = m_rows.groupby("seed")[list(METRICS)].mean()
            row = {"task": task, "dataset": dataset, "method": method,
                   "n_seeds": len(per_seed), "n_images": m_rows["image"].nunique()}
            img = per_image.loc[method]
            if set(img.index) != set(ref.index):
                raise DataError(
                    f"ablation on {task}/{dataset}: {method!r} and {reference!r} were scored on different images "
                    f"({len(set(img.index) ^ set(ref.index))} differ)"
                )
            img = img.loc[ref.index]
            for metric in METRICS:
                mean, std, _ = mean_std(per_seed[metric])
                row[f"{metric}_mean"], row[f"{metric}_std"] = mean, std
                if method == reference:
                    ci_mean = ci_low = ci_high = float("nan")
                else:
                    ci = paired_bootstrap_ci(img[metric].to_numpy(), ref[metric].to_numpy(),
                                             n_resamples=n_resamples, level=level, seed=seed)
                    ci_mean, ci_low, ci_high = ci.mean, ci.low, ci.high
                row[f"d{metric}"], row[f"d{metric}_low"], row[f"d{metric}_high"] = ci_mean, ci_low, ci_high
            rows.append(row)
    return pd.DataFrame(rows)
