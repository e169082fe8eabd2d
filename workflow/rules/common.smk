import json
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from mprnet.errors import ConfigError
from mprnet.study.config import load_study, run_config

# Rules run `python -m mprnet.cli`: by default the Python running Snakemake (also in the jobs
# the Slurm executor starts with that interpreter on the nodes); with `--sdm conda` the pinned
# environment of workflow/envs/, which imports the package from this checkout.
os.environ["PATH"] = os.pathsep.join(
    [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
)
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (workflow.basedir, os.environ.get("PYTHONPATH")) if p
)


envvars:
    "PATH",
    "PYTHONPATH",


# The whole study is validated here, before any job starts: an unknown key, a wrong type, a
# dataset missing from the registry or an impossible variant stops Snakemake naming the key.
try:
    STUDY = load_study(
        config, Path(workflow.basedir, "workflow/schemas/config.schema.yaml")
    )
except ConfigError as exc:
    raise WorkflowError(f"invalid config: {exc}") from None

MPRNET_ENV = "../envs/mprnet.yaml"

# Targets other rule files (e.g. the report rules) add to `rule all`, as patterns with {study}.
EXTRA_TARGETS: list[str] = []


wildcard_constraints:
    study=re.escape(STUDY.name),
    root=re.escape(STUDY.data_root),
    group="main|ablation",
    task="|".join(re.escape(t) for t in STUDY.tasks),
    variant=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    seed=r"\d+",
    dataset=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    split=r"[A-Za-z0-9_.-]+",
    source=r"(main|ablation)/[^/]+/[^/]+/seed\d+|official_weights/[^/]+",


# ----------------------------------------------------------------------------- paths


def get_data_root(wildcards):
    return STUDY.data_root


def run_dir(run):
    return f"results/{STUDY.name}/runs/{run.key}"


def manifest(ref):
    return f"{STUDY.data_dir(ref)}/manifest.csv"


def parse_source(source):
    """(group, task, variant, seed) of a restored source: a run key or official_weights/<task>."""
    parts = source.split("/")
    if parts[0] == "official_weights":
        return "official_weights", parts[1], None, None
    return parts[0], parts[1], parts[2], int(parts[3].removeprefix("seed"))


def test_set(task, dataset):
    try:
        return STUDY.test_sets[task][dataset]
    except KeyError:
        raise WorkflowError(
            f"{dataset} is not a test set of task {task} in study {STUDY.name}"
        )


def restored_sources():
    """Every (source, test set) the study restores."""
    pairs = [(run.key, ts) for run in STUDY.runs for ts in run.test_sets]
    for task in STUDY.section.get("pretrained", {}):
        pairs += [
            (f"official_weights/{task}", ts) for ts in STUDY.test_sets[task].values()
        ]
    return pairs


def score_entries():
    """The manifest's list of per-image score files and what each one scores."""
    entries = []
    results = f"results/{STUDY.name}"
    for task, sets in STUDY.test_sets.items():
        for ts in sets.values():
            if ts.scored:
                entries.append(
                    {
                        "task": task,
                        "dataset": ts.name,
                        "method": "degraded",
                        "group": "input",
                        "path": f"{results}/scores/input/{task}/{ts.name}.csv",
                    }
                )
    for source, ts in restored_sources():
        if not ts.scored:
            continue
        group, task, variant, seed = parse_source(source)
        entries.append(
            {
                "task": task,
                "dataset": ts.name,
                "group": group,
                "seed": seed,
                "method": variant or "official_weights",
                "path": f"{results}/scores/{source}/{ts.name}.csv",
            }
        )
    for task, sets in STUDY.section.get("released_results", {}).items():
        for dataset in sets:
            entries.append(
                {
                    "task": task,
                    "dataset": dataset,
                    "method": "released_results",
                    "group": "released_results",
                    "path": f"{results}/scores/released_results/{task}/{dataset}.csv",
                }
            )
    return entries


# ----------------------------------------------------------------------------- input functions


