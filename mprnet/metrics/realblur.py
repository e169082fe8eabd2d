"""RealBlur protocol (``Deblurring/evaluate_RealBlur.py``, after Rim et al. ECCV 2020 and Köhler et al.).

The restored image is first aligned to the ground truth, because RealBlur's pairs are only
approximately registered:

1. intensity matching z ← (Σx·z / Σz·z)·z, x = ground truth;
2. a homography by OpenCV ``findTransformECC`` on the RGB→gray images (100 iterations,
   eps 0, Gaussian pre-filter size 5), starting from the identity;
3. warping of z with INTER_CUBIC | WARP_INVERSE_MAP and BORDER_REFLECT; a validity mask from
   warping an all-ones image the same way (INTER_NEAREST | WARP_INVERSE_MAP, border 0), so the
   mask marks exactly the pixels whose source lies inside the prediction; both images times the mask.

PSNR = 10·log10(1 / (Σ(x−z)² / Σmask)) (float64 sum, mask summed over all 3 channels).
SSIM = scikit-image's Gaussian SSIM map (per channel, σ 1.5, population covariance, data
range 1) times the mask, a 5-pixel border cropped, Σmap/Σmask per channel (summed over rows,
then columns, in float32 as the script does), mean of channels.

The arithmetic keeps the script's float32 arrays (it reads uint8 and divides by 255 in
float32), because this protocol *is* that Python script: scikit-image keeps float32 inputs in
float32. The script's ``multichannel=True`` is spelled ``channel_axis=-1`` in scikit-image ≥ 0.19.
"""

from __future__ import annotations

import numpy as np

ECC_ITERATIONS = 100
ECC_EPS = 0.0
ECC_GAUSS_FILTER = 5
SSIM_CROP = 5  # (win_size − 1)/2 for the 11-tap Gaussian window (radius int(3.5·1.5 + 0.5))


def align(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Align float32 H×W×3 ``pred`` to ``target``; returns (aligned pred, masked target, mask, homography).

    Raises ``RuntimeError`` when ECC does not converge (OpenCV throws for uncorrelated images).
    """
    import cv2

    z, x = pred, target
    energy = np.sum(z * z)
    if energy == 0:
        raise RuntimeError("the prediction is all black: intensity matching (Σx·z / Σz·z) divides by zero")
    zs = (np.sum(x * z) / energy) * z
    warp = np.eye(3, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_ITERATIONS, ECC_EPS)
    try:
        _, warp = cv2.findTransformECC(
            cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.cvtColor(zs, cv2.COLOR_RGB2GRAY),
            warp, cv2.MOTION_HOMOGRAPHY, criteria, None, ECC_GAUSS_FILTER,
        )
    except cv2.error as exc:
        raise RuntimeError(f"ECC alignment failed: {str(exc).strip().splitlines()[-1]}") from None
    size = (x.shape[1], x.shape[0])
    zr = cv2.warpPerspective(zs, warp, size, flags=cv2.INTER_CUBIC + cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REFLECT)
    # The mask is warped exactly as the image (WARP_INVERSE_MAP): a pixel is valid when the
    # point it samples lies inside the prediction.
    mask = cv2.warpPerspective(np.ones_like(zs, dtype=np.float32), warp, size,
                               flags=cv2.INTER_NEAREST + cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return zr * mask, x * mask, mask, warp


def masked_psnr(target: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> float:
    err = np.sum((target - pred) ** 2, dtype=np.float64) / np.sum(mask, dtype=np.float64)
    return float("inf") if err == 0 else float(10 * np.log10(1.0 / err))


def masked_ssim(target: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    _, ssim_map = structural_similarity(
        target, pred, channel_axis=-1, gaussian_weights=True, use_sample_covariance=False,
        data_range=1.0, full=True,
    )
    c = SSIM_CROP
    ssim_map = (ssim_map * mask)[c:-c, c:-c, :]
    mask = mask[c:-c, c:-c, :]
    per_channel = ssim_map.sum(axis=0).sum(axis=0) / mask.sum(axis=0).sum(axis=0)
    return float(np.mean(per_channel))


def psnr_ssim_realblur(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """RealBlur PSNR/SSIM of one pair of uint8 H×W×3 images (aligned, masked)."""
    if pred.shape != target.shape or pred.ndim != 3 or pred.shape[2] != 3:
        raise ValueError(f"realblur expects two H×W×3 images of one size, got {pred.shape} and {target.shape}")
    if min(pred.shape[:2]) <= 2 * SSIM_CROP:
        raise ValueError(f"realblur needs images larger than 11×11 pixels, got {pred.shape[:2]}")
    x = target.astype(np.float32) / 255.0
    z = pred.astype(np.float32) / 255.0
    zr, xr, mask, _ = align(z, x)
    return masked_psnr(xr, zr, mask), masked_ssim(xr, zr, mask)
