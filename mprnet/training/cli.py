"""``mprnet train``. The command imports what it runs when it runs (the run config's schema, the
launcher, the trainer with torch), so that ``mprnet --help`` and the other commands start without
them; the exit status of a stop for a resume is quoted from :mod:`.signals`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from ..errors import ConfigError, MPRNetError
from .signals import RESUME_EXIT_CODE, TrainingInterrupted


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train MPRNet from a run config (official recipe per task by default)",
        description="Train MPRNet. Defaults are the official recipe of the config's task; see "
                    "mprnet.training.config for every key. runtime.processes: N starts N processes (one per GPU, "
                    "the global batch shared out); under torchrun it is one of them. "
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
    from ..yaml_files import parse_yaml

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
        node[parts[-1]] = parse_yaml(raw, f"--set {key}")
    return config


def _resolved(args: argparse.Namespace) -> dict:
    """The run config of ``--config`` with the ``--set`` overrides, resolved (``resolve_config``)."""
    from .config import load_config, resolve_config

    return resolve_config(_apply_sets(load_config(args.config), args.set))


def _train(args: argparse.Namespace) -> int:
    """Train; stdout/stderr never fail (a pipe whose reader died on the same SIGTERM must not stop
    the stop checkpoint), and with ``--log`` everything is appended to that file too. The run
    config is resolved once per process.

    With ``runtime.processes`` > 1 (and not already started by a launcher) this process starts
    that many copies of the command instead (``launch.py``), holding the run folder's lock for
    them (``runlock.py``), and returns their common status.
    """
    from .config import check_gpus_per_process
    from .console import guarded_console
    from .launch import is_main_worker, is_worker, launch
    from .runlock import run_lock
    from .trainer import run_training

    cfg = None
    if not is_worker():
        with contextlib.suppress(MPRNetError):  # a bad config is reported below, in --log too
            cfg = _resolved(args)
        runtime = cfg["runtime"] if cfg else {"processes": 1, "device": "cpu"}
        if runtime["processes"] > 1:
            check_gpus_per_process(runtime["processes"], runtime["device"])  # before any process starts
            with run_lock(args.out):  # held for the workers, before any of them starts
                return launch(_worker_args(args), runtime["processes"])
    main, world = is_main_worker(), int(os.environ.get("WORLD_SIZE", "1"))
    header = "mprnet train" + (" --resume" if args.resume else "") + (f" processes={world}" if world > 1 else "")
    with guarded_console(args.log if main else None, header=header):
        if cfg is None:
            cfg = _resolved(args)  # raises here, so that --log has the error too
        try:
            final = run_training(cfg, args.out, resume=args.resume, whole_process=True)
        except TrainingInterrupted as exc:
            if main:
                print(f"mprnet train: {exc}", file=sys.stderr)
            return RESUME_EXIT_CODE
        if main:
            print(f"mprnet train: done, final model {final}")
    return 0


def _worker_args(args: argparse.Namespace) -> list[str]:
    """The ``mprnet train`` arguments of ``args`` again, for the processes of a launch."""
    argv = ["--config", args.config, "--out", args.out]
    argv += ["--resume"] if args.resume else []
    for item in args.set:
        argv += ["--set", item]
    return argv + (["--log", args.log] if args.log else [])