def get_final_outputs(wildcards):
    results = f"results/{STUDY.name}"
    targets = [f"{results}/summary.csv", f"{results}/metrics.json"]
    targets += [
        f"{results}/submissions/{source}/{ts.name}"
        for source, ts in restored_sources()
        if not ts.scored
    ]
    targets += [t.format(study=STUDY.name) for t in EXTRA_TARGETS]
    return targets


def get_all_scores(wildcards):
    return [entry["path"] for entry in score_entries()]


def get_study_manifest(wildcards):
    """The study manifest as JSON (a params value: any change of the study reruns aggregation)."""
    section = STUDY.section
    manifest = {
        "study": STUDY.name,
        "description": section.get("description", ""),
        "published": section.get("published", {}),
        "ablations": {
            k: v for k, v in section.get("ablations", {}).items() if k != "recipe"
        },
        "runs": [
            {
                "key": r.key,
                "group": r.group,
                "task": r.task,
                "variant": r.variant,
                "seed": r.seed,
                "preset": r.preset,
                "model": r.model,
                "dir": run_dir(r),
                "test_sets": [t.name for t in r.test_sets],
            }
            for r in STUDY.runs
        ],
        "scores": score_entries(),
    }
    return json.dumps(manifest, sort_keys=True)


def _run(wildcards):
    return STUDY.run(wildcards.group, wildcards.task, wildcards.variant, wildcards.seed)


def get_run_config(wildcards):
    """The run's `mprnet train` config as JSON: a params value, so a changed setting reruns it."""
    return json.dumps(run_config(STUDY, _run(wildcards)), sort_keys=True)


def get_run_dir(wildcards):
    return run_dir(_run(wildcards))


def get_train_data(wildcards):
    run = _run(wildcards)
    return [manifest(ref) for ref in (run.train_set, run.val_set) if ref]


def get_checkpoint(wildcards):
    group, task, variant, seed = parse_source(wildcards.source)
    if group == "official_weights":
        return STUDY.section["pretrained"][task]["checkpoint"]
    return f"{run_dir(STUDY.run(group, task, variant, seed))}/model_final.pt"


def _source_test_set(wildcards):
    return test_set(parse_source(wildcards.source)[1], wildcards.dataset)


def get_test_manifest(wildcards):
    task = (
        wildcards.task
        if hasattr(wildcards, "task")
        else parse_source(wildcards.source)[1]
    )
    return manifest(test_set(task, wildcards.dataset))


def get_test_input_dir(wildcards):
    """The degraded inputs of a test set. DND's are the exact float32 crops (`input_float/*.npy`,
    what the official test_DND.py feeds the network), not their 8-bit PNGs in `input/`.
    """
    task = (
        wildcards.task
        if hasattr(wildcards, "task")
        else parse_source(wildcards.source)[1]
    )
    ts = test_set(task, wildcards.dataset)
    folder = "input_float" if ts.protocol == "dnd" else "input"
    return f"{STUDY.data_dir(ts)}/{folder}"


def get_test_target_dir(wildcards):
    task = (
        wildcards.task
        if hasattr(wildcards, "task")
        else parse_source(wildcards.source)[1]
    )
    return f"{STUDY.data_dir(test_set(task, wildcards.dataset))}/target"


def get_restore_options(wildcards):
    """Extra `mprnet restore` flags: float outputs for the sidd/dnd protocols, tiles, stages."""
    task = parse_source(wildcards.source)[1]
    ts = test_set(task, wildcards.dataset)
    opts = STUDY.tasks[task].get("restore", {})
    flags = []
    if ts.protocol in ("sidd", "dnd"):
        flags.append("--save-float")
    if opts.get("tile"):
        flags += [
            "--tile",
            str(opts["tile"]),
            "--overlap",
            str(opts.get("overlap", 32)),
        ]
    if opts.get("save_stages"):
        flags.append("--save-stages")
    return " ".join(flags)


def get_protocol(wildcards):
    task = (
        wildcards.task
        if hasattr(wildcards, "task")
        else parse_source(wildcards.source)[1]
    )
    return test_set(task, wildcards.dataset).protocol


def get_released_dir(wildcards):
    return STUDY.section["released_results"][wildcards.task][wildcards.dataset]
