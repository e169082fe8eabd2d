"""``mprnet train``."""

from __future__ import annotations

import argparse

RESUME_EXIT_CODE = 75  # EX_TEMPFAIL: "run again with --resume"; defined here so --help stays light


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train MPRNet from a run config (official recipe per task by default)",
        description="Train MPRNet. Defaults are the official recipe of the config's task; see "
                    "mprnet.training.config for every key. Launch with torchrun for several GPUs. "
                    f"On SIGTERM/SIGUSR1 a checkpoint is written and the exit status is {RESUME_EXIT_CODE} "
                    "(run again with --resume).",
    )
    p.add_argument("--config", required=True, help="run config (YAML)")
    p.add_argument("--out", required=True, help="output folder for checkpoints, logs and the effective config")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.pt if it exists (start afresh otherwise)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set runtime.device=cpu (value parsed as YAML)")
    p.add_argument("--log", metavar="FILE",
                   help="also append everything printed to FILE (one header line per attempt, so every "
                        "attempt of a resumed run is kept); the workflow uses OUT/train.log")
    p.set_defaults(func=_train)


def _apply_sets(config: dict, sets: list[str]) -> dict:
    from ..errors import ConfigError
    from .config import parse_yaml

    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        node = config
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part} is not a section")
        node[parts[-1]] = parse_yaml(raw)
    return config


def _train(args: argparse.Namespace) -> int:
    """Train; stdout/stderr never fail (a pipe whose reader died on the same SIGTERM must not stop
    the stop checkpoint), and with ``--log`` everything is appended to that file too."""
    import sys

    from .config import load_config
    from .console import guarded_console
    from .trainer import TrainingInterrupted, train

    with guarded_console(args.log, header="mprnet train" + (" --resume" if args.resume else "")):
        config = _apply_sets(load_config(args.config), args.set)
        try:
            final = train(config, args.out, resume=args.resume)
        except TrainingInterrupted as exc:
            print(f"mprnet train: {exc}", file=sys.stderr)
            return RESUME_EXIT_CODE
        print(f"mprnet train: done, final model {final}")
    return 0
