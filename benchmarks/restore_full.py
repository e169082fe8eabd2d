"""Whole-image vs tiled restoration of a 1280x720 image: time, peak RSS and PSNR difference.

Each variant runs in its own process so that its peak resident memory (``ru_maxrss``) is its own.
The image is synthetic (smooth random scene plus fine texture, blurred by a 9-pixel horizontal
motion kernel). The released weights cannot be fetched everywhere, so without ``--checkpoint``
the model is the preset fine-tuned for ``--train-steps`` Adam steps (lr 2e-4, Charbonnier on all
stages, 64-pixel crops of a second synthetic image): enough to tame a random network's
output, far from a trained deblurrer. ``--train-steps 0`` keeps the fixed random init, a worst
case: a random network has not learned to hide the seams of its own 2x2 and 1x2 patch split.
Targets: tiled and whole PSNR within 0.01 dB, tiled peak RSS at most 1/3 of whole.

    python benchmarks/restore_full.py                         # 1280x720, deblurring, tile 384
    python benchmarks/restore_full.py --train-steps 0         # random init
    python benchmarks/restore_full.py --size 640x368 --tile 256 --checkpoint model_deblurring.pth
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mprnet.presets import PRESETS


def synthetic_pair(width: int, height: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from scipy.ndimage import convolve1d, gaussian_filter

    rng = np.random.default_rng(seed)
    scene = gaussian_filter(rng.random((height, width, 3)), sigma=(12, 12, 0))
    scene = (scene - scene.min()) / (np.ptp(scene) + 1e-12)
    texture = gaussian_filter(rng.standard_normal((height, width, 3)), sigma=(1, 1, 0))
    sharp = np.clip(0.85 * scene + 0.3 * texture, 0, 1)
    blurred = convolve1d(sharp, np.full(9, 1 / 9), axis=1, mode="reflect")
    return np.rint(blurred * 255).astype(np.uint8), np.rint(sharp * 255).astype(np.uint8)


def child(args) -> None:
    import resource

    import torch

    from mprnet.model import build_model
    from mprnet.restore import load_restorer, restore_tensor

    torch.set_num_threads(args.threads) if args.threads else None
    if args.checkpoint:
        model, _ = load_restorer(args.checkpoint, args.preset)
    else:
        torch.manual_seed(0)
        model = build_model(args.preset).eval()
    width, height = map(int, args.size.split("x"))
    blurred, _ = synthetic_pair(width, height)
    x = torch.from_numpy(blurred.transpose(2, 0, 1).copy()).float().div(255)[None]
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    out = restore_tensor(model, x, tile=args.tile if args.variant == "tiled" else None, overlap=args.overlap)[0]
    seconds = time.perf_counter() - start
    np.save(args.result, out[0].clamp(0, 1).permute(1, 2, 0).numpy())
    print(json.dumps({"variant": args.variant, "seconds": seconds, "peak_rss_mb":
                      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_before_mb": base_mb}))


def fine_tune(preset: str, steps: int, path: Path) -> None:
    """The preset after ``steps`` Adam steps on crops of a synthetic pair, saved to ``path``."""
    import torch

    from mprnet.losses import StageLoss
    from mprnet.model import build_model
    from mprnet.training.trainer import train_step

    torch.manual_seed(0)
    model = build_model(preset).train()
    blurred, sharp = (torch.from_numpy(a.transpose(2, 0, 1).copy()).float().div(255)[None]
                      for a in synthetic_pair(320, 320, seed=1))
    criterion, optimizer = StageLoss(edge_weight=0.0), torch.optim.Adam(model.parameters(), lr=2e-4)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    rng = np.random.default_rng(1)
    for step in range(steps):
        top, left = rng.integers(0, 320 - 64, 2)
        crop = (slice(None), slice(None), slice(top, top + 64), slice(left, left + 64))
        loss = train_step(model, criterion, optimizer, scaler, blurred[crop], sharp[crop])
        if step % 20 == 0 or step == steps - 1:
            print(f"fine-tuning step {step + 1}/{steps}: loss {loss.item():.4f}", flush=True)
    torch.save(model.state_dict(), path)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x720", help="WxH (default 1280x720)")
    parser.add_argument("--preset", default="deblurring", choices=tuple(PRESETS))
    parser.add_argument("--checkpoint", help="trained weights (ours or the authors' .pth); default: see --train-steps")
    parser.add_argument("--tile", type=int, default=384)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--train-steps", type=int, default=80,
                        help="fine-tuning steps without --checkpoint (0: random init)")
    parser.add_argument("--variant", choices=("whole", "tiled"), help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        child(args)
        return 0

    from mprnet.images import to_uint8

    width, height = map(int, args.size.split("x"))
    _, sharp = synthetic_pair(width, height)
    rows, outputs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tuned = not args.checkpoint and args.train_steps
        if tuned:
            args.checkpoint = str(Path(tmp) / "fine_tuned.pt")
            fine_tune(args.preset, args.train_steps, Path(args.checkpoint))
        for variant in ("whole", "tiled"):
            result = Path(tmp) / f"{variant}.npy"
            cmd = [sys.executable, __file__, "--variant", variant, "--result", str(result), "--size", args.size,
                   "--preset", args.preset, "--tile", str(args.tile), "--overlap", str(args.overlap),
                   "--threads", str(args.threads)] + (["--checkpoint", args.checkpoint] if args.checkpoint else [])
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                print(f"{variant}: failed\n{done.stderr[-3000:]}")
                return 1
            rows[variant] = json.loads(done.stdout.strip().splitlines()[-1])
            outputs[variant] = to_uint8(np.load(result))
            print(f"{variant:5s}: {rows[variant]['seconds']:8.1f} s, peak RSS {rows[variant]['peak_rss_mb']:8.0f} MB "
                  f"(model loaded: {rows[variant]['rss_before_mb']:.0f} MB)", flush=True)
    p_whole, p_tiled = psnr(outputs["whole"], sharp), psnr(outputs["tiled"], sharp)
    weights = f"fine-tuned {args.train_steps} steps" if tuned else args.checkpoint or "random init"
    print(f"{args.preset} {args.size}, tile {args.tile} overlap {args.overlap}, weights: {weights}")
    print(f"PSNR of the blurred input: {psnr(synthetic_pair(width, height)[0], sharp):.4f} dB")
    print(f"PSNR vs sharp: whole {p_whole:.4f} dB, tiled {p_tiled:.4f} dB, difference {p_tiled - p_whole:+.4f} dB "
          f"(target |diff| <= 0.01)")
    print(f"PSNR tiled vs whole: {psnr(outputs['tiled'], outputs['whole']):.2f} dB")
    ratio = rows["tiled"]["peak_rss_mb"] / rows["whole"]["peak_rss_mb"]
    print(f"peak RSS tiled/whole: {ratio:.3f} (target <= 0.333); time tiled/whole: "
          f"{rows['tiled']['seconds'] / rows['whole']['seconds']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
