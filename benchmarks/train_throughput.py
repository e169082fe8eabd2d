"""Training throughput: images/s and peak memory of one optimisation step, per preset and precision.

Each measurement runs in its own process (peak RSS is a per-process high-water mark). The step is
``mprnet.training.trainer.train_step`` (autocast forward, float32 StageLoss, backward, Adam), i.e.
exactly what ``mprnet train`` runs per iteration, on random patches.

CPU (default here): fp32, small batch/patch. With a GPU: fp32 vs bf16 vs bf16+channels_last at the
official batch 16 and patch 256 (128 for denoising), with the speed-up over fp32 (target >= 2x).

    python benchmarks/train_throughput.py                 # all presets, auto device
    python benchmarks/train_throughput.py --batch 2 --patch 64 --steps 3 --presets deraining
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

PRESETS = ("deblurring", "deraining", "denoising")
MODES = {"fp32": (None, False), "bf16": ("bf16", False), "bf16+channels_last": ("bf16", True)}


def measure(preset: str, mode: str, batch: int, patch: int, steps: int, warmup: int, device: str) -> dict:
    import resource

    import torch

    from mprnet.losses import StageLoss
    from mprnet.model import build_model
    from mprnet.training.trainer import train_step

    amp, channels_last = MODES[mode]
    dev = torch.device(device)
    torch.manual_seed(0)
    model = build_model(preset).to(dev)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    criterion = (StageLoss(0.0, True) if preset == "denoising" else StageLoss()).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    scaler = torch.amp.GradScaler(dev.type, enabled=False)
    amp_dtype = torch.bfloat16 if amp == "bf16" else None
    inp = torch.rand(batch, 3, patch, patch, device=dev).contiguous(memory_format=memory_format)
    tar = torch.rand(batch, 3, patch, patch, device=dev).contiguous(memory_format=memory_format)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        train_step(model, criterion, optimizer, scaler, inp, tar, amp_dtype)
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        loss = train_step(model, criterion, optimizer, scaler, inp, tar, amp_dtype)
    sync()
    seconds = time.perf_counter() - start
    if dev.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"preset": preset, "mode": mode, "device": str(dev), "batch": batch, "patch": patch,
            "images_per_s": steps * batch / seconds, "seconds_per_step": seconds / steps,
            "peak_memory_mb": peak_mb, "peak_kind": "cuda allocated" if dev.type == "cuda" else "process RSS",
            "loss_finite": bool(torch.isfinite(loss))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, help="default: 2 on CPU, 16 on GPU")
    parser.add_argument("--patch", type=int, help="default: 64 on CPU, the recipe's (256/128) on GPU")
    parser.add_argument("--steps", type=int, help="timed steps (default 3 CPU, 20 GPU)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--modes", nargs="+", choices=list(MODES), help="default: fp32 on CPU, all three on GPU")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()

    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    gpu = device.startswith("cuda")
    modes = args.modes or (list(MODES) if gpu else ["fp32"])
    steps = args.steps or (20 if gpu else 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        preset, mode = args.presets[0], modes[0]
        patch = args.patch or ((128 if preset == "denoising" else 256) if gpu else 64)
        print(json.dumps(measure(preset, mode, args.batch or (16 if gpu else 2), patch, steps, args.warmup, device)))
        return 0

    rows = []
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    for preset in args.presets:
        for mode in modes:
            cmd = [sys.executable, __file__, "--child", "--presets", preset, "--modes", mode, "--device", device,
                   "--steps", str(steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
            if args.batch:
                cmd += ["--batch", str(args.batch)]
            if args.patch:
                cmd += ["--patch", str(args.patch)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                print(f"{preset} {mode}: failed\n{done.stderr[-2000:]}")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            base = next((r for r in rows if r["preset"] == preset and r["mode"] == "fp32"), None)
            row["speedup_vs_fp32"] = row["images_per_s"] / base["images_per_s"] if base else 1.0
            rows.append(row)
            print(f"{preset:11s} {mode:19s} batch {row['batch']:3d} patch {row['patch']:4d}: "
                  f"{row['images_per_s']:8.2f} images/s  {row['seconds_per_step']:7.2f} s/step  "
                  f"peak {row['peak_memory_mb']:8.0f} MB ({row['peak_kind']})  x{row['speedup_vs_fp32']:.2f} vs fp32",
                  flush=True)
    if args.json:
        from mprnet.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
