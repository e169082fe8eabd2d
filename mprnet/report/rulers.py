"""The ruler table of a study: how far the rulers people use move each test set's score.

The ``ruler_scores`` jobs score the main model's restored images (first seed) of every scored test
set under the paper's protocol and under each alternative ruler of :mod:`mprnet.metrics.rulers`,
one per-image file per test set (``mprnet rulers --out``). :func:`read_ruler_files` reads them
with what each one is about (task, test set, method, seed, protocol: the study manifest's
``ruler_scores`` entries); :func:`ruler_summaries` summarises each with
:func:`mprnet.metrics.rulers.sensitivity_summary`; :func:`ruler_table` lays the result out as a
:class:`~mprnet.report.table.Table` (one block of rows per test set, the paper's ruler first) and
:func:`mprnet.report.figures.ruler_sensitivity` draws the per-image differences. The paper's ruler
stays the one every main table uses; this table only says what another would have reported.
"""

from __future__ import annotations


import pandas as pd

from ..errors import DataError
from ..metrics.rulers import PAPER, RULERS, read_ruler_scores, sensitivity_summary
from ..vocabulary import RULER_TABLE, order_datasets, order_tasks
from .loaders import Files, with_fields
from .table import Table, format_mean_std, format_number, format_range

FIELDS = ("task", "dataset", "method", "group", "seed", "protocol")


def ruler_label(name: str, protocol: str = "") -> str:
    """A ruler's name in tables and figures: ``Paper's ruler (y_channel)``, ``scikit-image``, ..."""
    if name == PAPER:
        return f"Paper's ruler ({protocol})" if protocol else "Paper's ruler"
    ruler = RULERS.get(name)
    return (ruler.label or ruler.name) if ruler else name


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in the paper's order of tasks and test sets, each set's rulers in registry order."""
    tasks = {t: i for i, t in enumerate(order_tasks(frame["task"]))}
    datasets = {d: i for i, d in enumerate(order_datasets(frame["dataset"]))}
    rulers = {name: i for i, name in enumerate([PAPER, *RULERS])}
    key = frame.assign(_t=frame["task"].map(tasks), _d=frame["dataset"].map(datasets),
                       _r=frame["ruler"].map(rulers).fillna(len(rulers)))
    return key.sort_values(["_t", "_d", "_r"], kind="stable").drop(columns=["_t", "_d", "_r"]).reset_index(drop=True)


def read_ruler_files(files: Files) -> pd.DataFrame:
    """Every per-image ruler file (``(fields, path)`` pairs; the fields must name the ``protocol``)
    as one DataFrame: :data:`mprnet.metrics.rulers.PER_IMAGE_COLUMNS` plus the fields as columns.
    Raises DataError when no file is given or a file lacks its protocol."""
    frames = []
    for fields, path in files:
        if "protocol" not in fields:
            raise DataError(f"{path}: the study manifest gives no protocol for this ruler file")
        frames.append(with_fields(read_ruler_scores(path), fields))
    if not frames:
        raise DataError("no ruler score files to tabulate")
    return pd.concat(frames, ignore_index=True)


def ruler_summaries(per_image: pd.DataFrame) -> pd.DataFrame:
    """:func:`mprnet.metrics.rulers.sensitivity_summary` of each test set of ``per_image`` (the frame
    of :func:`read_ruler_files`), with its task, dataset, method, seed and protocol in front; test
    sets in the paper's order."""
    parts = []
    keys = [c for c in FIELDS if c in per_image.columns]
    for values, sub in per_image.groupby(keys, sort=False, dropna=False):
        fields = dict(zip(keys, values))
        present = [n for n in dict.fromkeys(sub["ruler"]) if n != PAPER]
        dataset_rulers = [n for n, r in RULERS.items() if r.kind == "dataset" and fields["protocol"] in r.protocols]
        summary = sensitivity_summary(sub, fields["protocol"], present + dataset_rulers)
        parts.append(summary.assign(**{k: fields[k] for k in keys}))
    frame = pd.concat(parts, ignore_index=True)
    return _ordered(frame[keys + [c for c in frame.columns if c not in keys]])


def _delta_cells(r, metric: str, digits: int) -> list[str]:
    """(mean ± std, [min, max]) of a ruler's Δ; ``(reference)`` for the paper's ruler and ``= paper``
    where every image scores exactly as under the paper's ruler (e.g. the same PSNR formula)."""
    if r["ruler"] == PAPER:
        return ["(reference)", ""]
    low, high = r[f"d_{metric}_min"], r[f"d_{metric}_max"]
    if low == 0 and high == 0:
        return ["= paper", ""]
    return [format_mean_std(r[f"d_{metric}_mean"], r[f"d_{metric}_std"], digits, signed=True),
            format_range(low, high, digits)]


def ruler_table(summaries: pd.DataFrame, *, name: str = RULER_TABLE) -> Table:
    """Rows = (test set, ruler), the paper's ruler first in each block; columns: the test set's
    PSNR (dB) and SSIM under the ruler, and the per-image Δ against the paper's ruler (ruler −
    paper): mean ± sample std over images, and its range (``= paper`` where no image differs).
    ``summaries``: :func:`ruler_summaries`."""
    header = [("PSNR (dB)", ""), ("Δ PSNR (dB)", "mean ± std"), ("Δ PSNR (dB)", "[min, max]"),
              ("SSIM", ""), ("Δ SSIM", "mean ± std"), ("Δ SSIM", "[min, max]")]
    rows, rules, previous = [], set(), None
    for _, r in summaries.iterrows():
        key = (r["task"], r["dataset"])
        if previous is not None and key != previous:
            rules.add(len(rows))
        previous = key
        label = f"{r['dataset']}: {ruler_label(r['ruler'], r['protocol'])}"
        rows.append((label, [format_number(r["psnr"], 2), *_delta_cells(r, "psnr", 3),
                             format_number(r["ssim"], 4), *_delta_cells(r, "ssim", 4)]))
    seeds = sorted({str(s) for s in summaries.get("seed", pd.Series(dtype=object)).dropna()})
    notes = [
        "The same restored images (our main model" + (f", seed {'/'.join(seeds)}" if seeds else "")
        + ") scored under the paper's ruler, which every main table uses, and under the rulers readers "
        "use instead. Δ = ruler − paper's ruler per image: mean ± sample std over the test set's "
        "images, and its range; PSNR of mean MSE is one number per test set.",
        "Rulers: " + "; ".join(f"{r.label}: {r.description}" for r in RULERS.values()
                                if r.name in set(summaries["ruler"])) + ".",
    ]
    data = summaries.assign(label=[ruler_label(n, p) for n, p in zip(summaries["ruler"], summaries["protocol"])])
    return Table(name=name, title="Ruler sensitivity: the same images under the rulers people use",
                 row_header="Test set: ruler", header=header, rows=rows, data=data.reset_index(drop=True),
                 notes=notes, rules_before=rules)
