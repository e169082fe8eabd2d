"""The study-level files the workflow writes: each run's config and the study manifest."""

from __future__ import annotations

import os
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import ConfigError


def write_run_config(config: dict, out: str | os.PathLike, run_dir: str | os.PathLike | None = None) -> Path:
    """Write ``config`` (a run's unresolved ``mprnet train`` config, :func:`mprnet.study.config.run_config`)
    as YAML to ``out``, after the trainer's own validation (ConfigError naming the key).

    A checkpoint in ``run_dir`` trained under another config is moved aside first (see
    :func:`set_aside_stale_checkpoint`).
    """
    from ..training.config import dump_config, resolve_config

    resolved = resolve_config(config)
    if run_dir:
        set_aside_stale_checkpoint(Path(run_dir), resolved)
    dump_config(config, out)
    return Path(out)


def set_aside_stale_checkpoint(run_dir: Path, resolved: dict) -> None:
    """A checkpoint trained under another config cannot be resumed: move it out of the way.

    The workflow writes a run's config only when the study changed it, so the trainer's
    ``--resume`` (which the train rule always passes, for retries after preemption) must not
    meet a checkpoint of the old config. Same config: the checkpoint stays and is resumed.
    """
    import yaml

    from ..training.config import config_differences, resolve_config

    checkpoint, effective = run_dir / "checkpoint.pt", run_dir / "config.yaml"
    if not checkpoint.exists():
        return
    try:
        old = resolve_config(yaml.safe_load(effective.read_text()))
        diffs = config_differences(old, resolved)
    except (OSError, yaml.YAMLError, ConfigError):
        diffs = ["(no readable config.yaml beside the checkpoint)"]
    if diffs:
        stale = checkpoint.with_name("checkpoint.superseded.pt")
        checkpoint.replace(stale)
        print(f"run config: {checkpoint} was trained with another config "
              f"({'; '.join(diffs[:3])}); moved to {stale.name}, training starts afresh")


def write_study_manifest(manifest: dict, out: str | os.PathLike) -> Path:
    """Write the study manifest (:meth:`mprnet.study.study.Study.manifest_record`) as YAML."""
    import yaml

    if not isinstance(manifest.get("scores"), list):
        raise ConfigError("a study manifest needs a 'scores' list")
    atomic_write_text(out, yaml.safe_dump(manifest, sort_keys=False))
    return Path(out)
