"""Preemption as a cluster signals it: SIGTERM to every process of a job, not only to the trainer.

* The `train` rule run by Snakemake, the whole session signalled after some iterations: the stop
  checkpoint holds the iteration reached (not the last periodic one), nothing is left running,
  and the retry ends with the same weights, bit for bit (CPU), as an uninterrupted run.
* The same with `runtime.processes: 2` (a launcher and 2 gloo workers, all signalled): one
  checkpoint at the iteration both reached, exit 75, and the retry ends with the weights of one
  process within float tolerance; likewise through CI's Slurm cluster (`-k test_slurm_`).
* `mprnet train` whose stdout/stderr reader dies with it (a pipe): still checkpoints, exits 75.
* `mprnet restore` and `mprnet score` killed half-way leave nothing at their outputs.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from train_worker import make_pairs, tiny_config, write_config

ROOT = Path(__file__).resolve().parents[1]
RESUME_EXIT_CODE = 75


def _env(**extra: str) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}


def _session_processes(pgid: int) -> list[int]:
    """Every process of the process group ``pgid`` and every descendant of its leader.

    Slurm (proctrack/linuxproc) signals all processes descended from the job's first process,
    whatever their group; a local session is one process group unless something calls setsid.
    """
    parent, group = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        parent[int(entry.name)], group[int(entry.name)] = int(fields[1]), int(fields[2])
    found = {pid for pid, g in group.items() if g == pgid} | {pgid}
    grew = True
    while grew:
        more = {pid for pid, ppid in parent.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    return sorted(pid for pid in found if pid in parent)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return "?"


def _signal_session(pgid: int, sig: int) -> dict[int, str]:
    """Send ``sig`` to every process of the session; returns their command lines."""
    processes = {pid: _cmdline(pid) for pid in _session_processes(pgid)}
    for pid in processes:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    return processes


def _last_iteration(metrics_csv: Path) -> int:
    try:
        lines = metrics_csv.read_text().splitlines()
    except FileNotFoundError:
        return 0
    for line in reversed(lines[1:]):
        first = line.split(",", 1)[0]
        if first.isdigit():
            return int(first)
    return 0


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def _assert_bit_identical(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    different = [k for k in expected if not torch.equal(actual[k], expected[k])]
    assert not different, f"weights differ from the uninterrupted run: {different[:5]}"


# --------------------------------------------------------------------------- the train rule

LENGTH, CHECKPOINT_EVERY, SIGNAL_AFTER = 60, 50, 6
RUN = "results/ci/runs/main/deblurring/full/seed0"


def _training_study(workdir: Path, length: int, checkpoint_every: int, processes: int = 1) -> str:
    """A copy of config/ in ``workdir`` with a study of one tiny deblurring run (in ``processes``
    processes, batch 2 in all); returns its file."""
    import shutil

    shutil.copytree(ROOT / "config", workdir / "config", dirs_exist_ok=True)
    config = yaml.safe_load((ROOT / ".test" / "config" / "config.yaml").read_text())  # the CI study
    section = config["ci"]
    task = dict(section["tasks"]["deblurring"])
    recipe = yaml.safe_load(yaml.safe_dump(task["recipe"]))
    recipe["schedule"] = {"unit": "iteration", "length": length, "warmup": 2}
    # The progress bar on, as in the paper study: its writes to a dead reader were the fault.
    recipe["runtime"].update(checkpoint_every=checkpoint_every, log_every=1, progress=True, processes=processes)
    # fp32: the N-process run equals the 1-process one up to the order of float additions;
    # under bf16 autocast each batch split rounds differently (the CI study itself uses auto).
    recipe["train"]["amp"] = "none"
    task["recipe"] = recipe
    section["tasks"] = {"deblurring": task}
    del section["ablations"], section["published"]
    (workdir / "config" / "preempt.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return "config/preempt.yaml"


def _uninterrupted(workdir: Path, env: dict, processes: int | None = None) -> dict:
    """The run of ``RUN/run.yaml`` without interruption, with the job's thread count (1), in
    the config's processes or in ``processes``."""
    fresh = workdir / f"fresh{processes or ''}"
    sets = ["--set", f"runtime.processes={processes}"] if processes else []
    subprocess.run([sys.executable, "-m", "mprnet.cli", "train", "--config", f"{RUN}/run.yaml",
                    "--out", str(fresh), *sets], cwd=workdir, check=True, capture_output=True, timeout=600, env=env)
    return _weights(fresh / "model_final.pt")


