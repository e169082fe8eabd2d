"""What the report rules (``workflow/rules/report.smk``) need to know about a study.

Plain functions of the validated :class:`mprnet.study.config.Study`, kept here rather than in
the Snakefile so they can be tested and so the rule file holds rules only. Paths follow the
workflow's layout: ``results/<study>/{runs,restored,scores,benchmarks}/<group>/<task>/<variant>/seed<seed>``.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

FIGURES = ("paper_vs_ours", "ablation_bars", "per_image_psnr", "training_curves", "stage_progression")
TABLE_EXTS = ("md", "tex", "csv", "html")


def settings(study) -> dict[str, Any]:
    """The study's optional ``report:`` section: device, visual_images, bootstrap_resamples, bootstrap_seed."""
    return dict(study.section.get("report") or {})


def _results(study) -> str:
    return f"results/{study.name}"


def template(study, relative: str) -> str:
    """A path template of the report commands (fields in braces) under ``results/<study>/``."""
    return f"{_results(study)}/{relative}"


def scored_sets(study, task: str) -> list:
    return [ts for ts in study.test_sets[task].values() if ts.scored]


def stage_score_files(study) -> list[str]:
    """Stage scores of every main run whose task restores with ``save_stages``."""
    files = []
    for run in study.runs:
        if run.group == "main" and study.tasks[run.task].get("restore", {}).get("save_stages"):
            files += [f"{_results(study)}/stage_scores/{run.key}/{ts.name}.csv" for ts in run.test_sets if ts.scored]
    return files


def training_logs(study) -> list[str]:
    return [f"{_results(study)}/runs/{run.key}/metrics.csv" for run in study.runs]


def trained_models(study) -> list[str]:
    """``model_final.pt`` of every run: the declared output that stands for its training curves."""
    return [f"{_results(study)}/runs/{run.key}/model_final.pt" for run in study.runs]


def train_benchmarks(study) -> list[str]:
    return [f"{_results(study)}/benchmarks/train/{run.key}.tsv" for run in study.runs]


def ablation_restore_benchmarks(study) -> list[str]:
    return [f"{_results(study)}/benchmarks/restore/{run.key}/{ts.name}.tsv"
            for run in study.runs if run.group == "ablation" for ts in run.test_sets if ts.scored]


def model_spec(study) -> str:
    """JSON list of every distinct model of the study, for ``mprnet model-costs``."""
    specs = {}
    for run in study.runs:
        specs[(run.group, run.task, run.variant)] = {
            "group": run.group, "task": run.task, "method": run.variant, "preset": run.preset, "model": run.model}
    for task in study.section.get("pretrained", {}) or {}:
        specs[("official_weights", task, "")] = {
            "group": "official_weights", "task": task, "method": "official_weights",
            "preset": study.tasks[task]["preset"], "model": {}}
    return json.dumps(list(specs.values()), sort_keys=True)


def average_tasks(study) -> list[str]:
    """Tasks that get the paper's Average column: deraining, as in the paper's Table 1."""
    return [t for t, spec in study.tasks.items() if spec["preset"] == "deraining"]


def reference(study) -> str:
    return (study.section.get("ablations") or {}).get("reference", "full")


def visual_methods(study, group: str, task: str, dataset: str) -> list[tuple[str, str, str]]:
    """(name, restored folder, per-image scores) of the first seed of each model on one test set."""
    res = _results(study)
    items, seen = [], set()
    for run in study.runs:
        if run.group != group or run.task != task or run.variant in seen:
            continue
        if dataset not in [ts.name for ts in run.test_sets]:
            continue
        seen.add(run.variant)
        items.append((run.variant, f"{res}/restored/{run.key}/{dataset}", f"{res}/scores/{run.key}/{dataset}.csv"))
    if group == "main" and task in (study.section.get("pretrained") or {}):
        src = f"official_weights/{task}"
        items.append(("official_weights", f"{res}/restored/{src}/{dataset}", f"{res}/scores/{src}/{dataset}.csv"))
    return items


def visual_inputs(study, group: str, task: str, dataset: str) -> list[str]:
    """Restored folders and score files of the models shown in one comparison grid."""
    files = []
    for _, restored, scores in visual_methods(study, group, task, dataset):
        files += [restored, scores]
    return files


def visual_args(study, group: str, task: str, dataset: str) -> str:
    return " ".join("--method " + shlex.quote(f"{name}={restored}={scores}")
                    for name, restored, scores in visual_methods(study, group, task, dataset))


def visual_figures(study) -> list[str]:
    res = _results(study)
    files = [f"{res}/figures/visual_{task}_{ts.name}.png" for task in study.tasks for ts in scored_sets(study, task)]
    abl = study.section.get("ablations")
    if abl:
        task = abl["task"]
        names = abl.get("test_sets") or [ts.name for ts in scored_sets(study, task)]
        files += [f"{res}/figures/ablation_visual_{task}_{ds}.png" for ds in names if study.test_sets[task][ds].scored]
    return files


def table_names(study) -> list[str]:
    names = [f"main_{t}" for t in study.tasks]
    if study.section.get("ablations"):
        names.append("ablation")
    return names + ["cost"]


def index_inputs(study) -> list[str]:
    """Everything the results README indexes."""
    res = _results(study)
    return ([f"{res}/tables/{name}.md" for name in table_names(study)]
            + [f"{res}/figures/{name}.png" for name in FIGURES]
            + visual_figures(study) + [f"{res}/provenance.json"])


def quote_all(paths) -> str:
    return " ".join(shlex.quote(str(p)) for p in paths)
