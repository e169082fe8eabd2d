"""The paper-style tables, each built as a :class:`~mprnet.report.table.Table` from DataFrames.

Every number comes from ``summary.csv`` (main table) or the ablation statistics (ablation table,
:func:`mprnet.report.stats.ablation_stats`); nothing is typed in (the cost table is :mod:`.hours`'s).
Layouts follow the MPRNet paper: datasets as columns with PSNR and SSIM under each,
and for deraining an "Average" column that is the mean of the five dataset means (paper, Table 1).
:mod:`.render` writes them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError
from ..study.verdicts import RULE, SHORT_VERDICTS, count_verdicts
from ..vocabulary import (ABLATION, ABLATION_TABLE, AVERAGE, DIGITS, FULL, MAIN_METHODS, MAIN_TABLE,
                          METRIC_LABELS, METRICS, MODEL_BEST, NOT_TRAINED, OFFICIAL_WEIGHTS, PAPER, RELEASED_RESULTS,
                          method_label, order_datasets, variant_label)
from .table import Table, format_ci, format_count, format_mean_std, format_number


# --------------------------------------------------------------------------------------------
# Main results, laid out like the paper

# The difference rows of a main table: the method they follow -> (their row name, the method
# subtracted), and their labels. model_best − model_final: how much choosing the checkpoint on the
# validation set (in the paper's recipe, a test set) moves the number.
DELTA_ROWS = {FULL: ("delta_full_paper", PAPER), MODEL_BEST: ("delta_best_final", FULL),
              OFFICIAL_WEIGHTS: ("delta_official_paper", PAPER)}
DELTA_LABELS = {"delta_full_paper": "Δ (ours − paper)", "delta_best_final": "Δ (best − final)",
                "delta_official_paper": "Δ (official − paper)"}


def seed_means(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, dataset, method): metrics averaged over seeds, with the seed count.

    Accepts the aggregated ``summary.csv`` (one row per method, ``n_seeds`` column) as well as
    one row per seed (``seed`` column). Ablation rows (``group == "ablation"``) are dropped:
    their ``full`` is trained on a smaller budget and must not mix with the main ``full``.
    """
    frame = summary.copy()
    if "group" in frame.columns:
        frame = frame[frame["group"].astype(str) != ABLATION]
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
    ours = set(sub.loc[sub["method"] != PAPER, "dataset"])
    paper = set(sub.loc[sub["method"] == PAPER, "dataset"])
    # Show the paper's other datasets only in a study that shares some with it (not the demo).
    datasets = order_datasets(ours | paper if ours & paper else ours or paper)
    sub = sub[sub["dataset"].isin(datasets)]

    methods = [m for m in MAIN_METHODS if m in set(sub["method"])]
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
        delta, reference = DELTA_ROWS.get(method, (None, None))
        if delta and reference in table.index:
            parts.append((table.loc[[method]] - table.loc[reference].to_numpy()).rename(index={method: delta}))
    return pd.concat(parts)




def task_verdicts(summary: pd.DataFrame, task: str) -> dict[str, dict[str, str]]:
    """method -> test set (or ``Average``) -> verdict of ``summary.csv``'s ``verdict`` column
    (:mod:`mprnet.study.verdicts`) for the rows of ``task`` compared with the paper; a published
    cell without a main number (its ``paper`` row says ``missing``) counts as the ``full``
    model's. Empty when the summary has no verdict column."""
    if "verdict" not in summary.columns:
        return {}
    rows = summary[(summary["task"] == task) & summary["verdict"].notna()]
    if "group" in rows.columns:
        rows = rows[rows["group"].astype(str) != ABLATION]
    out: dict[str, dict[str, str]] = {}
    for _, r in rows.iterrows():
        method = FULL if r["method"] == PAPER else r["method"]
        out.setdefault(method, {}).setdefault(r["dataset"], r["verdict"])
    return out


def _verdict_note(verdicts: dict[str, dict[str, str]]) -> list[str]:
    ours = verdicts.get(FULL, {})
    if not ours:
        return []
    return [f"Verdicts on the {count_verdicts(ours.values())}. Rule: {RULE}."]


