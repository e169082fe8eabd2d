"""Study-level steps: the aggregation (summary.csv) and each run's config file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from mprnet.errors import ConfigError, DataError
from mprnet.study.aggregate import aggregate
from mprnet.study.files import keep_superseded_run, write_run_config


def _scores(path, psnr, ssim):
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"image": [f"im{i}" for i in range(len(psnr))], "psnr": psnr, "ssim": ssim}).to_csv(
        path, index=False)
    return str(path)


@pytest.fixture
def study(tmp_path):
    """A manifest of: degraded input, main model, two ablation seeds of two variants, two
    deraining sets for an Average row, and the paper's numbers."""
    entries = []

    def add(task, dataset, method, group, psnr, ssim, seed=None):
        path = _scores(tmp_path / "scores" / group / task / method / f"seed{seed}" / f"{dataset}.csv",
                       psnr, ssim)
        entries.append({"task": task, "dataset": dataset, "method": method, "group": group,
                        "seed": seed, "path": path})

    add("deblurring", "gopro", "degraded", "input", [20.0, 22.0], [0.5, 0.7])
    add("deblurring", "gopro", "full", "main", [30.0, 32.0], [0.9, 0.95], seed=1234)
    add("deblurring", "gopro", "full", "ablation", [28.0, 30.0], [0.8, 0.9], seed=0)
    add("deblurring", "gopro", "full", "ablation", [29.0, 31.0], [0.85, 0.95], seed=1)
    add("deblurring", "gopro", "no_sam", "ablation", [27.0, 27.0], [0.8, 0.8], seed=0)
    add("deblurring", "gopro", "no_sam", "ablation", [26.0, 26.0], [0.7, 0.7], seed=1)
    add("deraining", "rain100h", "full", "main", [25.0, 27.0, float("inf")][:2], [0.8, 0.8], seed=0)
    add("deraining", "rain100l", "full", "main", [35.0], [0.95], seed=0)
    manifest = {
        "study": "t",
        "published": {"deblurring": {"gopro": {"psnr": 32.66, "ssim": 0.959}},
                      "deraining": {"rain100h": {"psnr": 30.41, "ssim": 0.890},
                                    "rain100l": {"psnr": 36.40, "ssim": 0.965},
                                    "Average": {"psnr": 33.4, "ssim": 0.93}}},
        "scores": entries,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return tmp_path, path


def _row(summary, **match):
    sel = summary
    for key, value in match.items():
        sel = sel[sel[key] == value]
    assert len(sel) == 1, match
    return sel.iloc[0]


def test_summary_means_over_images_then_seeds(study):
    tmp, manifest = study
    aggregate(manifest, tmp / "summary.csv", tmp / "runs.csv", tmp / "metrics.json")
    summary = pd.read_csv(tmp / "summary.csv")
    assert list(summary.columns[:6]) == ["task", "dataset", "method", "psnr", "ssim", "n_images"]

    degraded = _row(summary, task="deblurring", method="degraded")
    assert degraded["psnr"] == pytest.approx(21.0) and degraded["n_images"] == 2
    full = _row(summary, task="deblurring", method="full", group="ablation")
    assert full["psnr"] == pytest.approx((29.0 + 30.0) / 2) and full["n_seeds"] == 2
    assert full["psnr_std"] == pytest.approx(math.sqrt(0.5))  # sample std of 29 and 30
    no_sam = _row(summary, method="no_sam")
    assert no_sam["ssim"] == pytest.approx(0.75) and no_sam["ssim_std"] == pytest.approx(math.sqrt(0.005))
    main_full = _row(summary, task="deblurring", method="full", group="main")
    assert main_full["psnr"] == pytest.approx(31.0) and pd.isna(main_full["psnr_std"])
    paper = _row(summary, task="deblurring", method="paper")
    assert paper["psnr"] == pytest.approx(32.66) and pd.isna(paper["n_images"])

    # The paper's deraining Average: the mean of the dataset means (not of all images).
    average = _row(summary, task="deraining", dataset="Average", method="full")
    assert average["psnr"] == pytest.approx((26.0 + 35.0) / 2) and average["n_images"] == 3

    runs = pd.read_csv(tmp / "runs.csv")
    assert len(runs) == 8 and set(runs["seed"].dropna()) == {0, 1, 1234}
    metrics = json.loads((tmp / "metrics.json").read_text())
    assert metrics["deblurring"]["gopro"]["ablation/no_sam"]["psnr"] == pytest.approx(26.5)
    assert metrics["deblurring"]["gopro"]["full"]["psnr"] == pytest.approx(31.0)


def test_missing_or_broken_score_file_is_a_clear_error(study):
    tmp, manifest = study
    data = yaml.safe_load(manifest.read_text())
    victim = data["scores"][2]["path"]
    with open(victim, "w") as fh:
        fh.write("image,psnr\nim0,30\n")
    with pytest.raises(DataError, match="missing columns"):
        aggregate(manifest, tmp / "summary.csv")
    assert not (tmp / "summary.csv").exists()
    with open(victim, "w") as fh:
        fh.write("image,psnr,ssim\nim0,30,0.9\nim1,abc,0.9\n")
    with pytest.raises(DataError, match="column psnr holds 'abc', not a number"):
        aggregate(manifest, tmp / "summary.csv")
    data["scores"][2]["path"] = str(tmp / "nowhere.csv")
    manifest.write_text(yaml.safe_dump(data))
    with pytest.raises(DataError, match="nowhere.csv"):
        aggregate(manifest, tmp / "summary.csv")


def _run_config(tmp_path, length):
    return {"task": "deblurring", "seed": 0, "model": {"overrides": {"n_feat": 8}},
            "data": {"train": str(tmp_path / "train"), "patch_size": 32},
            "schedule": {"unit": "iteration", "length": length}}


def _fake_run(folder, config, *, finished: bool, mark: str):
    """A run folder as mprnet train leaves it under ``config`` (its effective config.yaml)."""
    from mprnet.training.config import dump_config, resolve_config

    folder.mkdir(parents=True, exist_ok=True)
    dump_config(resolve_config(config), folder / "config.yaml")
    (folder / "checkpoint.pt").write_text(f"state {mark}")
    (folder / "metrics.csv").write_text(f"curves {mark}")
    if finished:
        (folder / "model_final.pt").write_text(f"model {mark}")


def test_run_config_keeps_a_finished_model_of_other_settings_until_another_finished_run_replaces_it(tmp_path, capsys):
    """Before: a changed setting moved the checkpoint aside and Snakemake deleted model_final.pt
    before the new run existed; if the new run failed, the finished model was gone."""
    from mprnet.training.config import dump_config, resolve_config

    run, slot = tmp_path / "run", tmp_path / "run" / "superseded"
    a, b, c = _run_config(tmp_path, 10), _run_config(tmp_path, 20), _run_config(tmp_path, 30)
    _fake_run(run, a, finished=True, mark="A")

    # Same settings (e.g. a retry after preemption): everything stays to be resumed.
    assert keep_superseded_run(run, a) is None
    write_run_config(a, run / "run.yaml")
    assert (run / "checkpoint.pt").read_text() == "state A"
    assert yaml.safe_load((run / "run.yaml").read_text())["schedule"]["length"] == 10
    # train.amp auto: the effective config records what it resolved to; still the same run.
    auto = dict(a, train={"amp": "auto"})
    dump_config(resolve_config(dict(auto, train={"amp": "bf16"})), run / "config.yaml")
    assert keep_superseded_run(run, auto) is None
    dump_config(resolve_config(a), run / "config.yaml")

    # Changed settings: the finished run of A moves, whole, to superseded/; the new run starts afresh.
    assert "schedule.length" in keep_superseded_run(run, b)
    assert not any((run / name).exists() for name in ("checkpoint.pt", "model_final.pt", "metrics.csv"))
    assert [(slot / n).read_text() for n in ("model_final.pt", "checkpoint.pt", "metrics.csv")] == [
        "model A", "state A", "curves A"]
    # B fails half-way (an unfinished checkpoint) and the study changes again to C: B is dropped,
    # A's finished model stays until a finished run replaces it.
    _fake_run(run, b, finished=False, mark="B")
    assert "dropped" in keep_superseded_run(run, c)
    assert (slot / "model_final.pt").read_text() == "model A" and not (run / "checkpoint.pt").exists()
    # Back to A: its run returns and is resumed (finished: the train job only writes its model again).
    _fake_run(run, c, finished=False, mark="C")
    assert "is back" in keep_superseded_run(run, a)
    assert (run / "model_final.pt").read_text() == "model A" and (run / "checkpoint.pt").read_text() == "state A"
    assert (slot / "checkpoint.pt").read_text() == "state C"  # no finished run to keep: the unfinished C is
    # A finished run of C replaces the one of A when the study moves on.
    _fake_run(run, c, finished=True, mark="C2")
    keep_superseded_run(run, b)
    assert (slot / "model_final.pt").read_text() == "model C2"
    assert "run config:" in capsys.readouterr().out


def test_run_config_refuses_what_the_trainer_would_reject(tmp_path, capsys):
    bad = _run_config(tmp_path, 10)
    bad["data"]["patchsize"] = 32
    with pytest.raises(ConfigError, match="patchsize"):
        write_run_config(bad, tmp_path / "run.yaml")
    assert not (tmp_path / "run.yaml").exists()


def _run(dataset, psnrs, ssims, method="full"):
    return {"task": "deraining", "dataset": dataset, "method": method, "group": "main", "seed": 0,
            "psnr": sum(psnrs) / len(psnrs), "ssim": sum(ssims) / len(ssims), "n_images": len(psnrs)}


def test_average_is_the_mean_of_dataset_means_only_over_every_published_set():
    """The paper's deraining Average (evaluate_PSNR_SSIM.m): the mean of the dataset means, never
    the mean over all images, and never over a subset of the published sets."""
    from mprnet.study.aggregate import summarise

    per = {"Test100": ([30.0, 32.0], [0.9, 0.8]), "Rain100H": ([20.0], [0.5]),
           "Rain100L": ([40.0] * 4, [1.0] * 4), "Test2800": ([25.0, 35.0], [0.7, 0.9]), "Test1200": ([33.0], [0.95])}
    published = {"deraining": {name: {"psnr": None, "ssim": None} for name in [*per, "Average"]}}
    rows = summarise([_run(name, *values) for name, values in per.items()], published, {"deraining"})
    (average,) = [r for r in rows if r["dataset"] == "Average" and r["group"] == "main"]
    assert average["psnr"] == pytest.approx((31 + 20 + 40 + 30 + 33) / 5)
    assert average["ssim"] == pytest.approx((0.85 + 0.5 + 1.0 + 0.8 + 0.95) / 5)
    assert average["n_images"] == 10
    all_images = [p for psnrs, _ in per.values() for p in psnrs]
    assert average["psnr"] != pytest.approx(sum(all_images) / len(all_images))
    subset = summarise([_run(name, *values) for name, values in per.items() if name != "Rain100H"],
                       published, {"deraining"})
    assert not [r for r in subset if r["dataset"] == "Average" and r["group"] == "main"]
    inf = summarise([_run("Test100", [math.inf, 30.0], [1.0, 0.9])], {}, set())
    assert math.isinf(inf[0]["psnr"])


def test_each_row_says_which_precision_restored_it(study, tmp_path):
    """A study restoring in bf16 (restore: {precision: bf16}) says so in summary.csv, runs.csv and the
    tables' notes; inputs and the paper's numbers carry no precision."""
    from mprnet.report.jobs import main_table
    from mprnet.report.tables import precision_note

    tmp, manifest = study
    data = yaml.safe_load(manifest.read_text())
    for entry in data["scores"]:
        if entry["group"] != "input":
            entry["precision"] = "bf16" if entry["task"] == "deraining" else "fp32"
    manifest.write_text(yaml.safe_dump(data))
    aggregate(manifest, tmp / "summary.csv", tmp / "runs.csv")
    summary = pd.read_csv(tmp / "summary.csv")
    assert _row(summary, task="deraining", dataset="Average", method="full")["precision"] == "bf16"
    assert _row(summary, task="deblurring", method="full", group="main")["precision"] == "fp32"
    assert summary.loc[summary["group"].isin(["input", "paper"]), "precision"].isna().all()
    assert set(pd.read_csv(tmp / "runs.csv")["precision"].dropna()) == {"bf16", "fp32"}
    assert precision_note(summary, "deraining") == ["Restored in bf16 (bf16 = bf16 autocast)."]
    assert precision_note(summary, "deblurring", "ablation") == ["Restored in fp32."]
    summary.loc[(summary["task"] == "deblurring") & (summary["method"] == "full"), "precision"] = "bf16"
    assert precision_note(summary, "deblurring") == [
        "Restored in bf16: Ours; fp32: w/o SAM (bf16 = bf16 autocast)."]
    written = main_table(tmp / "summary.csv", "deraining", tmp / "tables")
    assert "Restored in bf16" in (tmp / "tables" / "main_deraining.md").read_text() and len(written) == 4


def test_each_row_says_which_precision_trained_it(study, tmp_path):
    """train_precision comes from the model file each run's scores name (what train.amp resolved
    to on the machine that trained it), in runs.csv, summary.csv and the tables' notes."""
    from mprnet.report.tables import precision_note

    tmp, manifest = study
    data = yaml.safe_load(manifest.read_text())
    for entry in data["scores"]:
        if entry["group"] in ("main", "ablation"):
            amp = "bf16" if entry["group"] == "main" else "none"
            model = tmp / "runs" / entry["group"] / entry["task"] / entry["method"] / f"seed{entry['seed']}.pt"
            model.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"format": "mprnet-model/1", "model": {}, "config": {"train": {"amp": amp}}}, model)
            entry["model"], entry["precision"] = str(model), "fp32"
    manifest.write_text(yaml.safe_dump(data))
    aggregate(manifest, tmp / "summary.csv", tmp / "runs.csv")
    summary, runs = pd.read_csv(tmp / "summary.csv"), pd.read_csv(tmp / "runs.csv")
    assert _row(summary, task="deblurring", method="full", group="main")["train_precision"] == "bf16"
    assert _row(summary, task="deblurring", method="no_sam", group="ablation")["train_precision"] == "fp32"
    assert _row(summary, task="deraining", dataset="Average", method="full")["train_precision"] == "bf16"
    assert summary.loc[summary["group"].isin(["input", "paper"]), "train_precision"].isna().all()
    assert set(runs.loc[runs["group"] == "ablation", "train_precision"]) == {"fp32"}
    assert precision_note(summary[summary["group"] != "ablation"], "deblurring") == [
        "Trained in bf16; restored in fp32 (bf16 = bf16 autocast)."]
    assert precision_note(summary, "deblurring", "ablation") == ["Trained and restored in fp32."]
    assert precision_note(summary, "deblurring") == [
        "Trained in bf16: Ours; fp32: Ours, w/o SAM; restored in fp32 (bf16 = bf16 autocast)."]
    victim = Path(data["scores"][1]["model"])
    victim.write_bytes(b"truncated")
    with pytest.raises(DataError, match=f"{victim.name}: not a readable model file"):
        aggregate(manifest, tmp / "summary.csv", tmp / "runs.csv")


