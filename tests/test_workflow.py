"""The Snakemake workflow: the paper study's plan, config validation, and what reruns after a change.

Snakemake runs in a temporary working directory holding a copy of ``config/`` (so no data or
results of this checkout are seen or touched), with ``-s`` pointing at the repository's
workflow/Snakefile.
"""

from __future__ import annotations

import copy
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mprnet.errors import ConfigError
from mprnet.study.config import load_study
from mprnet.study.targets import Targets

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
PAPER_TEST_SETS = {"rain100h", "rain100l", "test100", "test1200", "test2800",
                   "gopro", "hide", "realblur_j", "realblur_r", "sidd", "dnd"}
ABLATION_VARIANTS = {"no_sam", "no_csff", "single_stage", "two_stage"}
REPORT_RULES = set(re.findall(r"^rule (\w+):", (ROOT / "workflow/rules/report.smk").read_text(), re.M)) - {"stage_scores"}


CI_CONFIG = ROOT / ".test" / "config" / "config.yaml"  # the CI study


def _config(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


def _ci_config() -> dict:
    return yaml.safe_load(CI_CONFIG.read_text())


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path


def snakemake(workdir: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "workflow" / "Snakefile"), *args]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)


def planned_jobs(output: str) -> list[tuple[str, list[str]]]:
    """(rule, outputs) of every job in a dry-run's log."""
    jobs: list[tuple[str, list[str]]] = []
    rule = None
    for line in output.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m:
            rule = m.group(1)
            continue
        m = re.match(r"^\s+output: (.*)$", line)
        if m and rule:
            jobs.append((rule, [p.strip() for p in m.group(1).split(",")]))
            rule = None
    return jobs


def outputs_of(jobs, rule: str) -> set[str]:
    return {out for r, outs in jobs if r == rule for out in outs}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def write_config(workdir: Path, name: str, config: dict) -> str:
    path = workdir / "config" / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path.relative_to(workdir))


# --------------------------------------------------------------------------- the paper's plan

def test_paper_plan_lists_every_job_without_data(workdir):
    start, cpu_before = time.perf_counter(), _children_cpu()
    proc = snakemake(workdir, "-n", "all")
    elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu_before
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = planned_jobs(proc.stdout + proc.stderr)
    paper = _config("config.yaml")["paper"]

    trained = outputs_of(jobs, "train")
    for task, spec in paper["tasks"].items():
        for seed in spec["seeds"]:
            assert f"results/paper/runs/main/{task}/full/seed{seed}/model_final.pt" in trained
    abl = paper["ablations"]
    assert ABLATION_VARIANTS <= set(abl["variants"]) and len(abl["seeds"]) >= 2
    for variant in abl["variants"]:
        for seed in abl["seeds"]:
            assert f"results/paper/runs/ablation/{abl['task']}/{variant}/seed{seed}/model_final.pt" in trained
    assert len(trained) == (sum(len(s["seeds"]) for s in paper["tasks"].values())
                            + len(abl["variants"]) * len(abl["seeds"]))

    restored = {Path(p).name for p in outputs_of(jobs, "restore")}
    assert PAPER_TEST_SETS <= restored
    scored = {Path(p).stem for p in outputs_of(jobs, "score")}
    assert scored == PAPER_TEST_SETS - {"dnd"}  # DND has no public ground truth...
    assert any(p.endswith("/dnd") for p in outputs_of(jobs, "dnd_bundle"))  # ...it gets a bundle
    inputs_scored = {Path(p).stem for p in outputs_of(jobs, "score") if "/scores/input/" in p}
    assert inputs_scored == PAPER_TEST_SETS - {"dnd"}  # the paper's "Input" row, by the same rule
    prepared = {Path(p).parent.parent.name for p in outputs_of(jobs, "prepare")}
    assert PAPER_TEST_SETS | {"rain13k", "sidd_train"} <= prepared
    assert "results/paper/summary.csv" in outputs_of(jobs, "aggregate")
    # The audit: every scored test set of each main model under the other rulers, and their table.
    ruled = outputs_of(jobs, "ruler_scores")
    assert ruled == {f"results/paper/rulers/main/{task}/full/seed{spec['seeds'][0]}/{ds}.csv"
                     for task, spec in paper["tasks"].items() for ds in spec["test_sets"] if ds != "dnd"}
    assert {"results/paper/tables/rulers.html", "results/paper/figures/rulers.png"} <= outputs_of(jobs, "report_rulers")
    # The cost of every job that computes, and its headline (cost.json) for the README and the report.
    assert "results/paper/cost.json" in outputs_of(jobs, "report_cost_table")
    assert "results/paper/tables/cost.html" in outputs_of(jobs, "report_cost_table")
    log = proc.stdout + proc.stderr
    assert "results/paper/benchmarks/score/input/deraining/rain100h.tsv" in log, "the score jobs keep no benchmark"
    # Nothing was created: a dry run with no data present.
    assert not (workdir / "results").exists() and not (workdir / "data").exists()
    print(f"paper plan: {len(jobs)} jobs in {elapsed:.1f} s wall, {cpu:.1f} s CPU")
    # CPU time, not wall time: the shared 2-core test machine may be busy (wall ~3 s when idle).
    assert cpu < 10, f"planning took {cpu:.1f} s of CPU time"


