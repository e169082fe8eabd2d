"""Gain against training time on a prepared train/test pair: what a CPU budget buys, per recipe.

Trains one MPRNet with the product's own pieces (``MPRNet``, ``StageLoss``, ``train_step``, the
warm-up + cosine schedule of ``mprnet.training.schedule``, the precision ``train.amp`` would pick:
``mprnet.precision.resolve_amp``) on a prepared training set, and every ``--eval-every``
iterations restores the first ``--test-images`` images of a prepared test set and scores them
with the set's protocol (``y_channel``, ``rgb``, or ``sidd`` on float outputs, as the study
does). Prints one row per evaluation: iteration, training seconds (evaluation excluded), mean
PSNR/SSIM and the gain over the degraded input. Patches are cut from images held in memory with
the trainer's eight flips/rotations, so the curve is the trainer's, minus its I/O.

Several ``--eps`` values run one after the other in one process, so their timings compare (run it
on a quiet machine: a second busy process slows both by up to 10x on 2 cores; to time an AVX2
laptop on an AMX machine, prefix ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``).

    make real-study REALDATA=../shared/realdata/rain100L    # prepares data/raintrainl, data/rain100l_orig
    python benchmarks/gain_curve.py --eps 0.001 0.1 --iterations 600 --eval-every 150
    mprnet make-demo --out data/demo                      # the demo's sets
    python benchmarks/gain_curve.py --train data/demo/demo_blur/train --test data/demo/demo_blur/test \\
        --protocol rgb --patch 48 --lr 4e-3 --iterations 350 --eval-every 50 --threads 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def load_pairs(root: Path, limit: int | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from mprnet.images import pair_by_stem, read_rgb

    triples = pair_by_stem(root / "input", root / "target")[:limit]
    return [read_rgb(i) for _, i, _ in triples], [read_rgb(t) for _, _, t in triples]


def batches(inputs, targets, patch: int, batch: int, seed: int):
    """Endless (input, target) batches of random patches, flipped/rotated alike (8 dihedral cases)."""
    import torch

    rng = np.random.default_rng(seed)
    while True:
        xs, ys = [], []
        for _ in range(batch):
            i = int(rng.integers(len(inputs)))
            x, y = inputs[i], targets[i]
            top, left = (int(rng.integers(0, s - patch + 1)) for s in x.shape[:2])
            x, y = x[top:top + patch, left:left + patch], y[top:top + patch, left:left + patch]
            k = int(rng.integers(0, 8))
            if k & 1:
                x, y = x[::-1], y[::-1]
            if k & 2:
                x, y = x[:, ::-1], y[:, ::-1]
            if k & 4:
                x, y = x.transpose(1, 0, 2), y.transpose(1, 0, 2)
            xs.append(np.ascontiguousarray(x))
            ys.append(np.ascontiguousarray(y))
        yield tuple(torch.from_numpy(np.stack(v)).permute(0, 3, 1, 2).float().div_(255) for v in (xs, ys))


def score(protocol: str, pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """One pair under ``protocol``: ``pred`` H×W×3 float in [0, 1] (quantised as restore saves it,
    except for ``sidd``, which scores the float output), ``target`` uint8."""
    from mprnet.images import to_uint8
    from mprnet.metrics import psnr_ssim

    return psnr_ssim(protocol, pred if protocol == "sidd" else to_uint8(pred), target)


def evaluate(net, inputs, targets, amp_dtype, protocol: str) -> tuple[float, float]:
    import torch

    net.eval()
    scores = []
    with torch.no_grad(), torch.autocast("cpu", dtype=amp_dtype, enabled=amp_dtype is not None):
        for x, y in zip(inputs, targets):
            out = net(torch.from_numpy(x.copy()).permute(2, 0, 1)[None].float().div(255))[0].float()
            scores.append(score(protocol, out[0].clamp(0, 1).permute(1, 2, 0).numpy(), y))
    net.train()
    return tuple(float(v) for v in np.mean(scores, axis=0))


def run(args, eps: float, train, test) -> list[dict]:
    import torch

    from mprnet.losses import StageLoss
    from mprnet.model import MPRNet
    from mprnet.training.schedule import WarmupCosine, iteration_lr
    from mprnet.training.trainer import train_step

    torch.manual_seed(args.seed)
    n_feat, unet, orsnet = args.widths
    net = MPRNet(n_feat=n_feat, scale_unetfeats=unet, scale_orsnetfeats=orsnet, num_cab=args.num_cab)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr, betas=tuple(args.betas), eps=1e-8)
    schedule = WarmupCosine(args.lr, 1e-6, args.warmup, args.t_max or max(1, args.iterations - args.warmup))
    criterion = StageLoss(edge_weight=args.edge_weight, clamp_outputs=args.protocol == "sidd", eps=eps)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    amp_dtype = torch.bfloat16 if args.amp == "bf16" else None
    data = batches(*train, args.patch, args.batch, args.seed)
    rows, seconds = [], 0.0
    for it in range(args.iterations):
        for group in optimizer.param_groups:
            group["lr"] = iteration_lr(schedule, it)
        inp, tar = next(data)
        start = time.perf_counter()
        train_step(net, criterion, optimizer, scaler, inp, tar, amp_dtype)
        seconds += time.perf_counter() - start
        if (it + 1) % args.eval_every == 0 or it + 1 == args.iterations:
            psnr, ssim = evaluate(net, *test, amp_dtype, args.protocol)
            rows.append({"eps": eps, "iteration": it + 1, "train_s": seconds, "psnr": psnr, "ssim": ssim})
            print(f"eps {eps:<6g} it {it + 1:5d}  train {seconds:7.1f} s  PSNR {psnr:.3f} dB "
                  f"(gain {psnr - args.base:+.3f})  SSIM {ssim:.4f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, default=Path("data/raintrainl/train"))
    parser.add_argument("--test", type=Path, default=Path("data/rain100l_orig/test"))
    parser.add_argument("--protocol", choices=["y_channel", "rgb", "sidd"], default="y_channel",
                        help="the test set's ruler (sidd scores the float outputs)")
    parser.add_argument("--test-images", type=int, default=100)
    parser.add_argument("--eps", type=float, nargs="+", default=[1e-3, 0.1],
                        help="Charbonnier eps values to compare (official 1e-3)")
    parser.add_argument("--edge-weight", type=float, default=0.05, help="edge loss weight (official: 0.05, denoising 0)")
    parser.add_argument("--widths", type=int, nargs=3, default=[16, 8, 8], metavar=("N_FEAT", "UNET", "ORSNET"))
    parser.add_argument("--num-cab", type=int, default=2)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--betas", type=float, nargs=2, default=[0.9, 0.999], help="Adam betas (official 0.9 0.999)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--t-max", type=int, default=None,
                        help="cosine period in iterations after the warm-up (schedule.t_max; default: the rest of the run)")
    parser.add_argument("--eval-every", type=int, default=150)
    parser.add_argument("--amp", choices=["auto", "bf16", "none"], default="auto",
                        help="as train.amp (auto: bf16 where the CPU computes it natively, else fp32)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from mprnet.precision import resolve_amp

    torch.set_num_threads(args.threads)
    args.amp, why = resolve_amp(args.amp, "cpu")
    train, test = load_pairs(args.train), load_pairs(args.test, args.test_images)
    args.base = float(np.mean([score(args.protocol, x.astype(np.float32) / 255, y)[0] for x, y in zip(*test)]))
    print(f"{len(train[0])} training pairs, {len(test[0])} test images; degraded input {args.base:.3f} dB "
          f"({args.protocol}); widths {args.widths}, {args.num_cab} CABs, patch {args.patch}, batch {args.batch}, "
          f"lr {args.lr}, amp {args.amp} ({why}), {args.threads} threads", flush=True)
    rows = [row for eps in args.eps for row in run(args, eps, train, test)]
    print("\n| eps | iteration | train s | PSNR dB | gain dB | SSIM |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['eps']:g} | {r['iteration']} | {r['train_s']:.0f} | {r['psnr']:.3f} | "
              f"{r['psnr'] - args.base:+.3f} | {r['ssim']:.4f} |")


if __name__ == "__main__":
    main()
