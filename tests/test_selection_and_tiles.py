"""Issue 24, parts 3 and 5: the checkpoint chosen on the validation set (``model_best``) against the
final one, and tiles against whole images: the study's records, the rules, the tables and the jobs."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from mprnet.errors import CheckpointError, ConfigError
from mprnet.report import tables
from mprnet.report.tiles import sample_stems, tile_check, tiles_summary, tiles_table
from mprnet.study.config import load_study
from mprnet.study.files import restored_weights
from mprnet.study.spec import TileCheck
from mprnet.study.targets import Targets
from mprnet.vocabulary import MAIN, MODEL_BEST, TILE_CHECK_COLUMNS
from test_workflow import CI_CONFIG, ROOT, SCHEMA, _config, planned_jobs, snakemake, workdir, write_config  # noqa: F401
from train_worker import TINY_MODEL, make_pairs

# --------------------------------------------------------------------------- model_best: which runs


def _demo(mutate=None) -> dict:
    config = _config("demo.yaml")
    if mutate:
        mutate(config["demo"])
    return config


def _best_keys(config: dict) -> set[str]:
    study = load_study(config, SCHEMA, ROOT)
    return {key for key, source in study.sources.items() if source.group == MODEL_BEST}


def test_only_main_runs_that_validate_get_a_model_best_source():
    """The paper's main runs validate (val_set and the recipe's val_every_epochs); its ablation runs
    validate too but are no main model; the demo study validates nowhere."""
    paper = load_study(_config("config.yaml"), SCHEMA, ROOT)
    assert _best_keys(_config("config.yaml")) == {f"model_best/{task}/full/seed1234" for task in paper.tasks}
    assert _best_keys(_demo()) == set()

    def val_set(section, **train):
        section["tasks"]["deraining"]["val_set"] = "demo_rain"
        section["tasks"]["deraining"]["recipe"] = copy.deepcopy(section["tasks"]["deraining"]["recipe"])
        section["tasks"]["deraining"]["recipe"]["train"].update(train)

    # A validation set that is never validated on (val_every_epochs null, the demo's) gives none...
    assert _best_keys(_demo(lambda s: val_set(s))) == set()
    # ...validating without a validation set neither; with both, that run (each seed) has one.
    assert _best_keys(_demo(lambda s: s["tasks"]["deraining"]["recipe"]["train"].update(
        val_every_iterations=2))) == set()
    seeds = _config("demo.yaml")["demo"]["tasks"]["deraining"]["seeds"]
    assert _best_keys(_demo(lambda s: val_set(s, val_every_iterations=2))) == {
        f"model_best/deraining/full/seed{seed}" for seed in seeds}


@pytest.mark.parametrize("val, train", [(True, {"val_every_iterations": 2}), (True, {"val_every_epochs": 1}),
                                        (True, {"val_every_epochs": None}), (False, {"val_every_iterations": 2})])
@pytest.mark.usefixtures("one_thread")
def test_the_study_knows_when_the_trainer_writes_model_best(tmp_path, val, train):
    """``validates`` (what the study plans model_best by) against what the trainer writes."""
    from mprnet.training.config import resolve_config, validates
    from mprnet.training.trainer import train as run_training
    from train_worker import tiny_config

    pairs = make_pairs(tmp_path / "pairs", 2, seed=0)
    config = tiny_config(pairs, length=2, data={"val": str(pairs), "val_patch_size": 32} if val else {},
                         train=train)
    run_training(config, tmp_path / "run")
    assert (tmp_path / "run" / "model_final.pt").is_file()
    assert (tmp_path / "run" / "model_best.pt").is_file() is validates(resolve_config(config))
    assert validates(resolve_config(config)) is (val and train != {"val_every_epochs": None})


def test_model_best_restores_its_own_file_waits_for_the_final_model_and_is_scored_apart():
    study = load_study(_config("config.yaml"), SCHEMA, ROOT)
    targets = Targets(study)
    best = study.source_of("model_best/deblurring/full/seed1234")
    run = "results/paper/runs/main/deblurring/full/seed1234"
    assert targets.checkpoint(best) == f"{run}/model_best.pt"
    assert targets.restore_input(best) == f"{run}/model_final.pt"  # the train job's declared output
    assert study.run_of(best) is study.run(MAIN, "deblurring", "full", 1234)
    # Every scored test set of the task (not DND: no ground truth), like the final model's.
    restored = {ts.name for source, ts in study.restored_sources() if source == best}
    assert restored == {"gopro", "hide", "realblur_j", "realblur_r"}
    denoise = study.source_of("model_best/denoising/full/seed1234")
    assert {ts.name for s, ts in study.restored_sources() if s == denoise} == {"sidd"}
    entries = {e["path"]: e for e in targets.score_entries()}
    entry = entries["results/paper/scores/model_best/deblurring/full/seed1234/gopro.csv"]
    assert (entry["group"], entry["method"], entry["seed"]) == (MODEL_BEST, MODEL_BEST, 1234)
    assert entry["model"] == f"{run}/model_final.pt"  # read for the precision it trained in
    assert study.model_best_selection("deblurring") == {"val_set": "gopro", "split": "test", "test_set": True}
    assert study.model_best_selection("denoising") == {"val_set": "sidd_val", "split": "val", "test_set": False}
    with pytest.raises(ConfigError, match="input/deblurring was not trained here"):
        study.run_of(study.task_source("input", "deblurring"))


def test_a_missing_model_best_is_one_line_naming_the_file(tmp_path):
    final, best = tmp_path / "model_final.pt", tmp_path / "model_best.pt"
    final.write_bytes(b"x")
    assert restored_weights(final, final) == final  # the file waited for: Snakemake checked it
    with pytest.raises(CheckpointError) as err:
        restored_weights(final, best)
    message = str(err.value)
    assert message.startswith(f"{best}: no such file") and "\n" not in message and "never validated" in message
    best.write_bytes(b"x")
    assert restored_weights(final, best) == best


# --------------------------------------------------------------------------- model_best: the main table


def _summary(rows):
    return pd.DataFrame([{"task": "deraining", "dataset": d, "method": m, "group": g, "psnr": p, "ssim": s,
                          "n_images": 10, "n_seeds": 1} for d, m, g, p, s in rows])


SUMMARY = _summary([
    ("rain100l", "degraded", "input", 26.0, 0.80), ("test100", "degraded", "input", 22.0, 0.70),
    ("rain100l", "full", "main", 36.10, 0.9650), ("test100", "full", "main", 30.00, 0.9000),
    ("rain100l", "model_best", "model_best", 36.35, 0.9660), ("test100", "model_best", "model_best", 29.95, 0.8990),
    ("rain100l", "paper", "paper", 36.40, 0.965), ("test100", "paper", "paper", 30.27, 0.897),
])


def test_the_best_minus_final_row_is_the_difference_of_the_two_rows():
    numbers = tables.main_results(SUMMARY, "deraining")
    rows = list(numbers.index)
    assert rows.index("model_best") == rows.index("delta_full_paper") + 1  # after Ours and its Δ
    assert rows[rows.index("model_best") + 1] == "delta_best_final"
    for dataset, dpsnr, dssim in (("rain100l", 0.25, 0.001), ("test100", -0.05, -0.001)):
        assert numbers.loc["delta_best_final", (dataset, "psnr")] == pytest.approx(dpsnr, abs=1e-9)
        assert numbers.loc["delta_best_final", (dataset, "ssim")] == pytest.approx(dssim, abs=1e-9)
    # Average (deraining): the mean of the dataset means, so its Δ is the mean of the Δs.
    assert numbers.loc["delta_best_final", ("Average", "psnr")] == pytest.approx(0.10, abs=1e-9)
    # The final model's Δ to the paper is untouched by the model_best row.
    assert numbers.loc["delta_full_paper", ("rain100l", "psnr")] == pytest.approx(-0.30, abs=1e-9)


@pytest.mark.parametrize("test_set", [True, False])
def test_the_model_best_row_says_on_which_set_it_was_selected(test_set):
    selection = {"val_set": "rain100l" if test_set else "rain_val", "split": "test", "test_set": test_set}
    table = tables.main_results_table(SUMMARY, "deraining", selection=selection)
    labels = [label for label, _ in table.rows]
    name = selection["val_set"]
    assert f"Ours, model_best (selected on {name})" in labels and "Δ (best − final)" in labels
    cells = dict(table.rows)["Δ (best − final)"]
    assert cells[:2] == ["+0.25", "+0.001"] and cells[2:4] == ["−0.05", "−0.001"]
    note = next(n for n in table.notes if "model_best" in n)
    assert (f"which is the test set {name} itself" in note) is test_set
    assert ("not one of this task's test sets" in note) is not test_set
    # Without selection facts (no main run validates) there is no model_best note.
    plain = tables.main_results_table(SUMMARY[SUMMARY["method"] != "model_best"], "deraining", selection={})
    assert not any("model_best" in n for n in plain.notes) and "Δ (best − final)" not in dict(plain.rows)


# --------------------------------------------------------------------------- tiles: records and plan


def test_tile_checks_follow_the_tasks_tiles_or_the_report_setting():
    ci = yaml.safe_load(CI_CONFIG.read_text())
    study = load_study(ci, SCHEMA, ROOT)  # deraining restores in tiles of 64; the others whole
    assert study.tile_check("deraining") == TileCheck(64, 16, True, 3)
    assert study.tile_check("deblurring") is None
    assert [(s.key, ts.name) for s, ts in study.tile_checks()] == [("main/deraining/full/seed0", "demo_rain")]
    ci["ci"]["report"].update(tile_check_tile=32, tile_check_overlap=8)
    study = load_study(ci, SCHEMA, ROOT)
    assert study.tile_check("deraining") == TileCheck(64, 16, True, 3)  # the task's own tiles win
    assert study.tile_check("denoising") == TileCheck(32, 8, False, 3)  # restored whole: checked in tiles
    ci["ci"]["report"]["tile_check_images"] = 0
    assert load_study(ci, SCHEMA, ROOT).tile_checks() == []
    paper = load_study(_config("config.yaml"), SCHEMA, ROOT)
    assert {(s.key, ts.name) for s, ts in paper.tile_checks()} == {
        (f"main/{task}/full/seed1234", ts.name) for task, spec in paper.tasks.items()
        for ts in spec.test_sets.values() if ts.scored}
    bad = _demo(lambda s: s.update(report={"tile_check_tile": 100}))
    with pytest.raises(ConfigError, match="config key demo.report.tile_check_tile: 100 is not a multiple of 8"):
        load_study(bad, SCHEMA, ROOT)


def test_sample_stems_are_evenly_spaced_and_the_same_every_time():
    stems = [f"{i:03d}" for i in range(10)][::-1]  # the order given does not matter
    assert sample_stems(stems, 4) == ["000", "003", "006", "009"]
    assert sample_stems(stems, 1) == ["000"]
    assert sample_stems(stems, 10) == sample_stems(stems, 50) == sorted(stems)
    for n in range(1, 11):
        picked = sample_stems(stems, n)
        assert len(set(picked)) == n and (n == 1 or picked[-1] == "009")
    with pytest.raises(ValueError):
        sample_stems(stems, 0)


# --------------------------------------------------------------------------- tiles: the table


def test_tiles_table_on_known_per_image_numbers():
    def check(task, dataset, deltas, study="tiled", split=True):
        return pd.DataFrame({"task": task, "dataset": dataset, "image": [f"im{i}" for i in range(len(deltas))],
                             "tiled_psnr": [30 + d for d, _ in deltas], "tiled_ssim": [0.9 + s for _, s in deltas],
                             "whole_psnr": 30.0, "whole_ssim": 0.9, "delta_psnr": [d for d, _ in deltas],
                             "delta_ssim": [s for _, s in deltas], "tile": 256, "overlap": 32, "study": study,
                             "split": split})

    checks = pd.concat([check("deraining", "rain100h", [(0.01, 0.0002), (-0.04, -0.0006), (0.0, 0.0)]),
                        check("deblurring", "gopro", [(0.002, 0.0), (0.004, 0.0001)], study="whole"),
                        check("denoising", "sidd", [(0.0, 0.0), (0.0, 0.0)], split=False)])
    summary = tiles_summary(checks).set_index("dataset")
    assert summary.loc["rain100h", "delta_psnr_mean"] == pytest.approx(-0.01)
    assert summary.loc["rain100h", "delta_psnr_max_abs"] == pytest.approx(0.04)
    assert summary.loc["rain100h", "delta_ssim_max_abs"] == pytest.approx(0.0006)
    assert summary.loc["gopro", "delta_psnr_mean"] == pytest.approx(0.003) and summary.loc["gopro", "n_images"] == 2
    table = tiles_table(checks)
    rows = dict(table.rows)
    assert rows["deraining: rain100h"] == ["256 / 32", "tiles", "3 (3 split)", "−0.010", "0.040", "−0.0001", "0.0006"]
    assert rows["deblurring: gopro"][:3] == ["256 / 32", "whole images", "2 (2 split)"]
    # SIDD's 256×256 blocks in 256-pixel tiles: restored whole either way, nothing measured.
    assert rows["denoising: sidd"][2:] == ["2 (0 split)", "not split: images ≤ tile", "–", "–", "–"]
    assert table.rules_before == {1, 2}  # a rule between the tasks


# --------------------------------------------------------------------------- tiles: the job


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    """Four 64×80 noisy/clean pairs and an untrained tiny denoiser in the trainer's file format
    (untrained: tiles change its output clearly, so equality below means the same computation)."""
    from mprnet.model import build_model
    from mprnet.training.config import resolve_config

    root = tmp_path_factory.mktemp("tiles")
    make_pairs(root / "set", 4, seed=3, size=(64, 80))
    torch.manual_seed(0)
    model = build_model("denoising", **TINY_MODEL)
    cfg = resolve_config({"task": "denoising", "data": {"train": "unused"}, "model": {"overrides": dict(TINY_MODEL)}})
    torch.save({"format": "mprnet-model/1", "model": model.state_dict(), "config": cfg, "iteration": 0},
               root / "model.pt")
    return root


def _study_scores(root: Path, name: str, tile: int | None, overlap: int = 8) -> Path:
    """What the restore and score rules make of the whole set: its per-image scores (rgb)."""
    from mprnet.metrics import score_folders
    from mprnet.restore import restore_checkpoint

    restore_checkpoint(root / "model.pt", root / "set" / "input", root / name, tile=tile, overlap=overlap,
                       device="cpu", progress=False)
    path = root / f"{name}.csv"
    score_folders("rgb", root / name, root / "set" / "target").to_csv(path, index=False)
    return path


def _check(root: Path, scores: Path, out: str, **kwargs) -> pd.DataFrame:
    frame = tile_check(root / "model.pt", root / "set" / "input", root / "set" / "target", "rgb", scores,
                       root / out, device="cpu", **kwargs)
    assert list(pd.read_csv(root / out, dtype={"image": str}).columns) == list(TILE_CHECK_COLUMNS)
    return frame


@pytest.mark.usefixtures("one_thread")
def test_tiles_and_whole_are_equal_when_the_tile_covers_the_image(tiny_set):
    """A tile at least as large as the image restores it whole: Δ is exactly 0, both ways round."""
    tiled = _study_scores(tiny_set, "covering", tile=128)
    frame = _check(tiny_set, tiled, "covering_check.csv", tile=128, overlap=8, study_tiles=True, images=3)
    assert list(frame["image"]) == ["img000", "img002", "img003"]
    assert (frame["delta_psnr"] == 0).all() and (frame["delta_ssim"] == 0).all()
    assert (frame["tiled_psnr"] == frame["whole_psnr"]).all()
    assert not frame["split"].any()  # 64×80 images in 128-pixel tiles
    whole = _study_scores(tiny_set, "whole", tile=None)
    frame = _check(tiny_set, whole, "whole_check.csv", tile=128, overlap=8, study_tiles=False, images=4)
    assert (frame["delta_psnr"] == 0).all() and (frame["study"] == "whole").all()


@pytest.mark.usefixtures("one_thread")
def test_small_tiles_against_whole_images_compare_the_study_scores_with_the_other_restoration(tiny_set):
    study_tiled = pd.read_csv(_study_scores(tiny_set, "tiled32", tile=32), dtype={"image": str}).set_index("image")
    study_whole = pd.read_csv(_study_scores(tiny_set, "whole2", tile=None), dtype={"image": str}).set_index("image")
    # The study tiles: its own numbers are the tiled side; the whole side is restored by the check.
    frame = _check(tiny_set, tiny_set / "tiled32.csv", "tiled_check.csv", tile=32, overlap=8, study_tiles=True,
                   images=4).set_index("image")
    assert (frame["study"] == "tiled").all() and (frame["tile"] == 32).all() and frame["split"].all()
    np.testing.assert_allclose(frame["tiled_psnr"], study_tiled.loc[frame.index, "psnr"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(frame["whole_psnr"], study_whole.loc[frame.index, "psnr"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(frame["delta_psnr"], frame["tiled_psnr"] - frame["whole_psnr"], rtol=0, atol=1e-12)
    assert (frame["delta_psnr"].abs() > 1e-6).any()  # 32-pixel tiles do change an untrained model's output
    # The study restores whole: its numbers are the whole side, the tiles are restored by the check.
    other = _check(tiny_set, tiny_set / "whole2.csv", "whole_check2.csv", tile=32, overlap=8, study_tiles=False,
                   images=4).set_index("image")
    np.testing.assert_allclose(other["tiled_psnr"], study_tiled.loc[other.index, "psnr"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(other["whole_psnr"], study_whole.loc[other.index, "psnr"], rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- through Snakemake


def test_the_paper_plan_has_a_model_best_and_a_tile_check_per_scored_test_set(workdir):
    """The paper config (`snakemake -n all`): model_best restored and scored on each scored test
    set of the three main tasks (DND is bundled, not scored), and a tile check of each."""
    proc = snakemake(workdir, "-n", "all")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = planned_jobs(proc.stdout + proc.stderr)
    scored = {"rain100h", "rain100l", "test100", "test1200", "test2800", "gopro", "hide", "realblur_j",
              "realblur_r", "sidd"}
    outputs = {rule: {o for r, outs in jobs if r == rule for o in outs} for rule, _ in jobs}
    best = {Path(o).name for o in outputs["restore"] if "/restored/model_best/" in o}
    assert best == scored
    assert {Path(o).stem for o in outputs["score"] if "/scores/model_best/" in o} == scored
    assert {Path(o).stem for o in outputs["tile_check"]} == scored
    assert all("/tile_checks/main/" in o and "/seed1234/" in o for o in outputs["tile_check"])
    assert "results/paper/tables/tiles.md" in outputs["report_tiles_table"]


@pytest.mark.slow
def test_model_best_and_the_tile_check_run_through_the_workflow(workdir):
    """The CI study's deraining task, which validates and restores in tiles: model_best restored,
    scored and tabulated beside the final model with its Δ; the tile check and the tiles table;
    and model_best.pt missing gives a one-line error naming it."""
    config = yaml.safe_load(CI_CONFIG.read_text())
    section = config["ci"]
    section["tasks"] = {"deraining": section["tasks"]["deraining"]}
    del section["ablations"], section["published"]
    path = write_config(workdir, "best.yaml", config)
    targets = ["results/ci/tables/main_deraining.csv", "results/ci/tables/tiles.csv"]
    proc = snakemake(workdir, *targets, "--cores", "2", "--configfile", path, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    results = workdir / "results/ci"
    run = results / "runs/main/deraining/full/seed0"
    assert (run / "model_best.pt").is_file()

    summary = pd.read_csv(results / "summary.csv")
    rows = summary.set_index("group")
    assert set(summary["group"]) == {"input", "main", "model_best"}
    assert rows.loc["model_best", "method"] == MODEL_BEST and rows.loc["model_best", "n_images"] == 12
    main = pd.read_csv(results / "tables/main_deraining.csv").set_index("row")
    for metric in ("psnr", "ssim"):
        expected = rows.loc["model_best", metric] - rows.loc["main", metric]
        assert main.loc["delta_best_final", f"demo_rain_{metric}"] == pytest.approx(expected, abs=1e-9)
    assert "selected on demo_rain" in (results / "tables/main_deraining.md").read_text()
    restored = (results / "restored/model_best/deraining/full/seed0/demo_rain/restore.json").read_text()
    assert "model_best.pt" in restored and '"tile": 64' in restored

    check = pd.read_csv(results / "tile_checks/main/deraining/full/seed0/demo_rain.csv", dtype={"image": str})
    assert len(check) == 3 and (check["study"] == "tiled").all() and (check["tile"] == 64).all()
    own = pd.read_csv(results / "scores/main/deraining/full/seed0/demo_rain.csv", dtype={"image": str})
    own = own.set_index("image").loc[check["image"]]
    np.testing.assert_allclose(check["tiled_psnr"], own["psnr"], rtol=0, atol=1e-6)  # the study's own numbers
    tiles = pd.read_csv(results / "tables/tiles.csv")
    assert tiles.loc[0, "delta_psnr_mean"] == pytest.approx(check["delta_psnr"].mean(), abs=1e-9)
    assert (results / "tables/tiles.html").is_file()

    # A run that wrote no model_best.pt: the restore job stops with one line naming the file.
    (run / "model_best.pt").unlink()
    target = "results/ci/restored/model_best/deraining/full/seed0/demo_rain"
    proc = snakemake(workdir, target, "--cores", "1", "--forcerun", "restore", "--configfile", path)
    assert proc.returncode != 0
    log = (results / "logs/restore/model_best/deraining/full/seed0/demo_rain.log").read_text()
    assert log.startswith("restore: error: results/ci/runs/main/deraining/full/seed0/model_best.pt: no such file")
    assert "Traceback" not in log
