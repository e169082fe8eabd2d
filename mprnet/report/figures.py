"""Figures of the study, each a pure function of DataFrames (or image arrays) returning a Figure.

``save_figure`` writes PNG and PDF atomically. Colours come from seaborn's colour-blind-safe
palette and stay fixed per method across figures (Wong, Nature Methods 8:441, 2011), and
every point estimate is drawn with its spread so no figure overstates a difference.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: cluster nodes and CI have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..atomic import atomic_path  # noqa: E402
from ..vocabulary import (AVERAGE, DEGRADED, FULL, MAIN, MAIN_METHODS, METHOD_COLOURS, METHOD_MARKERS,  # noqa: E402
                          OFFICIAL_WEIGHTS, PAPER, RELEASED_RESULTS, method_label, order_datasets, order_tasks,
                          short_label, variant_label)
from .tables import seed_means  # noqa: E402

PALETTE = sns.color_palette("colorblind", 10)
FIXED_COLOURS = {method: PALETTE[index] for method, index in METHOD_COLOURS.items()}  # one per method, everywhere


def set_style() -> None:
    sns.set_theme(context="paper", style="whitegrid", palette=PALETTE, font_scale=1.25,
                  rc={"figure.dpi": 100, "savefig.dpi": 150, "axes.titleweight": "bold", "pdf.fonttype": 42})


def method_colour(method: str, others: Sequence[str] = ()) -> tuple:
    if method in FIXED_COLOURS:
        return FIXED_COLOURS[method]
    spare = [PALETTE[8], (0.2, 0.2, 0.2), PALETTE[1], PALETTE[2]]
    others = sorted(m for m in others if m not in FIXED_COLOURS)
    index = others.index(method) if method in others else 0
    return spare[index % len(spare)]


def save_figure(fig, stem: str | os.PathLike) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf``; the figure is closed afterwards."""
    stem = Path(stem)
    if stem.suffix.lower() in (".png", ".pdf"):
        stem = stem.with_suffix("")
    paths = []
    for ext in ("png", "pdf"):
        path = stem.with_name(f"{stem.name}.{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def empty_figure(message: str):
    """A small figure that says ``message`` instead of plotting (no data for it)."""
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return fig


# --------------------------------------------------------------------------------------------


def paper_vs_ours(summary: pd.DataFrame):
    """Dot plot per task: PSNR and SSIM of input, paper, ours (and official weights) per dataset.

    Dots rather than bars: PSNR bars starting at 0 dB would hide differences of tenths of a dB.
    The Δ (ours − paper) is written above each dataset that has both.
    """
    set_style()
    data = seed_means(summary[summary["dataset"] != AVERAGE])
    data = data[data["method"].isin(MAIN_METHODS)]
    tasks = order_tasks(data["task"])
    if not tasks:
        return empty_figure("No main results to plot.")
    widths = [max(2, len(_task_datasets(data, t))) for t in tasks]
    fig, axes = plt.subplots(2, len(tasks), figsize=(1.2 * sum(widths) + 2.5, 6.5), squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    present = [m for m in MAIN_METHODS if m in set(data["method"])]
    for col, task in enumerate(tasks):
        sub = data[data["task"] == task]
        datasets = _task_datasets(data, task)
        x = {d: i for i, d in enumerate(datasets)}
        here = [m for m in present if m in set(sub["method"])]
        for row, metric in enumerate(("psnr", "ssim")):
            ax = axes[row, col]
            offsets = np.linspace(-0.12 * len(here), 0.12 * len(here), len(here)) if len(here) > 1 else [0.0]
            for off, method in zip(offsets, here):
                m = sub[(sub["method"] == method) & sub["dataset"].isin(datasets)]
                ax.scatter([x[d] + off for d in m["dataset"]], m[metric], s=55, marker=METHOD_MARKERS[method],
                           color=method_colour(method), label=method_label(method), zorder=3,
                           edgecolor="white", linewidth=0.6)
            ax.set_xticks(range(len(datasets)))
            ax.set_xticklabels(datasets, rotation=30 if len(datasets) > 3 else 0, ha="right" if len(datasets) > 3 else "center")
            ax.set_xlim(-0.6, len(datasets) - 0.4)
            ax.set_ylabel("PSNR (dB)" if metric == "psnr" else "SSIM")
            if row == 0:
                ax.set_title(task.capitalize())
            _annotate_delta(ax, sub, datasets, x, metric)
            ax.margins(y=0.18)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    for ax in axes.flat:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, bbox_to_anchor=(0.5, -0.02))
    if PAPER in present:
        fig.suptitle("Paper vs. our reproduction (numbers: Δ = ours − paper)")
    else:
        fig.suptitle("Our results per test set (the paper reports none for these test sets)")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def _task_datasets(data: pd.DataFrame, task: str) -> list[str]:
    sub = data[data["task"] == task]
    ours = set(sub.loc[sub["method"] != PAPER, "dataset"])
    paper = set(sub.loc[sub["method"] == PAPER, "dataset"])
    return order_datasets(ours | paper if ours & paper else ours or paper)


def _annotate_delta(ax, sub: pd.DataFrame, datasets, x, metric: str) -> None:
    values = sub.pivot_table(index="dataset", columns="method", values=metric, aggfunc="mean")
    if PAPER not in values.columns or FULL not in values.columns:
        return
    top = sub[sub["dataset"].isin(datasets)][metric].max()
    span = sub[sub["dataset"].isin(datasets)][metric].agg(lambda s: s.max() - s.min()) or 1.0
    for d in datasets:
        if d in values.index and not (math.isnan(values.at[d, PAPER]) or math.isnan(values.at[d, FULL])):
            delta = values.at[d, FULL] - values.at[d, PAPER]
            text = f"{delta:+.2f}" if metric == "psnr" else f"{delta:+.3f}"
            ax.text(x[d], top + 0.08 * span, text.replace("-", "−"), ha="center", va="bottom", fontsize=9,
                    color="#333333")


# --------------------------------------------------------------------------------------------


def ablation_bars(stats: pd.DataFrame, *, reference: str = FULL, level: float = 0.95):
    """Per (task, dataset): PSNR mean ± std over seeds, and Δ PSNR / Δ SSIM to full with bootstrap CIs."""
    set_style()
    groups = list(stats.groupby(["task", "dataset"], sort=False))
    if not groups:
        return empty_figure("No ablation results to plot.")
    n_var = stats["method"].nunique()
    fig, axes = plt.subplots(len(groups), 3, figsize=(13, 0.55 * n_var * len(groups) + 1.6 * len(groups)),
                             squeeze=False)
    pct = int(round(level * 100))
    methods_all = list(dict.fromkeys(stats["method"]))
    for row, ((task, dataset), g) in enumerate(groups):
        g = g.reset_index(drop=True)
        y = np.arange(len(g))[::-1]
        labels = [variant_label(m) for m in g["method"]]
        colours = [method_colour(m, methods_all) for m in g["method"]]
        ax = axes[row, 0]
        ax.barh(y, g["psnr_mean"], xerr=g["psnr_std"].fillna(0), color=colours, capsize=3,
                error_kw={"elinewidth": 1.2})
        lo = np.nanmin(g["psnr_mean"] - g["psnr_std"].fillna(0))
        hi = np.nanmax(g["psnr_mean"] + g["psnr_std"].fillna(0))
        pad = max(0.5, 0.15 * (hi - lo))
        ax.set_xlim(lo - pad, hi + pad)  # bars are read against each other, not against 0 dB
        for yi, v in zip(y, g["psnr_mean"]):
            ax.text(lo - pad * 0.9, yi, f"{v:.2f}", va="center", ha="left", fontsize=9, color="black",
                    bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1})
        ax.set_yticks(y)
        ax.set_yticklabels(labels)
        ax.set_xlabel("PSNR (dB), mean ± std over seeds")
        ax.set_title(f"{task}: {dataset}")
        for col, metric, unit in ((1, "psnr", "dB"), (2, "ssim", "")):
            ax = axes[row, col]
            d = g[f"d{metric}"].to_numpy(dtype=float)
            err = np.vstack([d - g[f"d{metric}_low"], g[f"d{metric}_high"] - d])
            err = np.nan_to_num(err, nan=0.0)
            ax.barh(y, np.nan_to_num(d), xerr=err, color=colours, capsize=3, error_kw={"elinewidth": 1.2})
            ax.axvline(0, color="black", linewidth=1)
            ref_y = [yi for yi, m in zip(y, g["method"]) if m == reference]
            ax.plot([0] * len(ref_y), ref_y, "D", color="black", markersize=5, label="reference")
            ends = np.concatenate([[0.0], g[f"d{metric}_low"].dropna(), g[f"d{metric}_high"].dropna(), d[~np.isnan(d)]])
            span = float(ends.max() - ends.min()) or 1.0
            ax.set_xlim(ends.min() - 0.12 * span, ends.max() + 0.12 * span)
            ax.set_yticks(y)
            ax.set_yticklabels([] if col else labels)
            ax.set_xlabel(f"Δ {metric.upper()}{' (' + unit + ')' if unit else ''} vs {reference}, {pct}% CI")
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    fig.suptitle("Ablation: each variant against the full MPRNet (paired bootstrap over test images)")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------