def _sigterm_session_after(args: list[str], cwd: Path, env: dict, metrics_csv: Path, after: int):
    """Run ``args`` (Snakemake) in a new session; once ``metrics_csv`` reaches iteration ``after``
    send SIGTERM to every process of it. Returns (signalled command lines, output, exit status)
    after checking that no process of the session outlived it."""
    session = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while _last_iteration(metrics_csv) < after:
            assert session.poll() is None, session.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "training never reached the iteration to signal at"
            time.sleep(0.02)
        signalled = _signal_session(session.pid, signal.SIGTERM)
        out, _ = session.communicate(timeout=180)
    finally:
        if session.poll() is None:
            os.killpg(session.pid, signal.SIGKILL)
            session.wait()
    leftover = {pid: _cmdline(pid) for pid in _session_processes(session.pid)}
    assert not leftover, f"processes of the signalled session outlived it: {leftover}"
    return signalled, out, session.returncode


@pytest.mark.slow
def test_train_rule_whose_whole_session_gets_sigterm_checkpoints_where_it_stopped_and_resumes_exactly(tmp_path):
    """The whole Snakemake session gets SIGTERM, as every process of a Slurm job does at a time
    limit or at the end of a preemption's grace time; then the job runs again (the resubmission)."""
    workdir = tmp_path
    configfile = _training_study(workdir, LENGTH, CHECKPOINT_EVERY)
    run = workdir / RUN
    target = f"{RUN}/model_final.pt"
    # The target first: --configfile takes every argument after it as a config file.
    args = [sys.executable, "-m", "snakemake", target, "-s", str(ROOT / "workflow" / "Snakefile"), "--cores", "1",
            "--retries", "1", "--configfile", configfile]
    env = _env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")

    signalled, out, status = _sigterm_session_after(args, workdir, env, run / "metrics.csv", SIGNAL_AFTER)
    assert any("mprnet.cli train" in cmd for cmd in signalled.values()), signalled
    assert status != 0, out[-3000:]

    # The stop checkpoint holds the iteration reached, not the last periodic one (there was none).
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    stopped_at = int(state["iteration"])
    assert SIGNAL_AFTER <= stopped_at < CHECKPOINT_EVERY, stopped_at
    assert stopped_at == _last_iteration(run / "metrics.csv")
    history = (run / "train.log").read_text()
    assert f"SIGTERM received: checkpoint {run.relative_to(workdir) / 'checkpoint.pt'} written at iteration " \
           f"{stopped_at}" in history, history[-2000:]
    assert not (run / "model_final.pt").exists()
    assert f"returned non-zero exit status {RESUME_EXIT_CODE}" in out, out[-3000:]  # the job said "resume me"

    # The job again, as Slurm's resubmission (or `snakemake` run again) does: it resumes.
    again = subprocess.run(args, cwd=workdir, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    history = (run / "train.log").read_text()
    assert history.count("== mprnet train --resume") == 2, history[-3000:]  # each attempt kept
    assert f"resuming {RUN}/checkpoint.pt at iteration {stopped_at}" in history, history[-3000:]
    assert "done, final model" in history
    # Both attempts are in the run's cost record; the job's benchmark file keeps the second only.
    attempts = _column_rows(run / "attempts.csv")
    assert [(r["start_iteration"], r["end_iteration"], r["ended"], r["detail"]) for r in attempts] == [
        ("0", str(stopped_at), "stopped", "SIGTERM"), (str(stopped_at), str(LENGTH), "finished", "")]

    _assert_bit_identical(_weights(workdir / target), _uninterrupted(workdir, env))


# --------------------------------------------------------------------------- 2 processes

# Only the order of float additions differs from one process (gradient averaging over 2), and
# Adam carries each rounding difference into every later step, so the gap grows with the run:
# measured 2e-7 after 4 iterations (test_training_ddp.py), 1.07e-5 after 80 (CI's Slurm run),
# against updates of 1e-3 and more. A real fault (a lost gradient, a wrong batch share) differs
# by the order of the updates themselves; the bound is 2% of the largest update of the run
# (measured here: 0.4% after 6 iterations, 0.13% after 24).
DDP_RELATIVE_TOLERANCE = 0.02


def _initial_weights(workdir: Path) -> dict:
    from mprnet.training.config import load_config, resolve_config
    from mprnet.training.trainer import build_training_model

    return build_training_model(resolve_config(load_config(workdir / RUN / "run.yaml"))).state_dict()


def _assert_close(actual: dict, expected: dict, initial: dict) -> None:
    assert actual.keys() == expected.keys()
    moved = max((expected[k] - initial[k]).abs().max().item() for k in expected)
    worst = max((actual[k] - expected[k]).abs().max().item() for k in expected)
    print(f"2 processes vs 1: max |difference| {worst:.3g}, largest update {moved:.3g}")
    assert moved > 1e-4, f"training barely moved the weights ({moved:.3g}): nothing to compare"
    assert worst < DDP_RELATIVE_TOLERANCE * moved, (
        f"weights differ from the 1-process run by up to {worst:.3g}; the updates reach {moved:.3g}")


def _snakemake(target: str, configfile: str, *extra: str) -> list[str]:
    # The target first: --configfile takes every argument after it as a config file.
    return [sys.executable, "-m", "snakemake", target, "-s", str(ROOT / "workflow" / "Snakefile"), *extra,
            "--configfile", configfile]


def _train_workers(pids: dict[int, str]) -> list[int]:
    return [pid for pid, cmd in pids.items() if "mprnet.cli train" in cmd]


@pytest.mark.slow
def test_train_rule_with_two_processes_trains_the_weights_of_one(tmp_path):
    """`runtime.processes: 2` in the study's recipe: the same rule runs 2 gloo processes (batch 1
    each) and ends with the weights of 1 process with the whole batch of 2."""
    configfile = _training_study(tmp_path, length=6, checkpoint_every=4, processes=2)
    env = _env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    args = _snakemake(f"{RUN}/model_final.pt", configfile, "--cores", "2", "--printshellcmds")
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "exec python -m mprnet.cli train" in done.stdout + done.stderr
    history = (tmp_path / RUN / "train.log").read_text()
    assert history.count("== mprnet train --resume processes=2 ") == 1, history[-2000:]  # rank 0 only
    assert history.count("done, final model") == 1
    _assert_close(_weights(tmp_path / RUN / "model_final.pt"), _uninterrupted(tmp_path, env, processes=1),
                  _initial_weights(tmp_path))


@pytest.mark.slow
def test_two_process_train_job_whose_processes_all_get_sigterm_stops_at_one_iteration_and_resumes(tmp_path):
    """SIGTERM to every process of the session (Snakemake, launcher, both workers) mid-run: one
    checkpoint at the iteration both reached, exit status 75, nothing left running; the retry
    resumes from it and ends with the weights of an uninterrupted 1-process run."""
    length, after = 24, 4
    configfile = _training_study(tmp_path, length, checkpoint_every=10 * length, processes=2)
    run = tmp_path / RUN
    env = _env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    args = _snakemake(f"{RUN}/model_final.pt", configfile, "--cores", "2", "--retries", "1")
    signalled, out, _ = _sigterm_session_after(args, tmp_path, env, run / "metrics.csv", after)
    assert len(_train_workers(signalled)) == 3, signalled  # the launcher and its 2 workers
    assert f"returned non-zero exit status {RESUME_EXIT_CODE}" in out, out[-3000:]

    stopped_at = int(torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)["iteration"])
    assert after <= stopped_at < length and stopped_at == _last_iteration(run / "metrics.csv"), stopped_at
    history = (run / "train.log").read_text()
    assert history.count(" written at iteration ") == 1, history[-2000:]  # rank 0's one checkpoint
    assert f"written at iteration {stopped_at}" in history
    assert not (run / "model_final.pt").exists()

    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    history = (run / "train.log").read_text()
    assert f"resuming {RUN}/checkpoint.pt at iteration {stopped_at}" in history, history[-3000:]
    assert [int(r) for r in _column(run / "metrics.csv", "iteration")] == list(range(1, length + 1))
    attempts = _column_rows(run / "attempts.csv")  # rank 0's record of both attempts, of both processes
    assert [(r["processes"], r["start_iteration"], r["ended"]) for r in attempts] == [
        ("2", "0", "stopped"), ("2", str(stopped_at), "finished")]
    _assert_close(_weights(run / "model_final.pt"), _uninterrupted(tmp_path, env, processes=1),
                  _initial_weights(tmp_path))


