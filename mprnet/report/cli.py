"""Report sub-commands: tables, figures, model costs, stage scores, provenance and the index.

Each command reads explicit files (``summary.csv`` and ``runs.csv`` of the aggregation, and
lists of benchmark / log / stage-score files with a path template naming their fields) and
writes into an output folder, so the workflow decides every path.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

MAIN_FIGURES = ("paper_vs_ours", "ablation_bars", "per_image_psnr", "training_curves", "stage_progression")


def register(subparsers) -> None:
    p = subparsers.add_parser("report-tables", help="main, ablation and cost tables (Markdown, LaTeX, CSV)")
    _common_inputs(p)
    p.add_argument("--tasks", nargs="*", default=None,
                   help="tasks to write main_<task> tables for (default: every task of the summary)")
    p.add_argument("--average-tasks", nargs="*", default=None,
                   help="tasks whose table gets the paper's Average column (default: deraining)")
    p.add_argument("--what", nargs="+", choices=("main", "ablation", "cost"), default=["main", "ablation", "cost"],
                   help="which tables to write (default: all whose inputs are given)")
    p.add_argument("--model-costs", help="CSV of `mprnet model-costs` (parameters, GFLOPs)")
    _file_list(p, "restore-benchmarks", "benchmark files of restore jobs (fields task, dataset, method[, seed, group])")
    _file_list(p, "train-benchmarks", "benchmark files of training jobs (fields task, method[, seed, group])")
    p.add_argument("--device", default="", help="label of the training device for the cost table, e.g. GPU")
    p.add_argument("--n-resamples", type=int, default=10_000)
    p.add_argument("--bootstrap-seed", type=int, default=0)
    p.add_argument("--level", type=float, default=0.95)
    p.add_argument("--out", required=True, help="output folder (results/<study>/tables)")
    p.set_defaults(func=_tables)

    p = subparsers.add_parser("report-figures", help="study figures (PNG and PDF)")
    _common_inputs(p)
    _file_list(p, "training-logs", "training metrics.csv files (fields task, method[, seed, group])")
    _file_list(p, "stage-scores", "CSVs of `mprnet score-stages` (fields task, dataset[, method, seed, group])")
    p.add_argument("--n-resamples", type=int, default=10_000)
    p.add_argument("--bootstrap-seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder (results/<study>/figures)")
    p.set_defaults(func=_figures)

    p = subparsers.add_parser("report-visual", help="visual comparison grid for one (task, dataset)")
    p.add_argument("--input", required=True, help="folder of degraded inputs")
    p.add_argument("--target", required=True, help="folder of ground-truth targets")
    p.add_argument("--method", action="append", default=[], metavar="NAME=RESTORED_DIR=SCORES_CSV",
                   help="a method's restored images and per-image scores (repeatable)")
    p.add_argument("--input-scores", help="per-image scores of the degraded input (for the Input caption)")
    p.add_argument("--n-images", type=int, default=3)
    p.add_argument("--title", default="")
    p.add_argument("--out", required=True, help="output stem; <stem>.png and <stem>.pdf are written")
    p.set_defaults(func=_visual)

    p = subparsers.add_parser("model-costs", help="parameters and GFLOPs at 256x256 of model configs")
    p.add_argument("--spec", required=True,
                   help='JSON list (or @file) of {"task", "method", "group", "preset", "model": {overrides}}')
    p.add_argument("--size", type=int, nargs=2, default=(256, 256), metavar=("H", "W"))
    p.add_argument("--out", required=True)
    p.set_defaults(func=_model_costs)

    p = subparsers.add_parser("score-stages", help="score the stage outputs of `restore --save-stages`")
    p.add_argument("--output", required=True, help="restore output folder (holds stages/)")
    p.add_argument("--target", required=True)
    p.add_argument("--protocol", required=True, choices=("y_channel", "rgb", "realblur", "sidd"))
    p.add_argument("--out", required=True)
    p.set_defaults(func=_score_stages)

    p = subparsers.add_parser("provenance", help="git commit, package versions, devices, config hash")
    p.add_argument("--config-json", help="the study config as JSON (or @file), hashed canonically")
    p.add_argument("--out", required=True, help="JSON file")
    p.add_argument("--markdown", help="also write the record as a Markdown table")
    p.add_argument("--html", help="also write the record as an HTML page (for the Snakemake report)")
    p.set_defaults(func=_provenance)

    p = subparsers.add_parser("report-index", help="results/<study>/README.md indexing tables and figures")
    p.add_argument("--study", required=True)
    p.add_argument("--root", required=True, help="results/<study>")
    p.add_argument("--provenance", help="provenance JSON to include")
    p.add_argument("--out", help="default: <root>/README.md")
    p.set_defaults(func=_index)


def _common_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--summary", required=True, help="results/<study>/summary.csv")
    p.add_argument("--runs", help="results/<study>/runs.csv (per-image score files per run)")
    p.add_argument("--root", default=".", help="folder the paths in runs.csv are relative to")
    p.add_argument("--reference", default="full", help="ablation variant the others are compared with")


def _file_list(p: argparse.ArgumentParser, name: str, help_text: str) -> None:
    p.add_argument(f"--{name}", nargs="*", default=[], help=help_text)
    p.add_argument(f"--{name}-template", help=f"path template of --{name}, e.g. benchmarks/{{task}}/{{method}}.tsv")


def _listed(args, name: str, reader):
    paths = getattr(args, name.replace("-", "_"))
    if not paths:
        return None
    template = getattr(args, f"{name.replace('-', '_')}_template")
    if not template:
        from ..errors import ConfigError

        raise ConfigError(f"--{name} needs --{name}-template naming the fields of its paths")
    return reader(paths, template)


def _scores(args):
    from .loaders import read_run_scores, read_runs

    if not args.runs:
        return None
    return read_run_scores(read_runs(args.runs, args.root))


def _ablation_scores(scores):
    if scores is None or "group" not in scores.columns:
        return None
    ablation = scores[scores["group"] == "ablation"]
    return ablation if not ablation.empty else None


def _select_group(frame, group: str):
    if frame is None or "group" not in frame.columns:
        return frame
    return frame[frame["group"].astype(str) == group]


def _tables(args) -> int:
    from .loaders import read_benchmarks, read_summary
    from .tables import ablation_stats, ablation_table, cost_table, main_results_table, restore_times, write_table

    import pandas as pd

    summary = read_summary(args.summary)
    out = Path(args.out)
    written = []
    main_rows = summary[summary["group"] != "ablation"] if "group" in summary.columns else summary
    tasks = args.tasks if args.tasks is not None else list(dict.fromkeys(main_rows["task"]))
    for task in tasks if "main" in args.what else []:
        average = None if args.average_tasks is None else task in args.average_tasks
        written += write_table(main_results_table(main_rows, task, with_average=average), out)

    ablation = _ablation_scores(_scores(args)) if "ablation" in args.what else None
    if ablation is not None:
        stats = ablation_stats(ablation, reference=args.reference, n_resamples=args.n_resamples,
                               level=args.level, seed=args.bootstrap_seed)
        costs = pd.read_csv(args.model_costs) if args.model_costs else None
        if costs is not None and "group" in costs.columns and (costs["group"].astype(str) == "ablation").any():
            costs = _select_group(costs, "ablation")
        bench = _listed(args, "restore-benchmarks", read_benchmarks)
        times = restore_times(_select_group(bench, "ablation"), ablation) if bench is not None else None
        written += write_table(ablation_table(stats, model_costs=costs, restore_times=times,
                                              reference=args.reference, level=args.level,
                                              n_resamples=args.n_resamples), out)

    train = _listed(args, "train-benchmarks", read_benchmarks) if "cost" in args.what else None
    if train is not None:
        written += write_table(cost_table(train, device=args.device), out)
    for path in written:
        print(path)
    return 0


def _figures(args) -> int:
    from . import figures
    from .loaders import read_summary
    from .tables import ablation_stats

    import pandas as pd

    summary = read_summary(args.summary)
    scores = _scores(args)
    out = Path(args.out)
    made = {"paper_vs_ours": figures.paper_vs_ours(summary)}
    ablation = _ablation_scores(scores)
    if ablation is not None:
        stats = ablation_stats(ablation, reference=args.reference, n_resamples=args.n_resamples,
                               seed=args.bootstrap_seed)
        made["ablation_bars"] = figures.ablation_bars(stats, reference=args.reference)
    else:
        made["ablation_bars"] = figures._empty("This study has no ablations.")
    if scores is not None:
        main = scores[scores["group"] != "ablation"] if "group" in scores.columns else scores
        made["per_image_psnr"] = figures.per_image_distributions(main)
    else:
        made["per_image_psnr"] = figures._empty("No per-image scores given (--runs).")
    logs = _listed(args, "training-logs", _read_training_logs)
    made["training_curves"] = figures.training_curves(logs if logs is not None else pd.DataFrame())
    stages = _listed(args, "stage-scores", _read_stage_scores)
    if stages is not None:
        main_stages = stages[stages["group"] != "ablation"] if "group" in stages.columns else stages
        made["stage_progression"] = figures.stage_progression(main_stages, summary)
    else:
        made["stage_progression"] = figures._empty("No stage outputs given (restore --save-stages).")
    for name, fig in made.items():
        for path in figures.save_figure(fig, out / name):
            print(path)
    return 0


def _read_training_logs(paths, template):
    """Training logs plus ``stages``: the stage outputs the logged loss sums over (NaN if unknown).

    The count comes from the run's effective config, ``config.yaml`` beside its ``metrics.csv``
    (``model.overrides.num_stages``, default 3), so the figure can compare variants per stage.
    """
    from ..yaml_files import read_yaml_mapping
    from .loaders import read_training_logs

    import pandas as pd

    frames = []
    for path in paths:
        frame = read_training_logs([path], template, missing_ok=True)
        if frame.empty:
            continue
        config = Path(path).parent / "config.yaml"
        stages = float("nan")
        if config.is_file():
            overrides = (read_yaml_mapping(config).get("model") or {}).get("overrides") or {}
            stages = int(overrides.get("num_stages", 3))
        frames.append(frame.assign(stages=stages))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _read_stage_scores(paths, template):
    from .loaders import _with_fields, parse_path, read_csv_checked

    import pandas as pd

    frames = [_with_fields(read_csv_checked(p, ("image", "stage", "psnr"), "stage score"), parse_path(template, p)) for p in paths]
    frame = pd.concat(frames, ignore_index=True)
    if "method" not in frame.columns:
        frame["method"] = "full"
    return frame


def _visual(args) -> int:
    from ..errors import ConfigError
    from ..images import read_rgb
    from . import figures
    from .tables import variant_label

    import pandas as pd

    methods = []
    for item in args.method:
        parts = item.split("=")
        if len(parts) != 3:
            raise ConfigError(f"--method {item!r}: expected NAME=RESTORED_DIR=SCORES_CSV")
        methods.append(parts)
    if not methods:
        raise ConfigError("report-visual needs at least one --method")
    frames = []
    for name, _, csv in methods:
        frame = pd.read_csv(csv, dtype={"image": str})  # stems are text: "001" stays "001"
        frame["method"] = name
        frames.append(frame)
    scores = pd.concat(frames, ignore_index=True)
    scores["image"] = scores["image"].astype(str).map(lambda s: Path(s).stem)
    names = [m[0] for m in methods]
    chosen = figures.most_different_images(scores, names, n=args.n_images) if len(names) > 1 else \
        list(scores.sort_values("psnr")["image"][: args.n_images])
    input_scores = None
    if args.input_scores:
        input_scores = pd.read_csv(args.input_scores, dtype={"image": str})  # stems are text: "001" stays "001"
        input_scores["image"] = input_scores["image"].astype(str).map(lambda s: Path(s).stem)
        input_scores = input_scores.set_index("image")["psnr"]
    rows = []
    for stem in chosen:
        panels = [("Input", read_rgb(_find(args.input, stem)),
                   None if input_scores is None else float(input_scores.get(stem, float("nan"))))]
        for name, folder, _ in methods:
            psnr = scores[(scores["method"] == name) & (scores["image"] == stem)]["psnr"]
            panels.append((variant_label(name), read_rgb(_find(folder, stem)), float(psnr.iloc[0]) if len(psnr) else None))
        panels.append(("Target", read_rgb(_find(args.target, stem)), None))
        rows.append({"image": stem, "panels": panels})
    fig = figures.comparison_grid(rows)
    if args.title:
        fig.suptitle(args.title, y=1.01)
    for path in figures.save_figure(fig, args.out):
        print(path)
    return 0


def _find(folder: str, stem: str) -> Path:
    from ..errors import DataError
    from ..images import IMAGE_EXTENSIONS

    for ext in IMAGE_EXTENSIONS:
        path = Path(folder) / f"{stem}{ext}"
        if path.exists():
            return path
    raise DataError(f"{folder}: no image named {stem}.*")


def _json_arg(value: str):
    from ..errors import ConfigError

    text = Path(value[1:]).read_text() if value.startswith("@") else value
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON ({exc}): {text[:80]}") from None


def _model_costs(args) -> int:
    from ..atomic import atomic_path
    from .costs import model_costs_table

    spec = _json_arg(args.spec)
    if isinstance(spec, dict):
        spec = [spec]
    table = model_costs_table(spec, tuple(args.size))
    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False)
    print(table.to_string(index=False))
    return 0


def _score_stages(args) -> int:
    from ..atomic import atomic_path
    from .stages import score_stages

    table = score_stages(args.output, args.target, args.protocol)
    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")
    print(table.groupby("stage")[["psnr", "ssim"]].mean().to_string())
    return 0


def _provenance(args) -> int:
    from ..atomic import atomic_write_text
    from .provenance import collect, to_html, to_markdown

    config = _json_arg(args.config_json) if args.config_json else None
    record = collect(config)
    atomic_write_text(args.out, json.dumps(record, indent=2, sort_keys=True) + "\n")
    if args.markdown:
        atomic_write_text(args.markdown, to_markdown(record))
    if args.html:
        atomic_write_text(args.html, to_html(record))
    print(args.out)
    return 0


def _index(args) -> int:
    from .index import write_index
    from .provenance import to_markdown

    prov_md = to_markdown(json.loads(Path(args.provenance).read_text())) if args.provenance else None
    print(write_index(args.study, args.root, args.out, provenance_md=prov_md))
    return 0
