"""Exact resume: a training process killed (SIGKILL) or preempted (SIGTERM) at a random iteration
and resumed ends with the same weights, bit for bit, as an uninterrupted run (CPU)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from train_worker import final_weights, make_pairs, tiny_config, write_config

LENGTH = 24
pytestmark = pytest.mark.slow


def _env() -> dict:
    # One thread per process: the same kernels, hence the same rounding, in every run.
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _train_cmd(config: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mprnet.cli", "train", "--config", str(config), "--out", str(out), *extra]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    train_dir = make_pairs(root / "train", 6, seed=1)
    # Denoising exercises MixUp (from "epoch" 2 here) and its per-iteration draws as well.
    config = tiny_config(train_dir, length=LENGTH, mixup={"start_epoch": 2},
                         runtime={"num_workers": 0, "checkpoint_every": 2, "log_every": 1, "progress": False})
    config_path = write_config(root / "run.yaml", config)
    reference = root / "reference"
    subprocess.run(_train_cmd(config_path, reference), check=True, env=_env(), capture_output=True, timeout=300)
    return config_path, final_weights(reference)


def _interrupt(config: Path, out: Path, sig: int) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(_train_cmd(config, out), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 240
    while not (out / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    delay = random.uniform(0.0, 1.0)
    time.sleep(delay)
    assert proc.poll() is None, f"the run finished before the signal (delay {delay:.2f} s); make it longer"
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=240)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _checkpoint_iteration(out: Path) -> int:
    return int(torch.load(out / "checkpoint.pt", weights_only=True)["iteration"])


def _assert_bit_identical(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    different = [k for k in expected if not torch.equal(actual[k], expected[k])]
    assert not different, f"weights differ from the uninterrupted run: {different[:5]}"


def test_sigkill_at_random_iteration_then_resume_is_bit_identical(setup, tmp_path):
    config, reference = setup
    out = tmp_path / "killed"
    killed = _interrupt(config, out, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    stopped_at = _checkpoint_iteration(out)
    assert 0 < stopped_at < LENGTH and not (out / "model_final.pt").exists()
    subprocess.run(_train_cmd(config, out, "--resume"), check=True, env=_env(), capture_output=True, timeout=300)
    _assert_bit_identical(final_weights(out), reference)
    # The CSV holds each iteration once, even though iterations after the checkpoint ran twice.
    rows = (out / "metrics.csv").read_text().splitlines()[1:]
    logged = [int(r.split(",")[0]) for r in rows if r.split(",")[3]]
    assert logged == list(range(1, LENGTH + 1))
    import pandas as pd

    steps = pd.read_csv(out / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv", sep="\t")["step"]
    assert steps.tolist() == list(range(1, LENGTH + 1))


def test_sigterm_checkpoints_exits_75_and_resumes_bit_identical(setup, tmp_path):
    from mprnet.training import RESUME_EXIT_CODE

    config, reference = setup
    out = tmp_path / "preempted"
    stopped = _interrupt(config, out, signal.SIGTERM)
    assert stopped.returncode == RESUME_EXIT_CODE == 75, stopped.stderr
    assert "--resume" in stopped.stderr
    stopped_at = _checkpoint_iteration(out)
    assert 0 < stopped_at < LENGTH
    assert f"iteration {stopped_at}" in stopped.stderr
    resumed = subprocess.run(_train_cmd(config, out, "--resume"), env=_env(), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    _assert_bit_identical(final_weights(out), reference)