# --------------------------------------------------------------------------- through Slurm

SLURM_LENGTH, SLURM_AFTER = 300, 40


def _stop_slurm_snakemake(session: subprocess.Popen) -> None:
    """End a Snakemake still running: SIGINT (it cancels its Slurm jobs), SIGKILL after 60 s."""
    if session.poll() is None:
        session.send_signal(signal.SIGINT)
        try:
            session.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(session.pid, signal.SIGKILL)
            session.wait()


def _attempts(log: Path) -> tuple[list[str], list[int], list[int]]:
    """From train.log: the Slurm job of each attempt, the stop iterations, the resume iterations."""
    text = log.read_text() if log.exists() else ""
    jobs = re.findall(r"^== mprnet train .* slurm_job=(\d+)$", text, re.M)
    stops = [int(k) for k in re.findall(r"SIGTERM received: checkpoint \S+ written at iteration (\d+);", text)]
    resumes = [int(k) for k in re.findall(r"resuming \S+ at iteration (\d+)$", text, re.M)]
    return jobs, stops, resumes


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("MPRNET_SLURM_TESTS") != "1",
                    reason="needs a Slurm cluster: .ci/slurm/start.sh, then MPRNET_SLURM_TESTS=1 (run by .ci/workflow.sh)")
def test_slurm_training_job_signalled_twice_is_resubmitted_and_ends_with_the_same_weights(tmp_path):
    """Through the Slurm executor (profiles/slurm with profiles/ci) on a real cluster.

    Attempt 1 gets Slurm's preemption notice, `scancel --signal=TERM JOB`: SIGTERM to the tasks of
    every job step (what a partition's GraceTime and `--signal` send). Attempt 2 is ended the way
    a time limit or the end of the grace time ends a job, `scancel JOB`: SIGCONT and SIGTERM to
    every process of the job (batch shell, srun, Snakemake, trainer), SIGKILL after KillWait.
    Each writes its stop checkpoint at the iteration reached and Snakemake resubmits it; the
    third attempt ends with the weights of an uninterrupted run.
    """
    workdir = tmp_path
    configfile = _training_study(workdir, SLURM_LENGTH, checkpoint_every=10 * SLURM_LENGTH)  # no periodic ones
    run = workdir / RUN
    args = [sys.executable, "-m", "snakemake", f"{RUN}/model_final.pt", "-s", str(ROOT / "workflow" / "Snakefile"),
            "--profile", str(ROOT / "profiles" / "slurm"), "--workflow-profile", str(ROOT / "profiles" / "ci"),
            "--retries", "2", "--configfile", configfile]
    env = _env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    session = subprocess.Popen(args, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env, start_new_session=True)
    try:
        for attempt, scancel in enumerate((["scancel", "--signal=TERM"], ["scancel"])):
            deadline = time.monotonic() + 300
            while True:  # this attempt runs and has trained SLURM_AFTER iterations since the last stop
                jobs, stops, _ = _attempts(run / "train.log")
                if len(jobs) == attempt + 1 and _last_iteration(run / "metrics.csv") >= (
                        stops[-1] if stops else 0) + SLURM_AFTER:
                    break
                assert session.poll() is None, session.communicate()[0][-3000:]
                assert time.monotonic() < deadline, f"attempt {attempt + 1} did not get going"
                time.sleep(0.1)
            subprocess.run([*scancel, jobs[-1]], check=True, timeout=30)
            while len(_attempts(run / "train.log")[1]) == attempt:
                assert session.poll() is None and time.monotonic() < deadline, \
                    f"attempt {attempt + 1} (Slurm job {jobs[-1]}) wrote no stop checkpoint"
                time.sleep(0.1)
        out, _ = session.communicate(timeout=600)
    finally:
        _stop_slurm_snakemake(session)
    assert session.returncode == 0, out[-3000:]
    assert out.count("Trying to restart job") == 2, out[-3000:]
    jobs, stops, resumes = _attempts(run / "train.log")
    assert len(set(jobs)) == 3, jobs
    assert SLURM_AFTER <= stops[0] and stops[0] + SLURM_AFTER <= stops[1] < SLURM_LENGTH, stops
    assert resumes == stops  # each retry continued from the stop checkpoint of the one before
    assert [int(r) for r in _column(run / "metrics.csv", "iteration")] == list(range(1, SLURM_LENGTH + 1))
    attempts = _column_rows(run / "attempts.csv")  # each Slurm job's attempt in the run's cost record
    assert [(r["slurm_job"], r["start_iteration"], r["ended"]) for r in attempts] == [
        (jobs[0], "0", "stopped"), (jobs[1], str(stops[0]), "stopped"), (jobs[2], str(stops[1]), "finished")]
    _assert_bit_identical(_weights(run / "model_final.pt"), _uninterrupted(workdir, env))


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("MPRNET_SLURM_TESTS") != "1",
                    reason="needs a Slurm cluster: .ci/slurm/start.sh, then MPRNET_SLURM_TESTS=1 (run by .ci/workflow.sh)")
