"""How far the ``sidd`` protocol's float64 arithmetic is from MATLAB's single precision.

``evaluate_SIDD.m`` calls MATLAB ``psnr`` and ``ssim`` on single arrays (the float32 network
output and ``im2single`` of the ground truth), and MATLAB then computes in single. We compute the
same formulas in float64. This runs the 3-D SSIM (11×11×11 Gaussian, σ 1.5, replicate padding)
and the PSNR once in float32 end to end (torch conv3d) and once through ``psnr_ssim_sidd``, on
256×256×3 blocks like SIDD's validation blocks (a smooth scene, Gaussian noise of σ 0.01 as a
denoiser's residual), and prints the per-block differences. MATLAB's own summation order is not
reproduced, so this measures the size of the gap, not its sign.

    python benchmarks/sidd_precision.py --blocks 16
"""

from __future__ import annotations

import argparse

import numpy as np


def ssim_float32(pred: np.ndarray, target: np.ndarray) -> float:
    import torch
    import torch.nn.functional as F

    from mprnet.metrics import reference

    window = torch.from_numpy(reference.gaussian_3d(1.5)).float()[None, None]
    x, y = (torch.from_numpy(a).float()[None, None] for a in (pred, target))

    def filt(v):
        return F.conv3d(F.pad(v, (5,) * 6, mode="replicate"), window)

    mux, muy = filt(x), filt(y)
    muxy, mux2, muy2 = mux * muy, mux * mux, muy * muy
    sx, sy, sxy = filt(x * x) - mux2, filt(y * y) - muy2, filt(x * y) - muxy
    c1, c2 = torch.tensor(0.01).float() ** 2, torch.tensor(0.03).float() ** 2
    ssim_map = ((2 * muxy + c1) * (2 * sxy + c2)) / ((mux2 + muy2 + c1) * (sx + sy + c2))
    return float(ssim_map.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--noise", type=float, default=0.01)
    args = parser.parse_args()

    from scipy.ndimage import gaussian_filter

    from mprnet.metrics import psnr_ssim_sidd, uint8_to_single

    rng = np.random.default_rng(0)
    d_psnr, d_ssim = [], []
    for _ in range(args.blocks):
        scene = gaussian_filter(rng.random((256, 256, 3)), (2, 2, 0))
        gt = np.rint((scene - scene.min()) / (scene.max() - scene.min()) * 255).astype(np.uint8)
        pred = np.clip(gt / 255.0 + rng.normal(0, args.noise, gt.shape), 0, 1).astype(np.float32)
        g = uint8_to_single(gt)
        psnr64, ssim64 = psnr_ssim_sidd(pred, gt)
        mse32 = np.mean((pred - g) ** 2, dtype=np.float32)
        psnr32 = float(np.float32(10) * np.log10(np.float32(1) / mse32))
        d_psnr.append(psnr32 - psnr64)
        d_ssim.append(ssim_float32(pred, g) - ssim64)
    print(f"{args.blocks} blocks of 256x256x3, noise sigma {args.noise}: single minus double")
    print(f"  PSNR: max |d| {np.max(np.abs(d_psnr)):.2e} dB, mean {np.mean(d_psnr):+.2e} dB")
    print(f"  SSIM: max |d| {np.max(np.abs(d_ssim)):.2e}, mean {np.mean(d_ssim):+.2e}")


if __name__ == "__main__":
    main()
