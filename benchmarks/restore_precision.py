"""fp32 vs bf16 restoring in one run: time per image and the PSNR/SSIM each precision scores.

Restores every image of a test set with a trained model twice, in fp32 (the default of
``mprnet restore``) and in bf16 (``--precision bf16``: the network under bf16 autocast, outputs
cast back to float32), through the same code (``mprnet.restore.restore_tensor``). The two runs
are interleaved image by image, in alternating order, so that a machine shared with other work
slows both alike (``--repeats R``: each image R times per precision, the fastest kept); a warm-up
restore of the first image in each precision is not timed. Scores
use the test set's protocol (``y_channel`` for Rain100L) on the 8-bit outputs, as the study does.

Model and data, the first that exists:

1. ``--checkpoint`` and ``--data`` (a prepared test split with ``input/`` and ``target/``);
2. by default the real-data study's full model and its test set under ``--root``:
   ``results/rain100l/runs/main/deraining/full/seed0/model_final.pt`` and
   ``data/rain100l_orig/test``;
3. otherwise the stand-in of ``benchmarks/restore_full.py``: the deblurring preset fine-tuned
   for ``--train-steps`` steps on a synthetic pair, restoring ``--stand-in-images`` synthetic
   motion-blurred images of ``--size`` (far from a trained deblurrer; it shows the bf16 error
   of the full-width network, not a real test set's).

Where bf16 is not native (``mprnet.precision.bf16_support``) only fp32 is timed
and the reason is printed.

    python benchmarks/restore_precision.py --root /path/to/checkout       # the Rain100L study's model
    python benchmarks/restore_precision.py --checkpoint M.pt --data data/rain100l_orig/test
    python benchmarks/restore_precision.py --root /nonexistent --train-steps 40   # the stand-in
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_CHECKPOINT = "results/rain100l/runs/main/deraining/full/seed0/model_final.pt"
DEFAULT_DATA = "data/rain100l_orig/test"


def _real_pairs(data: Path, limit: int | None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    from mprnet.images import pair_by_stem, read_float_input, read_rgb

    pairs = pair_by_stem(data / "input", data / "target")[:limit]
    return [(stem, read_float_input(inp), read_rgb(tar)) for stem, inp, tar in pairs]


def _stand_in(tmp: Path, args) -> tuple[str, list[tuple[str, np.ndarray, np.ndarray]]]:
    sys.path.insert(0, str(Path(__file__).parent))
    from restore_full import fine_tune, synthetic_pair

    checkpoint = tmp / "fine_tuned.pt"
    fine_tune("deblurring", args.train_steps, checkpoint)
    width, height = map(int, args.size.split("x"))
    pairs = []
    for k in range(args.stand_in_images):
        blurred, sharp = synthetic_pair(width, height, seed=10 + k)
        pairs.append((f"synthetic{k}", blurred.astype(np.float32) / np.float32(255), sharp))
    return str(checkpoint), pairs


def _trained_with(checkpoint: str) -> str:
    import torch

    try:
        obj = torch.load(checkpoint, map_location="cpu", weights_only=True)
        return f", trained with amp={obj['config']['train']['amp']}"
    except Exception:  # an official .pth or a bare state dict: nothing recorded
        return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="checkout holding the study's results/ and data/")
    parser.add_argument("--checkpoint", help=f"trained model (default: ROOT/{DEFAULT_CHECKPOINT})")
    parser.add_argument("--data", type=Path, help=f"test split with input/ and target/ (default: ROOT/{DEFAULT_DATA})")
    parser.add_argument("--protocol", default="y_channel", help="scoring protocol of the test set (default y_channel)")
    parser.add_argument("--task", help="preset of an official .pth checkpoint")
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument("--tile", type=int, help="restore in tiles (as mprnet restore --tile)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="time each image R times per precision (interleaved) and keep the fastest")
    parser.add_argument("--train-steps", type=int, default=80, help="stand-in: fine-tuning steps")
    parser.add_argument("--size", default="480x320", help="stand-in: WxH of the synthetic images")
    parser.add_argument("--stand-in-images", type=int, default=6, help="stand-in: number of synthetic images")
    args = parser.parse_args()

    import torch

    from mprnet.images import to_uint8
    from mprnet.metrics import psnr_ssim
    from mprnet.precision import bf16_support
    from mprnet.restore import load_restorer, restore_tensor

    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or str(args.root / DEFAULT_CHECKPOINT)
    data = args.data or args.root / DEFAULT_DATA
    with tempfile.TemporaryDirectory() as tmp:
        if Path(checkpoint).is_file() and (data / "input").is_dir():
            pairs = _real_pairs(data, args.limit)
            what = f"{checkpoint}{_trained_with(checkpoint)}; {len(pairs)} images of {data}, protocol {args.protocol}"
        elif args.checkpoint or args.data:
            print(f"restore_precision: {checkpoint} or {data}/input does not exist", file=sys.stderr)
            return 2
        else:
            print(f"restore_precision: no {checkpoint} with {data}; using the fine-tuned stand-in", flush=True)
            checkpoint, pairs = _stand_in(Path(tmp), args)
            args.protocol = "rgb"
            what = (f"stand-in: deblurring preset fine-tuned {args.train_steps} steps; {len(pairs)} synthetic "
                    f"{args.size} images, protocol rgb")
        model, description = load_restorer(checkpoint, args.task)
        model = model.to(args.device).eval()

    precisions = ["fp32", "bf16"]
    support = bf16_support(args.device)
    if not support.native:
        print(f"restore_precision: bf16 not measured: not native here ({support.reason})")
        precisions = ["fp32"]

    def restore(image: np.ndarray, precision: str) -> tuple[np.ndarray, float]:
        x = torch.from_numpy(image.transpose(2, 0, 1).copy())[None].to(args.device)
        start = time.perf_counter()
        out = restore_tensor(model, x, tile=args.tile, precision=precision)[0]
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        return to_uint8(out[0].permute(1, 2, 0).cpu().numpy()), seconds

    for precision in precisions:  # warm-up (oneDNN primitive creation, autocast caches)
        restore(pairs[0][1], precision)
    seconds = {p: [] for p in precisions}
    scores = {p: [] for p in precisions}
    agreement = []
    for k, (stem, image, target) in enumerate(pairs):
        outputs = {}
        times = {p: [] for p in precisions}
        for r in range(args.repeats):
            for precision in (precisions if (k + r) % 2 == 0 else precisions[::-1]):
                outputs[precision], elapsed = restore(image, precision)
                times[precision].append(elapsed)
        for precision in precisions:
            seconds[precision].append(min(times[precision]))
            scores[precision].append(psnr_ssim(args.protocol, outputs[precision], target, device="cpu"))
        if len(outputs) == 2:
            diff = outputs["fp32"].astype(np.float64) - outputs["bf16"].astype(np.float64)
            mse = float(np.mean(diff ** 2))
            agreement.append((np.inf if mse == 0 else 10 * np.log10(255.0 ** 2 / mse), float(np.abs(diff).max())))

    print(f"model: {description}; {what}")
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"tile {args.tile or 'none'}, interleaved fp32/bf16 per image, fastest of {args.repeats} per image")
    psnr = {p: np.array([s[0] for s in scores[p]]) for p in precisions}
    ssim = {p: np.array([s[1] for s in scores[p]]) for p in precisions}
    print(f"{'precision':9s}  {'s/image (median)':>16s}  {'s/image (mean)':>14s}  {'PSNR mean':>9s}  {'SSIM mean':>9s}")
    for p in precisions:
        print(f"{p:9s}  {np.median(seconds[p]):16.4f}  {np.mean(seconds[p]):14.4f}  "
              f"{psnr[p].mean():9.4f}  {ssim[p].mean():9.5f}")
    if len(precisions) == 2:
        ratio = np.array(seconds["bf16"]) / np.array(seconds["fp32"])
        dpsnr, dssim = psnr["bf16"] - psnr["fp32"], ssim["bf16"] - ssim["fp32"]
        finite = [a for a, _ in agreement if np.isfinite(a)]
        print(f"time bf16/fp32: median {np.median(ratio):.3f} over {len(ratio)} images "
              f"(min {ratio.min():.3f}, max {ratio.max():.3f}); speed-up {1 / np.median(ratio):.2f}x")
        print(f"|dPSNR| bf16 vs fp32: mean {np.abs(dpsnr).mean():.4f} dB, max {np.abs(dpsnr).max():.4f} dB "
              f"(signed mean {dpsnr.mean():+.4f} dB); |dSSIM| mean {np.abs(dssim).mean():.5f}, "
              f"max {np.abs(dssim).max():.5f}")
        print(f"bf16 output vs fp32 output: PSNR min {min(finite) if finite else float('inf'):.2f} dB, "
              f"largest pixel difference {max(m for _, m in agreement):.0f}/255, "
              f"{sum(not np.isfinite(a) for a, _ in agreement)} of {len(agreement)} images identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