def test_demo_config_replaces_the_paper_study(workdir):
    """--configfile merges over config/config.yaml; nothing of the paper may leak into the demo."""
    proc = snakemake(workdir, "-n", "all", "--configfile", "config/demo.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = planned_jobs(proc.stdout + proc.stderr)
    outputs = [o for _, outs in jobs for o in outs]
    assert outputs
    leaked = [o for o in outputs if set(Path(o).parts) & PAPER_TEST_SETS or "results/paper" in o]
    assert not leaked, leaked
    assert all(o.startswith(("results/demo/", "data/demo/")) for o in outputs)
    assert {Path(p).parts[4] for p in outputs_of(jobs, "train") if "/main/" in p} == {
        "deraining", "deblurring", "denoising"}
    assert {Path(p).parts[5] for p in outputs_of(jobs, "train") if "/ablation/" in p} == (
        ABLATION_VARIANTS | {"full"})


# --------------------------------------------------------------------------- bad configs

def _bad(mutate, base: str = "demo.yaml") -> dict:
    config = _config(base)
    mutate(config[config["study"]])
    return config


BAD_CONFIGS = {
    "unknown key": (lambda s: s["tasks"]["deraining"].update(epochs=3), "demo.tasks.deraining.epochs"),
    "unknown top key": (lambda s: s.update(gpus=2), "demo.gpus"),
    "wrong type": (lambda s: s["tasks"]["deraining"].update(seeds="zero"), "demo.tasks.deraining.seeds"),
    "wrong protocol": (lambda s: s["tasks"]["deblurring"]["test_sets"].update(demo_blur="psnr"),
                       "demo.tasks.deblurring.test_sets.demo_blur"),
    "dataset not a demo set": (lambda s: s["tasks"]["deblurring"]["test_sets"].update(gopro="rgb"),
                               "demo.tasks.deblurring.test_sets.gopro"),
    "impossible variant": (lambda s: s["ablations"]["variants"].update(single_stage={"num_stages": 1, "sam": False}),
                           "demo.ablations.variants.single_stage.sam"),
    "too many stages": (lambda s: s["ablations"]["variants"].update(four_stage={"num_stages": 4}),
                        "demo.ablations.variants.four_stage.num_stages"),
    "duplicate variant": (lambda s: s["ablations"]["variants"].update(same={"sam": True}),
                          "demo.ablations.variants.same"),
    "ablation task missing": (lambda s: s["ablations"].update(task="dehazing"), "demo.ablations.task"),
    "recipe key unknown to the trainer": (
        lambda s: s["ablations"]["recipe"].update(data={"patchsize": 64}), "demo.ablations.recipe"),
    "model width of wrong type": (lambda s: s["tasks"]["denoising"]["model"].update(n_feat=8.5),
                                  "demo.tasks.denoising.model.n_feat"),
    "preset not a preset": (lambda s: s["tasks"]["deraining"].update(preset="derainig"),
                            "demo.tasks.deraining.preset: 'derainig' is not a preset"),
    "published number of wrong type": (lambda s: s.update(published={"deblurring": {"demo_blur": {"psnr": "x"}}}),
                                       "demo.published.deblurring.demo_blur.psnr: 'x' is not of type"),
    "published test set unknown": (lambda s: s.update(published={"deblurring": {"demo_blr": {"psnr": 30}}}),
                                   "demo.published.deblurring.demo_blr: not a test set"),
    "published task unknown": (lambda s: s.update(published={"deblurrin": {"demo_blur": {"psnr": 30}}}),
                               "demo.published.deblurrin: not one of the study's tasks"),
    "published file key unknown": (lambda s: s.update(published={"file": "config/paper_results.yaml",
                                                                 "tables": {}, "extra": 1}),
                                   "demo.published.extra: unknown key"),
    "published file missing": (lambda s: s.update(published={"file": "config/no_such.yaml", "tables": {}}),
                               "demo.published.file"),
    "published table missing": (lambda s: s.update(published={"file": "config/paper_results.yaml",
                                                              "tables": {"deblurring": "deblurring_on_gopro"}}),
                                "demo.published.tables.deblurring: " + str(ROOT / "config/paper_results.yaml")
                                + " has no table 'deblurring_on_gopro'"),
    "published table of an unknown task": (lambda s: s.update(published={"file": "config/paper_results.yaml",
                                                                         "tables": {"dehazing": "deraining"}}),
                                           "demo.published.tables.dehazing"),
    "released results of an unknown test set": (
        lambda s: s.update(released_results={"deraining": {"demo_rainn": "data/x"}}),
        "demo.released_results.deraining.demo_rainn: not a test set of task 'deraining' (demo_rain)"),
    "official weights of an unknown task": (lambda s: s.update(pretrained={"dehazing": {"checkpoint": "x.pth"}}),
                                            "demo.pretrained.dehazing: not one of the study's tasks"),
    "report setting unknown": (lambda s: s.update(report={"visual_image": 3}), "demo.report.visual_image: unknown key"),
    "restore precision unknown": (lambda s: s["tasks"]["deraining"].update(restore={"precision": "fp16"}),
                                  "demo.tasks.deraining.restore.precision"),
    # Checks the jobs made, needing only the config: at planning time now (issue 20, item 2).
    "batch that does not divide over the processes": (
        lambda s: s["tasks"]["deraining"]["recipe"].update(data={"batch_size": 3}, runtime={"processes": 2}),
        "demo.tasks.deraining.recipe (run main/deraining/full/seed0): data.batch_size: 3 does not divide evenly "
        "over the 2 processes"),
    "ablation batch that does not divide": (
        lambda s: s["ablations"]["recipe"].update(runtime={"processes": 3}),
        "demo.ablations.recipe (run ablation/deblurring/full/seed0): data.batch_size: 8 does not divide"),
    "recipe section not a mapping": (lambda s: s["tasks"]["deraining"].update(recipe={"data": 48}),
                                     "demo.tasks.deraining.recipe.data: expected a mapping of data settings, got 48"),
    "ablation recipe section not a mapping": (lambda s: s["ablations"].update(recipe={"optim": [1e-4]}),
                                              "demo.ablations.recipe.optim: expected a mapping"),
    "recipe sets the model": (lambda s: s["ablations"]["recipe"].update(model={"overrides": {"n_feat": 4}}),
                              "demo.ablations.recipe.model: unknown key"),
    "fp16 on the CPU": (lambda s: s["tasks"]["denoising"]["recipe"].update(train={"amp": "fp16"}),
                        "train.amp: fp16 autocast needs a GPU, but runtime.device is cpu"),
    "infinite learning rate": (lambda s: s["tasks"]["denoising"]["recipe"].update(optim={"lr": float("inf")}),
                               "optim.lr: inf is not a finite number"),
    "restore tile not a multiple of 8": (lambda s: s["tasks"]["deraining"].update(restore={"tile": 100}),
                                         "demo.tasks.deraining.restore.tile: 100 is not a multiple of 8"),
    "restore overlap as large as the tile": (
        lambda s: s["tasks"]["deraining"].update(restore={"tile": 64, "overlap": 64}),
        "demo.tasks.deraining.restore.overlap: 64 must be >= 0 and smaller than the tile"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_names_the_key(case):
    mutate, key = BAD_CONFIGS[case]
    with pytest.raises(ConfigError) as err:
        load_study(_bad(mutate), SCHEMA, ROOT)
    assert key in str(err.value)


def test_dataset_missing_from_registry_names_key_and_registry():
    config = _bad(lambda s: s["tasks"]["deblurring"]["test_sets"].update(gopro_v2="rgb"), "config.yaml")
    with pytest.raises(ConfigError) as err:
        load_study(config, SCHEMA, ROOT)
    assert "paper.tasks.deblurring.test_sets.gopro_v2" in str(err.value)
    assert "config/datasets.yaml" in str(err.value)


def test_report_settings_type_and_schema_agree():
    """ReportSettings holds the defaults of the `report:` keys the schema allows: the same keys."""
    from dataclasses import fields

    from mprnet.study.spec import ReportSettings
    from mprnet.yaml_files import read_yaml_mapping

    schema = read_yaml_mapping(SCHEMA)["$defs"]["study"]["properties"]["report"]["properties"]
    assert set(schema) == {f.name for f in fields(ReportSettings)}


def test_the_schema_names_the_protocols_of_the_registry():
    """A test set's protocol is one record of mprnet.metrics.protocols.PROTOCOL_REGISTRY."""
    from mprnet.metrics.protocols import PROTOCOL_REGISTRY
    from mprnet.yaml_files import read_yaml_mapping

    assert read_yaml_mapping(SCHEMA)["$defs"]["protocol"]["enum"] == list(PROTOCOL_REGISTRY)
    registry_schema = json.loads((ROOT / "mprnet" / "data" / "datasets.schema.json").read_text())
    assert registry_schema["$defs"]["dataset"]["properties"]["protocol"]["enum"] == [*PROTOCOL_REGISTRY, None]


def test_the_paper_numbers_come_from_the_paper_results_file():
    paper = load_study(_config("config.yaml"), SCHEMA, ROOT)
    results = yaml.safe_load((ROOT / "config" / "paper_results.yaml").read_text())["results"]
    assert paper.published["deraining"]["Average"] == results["deraining"]["Average"]
    assert paper.published["deblurring"]["gopro"] == {"psnr": 32.66, "ssim": 0.959}
    assert paper.published["deblurring"] == {
        k: v for k, v in results["deblurring_trained_on_gopro"].items() if isinstance(v, dict)}


def test_reordering_the_keys_of_a_config_changes_no_params():
    """Snakemake compares params as text: the Study hands them with sorted keys, so a config whose
    keys were merely reordered reruns nothing."""
    def reversed_keys(value):
        if isinstance(value, dict):
            return {k: reversed_keys(value[k]) for k in reversed(list(value))}
        return value

    config = _config("demo.yaml")
    study = load_study(config, SCHEMA, ROOT)
    shuffled = _config("demo.yaml")
    section = shuffled["demo"]
    for spec in section["tasks"].values():  # settings reordered; tasks and variants keep their order
        spec.update(reversed_keys({k: spec[k] for k in spec if k not in ("test_sets",)}))
    section["ablations"]["recipe"] = reversed_keys(section["ablations"]["recipe"])
    section["data"] = reversed_keys(section["data"])
    assert str(section) != str(config["demo"])
    shuffled = load_study(shuffled, SCHEMA, ROOT)
    assert [str(r.config) for r in study.runs] == [str(r.config) for r in shuffled.runs]
    assert str(Targets(study).manifest_record()) == str(Targets(shuffled).manifest_record())
    assert str(study.model_specs()) == str(shuffled.model_specs())


def test_shipped_configs_are_valid():
    paper = load_study(_config("config.yaml"), SCHEMA, ROOT)
    demo = load_study(_config("demo.yaml"), SCHEMA, ROOT)
    assert paper.name == "paper" and demo.name == "demo"
    assert demo.data.source == "demo" and demo.data.root.startswith("data/demo")


@pytest.mark.parametrize("case", ["impossible variant", "batch that does not divide over the processes",
                                  "recipe section not a mapping"])
def test_snakemake_stops_before_any_job_on_a_bad_config(workdir, case):
    """Before: `batch_size: 3` with 2 processes passed `snakemake -n` and failed in every attempt
    of its train job (after N processes had checksummed the training set), and `recipe: {data:
    48}` stopped planning with "TypeError: 'int' object is not iterable" at common.smk line 35."""
    mutate, key = BAD_CONFIGS[case]
    path = write_config(workdir, "bad.yaml", _bad(mutate))
    for args in (["-n"], ["--cores", "1"]):
        proc = snakemake(workdir, *args, "--configfile", path)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert f"invalid config: config key {key}" in out and "Traceback" not in out, out[-3000:]
        assert not re.search(r"^(local)?rule \w+:", out, re.M)
    assert not (workdir / "results").exists() and not (workdir / "data").exists()


# --------------------------------------------------------------------------- what reruns

def _materialise_plan(workdir: Path, configfile: str) -> list[tuple[str, list[str]]]:
    """Record every planned job as done under this config, and create its outputs (empty)."""
    proc = snakemake(workdir, "-n", "--configfile", configfile)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = planned_jobs(proc.stdout + proc.stderr)
    # The report reads the jobs' benchmark files, which --touch does not create.
    benchmarks = re.findall(r"^\s+benchmark: (.*)$", proc.stdout + proc.stderr, re.M)
    # --touch on missing outputs records each job's provenance (params, code) without running it.
    proc = snakemake(workdir, "--cores", "1", "--touch", "--configfile", configfile)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stamp = time.time() - 60
    for rule, outs in jobs:
        for out in outs:
            path = workdir / out
            if rule in ("restore", "dnd_bundle"):  # directory() outputs
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            os.utime(path, (stamp, stamp))  # one time for all: no output is older than its input
    for bench in benchmarks:
        path = workdir / bench
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        os.utime(path, (stamp, stamp))
    proc = snakemake(workdir, "-n", "--configfile", configfile)
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]
    return jobs


def _rerun_plan(workdir: Path, config: dict) -> list[tuple[str, list[str]]]:
    path = write_config(workdir, "demo.yaml", config)
    proc = snakemake(workdir, "-n", "--configfile", path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return planned_jobs(proc.stdout + proc.stderr)


@pytest.mark.slow
def test_changing_one_ablation_reruns_only_what_depends_on_it(workdir):
    _materialise_plan(workdir, "config/demo.yaml")
    config = _config("demo.yaml")

    changed = copy.deepcopy(config)
    changed["demo"]["ablations"]["variants"]["two_stage"] = {"num_stages": 2, "csff": False}
    jobs = _rerun_plan(workdir, changed)
    per_run = {(r, o) for r, outs in jobs for o in outs if r in ("run_config", "train", "restore", "score")}
    assert per_run, "nothing reruns after a changed variant"
    assert all("/ablation/deblurring/two_stage/" in o for _, o in per_run), sorted(per_run)
    seeds = config["demo"]["ablations"]["seeds"]
    assert {o for r, o in per_run if r == "train" and o.endswith(".pt")} == {
        f"results/demo/runs/ablation/deblurring/two_stage/seed{s}/model_final.pt" for s in seeds}
    per_study = {"study_manifest", "aggregate"} | REPORT_RULES  # tables and figures of the whole study
    assert {"run_config", "train", "restore", "score"} <= {r for r, _ in jobs} <= (
        {"run_config", "train", "restore", "score", "stage_scores"} | per_study)
    assert all("/ablation/deblurring/two_stage/" in o for r, outs in jobs if r == "stage_scores" for o in outs)

    # A change of the ablations' shared recipe reruns every ablation run and no main model.
    changed = copy.deepcopy(config)
    changed["demo"]["ablations"]["recipe"]["schedule"]["length"] += 1
    trained = {o for o in outputs_of(_rerun_plan(workdir, changed), "train") if o.endswith(".pt")}
    assert trained == {f"results/demo/runs/ablation/deblurring/{v}/seed{s}/model_final.pt"
                       for v in config["demo"]["ablations"]["variants"] for s in seeds}


# --------------------------------------------------------------------------- preemption

def _train_processes(workdir: Path, run_dir: Path) -> list[int]:
    """The `mprnet.cli train` processes (not their shells) training run_dir in workdir."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().decode().split("\0")
            cwd = os.readlink(proc / "cwd")
        except (OSError, ValueError):
            continue
        if ("mprnet.cli" in argv and "train" in argv and str(run_dir) in argv
                and Path(cwd) == workdir):
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_training_killed_by_sigterm_is_retried_and_resumes_to_the_same_weights(workdir):
    """What Slurm does at preemption: SIGTERM to the training process. Snakemake retries the job,
    the retry resumes from the checkpoint, and the weights equal an uninterrupted run's."""
    import signal

    import torch

    config = _ci_config()
    section = config["ci"]
    section["tasks"] = {"deblurring": section["tasks"]["deblurring"]}
    section["tasks"]["deblurring"]["recipe"]["schedule"] = {"unit": "iteration", "length": 40, "warmup": 2}
    section["tasks"]["deblurring"]["recipe"]["runtime"].update(checkpoint_every=5)
    del section["ablations"], section["published"]
    path = write_config(workdir, "preempt.yaml", config)
    run = Path("results/ci/runs/main/deblurring/full/seed0")
    target = str(run / "model_final.pt")

    # The target goes first: --configfile takes every argument after it as a config file.
    args = [sys.executable, "-m", "snakemake", target, "-s", str(ROOT / "workflow" / "Snakefile"), "--cores", "1",
            "--retries", "1", "--configfile", path]
    job = subprocess.Popen(args, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 240
        while not (workdir / run / "checkpoint.pt").exists():
            assert job.poll() is None and time.time() < deadline, "training never checkpointed"
            time.sleep(0.2)
        pids = _train_processes(workdir, run)
        assert pids, "no training process found"
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        out, _ = job.communicate(timeout=300)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0, out[-3000:]
    history = (workdir / run / "train.log").read_text()  # every attempt's output
    assert "SIGTERM" in history and "--resume" in history, history[-2000:]  # "resume me" (exit 75)
    assert "done, final model" in history
    assert "Trying to restart job" in out, out[-3000:]

    # The same run, uninterrupted, in another folder, with the thread count Snakemake gave the job
    # (OMP_NUM_THREADS = the job's threads, 1): a different count changes float summation order.
    fresh = workdir / "fresh"
    subprocess.run([sys.executable, "-m", "mprnet.cli", "train", "--config", str(run / "run.yaml"),
                    "--out", str(fresh)], cwd=workdir, check=True, capture_output=True, timeout=300,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    resumed = torch.load(workdir / target, weights_only=True)["model"]
    uninterrupted = torch.load(fresh / "model_final.pt", weights_only=True)["model"]
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


# --------------------------------------------------------------------------- numbers

def _study_with_numbers(workdir: Path, forms: dict[str, str]) -> str:
    """config/numbers.yaml: the demo study (no anchors) with each ``forms`` placeholder written
    as the given text, unquoted, as a person types it."""
    config = _config("demo.yaml")
    tasks = config["demo"]["tasks"]
    tasks["deraining"]["recipe"]["optim"] = {"lr": "RAIN_LR", "min_lr": "MIN_RAIN_LR"}
    tasks["deblurring"]["recipe"]["optim"] = {"lr": "BLUR_LR", "weight_decay": "BLUR_WD"}
    tasks["denoising"]["recipe"]["optim"] = {"lr": "NOISE_LR"}
    tasks["denoising"]["recipe"]["loss"] = {"eps": "NOISE_EPS"}
    text = yaml.safe_dump(config, sort_keys=False)
    for placeholder, form in sorted(forms.items(), key=lambda item: -len(item[0])):  # longest first
        text = text.replace(placeholder, form)
    (workdir / "config" / "numbers.yaml").write_text(text)
    return "config/numbers.yaml"


def test_numbers_written_by_dvc_and_by_hand_reach_the_runs_as_numbers(workdir):
    """Before: Snakemake's YAML 1.1 reader took `lr: 1e-05` (what `dvc exp run -S ...lr=1e-5`
    writes) and `lr: 2e-4` typed by hand for strings: "optim.lr: '1e-05' is not of type
    'number'", while `mprnet train --config` read 2e-4 as 0.0002. One reading now, tested with
    the forms DVC (its own -S code) and people write, through the rule that writes run.yaml."""
    from dvc.utils.hydra import apply_overrides

    forms = {"RAIN_LR": "2e-4", "MIN_RAIN_LR": "1E-7", "BLUR_LR": "2.0e-4", "BLUR_WD": "1e+0",
             "NOISE_LR": ".5e-3", "NOISE_EPS": "1e-1"}
    path = _study_with_numbers(workdir, forms)
    apply_overrides(str(workdir / path), ["+demo.ablations.recipe.optim.lr=1e-5",
                                          "+demo.ablations.recipe.optim.min_lr=2e-7",
                                          "+demo.ablations.recipe.optim.weight_decay=1E-5"])
    written = (workdir / path).read_text()
    assert "lr: 1e-05" in written and "min_lr: 2e-07" in written and "weight_decay: 1e-05" in written
    targets = {f"results/demo/runs/{run}/seed0/run.yaml": run for run in
               ("main/deraining/full", "main/deblurring/full", "main/denoising/full", "ablation/deblurring/no_sam")}
    proc = snakemake(workdir, "--cores", "1", *targets, "--configfile", path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    runs = {run: yaml.safe_load((workdir / target).read_text()) for target, run in targets.items()}
    assert runs["main/deraining/full"]["optim"] == {"lr": 2e-4, "min_lr": 1e-7}
    assert runs["main/deblurring/full"]["optim"] == {"lr": 2e-4, "weight_decay": 1.0}
    assert runs["main/denoising/full"]["optim"] == {"lr": 5e-4} and runs["main/denoising/full"]["loss"]["eps"] == 0.1
    assert runs["ablation/deblurring/no_sam"]["optim"] == {"lr": 1e-5, "min_lr": 2e-7, "weight_decay": 1e-5}
    assert all(isinstance(v, float) for run in runs.values() for v in run["optim"].values())


def test_a_quoted_number_is_text_for_the_study_and_for_mprnet_train_alike(workdir, tmp_path):
    path = _study_with_numbers(workdir, {"RAIN_LR": "'2e-4'", "MIN_RAIN_LR": "1e-6", "BLUR_LR": "2e-4",
                                         "BLUR_WD": "0", "NOISE_LR": "2e-4", "NOISE_EPS": "0.1"})
    proc = snakemake(workdir, "-n", "--configfile", path)
    assert proc.returncode != 0 and "optim.lr: '2e-4' is not of type 'number'" in proc.stdout + proc.stderr
    run = tmp_path / "run.yaml"
    run.write_text("task: denoising\ndata: {train: x}\noptim: {lr: '2e-4'}\n")
    train = subprocess.run([sys.executable, "-m", "mprnet.cli", "train", "--config", str(run), "--out",
                            str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert train.returncode == 2 and "optim.lr: '2e-4' is not of type 'number'" in train.stderr


@pytest.mark.parametrize("text, value", [("1e-05", 1e-5), ("2e-4", 2e-4), ("2.0e-4", 2e-4), ("1E-5", 1e-5),
                                         (".5e-3", 5e-4), ("1e+16", 1e16), ("-3e2", -300.0), ("5.E-3", 5e-3),
                                         ("1_000e-3", 1.0), ("0.0002", 2e-4), ("1.5", 1.5)])
def test_the_one_yaml_reader_reads_every_float_form_dvc_python_and_people_write(text, value):
    from mprnet.yaml_files import parse_yaml

    assert parse_yaml(f"x: {text}") == {"x": value}
    assert parse_yaml(f"x: '{text}'") == {"x": text}  # quoted: text, as YAML says
    assert parse_yaml(f"x: {repr(value)}") == {"x": value}  # Python's repr, which DVC and json write


# --------------------------------------------------------------------------- a finished model is kept

@pytest.mark.slow
def test_a_config_change_whose_run_fails_keeps_the_finished_model_and_undoing_it_brings_it_back(workdir):
    """Before: a changed run config moved the finished run's checkpoint aside and Snakemake
    deleted its model_final.pt before the new run existed; when the new run failed, the model was
    gone. Now the run of the old config waits in superseded/ and returns when the change is undone."""
    import torch

    config = _ci_config()
    section = config["ci"]
    section["tasks"] = {"deblurring": section["tasks"]["deblurring"]}
    del section["ablations"], section["published"]
    run = workdir / "results/ci/runs/main/deblurring/full/seed0"
    target = str((run / "model_final.pt").relative_to(workdir))

    path = write_config(workdir, "keep.yaml", config)
    proc = snakemake(workdir, target, "--cores", "1", "--configfile", path, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    finished = torch.load(run / "model_final.pt", weights_only=True)["model"]

    # A change that plans (the config is valid) but fails in the job: no image is 512 px wide.
    changed = copy.deepcopy(config)
    changed["ci"]["tasks"]["deblurring"]["recipe"]["data"]["patch_size"] = 512
    path = write_config(workdir, "keep.yaml", changed)
    proc = snakemake(workdir, target, "--cores", "1", "--configfile", path, timeout=600)
    assert proc.returncode != 0
    assert "smaller than the 512x512 training patch" in (run / "train.log").read_text()
    assert not (run / "model_final.pt").exists()
    kept = torch.load(run / "superseded" / "model_final.pt", weights_only=True)["model"]
    assert all(torch.equal(kept[k], finished[k]) for k in finished)

    # The change undone: the finished run comes back and is not trained again.
    path = write_config(workdir, "keep.yaml", config)
    proc = snakemake(workdir, target, "--cores", "1", "--configfile", path, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "is back" in (workdir / "results/ci/logs/run_config/main/deblurring/full/seed0.log").read_text()
    history = (run / "train.log").read_text()
    assert history.rstrip().endswith(f"done, final model {run.relative_to(workdir)}/model_final.pt"), history[-500:]
    assert "resuming" in history.split("== mprnet train")[-1]
    back = torch.load(run / "model_final.pt", weights_only=True)["model"]
    assert all(torch.equal(back[k], finished[k]) for k in finished)
