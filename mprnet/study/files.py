"""The study-level files the workflow writes: each run's config and the study manifest."""

from __future__ import annotations

import os
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import ConfigError


def write_run_config(config: dict, out: str | os.PathLike) -> Path:
    """Write ``config`` (a run's unresolved ``mprnet train`` config, :func:`mprnet.study.config.run_config`)
    as YAML to ``out``, after the trainer's own validation (ConfigError naming the key)."""
    from ..training.config import dump_config, resolve_config

    resolve_config(config)
    dump_config(config, out)
    return Path(out)


def set_aside_stale_checkpoint(run_dir: str | os.PathLike, config: dict) -> Path | None:
    """Move ``run_dir/checkpoint.pt`` to ``checkpoint.superseded.pt`` if it was trained under a
    config other than ``config`` (unresolved, as :func:`write_run_config` takes it); returns the
    new path, or None when there is no checkpoint or it belongs to ``config``.

    The workflow writes a run's config only when the study changed it, so the trainer's
    ``--resume`` (which the train rule always passes, for retries after preemption) must not
    meet a checkpoint of the old config. Same config: the checkpoint stays and is resumed.
    """
    import yaml

    from ..training.config import config_differences, resolve_config

    run_dir = Path(run_dir)
    checkpoint, effective = run_dir / "checkpoint.pt", run_dir / "config.yaml"
    if not checkpoint.exists():
        return None
    try:
        old = resolve_config(yaml.safe_load(effective.read_text()))
        diffs = config_differences(old, resolve_config(config))
    except (OSError, yaml.YAMLError, ConfigError):
        diffs = ["(no readable config.yaml beside the checkpoint)"]
    if not diffs:
        return None
    stale = checkpoint.with_name("checkpoint.superseded.pt")
    checkpoint.replace(stale)
    print(f"run config: {checkpoint} was trained with another config "
          f"({'; '.join(diffs[:3])}); moved to {stale.name}, training starts afresh")
    return stale


def write_study_manifest(manifest: dict, out: str | os.PathLike) -> Path:
    """Write the study manifest (:meth:`mprnet.study.study.Study.manifest_record`) as YAML."""
    import yaml

    if not isinstance(manifest.get("scores"), list):
        raise ConfigError("a study manifest needs a 'scores' list")
    atomic_write_text(out, yaml.safe_dump(manifest, sort_keys=False))
    return Path(out)
