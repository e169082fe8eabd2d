"""Batched torch kernels behind the scoring protocols: MATLAB's Y, PSNR, Wang's SSIM, MATLAB's 3-D SSIM.

This is the backend for GPUs (and any torch device); on a CPU the protocols default to the
Numba backend in :mod:`mprnet.metrics.kernels_cpu`, which computes the same numbers several
times faster per core. The tests hold both to the float64 MATLAB transcription in :mod:`.reference`.

Everything is computed in float64. SSIM needs it: the local variance is E[x²] − μ², a
difference of two numbers near 65025 for bright 8-bit regions, and float32 loses ~1e-2 of it,
which moves SSIM by up to ~1e-4 in flat regions (far above the 1e-6 agreement we test for).

Gaussian filtering is separable shift-and-add (eleven fused multiply-adds per axis over the
whole array): torch has no fast float64 convolution, and on a CPU this beats float64
``conv2d`` by ~5×.

The Gaussian is the one every reference script uses: σ = 1.5, eleven taps (MATLAB ``fspecial``
size 11; MATLAB ``ssim``: 2·ceil(3σ)+1 = 11; scikit-image: truncate 3.5 → radius int(3.5σ+0.5)
= 5), normalised to sum 1. A 2-D/3-D Gaussian of that kind is the outer product of the 1-D
one normalised the same way, so separable filtering equals the 2-D/3-D kernel up to rounding.
"""

from __future__ import annotations

import math

import torch

SIGMA = 1.5
RADIUS = 5
K1, K2 = 0.01, 0.03

# MATLAB rgb2ycbcr (BT.601, "Introduction to Digital Video", Poynton, eq. 9.6): for uint8 input the
# script builds T = (1/255)·origT and offset = 1·origOffset and calls imlincomb, which evaluates
# T1·R + T2·G + T3·B + offset in double, left to right, then rounds half away from zero to uint8.
_Y_ROW = (65.481, 128.553, 24.966)
Y_WEIGHTS = tuple((1.0 / 255.0) * c for c in _Y_ROW)
Y_OFFSET = 16.0


def gaussian_taps(sigma: float = SIGMA, radius: int = RADIUS) -> list[float]:
    """Normalised 1-D Gaussian, as Python floats (torch's ``alpha=`` takes numbers, not tensors)."""
    values = [math.exp(-(k * k) / (2.0 * sigma * sigma)) for k in range(-radius, radius + 1)]
    total = math.fsum(values)
    return [v / total for v in values]


def replicate_matrix(length: int, taps: list[float]) -> torch.Tensor:
    """Matrix of 1-D filtering with replicate padding along an axis of ``length`` samples.

    ``out[i] = Σ_d taps[d] · in[clamp(i + d − r, 0, length − 1)]``. Used for the colour axis of
    MATLAB's 3-D SSIM: with only three slices the eleven-tap kernel is *not* truncated; the
    replicate padding folds the tail weights onto the edge slices (for slice 1: Σ_{d≤0} g(d) on
    itself, g(1) on slice 2, Σ_{d≥2} g(d) on slice 3).
    """
    radius = len(taps) // 2
    matrix = torch.zeros(length, length, dtype=torch.float64)
    for i in range(length):
        for d, w in enumerate(taps):
            j = min(max(i + d - radius, 0), length - 1)
            matrix[i, j] += w
    return matrix


