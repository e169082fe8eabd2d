"""Training throughput: images/s of one optimisation step, per preset and precision, with the
official model's fp32 step in the same run.

The step is ``mprnet.training.trainer.train_step`` (autocast forward, float32 StageLoss, backward,
Adam), i.e. exactly what ``mprnet train`` runs per iteration, on random patches. Each (preset, mode)
runs in its own process (peak memory is a per-process high-water mark). Modes:

  fp32                 float32, NCHW (the model follows its weights' layout)
  bf16                 bf16 autocast, NCHW
  bf16+channels_last   bf16 autocast, NHWC weights and batches
  official-fp32        the official swz30/MPRNet model (``--official PATH``, loaded as
                       ``benchmarks/model_step.py`` loads it), float32, NCHW, same step
``--compile`` adds each of our modes once more under ``torch.compile`` (compile time excluded:
it happens in the warm-up steps).

Sizes: on a GPU, the paper's recipe (``mprnet/training/recipes.json``: batch 16, patch 256;
denoising 128); on the CPU, batch 2 and patch 64 unless given. Torch's defaults for float32 are
kept (on CUDA, convolutions may use TF32, ``torch.backends.cudnn.allow_tf32``; printed) for us and
the official model alike. Where CUDA is missing, ``--device cuda`` falls back to the CPU; where the
device would emulate bf16 (``mprnet.precision``), the bf16 modes are skipped; both with a message.

Every mode trains on the same batch (drawn on the CPU from seed 1); with ``--official`` our model
starts from the official model's seed-0 weights, so the first loss (before any update) of each
mode compares with the official fp32 step's. ``cudnn.benchmark`` is on for CUDA, as in ``mprnet train``.

Printed per row: images/s, seconds/step, peak memory, the first loss, and the speed-up over our fp32
and over the official fp32 (target of issues 15 and 22: >= 2x the official fp32 throughput on a GPU).

    python benchmarks/train_throughput.py --device cpu --batch 1 --patch 32 --steps 1   # smoke test
    python benchmarks/train_throughput.py --official /path/to/MPRNet.py              # GPU figures
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_step import official_model  # noqa: E402  (one loader for both benchmarks)

from mprnet.atomic import atomic_write_text  # noqa: E402
from mprnet.precision import bf16_support  # noqa: E402
from mprnet.presets import PRESETS  # noqa: E402

# mode -> (autocast dtype or None, channels_last, compiled)
MODES = {"fp32": (None, False, False), "bf16": ("bf16", False, False),
         "bf16+channels_last": ("bf16", True, False)}
COMPILED = {f"{name}+compile": (amp, cl, True) for name, (amp, cl, _) in MODES.items()}
OFFICIAL_MODE = "official-fp32"


def recipe_sizes(preset: str) -> tuple[int, int]:
    """(batch, patch) of the paper's training recipe for ``preset``."""
    from mprnet.training.config import recipe

    data = recipe(preset)["data"]
    return data["batch_size"], data["patch_size"]