def per_image_distributions(scores: pd.DataFrame, *, metric: str = "psnr", methods: Sequence[str] | None = None):
    """Box plot plus every image (mean over seeds) per method, one panel per (task, dataset)."""
    set_style()
    frame = scores.copy()
    if methods is not None:
        frame = frame[frame["method"].isin(methods)]
    per_image = frame.groupby(["task", "dataset", "method", "image"], sort=False)[metric].mean().reset_index()
    panels = list(per_image.groupby(["task", "dataset"], sort=False))
    if not panels:
        return empty_figure("No per-image scores to plot.")
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    methods_all = _method_order(per_image["method"].unique())
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.8 * nrows), squeeze=False)
    joined = False
    for ax, ((task, dataset), g) in zip(axes.flat, panels):
        order = [m for m in methods_all if m in set(g["method"])]
        palette = {m: method_colour(m, methods_all) for m in order}
        with warnings.catch_warnings():  # seaborn 0.13 passes matplotlib 3.11's deprecated `vert`
            warnings.simplefilter("ignore", matplotlib.MatplotlibDeprecationWarning)
            sns.boxplot(data=g, x="method", y=metric, hue="method", order=order, palette=palette, ax=ax,
                        showfliers=False, width=0.6, legend=False, boxprops={"alpha": 0.55})
        # Each image keeps one horizontal offset across methods, so the thin lines join the
        # same image's scores: with few images the reader sees which ones a method helps.
        wide = g.pivot_table(index="image", columns="method", values=metric).reindex(columns=order)
        rng = np.random.default_rng(0)
        offsets = rng.uniform(-0.18, 0.18, len(wide))
        xs = np.arange(len(order))[None, :] + offsets[:, None]
        if len(wide) <= 60:
            joined = True
            ax.plot(xs.T, wide.to_numpy().T, color="#777777", alpha=0.35, linewidth=0.7, zorder=2)
        for j, m in enumerate(order):
            ax.scatter(xs[:, j], wide[m], s=14 if len(wide) <= 200 else 4, color=palette[m], edgecolor="black",
                       linewidth=0.3, alpha=0.85, zorder=3)
        n = g["image"].nunique()
        ax.set_title(f"{task}: {dataset} ({n} images)")
        ax.set_xlabel("")
        ax.set_ylabel("PSNR (dB)" if metric == "psnr" else metric.upper())
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels([short_label(m) for m in order], rotation=25, ha="right")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"Per-image {metric.upper()} (each dot one test image, mean over seeds"
                 + ("; lines join the same image)" if joined else ")"))
    fig.tight_layout()
    return fig