def model_best_note(selection: dict) -> tuple[str, str]:
    """(row label, note) of the ``model_best`` row from ``selection`` (``Study.model_best_selection``:
    ``val_set``, ``split``, ``test_set``): which set selected the checkpoint, and whether it is a
    test set of the task itself, whose number is then selected on the images it is scored on."""
    name = selection["val_set"]
    label = f"{method_label(MODEL_BEST)} (selected on {name})"
    where = f"{name} (split {selection['split']})"
    if selection.get("test_set"):
        whose = (f"which is the test set {name} itself: its {name} number is selected on the images it is "
                 "scored on, as the official recipe does")
    else:
        whose = "by name not one of this task's test sets"
    note = (f"{label}: the run's checkpoint of best validation PSNR, selected on {where}, {whose}; "
            f"{method_label(FULL)} is the run's final checkpoint (model_final), selected on nothing. "
            f"{DELTA_LABELS['delta_best_final']}: model_best − model_final.")
    return label, note


def main_results_table(summary: pd.DataFrame, task: str, *, with_average: bool | None = None,
                       selection: dict | None = None) -> Table:
    """The task's main table (:func:`main_results` formatted). ``selection``: how its ``model_best``
    rows were selected (``Study.model_best_selection``), for their label and note."""
    numbers = main_results(summary, task, with_average=with_average)
    seeds = seed_means(summary[(summary["task"] == task) & (summary["method"] == FULL)])["n_seeds"]
    verdicts = task_verdicts(summary, task)
    header = [(str(d), METRIC_LABELS[m]) for d, m in numbers.columns]
    rows, data_rows = [], []
    rules = set()
    best_label, best_note = model_best_note(selection) if selection and MODEL_BEST in numbers.index else (None, None)
    delta_of = {row: method for method, (row, _) in DELTA_ROWS.items()}
    for i, (method, values) in enumerate(numbers.iterrows()):
        if i and method in (FULL, OFFICIAL_WEIGHTS, RELEASED_RESULTS):
            rules.add(len(rows))
        delta = method in DELTA_LABELS
        cells = [format_number(values[(d, m)], DIGITS[m], signed=delta) for d, m in numbers.columns]
        label = best_label if method == MODEL_BEST and best_label else method_label(method)
        rows.append((DELTA_LABELS.get(method, label), cells))
        data_rows.append(values.rename(method))
        # A method's verdict row follows its Δ row, or its own row where it has no Δ row; with no
        # main model at all, the main model's verdicts (all missing) follow the paper's row.
        owner = delta_of.get(method, None if method in DELTA_ROWS else method)
        if method == PAPER:
            owner = FULL if FULL not in numbers.index else None
        if owner in verdicts:
            words = [SHORT_VERDICTS.get(verdicts[owner].get(d), verdicts[owner].get(d, "")) if m == "psnr" else ""
                     for d, m in numbers.columns]
            rows.append((f"Verdict ({method_label(owner).lower()})" if owner != FULL else "Verdict", words))
            data_rows.append(pd.Series([verdicts[owner].get(d) if m == "psnr" else None for d, m in numbers.columns],
                                       index=numbers.columns, name=f"verdict_{owner}", dtype=object))
    data = pd.DataFrame(data_rows)
    data.columns = [f"{d}_{m}" for d, m in numbers.columns]
    data.insert(0, "row", [s.name for s in data_rows])
    notes = [f"PSNR in dB, SSIM in [0, 1]; task {task}."]
    if len(seeds) and np.nanmax(seeds.to_numpy(dtype=float)) > 1:
        notes.append(f"Ours: mean over {int(seeds.max())} seeds.")
    if AVERAGE in numbers.columns.get_level_values(0):
        notes.append("Average: mean of the dataset means, as in the paper.")
    if best_note:
        notes.append(best_note)
    notes += _verdict_note(verdicts)
    return Table(
        name=MAIN_TABLE.format(task=task),
        title=f"{task.capitalize()}: " + ("paper vs. our reproduction" if PAPER in numbers.index else "our results"),
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


def ablation_table(
    stats: pd.DataFrame,
    *,
    model_costs: pd.DataFrame | None = None,
    restore_times: pd.DataFrame | None = None,
    reference: str = FULL,
    level: float = 0.95,
    n_resamples: int = 10_000,
    name: str = ABLATION_TABLE,
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
