"""Paper-style tables as pure functions of DataFrames, written as Markdown, LaTeX and CSV.

Every number comes from ``summary.csv`` (main table), the per-image scores (ablation table)
or the Snakemake benchmark files (cost table); nothing is typed in. Layouts follow the
MPRNet paper: datasets as columns with PSNR and SSIM under each, and for deraining an
"Average" column that is the mean of the five dataset means (paper, Table 1).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..atomic import atomic_write_text
from ..errors import DataError
from .stats import mean_std, paired_bootstrap_ci

# Methods that are not a model we trained: they never enter the ablation.
NOT_TRAINED = ("degraded", "paper", "official_weights", "released_results")
METHOD_LABELS = {
    "degraded": "Input (degraded)",
    "paper": "Paper",
    "full": "Ours",
    "official_weights": "Official weights",
    "released_results": "Released results",
}
VARIANT_LABELS = {
    "full": "MPRNet (full)",
    "no_sam": "w/o SAM",
    "no_csff": "w/o CSFF",
    "single_stage": "1 stage",
    "two_stage": "2 stages",
}
# Column order of the paper's tables; datasets not listed follow in alphabetical order.
DATASET_ORDER = (
    "Test100", "Rain100H", "Rain100L", "Test2800", "Test1200",
    "GoPro", "HIDE", "RealBlur-R", "RealBlur-J",
    "SIDD", "DND",
)
AVERAGE = "Average"
METRICS = ("psnr", "ssim")
METRIC_LABELS = {"psnr": "PSNR", "ssim": "SSIM"}
DIGITS = {"psnr": 2, "ssim": 3}


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, VARIANT_LABELS.get(method, method))


def variant_label(method: str) -> str:
    return VARIANT_LABELS.get(method, method)


def order_datasets(datasets: Iterable[str]) -> list[str]:
    rank = {name: i for i, name in enumerate(DATASET_ORDER)}
    unique = list(dict.fromkeys(datasets))
    return sorted(unique, key=lambda d: (rank.get(d, len(rank)), d))


# --------------------------------------------------------------------------------------------
# The table object and its three renderings


@dataclass
class Table:
    """A rendered table: formatted cells for Markdown/LaTeX, raw numbers for CSV.

    ``header`` is a list of (group, label) per column after the first (row-label) column;
    columns sharing a non-empty group get one spanning group header (LaTeX) or a
    "group label" heading (Markdown, which has a single header row).
    """

    name: str
    title: str
    row_header: str
    header: list[tuple[str, str]]
    rows: list[tuple[str, list[str]]]
    data: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    rules_before: set[int] = field(default_factory=set)  # row indices preceded by \midrule

    @property
    def n_columns(self) -> int:
        return 1 + len(self.header)


def format_number(value: float, digits: int, *, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = round(float(value), digits) + 0.0  # no "−0.00": a value that rounds to zero has no sign
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return text.replace("-", "−")


def format_count(value: float) -> str:
    """Parameter counts readable at both scales: 20.13 M for the paper's models, 99.3 k for the demo's."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{int(value)}"


def format_duration(seconds: float) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "–"
    total = int(round(seconds))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def format_mean_std(mean: float, std: float, digits: int) -> str:
    if math.isnan(mean):
        return "–"
    if math.isnan(std):
        return format_number(mean, digits)
    return f"{format_number(mean, digits)} ± {format_number(std, digits)}"


def format_ci(mean: float, low: float, high: float, digits: int) -> str:
    if math.isnan(mean):
        return "–"
    if math.isnan(low):
        return format_number(mean, digits, signed=True)
    return f"{format_number(mean, digits, signed=True)} [{format_number(low, digits, signed=True)}, {format_number(high, digits, signed=True)}]"


def to_markdown(table: Table) -> str:
    heads = [table.row_header] + [f"{g} {l}".strip() for g, l in table.header]
    lines = [f"**{table.title}**", ""]
    lines.append("| " + " | ".join(heads) + " |")
    lines.append("|" + "|".join([":---"] + ["---:"] * len(table.header)) + "|")
    for label, cells in table.rows:
        lines.append("| " + " | ".join([_md_escape(label)] + [_md_escape(c) for c in cells]) + " |")
    if table.notes:
        lines.append("")
        lines.append(" ".join(table.notes))
    return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