def ruler_sensitivity(per_image: pd.DataFrame, summaries: pd.DataFrame | None = None):
    """Per-image Δ PSNR and Δ SSIM of each alternative ruler against the paper's, one row of two
    panels per test set: a box per ruler with every image as a dot, zero (the paper's ruler) marked,
    the test set's mean Δ written beside each box. ``per_image``:
    :func:`mprnet.report.rulers.read_ruler_files`; ``summaries`` (its
    :func:`~mprnet.report.rulers.ruler_summaries`) adds the dataset rulers' Δ (PSNR of mean MSE) as
    a diamond."""
    from ..metrics.rulers import PAPER, RULERS
    from .rulers import ruler_label
    from .table import format_number

    set_style()
    groups = dict(list(per_image.groupby(["task", "dataset"], sort=False)))
    if not groups:
        return empty_figure("No ruler scores to plot.")
    tasks, datasets = order_tasks([t for t, _ in groups]), order_datasets([d for _, d in groups])
    sets = sorted(groups, key=lambda td: (tasks.index(td[0]), datasets.index(td[1])))
    heights = [max(groups[key]["ruler"].nunique(), 2) for key in sets]  # the image rulers, one more row
    fig, axes = plt.subplots(len(sets), 2, figsize=(12, 0.42 * sum(heights) + 1.3 * len(sets)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for (task, dataset), row in zip(sets, axes):
        scored = groups[(task, dataset)]
        sub = scored[scored["ruler"] != PAPER]
        dataset_rows = pd.DataFrame()
        if summaries is not None:
            dataset_rows = summaries[(summaries["task"] == task) & (summaries["dataset"] == dataset)
                                     & (summaries["kind"] == "dataset")]
        image_rulers = [n for n in RULERS if n in set(sub["ruler"])]
        names = image_rulers + list(dataset_rows.get("ruler", []))
        labels = [ruler_label(n) for n in names]
        n_images = scored["image"].nunique()
        protocol = str(scored["protocol"].iloc[0]) if "protocol" in scored.columns else ""
        for ax, metric, unit in ((row[0], "psnr", "Δ PSNR (dB)"), (row[1], "ssim", "Δ SSIM")):
            values = [sub.loc[sub["ruler"] == n, f"d_{metric}"].to_numpy(dtype=float) for n in image_rulers]
            finite = [v[np.isfinite(v)] for v in values]
            ys = np.arange(len(names))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", matplotlib.MatplotlibDeprecationWarning)
                if any(len(v) for v in finite):
                    ax.boxplot([v if len(v) else [np.nan] for v in finite], positions=ys[:len(finite)], vert=False,
                               widths=0.55, showfliers=False, patch_artist=True,
                               boxprops={"facecolor": PALETTE[0], "alpha": 0.35}, medianprops={"color": "black"})
            rng = np.random.default_rng(0)
            for y, v in zip(ys, finite):
                ax.scatter(v, y + rng.uniform(-0.17, 0.17, len(v)), s=9, color=PALETTE[0], edgecolor="black",
                           linewidth=0.25, alpha=0.8, zorder=3)
                if len(v):
                    text = "= paper" if not np.any(v) else format_number(np.mean(v), 3 if metric == "psnr" else 4,
                                                                          signed=True)
                    ax.annotate(text,
                                (1.0, y), xycoords=("axes fraction", "data"), xytext=(4, 0),
                                textcoords="offset points", va="center", fontsize=9)
            if metric == "psnr":
                for y, (_, d) in zip(ys[len(finite):], dataset_rows.iterrows()):
                    ax.scatter([d["d_psnr_mean"]], [y], marker="D", s=40, color=PALETTE[1], edgecolor="black", zorder=4)
                    ax.annotate(format_number(d["d_psnr_mean"], 3, signed=True), (1.0, y), xycoords=("axes fraction", "data"),
                                xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
            ax.axvline(0.0, color=PALETTE[3], linewidth=1.2, zorder=1)
            ax.set_yticks(ys)
            ax.set_yticklabels(labels if metric == "psnr" else [""] * len(labels))
            ax.set_ylim(len(names) - 0.5, -0.5)
            ax.set_xlabel(unit)
            ax.set_title(f"{dataset} ({n_images} images, paper's ruler: {protocol})" if metric == "psnr" else "")
    fig.suptitle("The same images under other rulers: Δ against the paper's ruler (the line at 0); "
                 "each dot an image, the mean at the right")
    fig.tight_layout()
    return fig


def _method_order(methods) -> list[str]:
    methods = list(dict.fromkeys(methods))
    first = [m for m in (DEGRADED, FULL) if m in methods]
    last = [m for m in (OFFICIAL_WEIGHTS, RELEASED_RESULTS) if m in methods]
    return first + sorted(m for m in methods if m not in first + last) + last


# --------------------------------------------------------------------------------------------


LATE_FRACTION = 0.1  # the loss axis of the training curves is scaled to the iterations after this share


def training_curves(logs: pd.DataFrame):
    """Loss per stage output and validation PSNR against iteration: one panel per (task, group, metric).

    The trainer logs the loss summed over a model's stage outputs, so a 1-stage model's sum has
    one term and the full model's three. When ``logs`` has a ``stages`` column (the number of
    stage outputs of each run) for every row, the loss is divided by it: the mean loss per stage
    output, a quantity the variants share. Without it the summed loss is plotted and the axis
    says so. When the loss of the first ``LATE_FRACTION`` of the iterations would flatten the
    rest (it exceeds the later range by more than three times that range), the loss axis is
    scaled to the later iterations and says so; otherwise it is logarithmic when the loss spans
    more than a factor of 10.
    """
    set_style()
    if logs.empty:
        return empty_figure("No training logs to plot.")
    frame = logs.copy()
    for key, default in (("task", "run"), ("method", FULL), ("seed", 0), ("group", MAIN)):
        if key not in frame.columns:
            frame[key] = default
    loss_label = "training loss (sum over stage outputs)"
    if "loss" in frame.columns and "stages" in frame.columns and frame["stages"].notna().all():
        frame["loss"] = frame["loss"] / frame["stages"].astype(float)
        loss_label = "training loss per stage output"
    metrics = [c for c in ("loss", "val_psnr") if c in frame.columns and frame[c].notna().any()]
    if not metrics:
        return empty_figure("Training logs have neither loss nor val_psnr values.")
    panels = [(task, group, metric) for task, group in dict.fromkeys(zip(frame["task"], frame["group"]))
              for metric in metrics if frame.loc[(frame["task"] == task) & (frame["group"] == group), metric].notna().any()]
    ncols = 2 if len(panels) > 1 else 1
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.4 * ncols, 3.6 * nrows), squeeze=False)
    methods_all = _method_order(frame["method"].unique())
    styles = ["-", "--", ":", "-."]
    for ax, (task, group, metric) in zip(axes.flat, panels):
        sub = frame[(frame["task"] == task) & (frame["group"] == group)]
        name = task if group == MAIN else f"{task} ({group})"
        for (method, seed), run in sub.groupby(["method", "seed"], sort=False):
            run = run[["iteration", metric]].dropna().sort_values("iteration")
            if run.empty:
                continue
            seeds = sorted(sub.loc[sub["method"] == method, "seed"].unique(), key=str)
            ax.plot(run["iteration"], run[metric], color=method_colour(method, methods_all),
                    linestyle=styles[seeds.index(seed) % len(styles)],
                    marker="o" if len(run) < 15 else None, markersize=3,
                    label=f"{short_label(method)}, seed {seed}" if len(seeds) > 1 else short_label(method))
        values = sub[metric].dropna()
        late = sub.loc[sub["iteration"] >= LATE_FRACTION * sub["iteration"].max(), metric].dropna()
        if metric == "loss" and len(late) and values.max() > late.min() + 3 * (late.max() - late.min()):
            # The first iterations' drop would flatten the rest: scale the axis to the later part.
            low, high = float(late.min()), float(late.max())
            pad = 0.08 * (high - low) or 0.01 * abs(high) or 0.01
            ax.set_ylim(low - pad, high + pad)
        elif metric == "loss" and (values > 0).all() and values.max() > 10 * values.min():
            ax.set_yscale("log")
        clipped = ax.get_ylim()[1] < float(values.max()) if len(values) else False
        # Said under the axis, where no legend can cover it.
        ax.set_xlabel("iteration" + (f"  (first {LATE_FRACTION:.0%} of iterations off the top)" if clipped else ""))
        ax.set_ylabel(loss_label.replace(" (", "\n(") if metric == "loss" else "validation PSNR (dB)")
        ax.set_title(f"{name}: {'training loss' if metric == 'loss' else 'validation PSNR'}")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, ncol=2 if sub["method"].nunique() > 2 else 1, framealpha=0.8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------


def stage_progression(stage_scores: pd.DataFrame, summary: pd.DataFrame | None = None, *, method: str = FULL):
    """Mean PSNR of the stage-1, stage-2 and final outputs per dataset (input shown for scale).

    ``stage_scores`` has task, dataset, method, [seed,] image, stage (1..K, K = final), psnr.
    """
    set_style()
    frame = stage_scores[stage_scores["method"] == method] if "method" in stage_scores.columns else stage_scores
    if frame.empty:
        return empty_figure(f"No stage outputs of {method!r} to plot.")
    tasks = order_tasks(frame["task"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.4 * len(tasks), 3.8), squeeze=False)
    inputs = None
    if summary is not None:
        inputs = seed_means(summary[summary["method"] == DEGRADED]).set_index(["task", "dataset"])["psnr"]
    for ax, task in zip(axes.flat, tasks):
        sub = frame[frame["task"] == task]
        n_stages = int(sub["stage"].max())
        labels = ([] if inputs is None else ["input"]) + [f"stage {k}" for k in range(1, n_stages)] + ["final"]
        datasets = order_datasets(sub["dataset"].unique())
        colours = sns.color_palette("colorblind", len(datasets))
        for colour, dataset in zip(colours, datasets):
            d = sub[sub["dataset"] == dataset]
            per_seed = d.groupby(["seed", "stage"] if "seed" in d.columns else ["stage"])["psnr"].mean()
            means = per_seed.groupby(level="stage").mean().reindex(range(1, n_stages + 1))
            ys = list(means.to_numpy())
            first = 0
            if inputs is not None:
                first = 1
                inp = inputs.get((task, dataset), np.nan)
                ax.plot([0, 1], [inp, ys[0]], linestyle=":", color=colour, linewidth=1.5, marker="X")
            ax.plot(range(first, first + len(ys)), ys, marker="o", color=colour, label=dataset, linewidth=2)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels)
        ax.set_ylabel("mean PSNR (dB)")
        ax.set_title(task)
        ax.legend(fontsize=9)
    fig.suptitle(f"Stage-wise progression of {variant_label(method)}: mean PSNR after each stage")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------


