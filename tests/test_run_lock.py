"""One trainer per run folder (issue 20, item 5): a second ``mprnet train`` on a folder whose
trainer runs is refused with one line naming the holder; the lock goes with its holder however it
ends (exit 75 after SIGTERM, SIGKILL), so a retry or ``--resume`` is never blocked by a stale lock;
with ``runtime.processes: 2`` the launcher holds the one lock for its workers.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mprnet.training.runlock import LOCK_NAME, RunLocked, run_lock
from train_worker import make_pairs, tiny_config, write_config

RESUME_EXIT_CODE = 75


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _train(config: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mprnet.cli", "train", "--config", str(config), "--out", str(out), *extra]


def _start(config: Path, out: Path, *extra: str) -> subprocess.Popen:
    """A trainer of ``out``, once it holds the lock and a checkpoint is there."""
    proc = subprocess.Popen(_train(config, out, "--resume", *extra), env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    lock = out / LOCK_NAME
    while not ((out / "checkpoint.pt").exists() and lock.exists() and f"pid {proc.pid} on" in lock.read_text()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    return proc


def _refused(config: Path, out: Path, holder: int) -> None:
    second = subprocess.run(_train(config, out, "--resume"), env=_env(), capture_output=True, text=True, timeout=120)
    assert second.returncode == 2, second.stderr[-2000:]
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"{out.absolute()}: another trainer is running in this run folder (pid {holder} on" in lines[0]
    assert str(out.absolute() / LOCK_NAME) in lines[0]


def _lock_is_free(out: Path) -> bool:
    fd = os.open(out / LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("lock") / "train", 4, seed=0)


def test_a_trainer_in_a_locked_run_folder_is_refused_before_it_reads_anything(train_dir, tmp_path, monkeypatch):
    from mprnet.training import trainer

    out = tmp_path / "run"
    with run_lock(out) as held:  # what a trainer writes into the lock it holds
        assert held == out.absolute() / LOCK_NAME and held.read_text().startswith(f"pid {os.getpid()} on ")
    assert not out.exists()  # nothing was written: the folder made for the lock goes with it
    out.mkdir()
    (out / LOCK_NAME).write_text("pid 4242 on elsewhere since 2026-01-01T00:00:00+00:00\n")
    monkeypatch.setattr(trainer.Trainer, "setup", lambda self, resume: pytest.fail("set-up ran in a locked folder"))
    fd = os.open(out / LOCK_NAME, os.O_RDWR)  # another process's lock (flock: one per open file)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RunLocked, match=r"another trainer is running in this run folder \(pid 4242 on elsewhere "):
            trainer.train(tiny_config(train_dir), out, resume=True)
    finally:
        os.close(fd)
    assert _lock_is_free(out)


@pytest.mark.slow
def test_second_trainer_is_refused_and_the_lock_goes_with_exit_75_and_sigkill(train_dir, tmp_path):
    """Before: two `mprnet train --resume` on one folder both ran, writing the same checkpoint."""
    config = write_config(tmp_path / "run.yaml", tiny_config(train_dir, length=400, runtime={"checkpoint_every": 5}))
    out = tmp_path / "run"
    first = _start(config, out)
    _refused(config, out, first.pid)
    assert first.poll() is None  # the first one goes on
    first.send_signal(signal.SIGTERM)  # preemption: checkpoint, exit 75, lock released
    assert first.wait(timeout=120) == RESUME_EXIT_CODE
    assert _lock_is_free(out)

    killed = _start(config, out)  # the retry resumes ...
    killed.send_signal(signal.SIGKILL)  # ... and is killed outright: the lock file still names it
    killed.wait(timeout=60)
    assert f"pid {killed.pid} on" in (out / LOCK_NAME).read_text()
    final = subprocess.run(_train(config, out, "--resume"), env=_env(), capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-2000:]  # a dead holder's lock is no lock
    assert (out / "model_final.pt").exists()


@pytest.mark.slow
def test_two_process_run_holds_one_lock_for_its_workers(train_dir, tmp_path):
    """runtime.processes: 2 starts a launcher and 2 workers: the launcher holds the lock (the
    workers take none, or they would refuse each other), a second trainer is refused naming
    the launcher, and SIGTERM (exit 75) releases it."""
    config = write_config(tmp_path / "run.yaml", tiny_config(
        train_dir, length=400, runtime={"checkpoint_every": 5, "processes": 2, "device": "cpu"}))
    out = tmp_path / "run"
    launcher = _start(config, out)
    _refused(config, out, launcher.pid)
    launcher.send_signal(signal.SIGTERM)
    stdout, stderr = launcher.communicate(timeout=120)
    assert launcher.returncode == RESUME_EXIT_CODE, stderr[-3000:]
    assert "another trainer" not in stderr
    assert _lock_is_free(out)
