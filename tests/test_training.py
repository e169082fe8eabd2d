"""Training: the official schedule and recipe, data pipeline, checkpoints and bad input (fast, CPU)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from mprnet.errors import CheckpointError, ConfigError, DataError
from mprnet.images import write_png
from mprnet.training.config import config_differences, recipe, resolve_config
from mprnet.training.dataset import BatchKeys, TrainCrops, augment_geometric, scan_pairs
from mprnet.training.schedule import WarmupCosine
from mprnet.training.trainer import TrainingDiverged, train
from train_worker import final_weights, make_pairs, tiny_config


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs") / "train", 4, seed=0)


# --- schedule and recipe ---------------------------------------------------------------------

@pytest.mark.parametrize("task", ["deblurring", "deraining", "denoising"])
def test_schedule_matches_the_official_run_epoch_by_epoch(task, fixtures_dir):
    reference = json.loads((fixtures_dir / "lr_schedule.json").read_text())
    cfg = resolve_config({"task": task, "data": {"train": "unused"}})
    assert cfg["schedule"]["length"] == reference["num_epochs"][task]
    assert cfg["schedule"]["t_max"] == reference["T_max"][task]
    schedule = WarmupCosine(cfg["optim"]["lr"], cfg["optim"]["min_lr"], cfg["schedule"]["warmup"],
                            cfg["schedule"]["t_max"])
    lrs = np.array([schedule(e) for e in range(1, cfg["schedule"]["length"] + 1)])
    np.testing.assert_allclose(lrs, reference["lr_per_epoch"][task], rtol=0, atol=1e-9)


def test_recipes_differ_where_the_official_train_scripts_differ():
    blur, rain, noise = recipe("deblurring"), recipe("deraining"), recipe("denoising")
    assert (blur["data"]["patch_size"], rain["data"]["patch_size"], noise["data"]["patch_size"]) == (256, 256, 128)
    assert blur["data"]["color_aug"] and not rain["data"]["color_aug"] and not noise["data"]["color_aug"]
    assert noise["mixup"]["enabled"] and not blur["mixup"]["enabled"]
    assert noise["loss"] == {"edge_weight": 0.0, "clamp_outputs": True, "eps": 1e-3}
    assert blur["loss"] == {"edge_weight": 0.05, "clamp_outputs": False, "eps": 1e-3}
    assert noise["optim"]["weight_decay"] == 1e-8 and blur["optim"]["weight_decay"] == 0.0
    assert blur["optim"]["lr"] == 2e-4 and blur["optim"]["betas"] == [0.9, 0.999] and blur["data"]["batch_size"] == 16


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="task"):
        resolve_config({"data": {"train": "x"}})
    with pytest.raises(ConfigError, match=r"optim: .*'lrr'"):
        resolve_config({"task": "deraining", "data": {"train": "x"}, "optim": {"lrr": 1}})
    with pytest.raises(ConfigError, match="data.patch_size"):
        resolve_config({"task": "deraining", "data": {"train": "x", "patch_size": 100}})
    with pytest.raises(ConfigError, match="data.*train"):
        resolve_config({"task": "deraining"})


def test_resume_may_change_runtime_settings_only():
    a = resolve_config({"task": "deraining", "data": {"train": "x"}})
    b = resolve_config({"task": "deraining", "data": {"train": "x"}, "runtime": {"num_workers": 0}})
    c = resolve_config({"task": "deraining", "data": {"train": "x"}, "optim": {"lr": 1e-4}})
    assert config_differences(a, b) == []
    assert config_differences(a, c) == ["optim.lr (0.0002 -> 0.0001)"]


# --- data pipeline ---------------------------------------------------------------------------

def test_geometric_aug_is_the_official_nine_way_mapping():
    img = np.arange(2 * 3 * 1).reshape(2, 3, 1)
    t = torch.from_numpy(img.transpose(2, 0, 1))  # the official code works on C x H x W tensors
    expected = {
        0: t, 1: t.flip(1), 2: t.flip(2), 3: torch.rot90(t, 1, (1, 2)), 4: torch.rot90(t, 2, (1, 2)),
        5: torch.rot90(t, 3, (1, 2)), 6: torch.rot90(t.flip(1), 1, (1, 2)), 7: torch.rot90(t.flip(2), 1, (1, 2)), 8: t,
    }
    for aug, want in expected.items():
        got = torch.from_numpy(np.ascontiguousarray(augment_geometric(img, aug).transpose(2, 0, 1)))
        assert torch.equal(got, want), aug


def test_crops_are_paired_deterministic_and_in_the_patch_size(pairs_dir):
    pairs = scan_pairs(pairs_dir, patch_size=32)
    data = TrainCrops(pairs, 32, color_aug=True)
    inp, tar = data[(1, (5, 2, 7))]
    assert inp.shape == tar.shape == (3, 32, 32) and inp.dtype == torch.float32
    again = data[(1, (5, 2, 7))]
    assert torch.equal(inp, again[0]) and torch.equal(tar, again[1])
    # Without augmentation a crop of the target is a crop of the target image at the same place
    # as the input crop: find it.
    plain = TrainCrops(pairs, 32, geometric_aug=False)
    inp, tar = plain[(0, (1, 1, 0))]
    from mprnet.images import read_rgb

    full_in = torch.from_numpy(read_rgb(pairs[0].input).transpose(2, 0, 1).copy()).float() / 255
    full_tar = torch.from_numpy(read_rgb(pairs[0].target).transpose(2, 0, 1).copy()).float() / 255
    hits = [(r, c) for r in range(full_in.shape[1] - 31) for c in range(full_in.shape[2] - 31)
            if torch.equal(full_in[:, r:r + 32, c:c + 32], inp)]
    assert len(hits) == 1
    r, c = hits[0]
    assert torch.equal(full_tar[:, r:r + 32, c:c + 32], tar)


def test_saturation_jitter_fires_about_a_third_of_the_time_with_official_factors(pairs_dir):
    pairs = scan_pairs(pairs_dir, patch_size=32)
    plain = TrainCrops(pairs, 32, geometric_aug=False)
    jitter = TrainCrops(pairs, 32, geometric_aug=False, color_aug=True)
    changed = 0
    luma = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    for i in range(90):
        (a, ta), (b, tb) = plain[(0, (0, 0, i))], jitter[(0, (0, 0, i))]
        if not torch.equal(a, b):
            changed += 1
            assert not torch.equal(ta, tb)  # the target gets the same jitter
            # Saturation changes keep the luma (up to 8-bit rounding and clipping) and stay within +-20 %.
            assert ((a * luma).sum(0) - (b * luma).sum(0)).abs().mean() <= 1.5 / 255
            gray = (a * luma).sum(0, keepdim=True)
            ratio = ((b - gray) * (a - gray)).sum() / ((a - gray) ** 2).sum()
            assert 0.75 < ratio < 1.25
    assert 15 <= changed <= 45  # binomial(90, 1/3): mean 30, sd 4.5


def test_ddp_ranks_split_each_global_batch():
    whole = list(BatchKeys(10, 4, seed=3, start=0, stop=5))
    rank0 = list(BatchKeys(10, 4, seed=3, start=0, stop=5, rank=0, world_size=2))
    rank1 = list(BatchKeys(10, 4, seed=3, start=0, stop=5, rank=1, world_size=2))
    assert [a + b for a, b in zip(rank0, rank1)] == whole
    assert len(whole) == 5 and all(len(b) == 4 for b in whole)
    first_epoch = sorted(k[0] for b in whole[:2] for k in b)
    assert len(set(first_epoch)) == 8  # 2 batches per epoch of 10 pairs, no repeats within an epoch
    resumed = list(BatchKeys(10, 4, seed=3, start=3, stop=5))
    assert resumed == whole[3:]


# --- checkpoints -----------------------------------------------------------------------------

def test_rng_states_survive_a_weights_only_round_trip(tmp_path):
    from mprnet.training.checkpointing import capture_rng, load_checkpoint, restore_rng, save_checkpoint

    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.normal()  # leaves a cached Gaussian in the legacy state
    save_checkpoint(tmp_path / "c.pt", {"rng": capture_rng()})
    expected = (random.random(), np.random.normal(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    restore_rng(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert (random.random(), np.random.normal(), torch.rand(1).item()) == expected


# --- a whole (tiny) run, and bad input -------------------------------------------------------

def test_a_run_writes_config_checkpoints_and_logs(pairs_dir, tmp_path):
    out = tmp_path / "run"
    cfg = tiny_config(pairs_dir, length=4, data={"val": str(pairs_dir), "val_patch_size": 32},
                      train={"val_every_iterations": 2})
    final = train(cfg, out)
    assert final == out / "model_final.pt"
    import yaml

    written = yaml.safe_load((out / "config.yaml").read_text())
    assert written["optim"]["lr"] == 2e-4 and written["model"]["overrides"]["n_feat"] == 8
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["iteration"] == 4 and {"model", "optimizer", "scaler", "rng", "config"} <= set(state)
    import pandas as pd

    log = pd.read_csv(out / "metrics.csv")
    assert log["loss"].dropna().size == 4 and log["val_psnr"].dropna().size == 2
    # Iteration schedule: iteration k runs at schedule(k); warm-up 2, then the cosine over
    # length - warm-up + 40 (the denoising recipe's longer period).
    schedule = WarmupCosine(2e-4, 1e-6, warmup=2, t_max=4 - 2 + 40)
    np.testing.assert_allclose(log["lr"].dropna(), [schedule(k) for k in range(1, 5)], rtol=1e-12)
    assert (out / "model_best.pt").exists()
    assert list((out / "dvclive" / "plots" / "metrics" / "train").glob("loss.tsv"))
    # A finished run resumed again does nothing; a new run in the same folder is refused.
    assert train(cfg, out, resume=True) == final
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, out)
    changed = tiny_config(pairs_dir, length=4, optim={"lr": 1e-3})
    with pytest.raises(ConfigError, match="optim.lr"):
        train(changed, out, resume=True)


def test_loss_eps_reaches_the_charbonnier_term(pairs_dir, tmp_path):
    import pandas as pd

    # Same seed, so the same weights and batch: only the Charbonnier eps differs (denoising: three
    # clamped stages, no edge term). Per pixel sqrt(r² + b²) − sqrt(r² + a²) lies in
    # [(b² − a²) / (2·sqrt(1 + b²)), b − a] for |r| <= 1, so the first losses differ by 3× that.
    first = {}
    for eps in (1e-3, 0.1):
        cfg = tiny_config(pairs_dir, length=1, loss={"eps": eps})
        train(cfg, tmp_path / str(eps))
        first[eps] = float(pd.read_csv(tmp_path / str(eps) / "metrics.csv")["loss"].dropna().iloc[0])
    low = 3 * (0.1**2 - 1e-3**2) / (2 * (1 + 0.1**2) ** 0.5)
    assert low < first[0.1] - first[1e-3] <= 3 * (0.1 - 1e-3) + 1e-6
    with pytest.raises(ConfigError, match="loss.eps"):
        resolve_config(tiny_config(pairs_dir, loss={"eps": 0}))


def test_epoch_schedules_hold_the_lr_for_a_whole_epoch(pairs_dir, tmp_path):
    import pandas as pd

    cfg = tiny_config(pairs_dir, schedule={"unit": "epoch", "length": 2, "warmup": 3})  # 4 pairs: 2 its/epoch
    train(cfg, tmp_path / "run")
    lrs = pd.read_csv(tmp_path / "run" / "metrics.csv")["lr"].to_numpy()
    schedule = WarmupCosine(2e-4, 1e-6, warmup=3, t_max=2 - 3 + 40)
    np.testing.assert_allclose(lrs, [schedule(1)] * 2 + [schedule(2)] * 2, rtol=1e-12)


def test_cli_applies_set_overrides_and_reports_errors_in_one_line(pairs_dir, tmp_path, capsys):
    import yaml

    from mprnet.cli import main

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config(pairs_dir, length=1)))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "a"), "--set", "optim.lr=5e-4"]) == 0
    assert yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())["optim"]["lr"] == 5e-4
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "b"), "--set", "optim.lrr=1"]) == 2
    assert "optim" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "c")]) == 2
    assert "missing.yaml" in capsys.readouterr().err


@pytest.mark.slow
def test_loader_workers_do_not_change_the_result(pairs_dir, tmp_path):
    # Every random draw is keyed by (seed, epoch, position), not by worker state.
    cfg = tiny_config(pairs_dir, length=3)
    train(cfg, tmp_path / "w0")
    cfg["runtime"]["num_workers"] = 2
    train(cfg, tmp_path / "w2")
    a, b = final_weights(tmp_path / "w0"), final_weights(tmp_path / "w2")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sigusr1_is_caught_and_the_previous_handler_restored():
    import os
    import signal

    from mprnet.training.signals import StopFlag

    before = signal.getsignal(signal.SIGUSR1)
    with StopFlag() as flag:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert flag.signame == "SIGUSR1"
    assert signal.getsignal(signal.SIGUSR1) == before


def test_channels_last_switch_trains_on_cpu(pairs_dir, tmp_path):
    """channels_last (with the precision this CPU computes natively; test_precision.py covers
    the bf16 path everywhere); fp16 autocast needs a GPU."""
    import pandas as pd

    train(tiny_config(pairs_dir, length=2, train={"amp": "auto", "channels_last": True}), tmp_path / "run")
    assert np.isfinite(pd.read_csv(tmp_path / "run" / "metrics.csv")["loss"]).all()
    weights = final_weights(tmp_path / "run")
    assert all(v.dtype == torch.float32 for v in weights.values())  # master weights stay float32
    with pytest.raises(ConfigError, match="fp16"):
        train(tiny_config(pairs_dir, length=2, train={"amp": "fp16"}, runtime={"device": "cpu"}), tmp_path / "fp16")


def _corrupt(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("problem, message", [
    ("missing", "only in"),
    ("corrupt", "corrupt"),
    ("sizes", "target"),
    ("small", "smaller than the 32x32"),
])
def test_bad_training_sets_fail_before_training_starts(tmp_path, monkeypatch, problem, message):
    root = make_pairs(tmp_path / "train", 3, seed=0)
    victim = root / "target" / "img001.png"
    if problem == "missing":
        victim.unlink()
    elif problem == "corrupt":
        _corrupt(victim)
    elif problem == "sizes":
        write_png(victim, np.zeros((40, 80, 3), np.uint8))
    elif problem == "small":
        write_png(victim, np.zeros((20, 80, 3), np.uint8))
        write_png(root / "input" / "img001.png", np.zeros((20, 80, 3), np.uint8))
    monkeypatch.setattr("mprnet.training.trainer.build_training_model",
                        lambda cfg: pytest.fail("the model was built before the data were checked"))
    with pytest.raises(DataError, match=message) as err:
        train(tiny_config(root), tmp_path / "out")
    if problem != "missing":
        assert "img001" in str(err.value)
    assert not (tmp_path / "out" / "checkpoint.pt").exists()


def test_small_images_are_reflect_padded_when_asked(tmp_path):
    root = make_pairs(tmp_path / "train", 2, seed=0, size=(24, 40))
    out = tmp_path / "out"
    train(tiny_config(root, length=1, data={"pad_small": True}), out)
    assert (out / "model_final.pt").exists()


def test_weights_of_another_preset_are_refused_before_training(pairs_dir, tmp_path):
    from mprnet.model import build_model

    other = build_model("deraining", n_feat=12, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)
    torch.save({"state_dict": other.state_dict()}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="shape"):
        train(tiny_config(pairs_dir, model={"init_weights": str(tmp_path / "other.pth")}), tmp_path / "out")
    assert not (tmp_path / "out" / "checkpoint.pt").exists()


def test_a_non_finite_loss_names_the_iteration_and_keeps_the_last_checkpoint(pairs_dir, tmp_path, monkeypatch):
    from mprnet import losses
    from mprnet.training import trainer

    calls = {"n": 0}

    class PoisonedLoss(losses.StageLoss):
        def forward(self, outputs, target):
            calls["n"] += 1
            loss = super().forward(outputs, target)
            return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(trainer, "StageLoss", PoisonedLoss)  # the loss the trainer builds
    out = tmp_path / "run"
    cfg = tiny_config(pairs_dir, length=6, runtime={"checkpoint_every": 2, "log_every": 1})
    with pytest.raises(TrainingDiverged, match="iteration 3") as err:
        train(cfg, out)
    assert "checkpoint" in str(err.value)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert not (out / "model_final.pt").exists()


# --------------------------------------------------------------------------- several processes

def test_launch_needs_one_gpu_per_process_and_none_on_cpu():
    from mprnet.training.config import launch_needs

    def needs(config: dict) -> dict:  # of a resolved config, as the study resolves each run's once
        return launch_needs(resolve_config({"data": {"train": "x"}, **config}))

    assert needs({"task": "denoising"}) == {"processes": 1, "gpus": 1}
    assert needs({"task": "deblurring", "runtime": {"processes": 4}}) == {"processes": 4, "gpus": 4}
    assert needs({"task": "deraining", "runtime": {"processes": 2, "device": "cpu"}}) == {"processes": 2, "gpus": 0}


def test_several_processes_on_one_named_gpu_are_refused(pairs_dir):
    from mprnet.training.config import resolve_config

    with pytest.raises(ConfigError, match="runtime.device: cuda:1 names one GPU"):
        resolve_config(tiny_config(pairs_dir, runtime={"processes": 2, "device": "cuda:1"}))
    with pytest.raises(ConfigError, match="runtime.processes"):
        resolve_config(tiny_config(pairs_dir, runtime={"processes": 0}))


def test_launcher_exit_status_is_75_only_when_every_ended_worker_stopped_for_resume():
    from mprnet.training.launch import failure_status

    assert failure_status({0: 75, 1: 75}, first=1) == 75
    assert failure_status({1: 75}, first=1) == 75  # rank 0 was still closing when the launcher looked
    assert failure_status({0: 1, 1: 75}, first=0) == 1
    assert failure_status({1: -9}, first=1) == 128 + 9  # killed by SIGKILL


def test_launcher_shares_the_job_threads_among_its_processes():
    from mprnet.training.launch import share_threads

    env = {"OMP_NUM_THREADS": "8", "MKL_NUM_THREADS": "8", "OPENBLAS_NUM_THREADS": "1", "PATH": "/bin"}
    share_threads(env, 4)
    assert env == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1", "PATH": "/bin"}
    env = {}
    share_threads(env, 2)
    assert env == {"OMP_NUM_THREADS": "1"}


def test_a_batch_that_does_not_divide_over_the_processes_is_refused_before_any_process_starts(
        pairs_dir, tmp_path, monkeypatch, capsys):
    """Before: each attempt started N processes, checksummed the training set, then failed."""
    import yaml

    from mprnet.cli import main

    monkeypatch.setattr("mprnet.training.launch.launch", lambda *a: pytest.fail("processes were started"))
    monkeypatch.setattr("mprnet.training.trainer.Trainer.setup", lambda *a: pytest.fail("the data were read"))
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config(pairs_dir, batch_size=3, runtime={"processes": 2})))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "data.batch_size: 3 does not divide evenly over the 2 processes of runtime.processes" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match=r"optim\.betas\[1\]: nan is not a finite number"):
        resolve_config(tiny_config(pairs_dir, optim={"betas": [0.9, float("nan")]}))