def most_different_images(scores: pd.DataFrame, methods: Sequence[str], n: int = 3, metric: str = "psnr") -> list[str]:
    """Images whose score varies most across ``methods`` (range of the seed-mean score)."""
    frame = scores[scores["method"].isin(methods)]
    per_image = frame.groupby(["image", "method"])[metric].mean().unstack("method")
    spread = (per_image.max(axis=1) - per_image.min(axis=1)).sort_values(ascending=False, kind="stable")
    return list(spread.index[:n])


def difference_crop(images: Sequence[np.ndarray], size: int) -> tuple[int, int, int]:
    """(top, left, side) of the square window where the given outputs disagree most."""
    from scipy.ndimage import uniform_filter

    h, w = images[0].shape[:2]
    side = int(max(8, min(size, h, w)))
    stack = np.stack([im.astype(np.float32) for im in images])
    disagreement = stack.std(axis=0).mean(axis=-1)
    local = uniform_filter(disagreement, size=side, mode="constant")
    half = side // 2
    valid = local[half:h - side + half + 1, half:w - side + half + 1]
    if valid.size == 0:
        return 0, 0, side
    cy, cx = np.unravel_index(int(np.argmax(valid)), valid.shape)
    return int(cy), int(cx), side


def crop_side(height: int, width: int, *, crop_fraction: float = 0.5, min_side: int = 64) -> int:
    """Side of the square window a comparison grid enlarges: ``crop_fraction`` of the shorter
    side, at least ``min_side`` px, at most the shorter side. With the default half, the enlarged
    row shows the window at twice the scale of the full view above it: a 128-px demo image gives a
    64-px window, a 720-px GoPro frame a 360-px one (never a 3× blow-up of a few dozen pixels)."""
    short = min(height, width)
    return int(min(short, max(min_side, round(crop_fraction * short))))


