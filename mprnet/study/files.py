"""The study-level files the workflow writes and reads: each run's config, the study manifest and
the weights a restore job loads."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

from ..atomic import atomic_write_text
from ..errors import CheckpointError, ConfigError
from ..training.attempts import ATTEMPTS
from ..training.config import config_differences, dump_config, load_config, resolve_config


def write_run_config(config: dict, out: str | os.PathLike) -> Path:
    """Write ``config`` (a run's unresolved ``mprnet train`` config, :func:`mprnet.study.config.run_config`)
    as YAML to ``out``, after the trainer's own validation (ConfigError naming the key)."""
    resolve_config(config)
    dump_config(config, out)
    return Path(out)


def restored_weights(waited_for: str | os.PathLike, weights: str | os.PathLike) -> Path:
    """The weights a restore job loads (``Targets.checkpoint``), checked. When they are not the
    file the job waited for (``Targets.restore_input``), they are a run's ``model_best.pt``,
    which no rule declares: the trainer writes it beside ``model_final.pt`` only when the run
    validates (:func:`mprnet.training.config.validates`). Raises ``CheckpointError`` naming the
    file when it is missing (the run never validated: e.g. trained before its config set
    ``data.val``)."""
    weights = Path(weights)
    if weights != Path(waited_for) and not weights.is_file():
        raise CheckpointError(f"{weights}: no such file: the run finished ({waited_for}) without a best-validation "
                              "checkpoint, so it never validated (data.val and train.val_every_epochs or "
                              "val_every_iterations must be set when it trains)")
    return weights


def prepare_run_folder(config: dict, run_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """The run_config job: ``config`` resolved once (ConfigError naming the key, before anything
    moves), the run folder made to hold its run (:func:`keep_superseded_run`), then ``config``
    written unresolved to ``out`` (the trainer fills in its defaults)."""
    resolved = resolve_config(config)
    _keep_superseded(Path(run_dir), resolved)
    dump_config(config, out)
    return Path(out)


# What a run folder holds of one run (``mprnet train``'s outputs), moved together; ``run.yaml``
# (the rule's own output) stays.
RUN_STATE = ("checkpoint.pt", "model_final.pt", "model_best.pt", "config.yaml", "metrics.csv", "dvclive",
             "train.log", ATTEMPTS)
SUPERSEDED = "superseded"


def keep_superseded_run(run_dir: str | os.PathLike, config: dict) -> str | None:
    """Make ``run_dir`` hold the run of ``config`` (unresolved, as :func:`write_run_config`
    takes it) without destroying a finished model; returns what was done (also printed), or
    None when nothing was to do.

    The workflow writes a run's config only when the study changed it; the trainer's
    ``--resume`` (always passed, for retries after preemption) must not meet a checkpoint of
    the old config, and Snakemake deletes ``model_final.pt`` before the train job. So the
    state of another config (``RUN_STATE``) moves to ``run_dir/superseded/``, which keeps the
    last finished run (``model_final.pt``) until another finished run takes its place: an
    unfinished run of another config is kept there only when no finished one is. A state there
    that belongs to ``config`` (the change was undone) is moved back and resumed, so a
    finished run is not trained again. Same config here: nothing moves (a retry resumes).
    """
    return _keep_superseded(Path(run_dir), resolve_config(config))


def _keep_superseded(run_dir: Path, config: dict) -> str | None:
    """:func:`keep_superseded_run` for a resolved ``config``."""
    slot = run_dir / SUPERSEDED
    here, kept = _has_run(run_dir), _has_run(slot)
    if here and _same_config(run_dir, config):
        return None
    back = kept and _same_config(slot, config)
    if not here and not back:
        return None
    done = []
    outgoing = run_dir / f".{SUPERSEDED}.{os.getpid()}.partial"
    shutil.rmtree(outgoing, ignore_errors=True)
    _move_run(run_dir, outgoing)
    if back:
        _move_run(slot, run_dir)
        done.append(f"the run of this config kept in {slot} is back, to be resumed"
                    + (" (finished: its model is written again)" if (run_dir / "model_final.pt").exists() else ""))
    finished = (outgoing / "model_final.pt").exists()
    if here and (finished or not (_has_run(slot) and (slot / "model_final.pt").exists())):
        shutil.rmtree(slot, ignore_errors=True)
        outgoing.rename(slot)
        done.append(f"the {'finished' if finished else 'unfinished'} run of the previous config "
                    f"({_difference(slot, config)}) moved to {slot}, kept until another finished run replaces it")
    else:
        if here:
            done.append(f"an unfinished run of another config ({_difference(outgoing, config)}) was dropped; "
                        f"{slot} keeps the finished run of an earlier config")
        shutil.rmtree(outgoing, ignore_errors=True)
    message = f"run config: {run_dir}: " + "; ".join(done)
    print(message)
    return message


def _has_run(folder: Path) -> bool:
    return (folder / "checkpoint.pt").exists() or (folder / "model_final.pt").exists()


def _move_run(source: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in RUN_STATE:
        if (source / name).exists():
            os.replace(source / name, dest / name)


def _differences(folder: Path, config: dict) -> list[str]:
    """Keys whose values differ between the run in ``folder`` (its effective ``config.yaml``)
    and the resolved ``config``; one entry saying so when there is no readable config.yaml."""
    try:
        return config_differences(resolve_config(load_config(folder / "config.yaml")), config)
    except ConfigError:
        return ["(no readable config.yaml beside the checkpoint)"]


def _same_config(folder: Path, config: dict) -> bool:
    return not _differences(folder, config)


def _difference(folder: Path, config: dict) -> str:
    return "; ".join(_differences(folder, config)[:3])


def write_study_manifest(manifest: dict, out: str | os.PathLike) -> Path:
    """Write the study manifest (:meth:`mprnet.study.targets.Targets.manifest_record`) as YAML."""
    if not isinstance(manifest.get("scores"), list):
        raise ConfigError("a study manifest needs a 'scores' list")
    atomic_write_text(out, yaml.safe_dump(manifest, sort_keys=False))
    return Path(out)
