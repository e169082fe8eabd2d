"""CPU backend of the SSIM kernels: OpenCV's SIMD separable filter in float64, one image per thread.

Same mathematics as :mod:`mprnet.metrics.kernels` (the torch backend, used on GPUs): see
that module for the definitions. On a CPU the torch version is limited by memory traffic
(eleven full-array passes per axis) and by OpenMP barriers, which stall badly when the cores
are shared; ``cv2.sepFilter2D`` keeps the eleven taps in registers and is ~2× faster per
image on one core. Parallelism comes from scoring images in threads (OpenCV and NumPy release
the GIL), with OpenCV's own thread pool switched off so that the two never contend.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .kernels import K1, K2, RADIUS, Y_OFFSET, Y_WEIGHTS, gaussian_taps, replicate_matrix

_TAPS = np.array(gaussian_taps())
_lock = threading.Lock()


def _cv2():
    import cv2

    return cv2


class _Workspace(threading.local):
    """Per-thread float64 buffers, reused across images of one shape.

    Fresh multi-megabyte arrays cost page faults on first touch; with ~20 temporaries per
    image that was a third of the run time.
    """

    shape: tuple = ()
    buffers: list = []

    def get(self, shape: tuple) -> list[np.ndarray]:
        if self.shape != shape:
            self.shape, self.buffers = shape, [np.empty(shape) for _ in range(5)]
        return self.buffers


_workspace = _Workspace()


def _ssim_mean(mu_x, mu_y, sq_sum, cross, tmp, data_range: float) -> float:
    """Mean of the SSIM map (Wang et al. 2004, eq. 13, C3 = C2/2) from filtered x, y, x²+y², x·y.

    Only σx²+σy² enters eq. 13, so one filtered map of x²+y² replaces two. Works in place,
    with OpenCV's fused a·x + b·y + c (``addWeighted``): 4× faster than the NumPy sequence.
    """
    cv2 = _cv2()
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    mu_xy = cv2.multiply(mu_x, mu_y, dst=tmp)
    num2 = cv2.addWeighted(cross, 2.0, mu_xy, -2.0, c2, dst=cross)        # 2σxy + C2
    mu_x = cv2.multiply(mu_x, mu_x, dst=mu_x)
    mu_y = cv2.multiply(mu_y, mu_y, dst=mu_y)
    mu_sq = cv2.add(mu_x, mu_y, dst=mu_x)
    den2 = cv2.addWeighted(sq_sum, 1.0, mu_sq, -1.0, c2, dst=sq_sum)     # σx² + σy² + C2
    num1 = cv2.addWeighted(mu_xy, 2.0, mu_xy, 0.0, c1, dst=mu_xy)        # 2μxμy + C1
    den1 = cv2.addWeighted(mu_sq, 1.0, mu_sq, 0.0, c1, dst=mu_sq)        # μx² + μy² + C1
    num = cv2.multiply(num1, num2, dst=num1)
    den = cv2.multiply(den1, den2, dst=den1)
    ratio = cv2.divide(num, den, dst=num)
    return float(ratio.sum() / ratio.size)


def _moments_into(bufs: list[np.ndarray]) -> None:
    """bufs[0], bufs[1] hold x, y; fill bufs[2] = x² + y², bufs[3] = x·y (bufs[4] is scratch)."""
    x, y, sq, cross, tmp = bufs
    np.multiply(x, x, out=sq)
    np.multiply(y, y, out=tmp)
    np.add(sq, tmp, out=sq)
    np.multiply(x, y, out=cross)


def _y_into(rgb: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> None:
    """MATLAB ``rgb2ycbcr`` Y of uint8 H×W×3 into a float64 plane (integer values)."""
    np.multiply(rgb[..., 0], Y_WEIGHTS[0], out=out)
    np.multiply(rgb[..., 1], Y_WEIGHTS[1], out=tmp)
    np.add(out, tmp, out=out)
    np.multiply(rgb[..., 2], Y_WEIGHTS[2], out=tmp)
    np.add(out, tmp, out=out)
    out += Y_OFFSET
    out += 0.5  # then floor: round half up, as MATLAB's cast to uint8 (values are positive)
    np.floor(out, out=out)


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` Y of uint8 …×H×W×3 as uint8; same arithmetic as ``kernels.rgb_to_y_matlab``."""
    out, tmp = np.empty(rgb.shape[:-1]), np.empty(rgb.shape[:-1])
    _y_into(rgb, out, tmp)
    return out.astype(np.uint8)