def measure(preset: str, mode: str, batch: int, patch: int, steps: int, warmup: int, device: str,
            official: str | None) -> dict:
    import resource

    import torch

    from mprnet.losses import StageLoss
    from mprnet.model import build_model
    from mprnet.training.trainer import train_step

    amp, channels_last, compiled = (None, False, False) if mode == OFFICIAL_MODE else {**MODES, **COMPILED}[mode]
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as `mprnet train` sets it (runtime.deterministic false)
    torch.manual_seed(0)
    model = official_model(official, preset) if mode == OFFICIAL_MODE else build_model(preset)
    if official and mode != OFFICIAL_MODE:
        # the same initial weights as the official row (seed 0), so the first losses compare
        torch.manual_seed(0)
        model.load_state_dict(official_model(official, preset).state_dict())
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(dev).to(memory_format=memory_format).train()
    criterion = (StageLoss(0.0, True) if preset == "denoising" else StageLoss()).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    net = torch.compile(model) if compiled else model
    scaler = torch.amp.GradScaler(dev.type, enabled=False)
    amp_dtype = torch.bfloat16 if amp == "bf16" else None
    # the same batch for every mode and device: drawn on the CPU from seed 1
    gen = torch.Generator().manual_seed(1)
    inp, tar = (torch.rand(batch, 3, patch, patch, generator=gen).to(dev).contiguous(memory_format=memory_format)
                for _ in range(2))

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    first_loss = None
    for _ in range(warmup):
        loss = train_step(net, criterion, optimizer, scaler, inp, tar, amp_dtype)
        first_loss = float(loss) if first_loss is None else first_loss
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        loss = train_step(net, criterion, optimizer, scaler, inp, tar, amp_dtype)
    sync()
    seconds = time.perf_counter() - start
    if dev.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"preset": preset, "mode": mode, "device": str(dev), "batch": batch, "patch": patch,
            "images_per_s": steps * batch / seconds, "seconds_per_step": seconds / steps,
            "peak_memory_mb": peak_mb, "peak_kind": "cuda allocated" if dev.type == "cuda" else "process RSS",
            "first_loss": first_loss, "loss_finite": bool(torch.isfinite(loss))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cuda, cuda:N or cpu")
    parser.add_argument("--batch", type=int, help="default: the recipe's (16) on GPU, 2 on CPU")
    parser.add_argument("--patch", type=int, help="default: the recipe's (256; denoising 128) on GPU, 64 on CPU")
    parser.add_argument("--steps", type=int, help="timed steps (default 20 GPU, 3 CPU)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 3 GPU, 1 CPU; compiling needs >= 2)")
    parser.add_argument("--modes", nargs="+", choices=[*MODES, *COMPILED], help="default: fp32 bf16 bf16+channels_last")
    parser.add_argument("--compile", action="store_true", help="also each mode under torch.compile")
    parser.add_argument("--official", metavar="MPRNet.py", help="the official model file: adds its fp32 step")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--child", nargs=2, metavar=("PRESET", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        preset, mode = args.child
        print(json.dumps(measure(preset, mode, args.batch, args.patch, args.steps, args.warmup, args.device,
                                 args.official)))
        return 0
    if args.official and not Path(args.official).is_file():
        parser.error(f"--official: {args.official} is not a file")

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        print(f"--device {device}: CUDA is not available here; falling back to the CPU")
        device = "cpu"
    gpu = device.startswith("cuda")
    modes = list(args.modes or MODES)
    if args.compile:
        modes += [f"{m}+compile" for m in modes if not m.endswith("+compile")]
    support = bf16_support(device)
    if not support.native:
        skipped = [m for m in modes if m.startswith("bf16")]
        modes = [m for m in modes if not m.startswith("bf16")]
        if skipped:
            print(f"bf16 is not native on {device} ({support.reason}): skipping {', '.join(skipped)}")
    if args.official:
        modes.append(OFFICIAL_MODE)
    steps = args.steps or (20 if gpu else 3)
    warmup = args.warmup if args.warmup is not None else (3 if gpu else 1)
    if any(m.endswith("+compile") for m in modes) and warmup < 2:
        warmup = 2
        print("torch.compile: warm-up raised to 2 steps (compilation stays out of the timing)")

    where = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} threads"
    print(f"device {device} ({where}), torch {torch.__version__}, {steps} timed steps after {warmup} warm-ups")
    if gpu:
        print(f"float32 convolutions may use TF32: torch.backends.cudnn.allow_tf32 = "
              f"{torch.backends.cudnn.allow_tf32} (torch's default, for both models)")
    rows = []
    for preset in args.presets:
        batch, patch = recipe_sizes(preset) if gpu else (2, 64)
        batch, patch = args.batch or batch, args.patch or patch
        for mode in modes:
            cmd = [sys.executable, __file__, "--child", preset, mode, "--device", device, "--steps", str(steps),
                   "--warmup", str(warmup), "--threads", str(args.threads), "--batch", str(batch),
                   "--patch", str(patch)]
            cmd += ["--official", args.official] if args.official else []
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                print(f"{preset} {mode}: failed\n{done.stderr[-2000:]}", flush=True)
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{preset:11s} {mode:27s} batch {batch:3d} patch {patch:4d}: {row['images_per_s']:9.2f} images/s "
                  f"{row['seconds_per_step']:8.3f} s/step  peak {row['peak_memory_mb']:8.0f} MB ({row['peak_kind']})"
                  f"  first loss {row['first_loss']:.6f}", flush=True)
            if args.json:  # after every row: a run stopped by a time limit keeps what it measured
                atomic_write_text(args.json, json.dumps(rows, indent=1))
    print("\nspeed-up (images/s ratio)")
    for preset in args.presets:
        mine = {r["mode"]: r["images_per_s"] for r in rows if r["preset"] == preset}
        for mode, ips in mine.items():
            if mode == OFFICIAL_MODE:
                continue
            versus = [f"x{ips / mine['fp32']:.2f} vs our fp32" if "fp32" in mine else "",
                      f"x{ips / mine[OFFICIAL_MODE]:.2f} vs official fp32" if OFFICIAL_MODE in mine else ""]
            if OFFICIAL_MODE in mine:
                ref = next(r["first_loss"] for r in rows if r["preset"] == preset and r["mode"] == OFFICIAL_MODE)
                own = next(r["first_loss"] for r in rows if r["preset"] == preset and r["mode"] == mode)
                versus.append(f"first loss {own:.6f} vs official {ref:.6f} (rel. diff {abs(own - ref) / ref:.1e})")
            print(f"{preset:11s} {mode:27s} {'  '.join(v for v in versus if v)}")
            for r in rows:
                if r["preset"] == preset and r["mode"] == mode:
                    r["speedup_vs_fp32"] = ips / mine["fp32"] if "fp32" in mine else None
                    r["speedup_vs_official_fp32"] = ips / mine[OFFICIAL_MODE] if OFFICIAL_MODE in mine else None
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
