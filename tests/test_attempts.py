"""The trainer's record of every attempt of a run (``attempts.csv``), written by the real trainer
stopped the ways a cluster stops it: SIGTERM then a resume, SIGKILL then a resume, an error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from train_worker import make_pairs, tiny_config, write_config

from mprnet.report import hours
from mprnet.training.attempts import ATTEMPTS, COLUMNS, CRASHED, FINISHED, RUNNING, STOPPED, read_attempts

RESUME_EXIT_CODE = 75


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _train(config: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mprnet.cli", "train", "--config", str(config), "--out", str(out), *extra]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_pairs(tmp_path_factory.mktemp("attempts") / "train", 4, seed=3)


def _run_until(args: list[str], ready, sig: int, timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``args`` until ``ready()`` holds, then send ``sig``; returns the finished process and the
    seconds it ran, as seen from here."""
    started = time.monotonic()
    proc = subprocess.Popen(args, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not ready():
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() - started < timeout, "the trainer never got there"
            time.sleep(0.02)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(args, proc.returncode, out, err), time.monotonic() - started


def _logged(out: Path) -> int:
    """The last iteration in metrics.csv (0 before the first)."""
    try:
        rows = (out / "metrics.csv").read_text().splitlines()[1:]
    except FileNotFoundError:
        return 0
    return int(rows[-1].split(",")[0]) if rows else 0


def _checkpoint_iteration(out: Path) -> int:
    return int(torch.load(out / "checkpoint.pt", weights_only=True)["iteration"])


def test_sigterm_then_resume_records_two_attempts_that_chain_and_sum_to_the_cost(data, tmp_path):
    length = 20
    config = write_config(tmp_path / "run.yaml", tiny_config(data, length=length, runtime={
        "num_workers": 0, "checkpoint_every": 1000, "log_every": 1, "progress": False}))
    out = tmp_path / "run"
    stopped, first_seconds = _run_until(_train(config, out), lambda: _logged(out) >= 3, signal.SIGTERM)
    assert stopped.returncode == RESUME_EXIT_CODE, stopped.stderr[-2000:]
    stopped_at = _checkpoint_iteration(out)
    assert 3 <= stopped_at < length

    (first,) = read_attempts(out / ATTEMPTS)  # the stop checkpoint's record
    assert (first["attempt"], first["start_iteration"], first["end_iteration"]) == (1, 0, stopped_at)
    assert (first["ended"], first["detail"]) == (STOPPED, "SIGTERM")

    started = time.monotonic()
    resumed = subprocess.run(_train(config, out, "--resume"), env=_env(), capture_output=True, text=True, timeout=300)
    second_seconds = time.monotonic() - started
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    rows = read_attempts(out / ATTEMPTS)
    assert list(map(str.strip, (out / ATTEMPTS).read_text().splitlines()[0].split(","))) == list(COLUMNS)
    assert rows[0] == first  # the earlier attempt is kept as it was
    second = rows[1]
    assert (second["attempt"], second["start_iteration"], second["end_iteration"]) == (2, stopped_at, length)
    assert (second["ended"], second["detail"]) == (FINISHED, "")
    assert second["pid"] != first["pid"]
    for row, seconds in ((first, first_seconds), (second, second_seconds)):
        assert (row["device"], row["processes"], row["threads"], row["peak_gpu_mb"]) == ("cpu", 1, 1, None)
        assert row["host"] and row["device_name"] and row["started_utc"].endswith("Z")
        # From the process's start (imports included) to its last record: within what we saw from outside.
        assert 0.5 * seconds < row["wall_seconds"] <= seconds + 0.1, (row["wall_seconds"], seconds)
        assert 0 < row["cpu_seconds"] and 50 < row["peak_rss_mb"] < 10_000

    # The cost of the run is the sum of its attempts.
    entry = {"job": "train", "group": "main", "task": "denoising", "variant": "full", "seed": 0,
             "attempts": str(out / ATTEMPTS), "device": "cpu"}
    cost = hours.job_costs([(entry, tmp_path / "no_benchmark_needed.tsv")]).iloc[0]
    assert cost["record"] == hours.FROM_ATTEMPTS and cost["attempts"] == 2 and cost["kind"] == hours.CPU
    assert cost["seconds"] == pytest.approx(first["wall_seconds"] + second["wall_seconds"])
    assert cost["device_hours"] == pytest.approx((first["wall_seconds"] + second["wall_seconds"]) / 3600)
    assert cost["cpu_seconds"] == pytest.approx(first["cpu_seconds"] + second["cpu_seconds"])
    assert cost["peak_rss_mb"] == max(first["peak_rss_mb"], second["peak_rss_mb"])


def test_sigkilled_attempt_keeps_the_row_of_its_last_checkpoint(data, tmp_path, one_thread):
    from mprnet.training import train

    length, every = 30, 2
    run_config = tiny_config(data, length=length, runtime={"num_workers": 0, "checkpoint_every": every, "log_every": 1,
                                                           "progress": False})
    config = write_config(tmp_path / "run.yaml", run_config)
    out = tmp_path / "run"

    def recorded_twice() -> bool:
        try:
            return read_attempts(out / ATTEMPTS)[0]["end_iteration"] >= 2 * every
        except (FileNotFoundError, IndexError):
            return False

    killed, _ = _run_until(_train(config, out), recorded_twice, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    (row,) = read_attempts(out / ATTEMPTS)
    checkpoint = _checkpoint_iteration(out)
    assert row["ended"] == RUNNING  # it had no chance to say more
    # The row of the last checkpoint, or of the one before if the kill fell between the two writes.
    assert row["end_iteration"] % every == 0 and checkpoint - every <= row["end_iteration"] <= checkpoint < length
    assert 0 < row["wall_seconds"] and 0 < row["cpu_seconds"]

    train(run_config, out, resume=True)  # here: the resume only needs to add its row
    rows = read_attempts(out / ATTEMPTS)
    assert rows[0] == row and len(rows) == 2
    assert (rows[1]["start_iteration"], rows[1]["end_iteration"], rows[1]["ended"]) == (checkpoint, length, FINISHED)
    entry = {"job": "train", "group": "main", "task": "denoising", "variant": "full", "seed": 0,
             "attempts": str(out / ATTEMPTS), "device": "cpu"}
    cost = hours.job_costs([(entry, tmp_path / "unused.tsv")]).iloc[0]
    assert (cost["attempts"], cost["unrecorded"]) == (2, 1)
    assert "1 attempt ended without a word" in " ".join(hours.cost_table(hours.job_costs(
        [(entry, tmp_path / "unused.tsv")])).notes)


def test_an_error_ends_the_attempt_as_crashed_and_a_fresh_start_forgets_old_attempts(data, tmp_path, monkeypatch,
                                                                                    one_thread):
    from mprnet.training import trainer

    config = tiny_config(data, length=8, runtime={"num_workers": 0, "checkpoint_every": 2, "log_every": 1,
                                                  "progress": False})
    out = tmp_path / "run"
    original = trainer.Trainer.log_window

    def failing(self):
        if self.iteration == 3:
            raise RuntimeError("a fault at iteration 3")
        original(self)

    monkeypatch.setattr(trainer.Trainer, "log_window", failing)
    started = time.time()
    with pytest.raises(RuntimeError, match="iteration 3"):
        trainer.train(config, out)
    took = time.time() - started
    (row,) = read_attempts(out / ATTEMPTS)
    assert (row["ended"], row["detail"], row["start_iteration"], row["end_iteration"]) == (
        CRASHED, "RuntimeError", 0, 3)
    # Called in a longer process (here pytest), the attempt counts from the call, not the process start.
    assert 0 < row["wall_seconds"] <= took + 0.1

    monkeypatch.setattr(trainer.Trainer, "log_window", original)
    trainer.train(config, out, resume=True)
    rows = read_attempts(out / ATTEMPTS)
    assert [(r["start_iteration"], r["end_iteration"], r["ended"]) for r in rows] == [(0, 3, CRASHED), (2, 8, FINISHED)]

    # Without --resume a run starts afresh in an empty folder, its record with it.
    for name in ("checkpoint.pt", "model_final.pt"):
        (out / name).unlink()
    trainer.train(config, out)
    assert [(r["attempt"], r["start_iteration"], r["ended"]) for r in read_attempts(out / ATTEMPTS)] == [
        (1, 0, FINISHED)]
