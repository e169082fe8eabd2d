"""Slow, literal float64 NumPy/SciPy transcriptions of the MATLAB scoring code, used as the oracle.

Written independently of :mod:`mprnet.metrics.kernels`: full (non-separable) 2-D and 3-D
kernels built the way MATLAB builds them (``fspecial``/``ndgrid``), five filtered maps as in
the MATLAB code, ``scipy.signal.correlate`` / ``scipy.ndimage.correlate`` for filtering.
Meant for small test images; an 11×11×11 kernel on a full-size photo takes seconds.
"""

from __future__ import annotations

import numpy as np


def rgb2ycbcr_y(image: np.ndarray) -> np.ndarray:
    """Y of MATLAB ``rgb2ycbcr`` on uint8 H×W×3: imlincomb(T(1,1),R,T(1,2),G,T(1,3),B,16), rounded."""
    t = (1.0 / 255.0) * np.array([65.481, 128.553, 24.966])
    rgb = image.astype(np.float64)
    y = rgb[..., 0] * t[0]
    y = y + rgb[..., 1] * t[1]
    y = y + rgb[..., 2] * t[2]
    y = y + 16.0
    # MATLAB's cast to uint8 rounds half away from zero and saturates.
    return np.clip(np.sign(y) * np.floor(np.abs(y) + 0.5), 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """10·log10(peak²/MSE) over all elements; inf when the arrays are equal."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak**2 / mse))


def fspecial_gaussian(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)``."""
    r = (size - 1) / 2.0
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    h = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


def gaussian_3d(sigma: float = 1.5) -> np.ndarray:
    """The 3-D window of MATLAB ``ssim`` (getGaussianWeightingFilter): radius ceil(3σ) on each axis."""
    r = int(np.ceil(3 * sigma))
    x, y, z = np.mgrid[-r:r + 1, -r:r + 1, -r:r + 1]
    h = np.exp(-(x * x + y * y + z * z) / (2.0 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


def ssim_index(img1: np.ndarray, img2: np.ndarray, L: float = 255.0) -> float:
    """Wang et al.'s ``ssim_index.m`` with default K and window: mean of the 'valid' SSIM map."""
    from scipy.signal import correlate

    window = fspecial_gaussian(11, 1.5)
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    x, y = img1.astype(np.float64), img2.astype(np.float64)

    def filt(a):  # filter2(window, a, 'valid')
        return correlate(a, window, mode="valid", method="direct")

    mu1, mu2 = filt(x), filt(y)
    sigma1_sq = filt(x * x) - mu1 * mu1
    sigma2_sq = filt(y * y) - mu2 * mu2
    sigma12 = filt(x * y) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * sigma12 + c2)) / (
        (mu1 * mu1 + mu2 * mu2 + c1) * (sigma1_sq + sigma2_sq + c2)
    )
    return float(ssim_map.mean())


def ssim_matlab(a: np.ndarray, ref: np.ndarray, L: float) -> float:
    """MATLAB ``ssim(A, ref)`` (default arguments) on a 2-D image or an H×W×C volume.

    ``imfilter(., w, 'conv', 'replicate')`` = correlation with the symmetric window, with
    edge replication (scipy ``mode='nearest'``), same-size output; mean of the map.
    """
    from scipy.ndimage import correlate

    x, y = a.astype(np.float64), ref.astype(np.float64)
    window = fspecial_gaussian(11, 1.5) if x.ndim == 2 else gaussian_3d(1.5)
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2

    def filt(v):
        return correlate(v, window, mode="nearest")

    mux, muy = filt(x), filt(y)
    sigmax2 = filt(x * x) - mux * mux
    sigmay2 = filt(y * y) - muy * muy
    sigmaxy = filt(x * y) - mux * muy
    ssim_map = ((2 * mux * muy + c1) * (2 * sigmaxy + c2)) / ((mux * mux + muy * muy + c1) * (sigmax2 + sigmay2 + c2))
    return float(ssim_map.mean())


def y_channel(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """``evaluate_PSNR_SSIM.m`` on one uint8 RGB pair: (PSNR, SSIM) of the rounded Y channel."""
    yp, yt = rgb2ycbcr_y(pred).astype(np.float64), rgb2ycbcr_y(target).astype(np.float64)
    rmse = np.sqrt(np.mean((yp - yt) ** 2))
    p = float("inf") if rmse == 0 else float(20 * np.log10(255.0 / rmse))
    return p, ssim_index(yp, yt, 255.0)


def rgb(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """``evaluate_GOPRO_HIDE.m`` on one uint8 pair: MATLAB psnr and 3-D ssim."""
    return psnr(pred, target, 255.0), ssim_matlab(pred, target, 255.0)


def sidd(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """``evaluate_SIDD.m`` on one float [0,1] pair."""
    return psnr(pred, target, 1.0), ssim_matlab(pred, target, 1.0)


def realblur(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """``Deblurring/evaluate_RealBlur.py`` on one uint8 H×W×3 pair, step by step as the script runs.

    A separate transcription from :mod:`mprnet.metrics.realblur` (which the tests hold to it):
    ``/255`` in float32; Köhler's intensity matching; ECC homography on the grayscale images;
    the prediction *and* the all-ones mask warped with ``WARP_INVERSE_MAP``; masked PSNR with
    data range 1; scikit-image's Gaussian SSIM map times the mask, the 5-pixel border cut, summed
    over rows then columns per channel and divided by the mask's sums, the mean of the channels.
    """
    import cv2
    from skimage.metrics import structural_similarity

    tar_img = target.astype(np.float32) / 255.0
    prd_img = pred.astype(np.float32) / 255.0

    # image_align(deblurred=prd_img, gt=tar_img)
    z, x = prd_img, tar_img
    zs = (np.sum(x * z) / np.sum(z * z)) * z
    warp_matrix = np.eye(3, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 0)
    _, warp_matrix = cv2.findTransformECC(
        cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.cvtColor(zs, cv2.COLOR_RGB2GRAY), warp_matrix,
        cv2.MOTION_HOMOGRAPHY, criteria, inputMask=None, gaussFiltSize=5)
    shape = x.shape
    zr = cv2.warpPerspective(zs, warp_matrix, (shape[1], shape[0]),
                             flags=cv2.INTER_CUBIC + cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
    cr = cv2.warpPerspective(np.ones_like(zs, dtype="float32"), warp_matrix, (shape[1], shape[0]),
                             flags=cv2.INTER_NEAREST + cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    prd_img, tar_img = zr * cr, x * cr

    # compute_psnr(tar_img, prd_img, cr, data_range=1)
    err = np.sum((tar_img - prd_img) ** 2, dtype=np.float64) / np.sum(cr)
    psnr = float("inf") if err == 0 else float(10 * np.log10(1.0**2 / err))

    # compute_ssim(tar_img, prd_img, cr)
    _, ssim_map = structural_similarity(tar_img, prd_img, channel_axis=-1, gaussian_weights=True,
                                        use_sample_covariance=False, data_range=1.0, full=True)
    ssim_map = ssim_map * cr
    radius = int(3.5 * 1.5 + 0.5)
    pad = (2 * radius + 1 - 1) // 2
    cropped = ssim_map[pad:-pad, pad:-pad, :]
    crop_cr = cr[pad:-pad, pad:-pad, :]
    ssim = cropped.sum(axis=0).sum(axis=0) / crop_cr.sum(axis=0).sum(axis=0)
    return psnr, float(np.mean(ssim))