def test_the_study_asks_restore_for_its_precision():
    from mprnet.study.config import load_study
    from mprnet.study.targets import Targets

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / ".test" / "config" / "config.yaml").read_text())  # the CI study
    config["ci"]["tasks"]["deraining"]["restore"] = {"precision": "bf16"}
    study = load_study(config, root / "workflow" / "schemas" / "config.schema.yaml", root)
    derain = study.source_of("main/deraining/full/seed0")
    ts = study.test_set("deraining", "demo_rain")
    assert study.restore_settings(derain, ts).precision == "bf16"
    deblur = study.source_of("main/deblurring/full/seed0")
    assert study.restore_settings(deblur, study.test_set("deblurring", "demo_blur")).precision == "fp32"  # the default
    by_path = {e["path"]: e for e in Targets(study).score_entries()}
    assert by_path["results/ci/scores/main/deraining/full/seed0/demo_rain.csv"]["precision"] == "bf16"
    assert by_path["results/ci/scores/input/deraining/demo_rain.csv"]["precision"] is None
    assert by_path["results/ci/scores/main/deraining/full/seed0/demo_rain.csv"]["model"] == \
        "results/ci/runs/main/deraining/full/seed0/model_final.pt"  # read for its training precision
    assert "model" not in by_path["results/ci/scores/input/deraining/demo_rain.csv"]
    config["ci"]["tasks"]["deraining"]["restore"] = {"precision": "fp16"}
    with pytest.raises(ConfigError, match="precision"):
        load_study(config, root / "workflow" / "schemas" / "config.schema.yaml", root)
