"""Study-level sub-commands that the workflow's rules call.

``mprnet run-config``   write one run's ``mprnet train`` config (validated by the trainer's schema)
``mprnet study-manifest`` write the study manifest (which score file is which method)
``mprnet aggregate``    build ``summary.csv``, ``runs.csv`` and ``metrics.json`` from the scores
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ConfigError


def _json_arg(text: str, flag: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{flag}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{flag}: expected a JSON object")
    return value


def _run_config(args: argparse.Namespace) -> int:
    from ..training.config import dump_config, resolve_config

    cfg = _json_arg(args.json, "--json")
    resolved = resolve_config(cfg)  # refuse to write a config the trainer would reject
    if args.run_dir:
        _set_aside_stale_checkpoint(Path(args.run_dir), resolved)
    dump_config(cfg, args.out)
    return 0


def _set_aside_stale_checkpoint(run_dir: Path, resolved: dict) -> None:
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
        print(f"mprnet run-config: {checkpoint} was trained with another config "
              f"({'; '.join(diffs[:3])}); moved to {stale.name}, training starts afresh")


def _study_manifest(args: argparse.Namespace) -> int:
    import yaml

    from ..atomic import atomic_write_text

    manifest = _json_arg(args.json, "--json")
    if not isinstance(manifest.get("scores"), list):
        raise ConfigError("--json: a study manifest needs a 'scores' list")
    atomic_write_text(args.out, yaml.safe_dump(manifest, sort_keys=False))
    return 0


def _aggregate(args: argparse.Namespace) -> int:
    from .aggregate import aggregate

    rows = aggregate(args.manifest, args.summary, args.runs, args.metrics)
    ours = [r for r in rows if r["group"] not in ("paper", "input")]
    print(f"{args.summary}: {len(rows)} rows ({len(ours)} of trained or released models)")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("run-config", help="write one training run's config file")
    p.add_argument("--json", required=True, help="the run config as a JSON object")
    p.add_argument("--out", required=True, help="YAML file to write")
    p.add_argument("--run-dir", help="the run's training folder: a checkpoint there of another "
                   "config is moved aside so that --resume starts afresh")
    p.set_defaults(func=_run_config)

    p = subparsers.add_parser("study-manifest", help="write the study manifest the aggregation reads")
    p.add_argument("--json", required=True, help="the manifest as a JSON object")
    p.add_argument("--out", required=True, help="YAML file to write")
    p.set_defaults(func=_study_manifest)

    p = subparsers.add_parser("aggregate", help="summary.csv of a study from its per-image scores")
    p.add_argument("--manifest", required=True, help="results/<study>/study.yaml")
    p.add_argument("--summary", required=True, help="summary CSV to write")
    p.add_argument("--runs", help="per-seed CSV to write")
    p.add_argument("--metrics", help="nested JSON of the means, for dvc metrics")
    p.set_defaults(func=_aggregate)