def test_slurm_two_process_training_job_preempted_resumes_with_the_weights_of_one_process(tmp_path):
    """Through the Slurm executor (profiles/slurm with profiles/ci): a training job of 2 processes
    (`runtime.processes: 2`, so the job asks Slurm for 2 CPUs). Slurm's preemption notice,
    `scancel --signal=TERM JOB`, reaches the launcher and both workers: they stop at one
    iteration, rank 0 checkpoints, the job exits 75 and is resubmitted; the retry resumes and ends
    with the weights of an uninterrupted 1-process run."""
    length, after = 80, 10
    configfile = _training_study(tmp_path, length, checkpoint_every=10 * length, processes=2)
    run = tmp_path / RUN
    args = _snakemake(f"{RUN}/model_final.pt", configfile, "--profile", str(ROOT / "profiles" / "slurm"),
                      "--workflow-profile", str(ROOT / "profiles" / "ci"), "--retries", "1")
    env = _env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    session = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (_attempts(run / "train.log")[0] and _last_iteration(run / "metrics.csv") >= after):
            assert session.poll() is None, session.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the training job did not get going"
            time.sleep(0.1)
        job = _attempts(run / "train.log")[0][-1]
        shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, timeout=30).stdout
        subprocess.run(["scancel", "--signal=TERM", job], check=True, timeout=30)
        out, _ = session.communicate(timeout=600)
    finally:
        _stop_slurm_snakemake(session)
    assert re.search(r"\bNumCPUs=2\b", shown), shown  # the job's 2 processes got 2 CPUs
    assert session.returncode == 0, out[-3000:]
    assert out.count("Trying to restart job") == 1, out[-3000:]
    text = (run / "train.log").read_text()
    jobs, _, resumes = _attempts(run / "train.log")
    stops = [int(k) for k in re.findall(r" received: checkpoint \S+ written at iteration (\d+);", text)]
    assert len(set(jobs)) == 2 and text.count("processes=2 ") == 2, text[-3000:]
    assert len(stops) == 1 and after <= stops[0] < length and resumes == stops, (stops, resumes)
    assert [int(r) for r in _column(run / "metrics.csv", "iteration")] == list(range(1, length + 1))
    _assert_close(_weights(run / "model_final.pt"), _uninterrupted(tmp_path, env, processes=1),
                  _initial_weights(tmp_path))