def crop_window(panels: Sequence[tuple], *, crop_fraction: float = 0.5, min_crop: int = 64) -> tuple[int, int, int]:
    """(top, left, side) of the window a comparison grid enlarges, for ``(label, image, psnr)`` panels.

    The side is :func:`crop_side`'s; the window sits where the model outputs (the panels other
    than "Input" and "Target") disagree most or, with a single model, where its output differs
    most from the input: where the restoration did the most.
    """
    h, w = panels[0][1].shape[:2]
    outputs = [img for label, img, _ in panels if label not in ("Input", "Target")]
    if len(outputs) < 2:
        outputs = [img for label, img, _ in panels if label != "Target"]
    if len(outputs) < 2:
        outputs = [p[1] for p in panels]
    return difference_crop(outputs, crop_side(h, w, crop_fraction=crop_fraction, min_side=min_crop))


def comparison_grid(rows: Sequence[Mapping], *, crop_fraction: float = 0.5, min_crop: int = 64):
    """Visual comparison: per image, full views (crop outlined) above enlarged crops.

    Each row is ``{"image": stem, "panels": [(label, HxWx3 uint8, psnr or None), ...]}``; the
    enlarged window is :func:`crop_window`'s.
    """
    set_style()
    if not rows:
        return empty_figure("No images to compare.")
    ncols = max(len(r["panels"]) for r in rows)
    fig, axes = plt.subplots(2 * len(rows), ncols, figsize=(2.5 * ncols, 5.2 * len(rows)), squeeze=False)
    from matplotlib.patches import Rectangle

    for i, row in enumerate(rows):
        panels = row["panels"]
        h, w = panels[0][1].shape[:2]
        top, left, side = crop_window(panels, crop_fraction=crop_fraction, min_crop=min_crop)
        for j in range(ncols):
            full_ax, crop_ax = axes[2 * i, j], axes[2 * i + 1, j]
            full_ax.axis("off")
            crop_ax.axis("off")
            if j >= len(panels):
                continue
            label, img, psnr = panels[j]
            full_ax.imshow(img, interpolation="nearest")
            for colour, width in (("black", 3.2), ("#F0E442", 1.6)):  # yellow on black: visible on any content
                full_ax.add_patch(Rectangle((left - 0.5, top - 0.5), side, side, fill=False, edgecolor=colour,
                                            linewidth=width))
            title = label if psnr is None or not np.isfinite(psnr) else f"{label}\n{psnr:.2f} dB"
            full_ax.set_title(title, fontsize=11, fontweight="normal")
            crop_ax.imshow(img[top:top + side, left:left + side], interpolation="nearest")
        zoom = min(h, w) / side
        axes[2 * i + 1, 0].text(-0.08, 0.5, f"zoom ×{zoom:.1f}", transform=axes[2 * i + 1, 0].transAxes,
                                rotation=90, ha="right", va="center", fontsize=10, color="#444444")
        axes[2 * i, 0].text(-0.08, 0.5, row["image"], transform=axes[2 * i, 0].transAxes, rotation=90,
                            ha="right", va="center", fontsize=11)
    fig.tight_layout()
    return fig
