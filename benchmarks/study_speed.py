"""Training speed of a study on two kinds of CPU: this machine, and an AVX2-only one timed on it.

For every training run of a study config (``config/demo.yaml``, ``config/rain100l.yaml``, ...) the
trainer's own step (``mprnet.training.trainer.train_step``: forward, StageLoss, backward, Adam) is
timed at the run's model, patch and batch, in the precision ``train.amp`` resolves to
(``mprnet.precision``), with the threads a study job gets (``--threads``, 1 as workflow/profiles/default
gives training jobs). Each distinct (model, patch, batch, precision) is timed once per kind, in a
child process of its own:

  native  this machine as it is
  avx2    ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``: oneDNN and ATen limited to AVX2
          kernels, as on most laptops; ``train.amp: auto`` then resolves to fp32, as it does there

Printed per kind: each run's iterations, precision, seconds per iteration, images/s and training
seconds; the total CPU-seconds of training and the projected training wall time with
``--cores / --threads`` jobs side by side. The projection is a lower bound of the ``make`` wall
time: it leaves out start-up, restoring, scoring and the report, and two busy jobs on two cores
slow each other a little (much more when the two vCPUs are SMT siblings of one core, as on some
cloud VMs). ``--other`` times each step in the other precision as well (fp32 where ``auto``
picks bf16; bf16, emulated, where it picks fp32) and prints the ratio: what ``auto`` saves on
each kind, and what a hard-coded ``amp: bf16`` cost an AVX2 CPU before it.

    python benchmarks/study_speed.py --config config/demo.yaml
    python benchmarks/study_speed.py --config config/rain100l.yaml --other --steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = {"native": {}, "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}}


def study_runs(config_path: Path) -> list[dict]:
    """(key, task, model overrides, patch, batch, iterations, amp) of every run of the study."""
    from mprnet.study.config import load_study
    from mprnet.training.config import resolve_config
    from mprnet.yaml_files import read_yaml_mapping

    study = load_study(read_yaml_mapping(config_path), ROOT / "workflow" / "schemas" / "config.schema.yaml", ROOT)
    runs = []
    for run in study.runs:
        cfg = resolve_config(run.config)
        if cfg["schedule"]["unit"] != "iteration":
            raise SystemExit(f"{run.key}: schedule in epochs; this benchmark needs iteration schedules")
        runs.append({"key": run.key, "task": cfg["task"], "overrides": cfg["model"]["overrides"],
                     "patch": cfg["data"]["patch_size"], "batch": cfg["data"]["batch_size"],
                     "iterations": cfg["schedule"]["length"], "amp": cfg["train"]["amp"],
                     "channels_last": cfg["train"]["channels_last"]})
    return runs


def child(spec: dict) -> dict:
    """Time ``spec['steps']`` training steps after ``spec['warmup']`` untimed ones; the amp is
    resolved here, in the child's own environment (so the avx2 kind sees no native bf16)."""
    import torch

    from mprnet.losses import StageLoss
    from mprnet.model import build_model
    from mprnet.precision import resolve_amp, resolve_channels_last
    from mprnet.presets import network_kwargs
    from mprnet.training.trainer import train_step

    torch.set_num_threads(spec["threads"])
    from mprnet.errors import ConfigError

    try:
        amp, why = resolve_amp(spec["amp"], "cpu") if spec["amp"] != "emulated-bf16" else ("bf16", "forced")
    except ConfigError as exc:  # an explicit bf16 that train would refuse here: time it emulated
        amp, why = "bf16", f"refused by mprnet train here: {exc}"
    torch.manual_seed(0)
    net = build_model(spec["task"], **spec["overrides"]).train()
    width = network_kwargs(spec["task"], spec["overrides"])["n_feat"]
    channels_last, _ = resolve_channels_last(spec["channels_last"], "cpu", width)  # as mprnet train resolves it
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    criterion = StageLoss(eps=0.1)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    dtype = torch.bfloat16 if amp == "bf16" else None
    x = torch.rand(spec["batch"], 3, spec["patch"], spec["patch"]).contiguous(memory_format=fmt)
    y = torch.rand_like(x)
    for _ in range(spec["warmup"]):
        train_step(net, criterion, optimizer, scaler, x, y, dtype)
    times = []
    for _ in range(spec["steps"]):
        start = time.perf_counter()
        train_step(net, criterion, optimizer, scaler, x, y, dtype)
        times.append(time.perf_counter() - start)
    times.sort()
    return {"amp": amp, "why": why, "seconds": times[len(times) // 2]}


def timed(spec: dict, env: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env={**os.environ, **env},
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"timing {spec} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "demo.yaml")
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads per training job (workflow/profiles/default: 1)")
    parser.add_argument("--cores", type=int, default=2, help="cores of the machine to project for")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per case (the median is kept)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--other", action="store_true",
                        help="also time the other precision (fp32 where auto picks bf16; bf16, emulated, where it picks fp32)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0

    import torch

    runs = study_runs(args.config)
    lanes = max(1, args.cores // args.threads)
    print(f"{args.config}: {len(runs)} training runs; torch {torch.__version__}; {args.threads} thread(s) per job, "
          f"{lanes} jobs side by side; median of {args.steps} steps after {args.warmup} warm-ups")
    from mprnet.report.provenance import cpu_name

    print(f"this CPU: {cpu_name()}")
    for kind in args.kinds:
        cache: dict[str, dict] = {}
        total = total_other = 0.0
        print(f"\n== {kind} {' '.join(f'{k}={v}' for k, v in KINDS[kind].items()) or '(as it is)'}")
        print(f"{'run':42s} {'iters':>6s} {'amp':>5s} {'s/it':>7s} {'img/s':>7s} {'seconds':>8s}"
              + ("  other  s/it  other/this" if args.other else ""))
        for run in runs:
            spec = {k: run[k] for k in ("task", "overrides", "patch", "batch", "amp", "channels_last")}
            spec.update(threads=args.threads, steps=args.steps, warmup=args.warmup)
            key = json.dumps(spec, sort_keys=True)
            if key not in cache:
                cache[key] = timed(spec, KINDS[kind])
                if args.other:
                    other = "none" if cache[key]["amp"] == "bf16" else "emulated-bf16"
                    cache[key]["other"] = timed(dict(spec, amp=other), KINDS[kind])
            t = cache[key]
            seconds = t["seconds"] * run["iterations"]
            total += seconds
            line = (f"{run['key']:42s} {run['iterations']:6d} {t['amp']:>5s} {t['seconds']:7.3f} "
                    f"{run['batch'] / t['seconds']:7.1f} {seconds:8.0f}")
            if args.other:
                other = t["other"]
                total_other += other["seconds"] * run["iterations"]
                line += f"  {other['amp']:>5s} {other['seconds']:6.3f}  x{other['seconds'] / t['seconds']:.2f}"
            print(line, flush=True)
        why = next(iter(cache.values()))["why"]
        print(f"{kind}: train.amp {runs[0]['amp']} -> {next(iter(cache.values()))['amp']} ({why})")
        print(f"{kind}: training {total:.0f} CPU-s; projected training wall time {total / lanes:.0f} s "
              f"({total / lanes / 60:.1f} min) with {lanes} jobs side by side")
        if args.other:
            other = next(iter(cache.values()))["other"]["amp"]
            label = "bf16 (emulated)" if other == "bf16" else "fp32"
            print(f"{kind}: the same in {label}: {total_other:.0f} CPU-s, "
                  f"{total_other / lanes / 60:.1f} min (x{total_other / total:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