def _column(csv_path: Path, name: str) -> list[str]:
    return [row[name] for row in _column_rows(csv_path)]


def _column_rows(csv_path: Path) -> list[dict]:
    import csv

    with open(csv_path, newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- a console that dies

def test_trainer_whose_output_pipe_died_still_checkpoints_and_exits_75(tmp_path, one_thread):
    """`mprnet train ... 2>&1 | reader`, and the reader dies with the same SIGTERM: the trainer's
    progress bar then writes into a pipe without reader (EPIPE) and must still checkpoint."""
    train_dir = make_pairs(tmp_path / "train", 4, seed=3)
    config = tiny_config(train_dir, length=400, runtime={"num_workers": 0, "checkpoint_every": 1000,
                                                         "log_every": 1, "progress": True})
    config_path = write_config(tmp_path / "run.yaml", config)
    out = tmp_path / "run"
    read_end, write_end = os.pipe()
    trainer = subprocess.Popen([sys.executable, "-m", "mprnet.cli", "train", "--config", str(config_path),
                                "--out", str(out), "--log", str(out / "train.log")],
                               stdout=write_end, stderr=write_end, env=_env())
    os.close(write_end)
    try:
        reader = os.fdopen(read_end, "rb", buffering=0)
        deadline = time.monotonic() + 120
        while _last_iteration(out / "metrics.csv") < 3:
            reader.read(65536)  # the reader (e.g. tee) keeps the pipe flowing...
            assert trainer.poll() is None and time.monotonic() < deadline, "training did not start"
        reader.close()  # ...then dies: from now on every write gets EPIPE
        time.sleep(0.3)
        assert trainer.poll() is None, "the trainer died with its reader"
        trainer.send_signal(signal.SIGTERM)
        trainer.wait(timeout=120)
    finally:
        if trainer.poll() is None:
            trainer.kill()
            trainer.wait()
    assert trainer.returncode == RESUME_EXIT_CODE
    stopped_at = int(torch.load(out / "checkpoint.pt", weights_only=True)["iteration"])
    assert 3 <= stopped_at < 400 and stopped_at == _last_iteration(out / "metrics.csv")
    log = (out / "train.log").read_text()
    assert f"written at iteration {stopped_at}" in log, log[-2000:]


def test_guarded_stream_drops_a_broken_console_and_keeps_the_log(tmp_path):
    from mprnet.training.console import GuardedStream

    class Broken:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    log = open(tmp_path / "log.txt", "a")
    stream = GuardedStream(Broken(), log)
    assert stream.write("one\n") == 4 and stream.lost
    stream.write("two\n")
    stream.flush()
    log.close()
    assert (tmp_path / "log.txt").read_text() == "one\ntwo\n"


def test_log_keeps_every_attempt_and_names_the_error(tmp_path):
    from mprnet.cli import main

    train_dir = make_pairs(tmp_path / "train", 4, seed=3)
    config_path = write_config(tmp_path / "run.yaml", tiny_config(train_dir, length=2, runtime={
        "num_workers": 0, "progress": False}))
    log = tmp_path / "run" / "train.log"
    args = ["train", "--config", str(config_path), "--out", str(tmp_path / "run"), "--log", str(log)]
    assert main(args) == 0
    assert main(args) == 2  # a run exists and --resume is missing
    text = log.read_text()
    assert text.count("== mprnet train ") == 2
    assert "done, final model" in text
    assert "error: " in text and "pass --resume" in text


# --------------------------------------------------------------------------- restore and score

KILL_AFTER = textwrap.dedent("""
    import os, signal, sys
    import {module} as target
    original, calls = target.{function}, [0]
    def counted(*args, **kwargs):
        result = original(*args, **kwargs)
        calls[0] += 1
        if calls[0] == {after}:
            os.kill(os.getpid(), signal.{signal})
        return result
    target.{function} = counted
    from mprnet.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def _run_killed(tmp_path: Path, module: str, function: str, after: int, sig: str, argv: list[str]):
    script = tmp_path / f"kill_{function}.py"
    script.write_text(KILL_AFTER.format(module=module, function=function, after=after, signal=sig))
    return subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, timeout=300,
                          env=_env())


@pytest.fixture(scope="module")
def restore_case(tmp_path_factory):
    from mprnet.images import write_png
    from mprnet.model import build_model
    from mprnet.training.config import resolve_config
    from mprnet.training.trainer import _model_file

    root = tmp_path_factory.mktemp("restore_kill")
    cfg = resolve_config(tiny_config(root / "unused", length=1))
    torch.manual_seed(0)
    model = build_model(cfg["task"], **cfg["model"]["overrides"])
    torch.save(_model_file(model.state_dict(), cfg, 1), root / "model.pt")
    rng = np.random.default_rng(0)
    for k in range(4):
        write_png(root / "in" / f"img{k}.png", rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    return root


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_restore_killed_half_way_leaves_no_output_folder(restore_case, tmp_path, sig):
    out = tmp_path / "restored"
    argv = ["restore", "--checkpoint", str(restore_case / "model.pt"), "--input", str(restore_case / "in"),
            "--output", str(out), "--save-float", "--save-stages", "--no-progress", "--device", "cpu"]
    # Killed after two of the four images were written.
    proc = _run_killed(tmp_path, "mprnet.images", "write_png", 2, sig, argv)
    assert proc.returncode == -getattr(signal, sig) or proc.returncode == 128 + getattr(signal, sig), proc.stderr
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    partial = [p.name for p in tmp_path.iterdir() if p.name.startswith(".restored.")]
    if sig == "SIGTERM":  # cleaned up on the way out; after SIGKILL a hidden folder may stay
        assert not partial, partial
    # Run again: the folder appears complete, at once.
    proc = subprocess.run([sys.executable, "-m", "mprnet.cli", *argv], capture_output=True, text=True,
                          timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.glob("*.png")) == [f"img{k}.png" for k in range(4)]
    assert len(list((out / "float").glob("*.npy"))) == 4
    assert len(list((out / "stages").glob("*.png"))) == 8


def test_restore_into_an_existing_folder_keeps_its_other_files(restore_case, tmp_path):
    from mprnet.cli import main

    out = tmp_path / "restored"
    (out / "float").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    assert main(["restore", "--checkpoint", str(restore_case / "model.pt"), "--input", str(restore_case / "in"),
                 "--output", str(out), "--save-float", "--no-progress", "--device", "cpu"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.glob("*.png")) == [f"img{k}.png" for k in range(4)]
    assert len(list((out / "float").glob("*.npy"))) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_score_killed_half_way_leaves_no_csv(restore_case, tmp_path):
    from mprnet.images import write_png

    rng = np.random.default_rng(1)
    for folder in ("pred", "target"):
        for k in range(6):
            write_png(tmp_path / folder / f"img{k}.png", rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    csv = tmp_path / "scores" / "set.csv"
    argv = ["score", "--protocol", "rgb", "--pred", str(tmp_path / "pred"), "--target", str(tmp_path / "target"),
            "--out", str(csv), "--no-progress"]
    proc = _run_killed(tmp_path, "mprnet.metrics.scoring", "load_pair", 3, "SIGKILL", argv)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not csv.exists()
    assert not (csv.parent.exists() and [p for p in csv.parent.iterdir() if not p.name.startswith(".")])
