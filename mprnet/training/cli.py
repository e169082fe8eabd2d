"""``mprnet train`` and ``mprnet restore``."""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import Iterator

RESUME_EXIT_CODE = 75  # EX_TEMPFAIL: "run again with --resume"; defined here so --help stays light


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

    r = subparsers.add_parser(
        "restore",
        help="restore a folder of images with a checkpoint (ours or the authors' .pth)",
        description="Restore every image and .npy float array of --input into --output/<stem>.png. The "
                    "results are written to a hidden folder beside --output and moved there when all are "
                    "done, so a run killed half-way leaves no partial --output.",
    )
    r.add_argument("--checkpoint", required=True, help="our model_final.pt/model_best.pt/checkpoint.pt or an official .pth")
    r.add_argument("--input", required=True,
                   help="folder of degraded images and/or <stem>.npy float arrays (HxWx3 in [0,1], e.g. DND's input_float)")
    r.add_argument("--output", required=True, help="folder for the restored PNGs")
    r.add_argument("--task", choices=("deblurring", "deraining", "denoising"),
                   help="preset for an official .pth (recognised from the weights when omitted)")
    r.add_argument("--tile", type=int, default=None, help="restore in TILE x TILE windows (multiple of 8)")
    r.add_argument("--overlap", type=int, default=32, help="overlap between tiles in pixels (default 32)")
    r.add_argument("--save-float", action="store_true", help="also write OUTPUT/float/<stem>.npy (float32, [0,1])")
    r.add_argument("--save-stages", action="store_true", help="also write OUTPUT/stages/<stem>_stage<k>.png")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(func=_restore)


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
    the stop checkpoint), and with ``--log`` everything is appended to that file too.

    With ``runtime.processes`` > 1 (and not already started by a launcher) this process starts
    that many copies of the command instead (``launch.py``) and returns their common status.
    """
    import sys

    from ..errors import MPRNetError
    from .config import load_config, resolve_config
    from .console import guarded_console
    from .launch import is_main_worker, is_worker, launch
    from .trainer import TrainingInterrupted, train

    if not is_worker():
        with contextlib.suppress(MPRNetError):  # a bad config is reported below, in --log too
            processes = resolve_config(_apply_sets(load_config(args.config), args.set))["runtime"]["processes"]
            if processes > 1:
                return launch(_worker_args(args), processes)
    main, world = is_main_worker(), int(os.environ.get("WORLD_SIZE", "1"))
    header = "mprnet train" + (" --resume" if args.resume else "") + (f" processes={world}" if world > 1 else "")
    with guarded_console(args.log if main else None, header=header):
        config = _apply_sets(load_config(args.config), args.set)
        try:
            final = train(config, args.out, resume=args.resume)
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


def _restore(args: argparse.Namespace) -> int:
    import torch

    from ..restore import load_restorer, restore_folder

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model, what = load_restorer(args.checkpoint, args.task)
    with _staged_folder(args.output) as staging:
        written = restore_folder(model, args.input, staging, tile=args.tile, overlap=args.overlap,
                                 save_float=args.save_float, save_stages=args.save_stages, device=device,
                                 progress=not args.no_progress)
    print(f"mprnet restore: {len(written)} images restored with {what} into {args.output}")
    return 0


@contextlib.contextmanager
def _staged_folder(final: str | os.PathLike) -> Iterator[Path]:
    """A hidden folder beside ``final`` to write into; moved to ``final`` when the block succeeds.

    ``final`` absent (as Snakemake leaves a directory output before a job) or empty: one rename,
    so the folder appears complete at once, and a run killed half-way leaves nothing there.
    ``final`` holding files: each new file is moved in (``os.replace``), the others are kept.
    An exception or SIGTERM removes the staging folder (SIGTERM then exits with status 143); a
    SIGKILL may leave it behind, hidden (``.<name>.*.partial``), never at ``final``.
    """
    import shutil
    import signal
    import tempfile

    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))

    def _terminate(signum, frame):
        raise SystemExit(128 + signum)

    previous = None
    with contextlib.suppress(ValueError):  # signals can be set from the main thread only
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield staging
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp made it 0700
        try:
            os.rename(staging, final)
        except OSError:
            if not final.is_dir():
                raise
            for src in sorted(p for p in staging.rglob("*") if not p.is_dir()):
                dest = final / src.relative_to(staging)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dest)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(staging, ignore_errors=True)