def _sse(bufs: list[np.ndarray]) -> float:
    """Σ(x − y)² of bufs[0], bufs[1] (float64; exact for 8-bit data, sums stay below 2^53)."""
    d = np.subtract(bufs[0], bufs[1], out=bufs[4])
    np.multiply(d, d, out=d)
    return float(d.sum())


def _filter_slot(bufs: list[np.ndarray], i: int, mix: np.ndarray | None = None) -> None:
    """Gaussian-filter bufs[i] (colour axis first when ``mix`` is given), through scratch bufs[4]."""
    cv2 = _cv2()
    src = bufs[i]
    if mix is not None:
        mixed = cv2.transform(src, mix, dst=bufs[4])
        bufs[4] = src
        src = mixed.reshape(src.shape)
    out = cv2.sepFilter2D(src, cv2.CV_64F, _TAPS, _TAPS, dst=bufs[4], borderType=cv2.BORDER_REPLICATE)
    # OpenCV writes into dst when it fits (it always does here); the returned array is used
    # regardless, so a reallocation could only cost speed, never correctness.
    bufs[i], bufs[4] = out.reshape(src.shape), src


def y_psnr_ssim_one(pred: np.ndarray, target: np.ndarray, luma: bool = False) -> tuple[float, float]:
    """``y_channel`` protocol on one uint8 pair (H×W×3, or H×W luma planes with ``luma``)."""
    shape = pred.shape[:2]
    if min(shape) < 2 * RADIUS + 1:
        raise ValueError(f"Wang's ssim_index needs images of at least 11×11 pixels, got {shape}")
    bufs = _workspace.get(shape)
    if luma:
        np.copyto(bufs[0], pred)
        np.copyto(bufs[1], target)
    else:
        _y_into(pred, bufs[0], bufs[4])
        _y_into(target, bufs[1], bufs[4])
    sse = _sse(bufs)
    psnr = math.inf if sse == 0 else 20.0 * math.log10(255.0 / math.sqrt(sse / bufs[0].size))
    _moments_into(bufs)
    # One plane per call: OpenCV's float64 filter is several times slower on 4-channel images.
    # The border mode only affects the 5-pixel frame that 'valid' then discards.
    for i in range(4):
        _filter_slot(bufs, i)
    r = RADIUS
    valid = [b[r:-r, r:-r] for b in bufs]
    return psnr, _ssim_mean(*valid, 255.0)


def volume_psnr_ssim_one(pred: np.ndarray, target: np.ndarray, peak: float) -> tuple[float, float]:
    """MATLAB ``psnr`` and ``ssim`` of two H×W×C volumes (C ≤ 4): 3-D Gaussian, replicate padding.

    The colour axis is filtered by ``cv2.transform`` with the replicate-padding matrix (see
    :func:`mprnet.metrics.kernels.replicate_matrix`), the spatial axes by ``sepFilter2D`` with
    ``BORDER_REPLICATE``; the three 1-D filters commute, so the order does not matter.
    """
    channels = pred.shape[2]
    if channels == 1:  # MATLAB's 2-D case; 2-D buffers keep OpenCV's shapes unambiguous
        pred, target = pred[..., 0], target[..., 0]
    bufs = _workspace.get(pred.shape)
    np.copyto(bufs[0], pred)
    np.copyto(bufs[1], target)
    sse = _sse(bufs)
    psnr = math.inf if sse == 0 else 10.0 * math.log10(peak * peak * pred.size / sse)
    _moments_into(bufs)
    mix = _mix_matrix(channels) if channels > 1 else None
    for i in range(4):
        _filter_slot(bufs, i, mix)
    return psnr, _ssim_mean(*bufs, peak)


_MIX: dict[int, np.ndarray] = {}


def _mix_matrix(channels: int) -> np.ndarray:
    if channels not in _MIX:
        _MIX[channels] = replicate_matrix(channels, list(_TAPS)).numpy()
    return _MIX[channels]


_pool: ThreadPoolExecutor | None = None


def map_images(fn: Callable[[int], tuple[float, float]], count: int, workers: int = 2) -> list[tuple[float, float]]:
    """``[fn(i) for i in range(count)]`` on ``workers`` threads, OpenCV's own pool switched off.

    The threads persist between calls so that their buffers (:class:`_Workspace`) are reused.
    """
    global _pool
    cv2 = _cv2()
    if count == 1 or workers <= 1:
        return [fn(i) for i in range(count)]
    with _lock:  # one batch at a time owns the pool and the OpenCV thread setting
        if _pool is None or _pool._max_workers != workers:
            if _pool is not None:
                _pool.shutdown()
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mprnet-metrics")
        previous = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            return list(_pool.map(fn, range(count)))
        finally:
            cv2.setNumThreads(previous)
