"""The report steps of the workflow: tables, figures, comparison grids, model costs, stage scores,
the ablation statistics, provenance and the results README.

Each function reads the files it is handed (``summary.csv`` and ``runs.csv`` of the aggregation,
and ``(fields, path)`` pairs saying what each benchmark, log or stage-score file is about: the
workflow's scripts take them from the study manifest, :func:`mprnet.report.loaders.manifest_files`)
and writes where it is told, so the workflow (``workflow/rules/report.smk`` through
``workflow/scripts/``) decides every path. Each returns the paths it wrote. pandas is imported
here on purpose; matplotlib (``figures``), torch (``costs``) and the scoring (``stages``) only by
the steps that draw, count or score.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from ..atomic import atomic_path, atomic_write_text
from ..csv_files import read_csv_checked
from ..errors import ConfigError, DataError
from ..images import IMAGE_EXTENSIONS, read_rgb
from ..vocabulary import ABLATION, FULL, VISUAL_KINDS, variant_label
from ..yaml_files import read_yaml_mapping
from .costs import model_costs_table
from .index import write_index
from .loaders import (Files, read_ablation_stats, read_benchmarks, read_run_scores, read_runs, read_summary,
                      read_training_logs, with_fields)
from .provenance import collect, to_html, to_markdown
from .render import write_table
from .stages import score_stages
from .stats import ablation_stats
from . import hours
from .tables import ablation_table as build_ablation_table
from .tables import main_results_table, precision_note, restore_times

PathLike = str | os.PathLike


def _group(frame: pd.DataFrame | None, group: str) -> pd.DataFrame | None:
    if frame is None or "group" not in frame.columns:
        return frame
    return frame[frame["group"].astype(str) == group]


def _other_groups(frame: pd.DataFrame, group: str) -> pd.DataFrame:
    return frame[frame["group"] != group] if "group" in frame.columns else frame


def _ablation_scores(runs: PathLike | None, root: PathLike = ".") -> pd.DataFrame | None:
    """Per-image scores of the ablation runs listed in ``runs.csv``, or None if it has none."""
    if runs is None:
        return None
    scores = _group(read_run_scores(read_runs(runs, root)), ABLATION)
    return scores if scores is not None and not scores.empty else None


def main_table(summary: PathLike, task: str, out_dir: PathLike, *, with_average: bool | None = None,
               selection: Mapping | None = None) -> list[Path]:
    """``main_<task>``: the paper's layout (datasets as columns; paper, ours, Δ and the baselines;
    ``model_best`` and its Δ to the final model where the run validated, ``selection`` saying on what)."""
    main_rows = _other_groups(read_summary(summary), ABLATION)
    table = main_results_table(main_rows, task, with_average=with_average, selection=dict(selection or {}))
    table.notes += precision_note(main_rows, task)
    return write_table(table, out_dir)


def ablation_statistics(runs: PathLike, out: PathLike, *, reference: str = FULL, n_resamples: int = 10_000,
                        seed: int = 0, level: float = 0.95, root: PathLike = ".") -> list[Path]:
    """``tables/ablation_stats.csv``: :func:`mprnet.report.stats.ablation_stats` of the ablation runs of
    ``runs.csv``, once for the ablation table and its figure (every float written exactly, read back
    by :func:`mprnet.report.loaders.read_ablation_stats`). Raises DataError when it lists no ablation run."""
    ablation = _ablation_scores(runs, root)
    if ablation is None:
        raise DataError(f"{runs}: no ablation runs to tabulate")
    stats = ablation_stats(ablation, reference=reference, n_resamples=n_resamples, level=level, seed=seed)
    with atomic_path(out) as tmp:
        stats.to_csv(tmp, index=False)  # repr of every float: exact through read_ablation_stats
    return [Path(out)]


def ablation_table(summary: PathLike, stats: PathLike, runs: PathLike, model_costs: PathLike | None,
                   restore_benchmarks: Files, out_dir: PathLike, *, reference: str = FULL, n_resamples: int = 10_000,
                   level: float = 0.95, root: PathLike = ".") -> list[Path]:
    """``ablation``: mean ± std over seeds, paired bootstrap CI of Δ to ``reference`` (``stats``, the
    file of :func:`ablation_statistics`, made with ``n_resamples`` and ``level``), parameters, GFLOPs
    and restore time per image (the ablation runs' per-image scores of ``runs.csv`` give the counts).

    Raises DataError when ``runs.csv`` lists no ablation run.
    """
    frame = read_summary(summary)
    ablation = _ablation_scores(runs, root)
    if ablation is None:
        raise DataError(f"{runs}: no ablation runs to tabulate")
    costs = pd.read_csv(model_costs) if model_costs else None
    if costs is not None and "group" in costs.columns and (costs["group"].astype(str) == ABLATION).any():
        costs = _group(costs, ABLATION)
    files = list(restore_benchmarks)
    times = restore_times(_group(read_benchmarks(files), ABLATION), ablation) if files else None
    made = build_ablation_table(read_ablation_stats(stats), model_costs=costs, restore_times=times,
                                reference=reference, level=level, n_resamples=n_resamples)
    for task in dict.fromkeys(ablation["task"]):
        made.notes += precision_note(frame, task, ABLATION)
    return write_table(made, out_dir)


def cost_table(job_costs: Files, out_dir: PathLike, record: PathLike, *, device: str = "") -> list[Path]:
    """``cost``: the device-hours of every job that computed (:mod:`mprnet.report.hours`: every attempt
    of every training run, every restore and score job), and ``record`` (``cost.json``: the totals and
    the headline the results README and the HTML report show). ``job_costs``: the study manifest's
    list; ``device``: the label of devices no record names (``report.device``)."""
    costs = hours.job_costs(job_costs, unknown_device=device)
    written = write_table(hours.cost_table(costs), out_dir)
    atomic_write_text(record, json.dumps(hours.summary(costs), indent=2) + "\n")
    return [*written, Path(record)]


def ruler_report(ruler_files: Files, table_dir: PathLike, figure_stem: PathLike) -> list[Path]:
    """``rulers``: the ruler table (:func:`mprnet.report.rulers.ruler_table`) and its figure
    (:func:`mprnet.report.figures.ruler_sensitivity`) from the per-image ruler files, handed as
    ``(fields, path)`` pairs whose fields name the task, test set, method, seed and protocol
    (the study manifest's ``ruler_scores``). Raises DataError when there is none."""
    from . import figures  # matplotlib: only the jobs that draw
    from .rulers import read_ruler_files, ruler_summaries, ruler_table

    per_image = read_ruler_files(ruler_files)
    summaries = ruler_summaries(per_image)
    written = write_table(ruler_table(summaries), table_dir)
    return written + figures.save_figure(figures.ruler_sensitivity(per_image, summaries), figure_stem)


def study_figures(summary: PathLike, runs: PathLike | None, out_dir: PathLike, *, ablation_stats: PathLike | None = None,
                  training_logs: Files = (), stage_scores: Files = (), reference: str = FULL,
                  root: PathLike = ".") -> list[Path]:
    """The study figures (``vocabulary.FIGURES``) as PNG and PDF; a figure without data says so.
    ``ablation_stats``: the file of :func:`ablation_statistics` (None: the study has no ablations)."""
    from . import figures  # matplotlib: only the jobs that draw

    frame = read_summary(summary)
    scores = read_run_scores(read_runs(runs, root)) if runs else None
    made = {"paper_vs_ours": figures.paper_vs_ours(frame)}
    if ablation_stats is not None:
        made["ablation_bars"] = figures.ablation_bars(read_ablation_stats(ablation_stats), reference=reference)
    else:
        made["ablation_bars"] = figures.empty_figure("This study has no ablations.")
    if scores is not None:
        made["per_image_psnr"] = figures.per_image_distributions(_other_groups(scores, ABLATION))
    else:
        made["per_image_psnr"] = figures.empty_figure("No per-image scores given (runs.csv).")
    made["training_curves"] = figures.training_curves(_training_logs(training_logs))
    stages = _stage_scores(stage_scores)
    if stages is not None:
        made["stage_progression"] = figures.stage_progression(_other_groups(stages, ABLATION), frame)
    else:
        made["stage_progression"] = figures.empty_figure("No stage outputs given (restore --save-stages).")
    return [path for name, fig in made.items() for path in figures.save_figure(fig, Path(out_dir) / name)]


def _training_logs(files: Files) -> pd.DataFrame:
    """Training logs plus ``stages``: the stage outputs the logged loss sums over (NaN if unknown).

    The count comes from the run's effective config, ``config.yaml`` beside its ``metrics.csv``
    (``model.overrides.num_stages``, default 3), so the figure can compare variants per stage.
    A missing log is skipped with a warning (a run trained elsewhere may come with its weights only).
    """
    frames = []
    for fields, path in files:
        frame = read_training_logs([(fields, path)], missing_ok=True)
        if frame.empty:
            continue
        config = Path(path).parent / "config.yaml"
        stages = float("nan")
        if config.is_file():
            overrides = (read_yaml_mapping(config).get("model") or {}).get("overrides") or {}
            stages = int(overrides.get("num_stages", 3))
        frames.append(frame.assign(stages=stages))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _stage_scores(files: Files) -> pd.DataFrame | None:
    frames = [with_fields(read_csv_checked(path, ("image", "stage", "psnr"), "stage score"), fields)
              for fields, path in files]
    if not frames:
        return None
    frame = pd.concat(frames, ignore_index=True)
    if "method" not in frame.columns:
        frame["method"] = FULL
    return frame


def _image_scores(csv: PathLike) -> pd.DataFrame:
    frame = pd.read_csv(csv, dtype={"image": str})  # stems are text: "001" stays "001"
    frame["image"] = frame["image"].astype(str).map(lambda s: Path(s).stem)
    return frame


def visual_title(kind: str, task: str, dataset: str) -> str:
    """The title of a comparison grid of ``kind`` (``vocabulary.VISUAL_KINDS``)."""
    if VISUAL_KINDS[kind] == ABLATION:
        return f"Ablation ({task}): {dataset}"
    return f"{task}: {dataset}"


def visual_grid(inputs: PathLike, targets: PathLike, methods: Sequence[tuple[str, PathLike, PathLike]],
                out_stem: PathLike, *, input_scores: PathLike | None = None, n_images: int = 3,
                title: str = "") -> list[Path]:
    """Comparison grid of one test set: input, each method, target, for the images where the methods
    differ most (one method: its hardest images). ``methods``: (name, restored folder, per-image
    scores CSV). Writes ``<out_stem>.png`` and ``.pdf``. Raises ConfigError without methods,
    DataError when an image is missing from a folder."""
    from . import figures  # matplotlib: only the jobs that draw

    if not methods:
        raise ConfigError("a comparison grid needs at least one method")
    scores = pd.concat([_image_scores(csv).assign(method=name) for name, _, csv in methods], ignore_index=True)
    names = [m[0] for m in methods]
    chosen = figures.most_different_images(scores, names, n=n_images) if len(names) > 1 else \
        list(scores.sort_values("psnr")["image"][:n_images])
    baseline = _image_scores(input_scores).set_index("image")["psnr"] if input_scores else None
    rows = []
    for stem in chosen:
        panels = [("Input", read_rgb(_find(inputs, stem)),
                   None if baseline is None else float(baseline.get(stem, float("nan"))))]
        for name, folder, _ in methods:
            psnr = scores[(scores["method"] == name) & (scores["image"] == stem)]["psnr"]
            panels.append((variant_label(name), read_rgb(_find(folder, stem)), float(psnr.iloc[0]) if len(psnr) else None))
        panels.append(("Target", read_rgb(_find(targets, stem)), None))
        rows.append({"image": stem, "panels": panels})
    fig = figures.comparison_grid(rows)
    if title:
        fig.suptitle(title, y=1.01)
    return figures.save_figure(fig, out_stem)


def _find(folder: PathLike, stem: str) -> Path:
    for ext in IMAGE_EXTENSIONS:
        path = Path(folder) / f"{stem}{ext}"
        if path.exists():
            return path
    raise DataError(f"{folder}: no image named {stem}.*")


def model_costs(specs: Sequence[Mapping], out: PathLike, *, size: tuple[int, int] = (256, 256)) -> list[Path]:
    """CSV of parameters and GFLOPs at ``size`` of each model spec (:meth:`Study.model_specs`)."""
    table = model_costs_table(list(specs), tuple(size))
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    print(table.to_string(index=False))
    return [Path(out)]


def stage_scores(restored: PathLike, targets: PathLike, protocol: str, out: PathLike) -> list[Path]:
    """Per-image PSNR/SSIM of each stage output of ``restore --save-stages`` (CSV: image, stage, psnr, ssim)."""
    table = score_stages(restored, targets, protocol)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")
    print(table.groupby("stage")[["psnr", "ssim"]].mean().to_string())
    return [Path(out)]


def provenance(config: Mapping | None, out_json: PathLike, *, markdown: PathLike | None = None,
               html: PathLike | None = None) -> list[Path]:
    """Git commit, package versions, devices and the hash of ``config`` (the study section)."""
    record = collect(dict(config) if config is not None else None)
    written = [Path(out_json)]
    atomic_write_text(out_json, json.dumps(record, indent=2, sort_keys=True) + "\n")
    for path, render in ((markdown, to_markdown), (html, to_html)):
        if path:
            atomic_write_text(path, render(record))
            written.append(Path(path))
    return written


def results_index(study: str, root: PathLike, out: PathLike | None = None, *,
                  provenance_json: PathLike | None = None, cost: PathLike | None = None) -> list[Path]:
    """``results/<study>/README.md`` indexing every table, figure and record under ``root``, the
    headline of ``cost`` (``cost.json``, :func:`cost_table`) at its top."""
    prov_md = to_markdown(json.loads(Path(provenance_json).read_text())) if provenance_json else None
    cost_line = hours.read_headline(cost) if cost else None
    return [Path(write_index(study, root, out, provenance_md=prov_md, cost_headline=cost_line))]