def _filter_last(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """'valid' correlation along the last axis."""
    n = x.shape[-1] - len(taps) + 1
    out = x[..., 0:n] * taps[0]
    for k in range(1, len(taps)):
        out.add_(x[..., k:k + n], alpha=taps[k])
    return out


def _filter_rows(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """'valid' correlation along the second-to-last axis."""
    n = x.shape[-2] - len(taps) + 1
    out = x[..., 0:n, :] * taps[0]
    for k in range(1, len(taps)):
        out.add_(x[..., k:k + n, :], alpha=taps[k])
    return out


def gaussian_valid(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """2-D separable Gaussian over the last two axes, 'valid' region (MATLAB ``filter2(w, x, 'valid')``)."""
    return _filter_rows(_filter_last(x, taps), taps)


def _pad_replicate(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Replicate padding of the last two axes by index clamping (works for any size, even 1 pixel)."""
    h, w = x.shape[-2:]
    rows = torch.arange(-radius, h + radius, device=x.device).clamp_(0, h - 1)
    cols = torch.arange(-radius, w + radius, device=x.device).clamp_(0, w - 1)
    return x.index_select(-2, rows).index_select(-1, cols)


def _ssim_from_moments(mu_x, mu_y, sq_sum, cross, c1: float, c2: float) -> torch.Tensor:
    """SSIM map (Wang et al. 2004, eq. 13, C3 = C2/2) from filtered x, y, x²+y² and x·y.

    Only σx²+σy² enters eq. 13, so one filtered map of x²+y² replaces two.
    """
    mu_xy = mu_x * mu_y
    mu_sq = mu_x.square_().add_(mu_y.square_())
    num = (2.0 * mu_xy + c1).mul_(cross.sub_(mu_xy).mul_(2.0).add_(c2))
    den = (mu_sq + c1).mul_(sq_sum.sub_(mu_sq).add_(c2))
    return num.div_(den)


def _moments(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.stack((x, y, x * x + y * y, x * y))


def ssim_valid(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """Wang's ``ssim_index`` (2003/2004 MATLAB code): mean of the 'valid' SSIM map, per image.

    x, y: N×H×W float64 with H, W ≥ 11. Returns N values.
    """
    if x.shape[-1] < 2 * RADIUS + 1 or x.shape[-2] < 2 * RADIUS + 1:
        raise ValueError(f"Wang's ssim_index needs images of at least 11×11 pixels, got {tuple(x.shape[-2:])}")
    taps = gaussian_taps()
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    scores = []
    # One image at a time: the four float64 maps of one 481×321 image (5 MB) stay in cache,
    # which makes a batched call ~2× slower on the CPU; on a GPU batching would pay, but the
    # per-image loop costs it little.
    for i in range(x.shape[0]):
        mu_x, mu_y, sq_sum, cross = gaussian_valid(_moments(x[i], y[i]), taps)
        scores.append(_ssim_from_moments(mu_x, mu_y, sq_sum, cross, c1, c2).mean())
    return torch.stack(scores)


def ssim_volume(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """MATLAB ``ssim(A, ref)`` on H×W×C arrays: SSIM of the 3-D volume, mean of the same-size map.

    x, y: N×C×H×W float64 (C = 3 for RGB; C = 1 gives MATLAB's 2-D ``ssim`` of a grayscale
    image). MATLAB filters with a 3-D Gaussian (σ 1.5, 11 taps on every axis) through
    ``imfilter(..., 'conv', 'replicate')``; the kernel is symmetric, so convolution = correlation.
    """
    taps = gaussian_taps()
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    mix = replicate_matrix(x.shape[1], taps).to(device=x.device, dtype=x.dtype)
    scores = []
    for i in range(x.shape[0]):
        moments = _moments(x[i], y[i])                                   # 4×C×H×W
        moments = torch.einsum("ij,mjhw->mihw", mix, moments)           # colour axis
        mu_x, mu_y, sq_sum, cross = gaussian_valid(_pad_replicate(moments, RADIUS), taps)
        scores.append(_ssim_from_moments(mu_x, mu_y, sq_sum, cross, c1, c2).mean())
    return torch.stack(scores)


def psnr_from_sse(sse: torch.Tensor, count: int, peak: float) -> torch.Tensor:
    """10·log10(peak² / MSE) per image; +inf for identical images (MATLAB returns Inf too)."""
    mse = sse.to(torch.float64) / count
    return torch.where(mse > 0, 10.0 * torch.log10(peak * peak / mse), torch.full_like(mse, math.inf))


def sse_uint8(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Exact per-image sum of squared differences of two uint8 batches (int64 arithmetic)."""
    d = x.to(torch.int32) - y.to(torch.int32)
    return (d * d).flatten(1).sum(1, dtype=torch.int64)


def rgb_to_y_matlab(rgb: torch.Tensor) -> torch.Tensor:
    """Y of MATLAB ``rgb2ycbcr`` for uint8 …×H×W×3 input, as the uint8 MATLAB returns.

    The products and sums are separate float64 ops in imlincomb's order (no fused multiply-add),
    because 194 of the 2^24 colours are exact .5 ties in exact arithmetic; in MATLAB's double
    arithmetic 149 of them land just below .5 and 45 exactly on it, and only this order
    reproduces which. Rounding is half away from zero (all values are positive: floor(v + .5)).
    """
    if rgb.dtype != torch.uint8 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb_to_y_matlab expects uint8 …×3, got {rgb.dtype} {tuple(rgb.shape)}")
    # Planes first: ops on the interleaved channels are strided and ~10× slower.
    r, g, b = rgb.movedim(-1, 0).contiguous().to(torch.float64)
    y = r * Y_WEIGHTS[0]
    y = y + g * Y_WEIGHTS[1]
    y = y + b * Y_WEIGHTS[2]
    y = y + Y_OFFSET
    return torch.floor(y + 0.5).clamp_(0, 255).to(torch.uint8)