_LATEX_UNICODE = {"±": r"$\pm$", "−": "$-$", "Δ": r"$\Delta$", "–": "--", "×": r"$\times$", "≥": r"$\geq$"}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    for uni, tex in _LATEX_UNICODE.items():
        out = out.replace(uni, tex)
    return out


def to_latex(table: Table) -> str:
    """A booktabs ``table`` float; every row has exactly ``n_columns`` cells."""
    spec = "l" + "r" * len(table.header)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(table.title)}}}",
        rf"\label{{tab:{table.name}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
    ]
    groups = _group_spans(table.header)
    if any(g for g, _, _ in groups):
        cells = [""]
        rules = []
        for group, start, width in groups:
            col = start + 2  # LaTeX columns are 1-based and column 1 holds the row labels
            if group and width > 1:
                cells.append(rf"\multicolumn{{{width}}}{{c}}{{{latex_escape(group)}}}")
                rules.append(rf"\cmidrule(lr){{{col}-{col + width - 1}}}")
            else:
                cells.extend([latex_escape(group)] * width if width == 1 else [""] * width)
        lines.append(" & ".join(cells) + r" \\")
        if rules:
            lines.append(" ".join(rules))
    lines.append(" & ".join([latex_escape(table.row_header)] + [latex_escape(l) for _, l in table.header]) + r" \\")
    lines.append(r"\midrule")
    for i, (label, cells) in enumerate(table.rows):
        if i in table.rules_before and i > 0:
            lines.append(r"\midrule")
        lines.append(" & ".join([latex_escape(label)] + [latex_escape(c) for c in cells]) + r" \\")
    lines.append(r"\bottomrule")
    lines.append(r"\end{tabular}")
    if table.notes:
        lines.append(r"\par\smallskip{\footnotesize " + latex_escape(" ".join(table.notes)) + "}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _group_spans(header: Sequence[tuple[str, str]]) -> list[tuple[str, int, int]]:
    spans: list[tuple[str, int, int]] = []
    for i, (group, _) in enumerate(header):
        if spans and group and spans[-1][0] == group:
            g, start, width = spans[-1]
            spans[-1] = (g, start, width + 1)
        else:
            spans.append((group, i, 1))
    return spans


HTML_STYLE = (
    "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
    "caption{font-weight:bold;text-align:left;margin-bottom:.4em}"
    "th,td{padding:.25em .7em;text-align:right}th:first-child,td:first-child{text-align:left}"
    "thead tr:last-child th{border-bottom:1px solid #000}table{border-top:2px solid #000;border-bottom:2px solid #000}"
    "tr.rule td{border-top:1px solid #888}p.notes{font-size:90%;color:#333;max-width:60em}"
)


def to_html(table: Table) -> str:
    """A standalone HTML page (the Snakemake report shows HTML results inline)."""
    import html

    esc = html.escape
    groups = _group_spans(table.header)
    head = []
    if any(g for g, _, _ in groups):
        head.append("<tr><th></th>" + "".join(f'<th colspan="{w}" style="text-align:center">{esc(g)}</th>'
                                               for g, _, w in groups) + "</tr>")
    head.append(f"<tr><th>{esc(table.row_header)}</th>" + "".join(f"<th>{esc(l)}</th>" for _, l in table.header) + "</tr>")
    body = []
    for i, (label, cells) in enumerate(table.rows):
        cls = ' class="rule"' if i in table.rules_before and i > 0 else ""
        body.append(f"<tr{cls}><td>{esc(label)}</td>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    notes = f'<p class="notes">{esc(" ".join(table.notes))}</p>' if table.notes else ""
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{esc(table.title)}</title>'
            f"<style>{HTML_STYLE}</style></head><body>\n<table><caption>{esc(table.title)}</caption>\n"
            f"<thead>{''.join(head)}</thead>\n<tbody>\n" + "\n".join(body) + f"\n</tbody></table>\n{notes}\n</body></html>\n")


TABLE_FORMATS = ("md", "tex", "csv", "html")


def write_table(table: Table, out_dir: str | os.PathLike) -> list[Path]:
    """Write ``<name>.{md,tex,csv,html}`` into ``out_dir`` (atomically); the CSV holds raw numbers."""
    out_dir = Path(out_dir)
    paths = [out_dir / f"{table.name}.{ext}" for ext in TABLE_FORMATS]
    atomic_write_text(paths[0], to_markdown(table))
    atomic_write_text(paths[1], to_latex(table))
    atomic_write_text(paths[2], table.data.to_csv(index=False, float_format="%.10g"))
    atomic_write_text(paths[3], to_html(table))
    return paths


# --------------------------------------------------------------------------------------------
# Main results, laid out like the paper


def seed_means(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, dataset, method): metrics averaged over seeds, with the seed count.

    Accepts the aggregated ``summary.csv`` (one row per method, ``n_seeds`` column) as well as
    one row per seed (``seed`` column). Ablation rows (``group == "ablation"``) are dropped:
    their ``full`` is trained on a smaller budget and must not mix with the main ``full``.
    """
    frame = summary.copy()
    if "group" in frame.columns:
        frame = frame[frame["group"].astype(str) != "ablation"]
    grouped = frame.groupby(["task", "dataset", "method"], sort=False, dropna=False)
    out = grouped[list(METRICS)].mean()
    if "seed" in frame.columns:
        out["n_seeds"] = grouped["seed"].nunique()
    elif "n_seeds" in frame.columns:
        out["n_seeds"] = grouped["n_seeds"].max()
    else:
        out["n_seeds"] = 1
    out["n_images"] = grouped["n_images"].max() if "n_images" in frame.columns else np.nan
    return out.reset_index()


def main_results(summary: pd.DataFrame, task: str, *, with_average: bool | None = None) -> pd.DataFrame:
    """Rows = methods (plus Δ rows), columns = MultiIndex (dataset, metric); raw numbers.

    The ``Average`` column is the mean of the dataset means, defined only for rows that have
    every dataset (otherwise it would average different sets). A reported paper Average in
    the summary is ignored in favour of this recomputation, which reproduces 32.73 dB.
    """
    sub = summary[summary["task"] == task]
    if sub.empty:
        raise DataError(f"summary has no rows for task {task!r} (tasks: {', '.join(sorted(summary['task'].unique()))})")
    sub = seed_means(sub[sub["dataset"] != AVERAGE])
    ours = set(sub.loc[sub["method"] != "paper", "dataset"])
    paper = set(sub.loc[sub["method"] == "paper", "dataset"])
    # Show the paper's other datasets only in a study that shares some with it (not the demo).
    datasets = order_datasets(ours | paper if ours & paper else ours or paper)
    sub = sub[sub["dataset"].isin(datasets)]

    methods = [m for m in ("degraded", "paper", "full", "official_weights", "released_results") if m in set(sub["method"])]
    methods += sorted(set(sub["method"]) - set(methods) - set(NOT_TRAINED))  # e.g. ablations on this task
    wide = sub.pivot_table(index="method", columns="dataset", values=list(METRICS), aggfunc="mean", dropna=False)
    wide = wide.swaplevel(0, 1, axis=1)
    columns = pd.MultiIndex.from_product([datasets, list(METRICS)], names=["dataset", "metric"])
    table = wide.reindex(index=methods, columns=columns)
    if with_average is None:
        with_average = task == "deraining"
    if with_average and len(datasets) > 1:
        for metric in METRICS:
            values = table.xs(metric, axis=1, level="metric")
            table[(AVERAGE, metric)] = values.mean(axis=1, skipna=False)
    parts = []
    for method in table.index:
        parts.append(table.loc[[method]])
        delta = {"full": "delta_full_paper", "official_weights": "delta_official_paper"}.get(method)
        if delta and "paper" in table.index:
            parts.append((table.loc[[method]] - table.loc["paper"].to_numpy()).rename(index={method: delta}))
    return pd.concat(parts)


DELTA_LABELS = {"delta_full_paper": "Δ (ours − paper)", "delta_official_paper": "Δ (official − paper)"}


def main_results_table(summary: pd.DataFrame, task: str, *, with_average: bool | None = None) -> Table:
    numbers = main_results(summary, task, with_average=with_average)
    seeds = seed_means(summary[(summary["task"] == task) & (summary["method"] == "full")])["n_seeds"]
    header = [(str(d), METRIC_LABELS[m]) for d, m in numbers.columns]
    rows = []
    rules = {i for i, m in enumerate(numbers.index) if i and m in ("full", "official_weights", "released_results")}
    for method, values in numbers.iterrows():
        delta = method in DELTA_LABELS
        cells = [format_number(values[(d, m)], DIGITS[m], signed=delta) for d, m in numbers.columns]
        rows.append((DELTA_LABELS.get(method, method_label(method)), cells))
    data = numbers.copy()
    data.columns = [f"{d}_{m}" for d, m in numbers.columns]
    data.insert(0, "row", list(numbers.index))
    notes = [f"PSNR in dB, SSIM in [0, 1]; task {task}."]
    if len(seeds) and np.nanmax(seeds.to_numpy(dtype=float)) > 1:
        notes.append(f"Ours: mean over {int(seeds.max())} seeds.")
    if AVERAGE in numbers.columns.get_level_values(0):
        notes.append("Average: mean of the dataset means, as in the paper.")
    return Table(
        name=f"main_{task}",
        title=f"{task.capitalize()}: " + ("paper vs. our reproduction" if "paper" in numbers.index else "our results"),
        row_header="Method", header=header, rows=rows, data=data.reset_index(drop=True), notes=notes,
        rules_before=rules,
    )


PRECISION_COLUMNS = (("train_precision", "Trained"), ("restore_precision", "restored"))


def precision_note(summary: pd.DataFrame, task: str, group: str | None = None) -> list[str]:
    """One note saying which arithmetic trained and restored the rows of ``task``
    (``summary.csv``'s ``train_precision`` and ``precision``): ``Trained in bf16; restored in fp32
    (bf16 = bf16 autocast).``, or the methods per precision where they differ. Empty for a
    summary without those columns or rows; rows of ``group`` only, if given."""
    rows = summary[summary["task"] == task].rename(columns={"precision": "restore_precision"})
    if group is not None and "group" in rows.columns:
        rows = rows[rows["group"].astype(str) == group]
    phrases, seen = [], set()
    for column, verb in PRECISION_COLUMNS:
        if column not in rows.columns:
            continue
        known = rows[rows[column].notna()]
        by_precision = {p: list(dict.fromkeys(known.loc[known[column] == p, "method"])) for p in sorted(set(known[column]))}
        seen.update(by_precision)
        if len(by_precision) == 1:
            phrases.append(f"{verb} in {next(iter(by_precision))}")
        elif by_precision:
            phrases.append(f"{verb} in " + "; ".join(
                f"{p}: {', '.join(method_label(m) for m in methods)}" for p, methods in by_precision.items()))
    if not phrases:
        return []
    if len(phrases) == 2 and phrases[0].split(" in ", 1)[1] == phrases[1].split(" in ", 1)[1]:
        phrases = [f"Trained and restored in {phrases[0].split(' in ', 1)[1]}"]
    text = "; ".join(phrases)
    text = text[0].upper() + text[1:]
    autocast = sorted(p for p in {"bf16", "fp16"} if any(p in value.split("+") for value in seen))
    return [text + (f" ({', '.join(f'{p} = {p} autocast' for p in autocast)})." if autocast else ".")]


# --------------------------------------------------------------------------------------------
# Ablation: mean ± std over seeds, paired bootstrap CI of the difference to the full model


def ablation_stats(
    scores: pd.DataFrame,
    *,
    reference: str = "full",
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


def ablation_table(
    stats: pd.DataFrame,
    *,
    model_costs: pd.DataFrame | None = None,
    restore_times: pd.DataFrame | None = None,
    reference: str = "full",
    level: float = 0.95,
    n_resamples: int = 10_000,
    name: str = "ablation",
) -> Table:
    """Rows = (dataset, variant); parameters/GFLOPs join on (task, method), time on (task, dataset, method)."""
    data = stats.copy()
    if model_costs is not None and not model_costs.empty:
        cost_cols = [c for c in ("params", "gflops") if c in model_costs.columns]
        data = data.merge(model_costs[["task", "method", *cost_cols]].drop_duplicates(["task", "method"]),
                          on=["task", "method"], how="left")
    if restore_times is not None and not restore_times.empty:
        data = data.merge(restore_times[["task", "dataset", "method", "seconds_per_image"]],
                          on=["task", "dataset", "method"], how="left")
    for col in ("params", "gflops", "seconds_per_image"):
        if col not in data.columns:
            data[col] = np.nan
    pct = int(round(level * 100))
    header = [("PSNR (dB)", "mean ± std"), ("SSIM", "mean ± std"),
              (f"Δ PSNR vs {reference}", f"[{pct}% CI]"), (f"Δ SSIM vs {reference}", f"[{pct}% CI]"),
              ("Params", ""), ("GFLOPs", "256×256"), ("Time", "(s/image)")]
    multi = data["dataset"].nunique() > 1 or data["task"].nunique() > 1
    rows, rules = [], set()
    previous = None
    for _, r in data.iterrows():
        key = (r["task"], r["dataset"])
        if previous is not None and key != previous:
            rules.add(len(rows))
        previous = key
        label = variant_label(r["method"])
        if multi:
            label = f"{r['dataset']}: {label}"
        rows.append((label, [
            format_mean_std(r["psnr_mean"], r["psnr_std"], 2),
            format_mean_std(r["ssim_mean"], r["ssim_std"], 4),
            "(reference)" if r["method"] == reference else format_ci(r["dpsnr"], r["dpsnr_low"], r["dpsnr_high"], 2),
            "(reference)" if r["method"] == reference else format_ci(r["dssim"], r["dssim_low"], r["dssim_high"], 4),
            format_count(r["params"]),
            format_number(r["gflops"], 2 if r["gflops"] < 10 else 1),
            format_number(r["seconds_per_image"], 3),
        ]))
    seeds = sorted(set(int(n) for n in data["n_seeds"]))
    notes = [
        f"Mean ± std over seeds ({'/'.join(map(str, seeds))} per variant); Δ is the mean per-image difference variant − {reference} "
        f"with a paired bootstrap {pct}% CI over test images ({n_resamples:,} resamples, seeded).",
        "GFLOPs: one forward pass on a 1×3×256×256 input counted by torch.utils.flop_counter (2 FLOPs per multiply-add). "
        "Time: restore job wall time / images, including model loading and image I/O.",
    ]
    tasks = ", ".join(sorted(data["task"].unique()))
    return Table(name=name, title=f"Ablation ({tasks}): variants against the full model", row_header="Variant",
                 header=header, rows=rows, data=data, notes=notes, rules_before=rules)


def restore_times(benchmarks: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Seconds per image of restore jobs: benchmark wall time / images scored, mean over seeds."""
    keys = [k for k in ("group", "task", "dataset", "method", "seed") if k in benchmarks.columns and k in scores.columns]
    if not {"task", "dataset", "method"} <= set(keys):
        raise DataError("restore benchmarks need task, dataset and method fields in their path template")
    counts = scores.groupby(keys)["image"].nunique().rename("n_images").reset_index()
    merged = benchmarks.merge(counts, on=keys, how="inner")
    merged["seconds_per_image"] = merged["seconds"] / merged["n_images"]
    return merged.groupby(["task", "dataset", "method"], as_index=False)["seconds_per_image"].mean()


# --------------------------------------------------------------------------------------------
# Cost: hours per trained model


def cost_table(benchmarks: pd.DataFrame, *, device: str = "", name: str = "cost") -> Table:
    """One row per trained model (task, method, seed) from its training rule's benchmark file.

    Snakemake records the last attempt only: a job retried after preemption reports the
    time of its final (resumed) attempt, so these hours are a lower bound in that case.
    """
    keys = [k for k in ("group", "task", "method", "seed") if k in benchmarks.columns]
    data = benchmarks.sort_values(keys).reset_index(drop=True) if keys else benchmarks.copy()
    data = data.copy()
    data["hours"] = data["seconds"] / 3600.0
    data["cpu_hours"] = data["cpu_seconds"] / 3600.0
    data["max_rss_gb"] = data["max_rss_mb"] / 1024.0
    hours_label = f"{device}-hours" if device else "Hours"
    header = [("", "Wall time"), ("", hours_label), ("", "CPU-hours"), ("", "Peak RSS (GB)")]
    rows = []
    for _, r in data.iterrows():
        label = " / ".join(str(r[k]) if k != "seed" else f"seed {r[k]}" for k in keys) or "run"
        rows.append((label, [format_duration(r["seconds"]), format_number(r["hours"], 3),
                             format_number(r["cpu_hours"], 3), format_number(r["max_rss_gb"], 2)]))
    total = {"hours": data["hours"].sum(), "cpu_hours": data["cpu_hours"].sum(min_count=1)}
    rows.append(("Total", [format_duration(data["seconds"].sum()), format_number(total["hours"], 3),
                           format_number(total["cpu_hours"], 3), "–"]))
    data_out = data[[*keys, "seconds", "hours", "cpu_hours", "max_rss_gb"]]
    notes = ["Wall-clock hours of each training job from its Snakemake benchmark file; "
             "for a job retried after preemption only the final attempt is recorded."]
    if device:
        notes.append(f"Device: {device}.")
    return Table(name=name, title="Training cost per model", row_header="Model", header=header, rows=rows,
                 data=data_out, notes=notes, rules_before={len(rows) - 1})
