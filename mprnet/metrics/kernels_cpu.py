"""CPU backend of the scoring kernels: one fused float64 pass per image, compiled with Numba.

Same mathematics as :mod:`mprnet.metrics.kernels` (the torch backend, used on GPUs): see that
module for the definitions; the tests hold both to the float64 transcription in
:mod:`.reference`.

Why a fused kernel: SSIM's separable Gaussian filters do a few multiply-adds per value moved,
so array-at-a-time code (NumPy, OpenCV, torch) is bound by streaming some twenty full-size
float64 temporaries per image through memory. Here each image row is read once: its moments
(x, y, x²+y², x·y) are formed, mixed across the colour axis, filtered along the row into an
11-row ring buffer that stays in cache, and each finished output row is filtered down the
columns and reduced to its SSIM sum at once. Parallelism comes from scoring images in threads
(the kernels release the GIL); the workspaces are per thread and reused, since fresh
multi-hundred-kilobyte buffers cost page faults on every image.

Floating-point notes: multiply-adds may be contracted to FMAs and the symmetric taps are
applied pairwise, so results differ from the reference by a few ulps (≤ 1e-13 on SSIM here);
PSNR sums of squared 8-bit differences are exact integers in float64.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from .kernels import K1, K2, RADIUS, Y_OFFSET, Y_WEIGHTS, gaussian_taps, replicate_matrix

_TAPS = np.array(gaussian_taps())
_W0, _W1, _W2 = Y_WEIGHTS
_EXACT = dict(nogil=True, cache=True, boundscheck=False)
_JIT = dict(_EXACT, fastmath={"contract"})


@njit(**_EXACT)
def _luma_into(rgb, out):
    """MATLAB ``rgb2ycbcr`` Y of C-contiguous uint8 rows×W×3 into float64 rows×W (integer values).

    Same operation order and roundings as MATLAB's ``imlincomb`` (see :mod:`.kernels`), hence
    compiled without FMA contraction; floor(v + 0.5) is MATLAB's cast to uint8 for these
    positive values. Each row is widened to float64 in one contiguous pass first: reading the
    interleaved bytes directly keeps the compiler from vectorising (3× slower).
    """
    rows, width = out.shape
    flat = rgb.reshape(rows, width * 3)
    wide = np.empty(width * 3)
    for i in range(rows):
        src, dst = flat[i], out[i]
        for j in range(width * 3):
            wide[j] = src[j]
        for j in range(width):
            v = wide[3 * j] * _W0
            v = v + wide[3 * j + 1] * _W1
            v = v + wide[3 * j + 2] * _W2
            v = v + Y_OFFSET
            dst[j] = np.floor(v + 0.5)


@njit(**_JIT)
def _filter_row(src, taps, dst):
    """``dst[j] = Σ_t taps[t]·src[j+t]`` for an 11-tap symmetric filter, each output in registers."""
    g0, g1, g2, g3, g4, g5 = taps[0], taps[1], taps[2], taps[3], taps[4], taps[5]
    for j in range(dst.shape[0]):
        dst[j] = (g5 * src[j + 5] + g4 * (src[j + 4] + src[j + 6]) + g3 * (src[j + 3] + src[j + 7])
                  + g2 * (src[j + 2] + src[j + 8]) + g1 * (src[j + 1] + src[j + 9]) + g0 * (src[j] + src[j + 10]))


@njit(**_JIT)
def _filter_rows(ring, rows, taps, dst):
    """``dst[j] = Σ_t taps[t]·ring[rows[t], j]``: the column pass over the 11 ring rows ``rows``."""
    g0, g1, g2, g3, g4, g5 = taps[0], taps[1], taps[2], taps[3], taps[4], taps[5]
    r0, r1, r2, r3, r4 = ring[rows[0]], ring[rows[1]], ring[rows[2]], ring[rows[3]], ring[rows[4]]
    r5, r6, r7, r8, r9, r10 = ring[rows[5]], ring[rows[6]], ring[rows[7]], ring[rows[8]], ring[rows[9]], ring[rows[10]]
    for j in range(dst.shape[0]):
        dst[j] = (g5 * r5[j] + g4 * (r4[j] + r6[j]) + g3 * (r3[j] + r7[j]) + g2 * (r2[j] + r8[j])
                  + g1 * (r1[j] + r9[j]) + g0 * (r0[j] + r10[j]))


@njit(**_JIT)
def _sse_ssim_sum(x, y, mix, crop, c1, c2, raw, padded, ring, acc, ssim_row, column_sums):
    """(Σ(x−y)², Σ SSIM map, map size) for C-contiguous H×W×C volumes ``x``, ``y`` (any real dtype).

    The Gaussian runs along the colour axis (as the matrix ``mix``: replicate padding folded in;
    identity for one channel) and both spatial axes with replicate padding. ``crop`` > 0 keeps
    only the map entries at least ``crop`` (≤ radius, so every row is still read for the PSNR)
    pixels from the border: with crop = radius that is Wang's 'valid' region, where the padding is
    never read.
    Workspaces (float64): raw (4C, W), padded (4C, W+10), ring (4C, 11, W), acc (4C, W),
    ssim_row (W), column_sums (2, W). Sums run per column first (vectorisable; for 8-bit data
    the squared differences stay exact integers), then across.
    """
    h, w, c = x.shape
    k = 2 * RADIUS + 1
    column_sums[:] = 0.0
    sse_cols, ssim_cols = column_sums[0], column_sums[1]
    # one channel: moments go straight into the padded rows; several: into raw, then mixed
    moments = padded[:, RADIUS:RADIUS + w] if c == 1 else raw
    rows = np.empty(k, np.int64)
    x_rows, y_rows = x.reshape(h, w * c), y.reshape(h, w * c)
    x_wide, y_wide = np.empty(w * c), np.empty(w * c)
    next_row = 0
    for out_row in range(crop, h - crop):
        while next_row <= min(h - 1, out_row + RADIUS):
            i = next_row
            xi, yi = x_rows[i], y_rows[i]
            for j in range(w * c):  # widen first: strided reads of narrow types do not vectorise
                x_wide[j] = xi[j]
                y_wide[j] = yi[j]
            for ch in range(c):
                mx, my, msq, mxy = moments[ch], moments[c + ch], moments[2 * c + ch], moments[3 * c + ch]
                for j in range(w):
                    a = x_wide[j * c + ch]
                    b = y_wide[j * c + ch]
                    d = a - b
                    sse_cols[j] += d * d
                    mx[j] = a
                    my[j] = b
                    msq[j] = a * a + b * b
                    mxy[j] = a * b
            for m in range(4):
                for co in range(c):
                    p = padded[m * c + co]
                    if c == 3:  # RGB: one fused pass instead of three
                        w0, w1, w2 = mix[co, 0], mix[co, 1], mix[co, 2]
                        s0, s1, s2 = raw[3 * m], raw[3 * m + 1], raw[3 * m + 2]
                        for j in range(w):
                            p[RADIUS + j] = w0 * s0[j] + w1 * s1[j] + w2 * s2[j]
                    elif c > 1:
                        for j in range(w):
                            p[RADIUS + j] = 0.0
                        for ci in range(c):
                            weight = mix[co, ci]
                            src = raw[m * c + ci]
                            for j in range(w):
                                p[RADIUS + j] += weight * src[j]
                    for j in range(RADIUS):
                        p[j] = p[RADIUS]
                        p[RADIUS + w + j] = p[RADIUS + w - 1]
                    _filter_row(p, _TAPS, ring[m * c + co, i % k])
            next_row += 1
        for t in range(k):
            rows[t] = min(max(out_row - RADIUS + t, 0), h - 1) % k
        for plane in range(4 * c):
            _filter_rows(ring[plane], rows, _TAPS, acc[plane])
        for ch in range(c):
            mu_x, mu_y, sq, cross = acc[ch], acc[c + ch], acc[2 * c + ch], acc[3 * c + ch]
            for j in range(w):
                mxy = mu_x[j] * mu_y[j]
                msq = mu_x[j] * mu_x[j] + mu_y[j] * mu_y[j]
                ssim_row[j] = ((2.0 * mxy + c1) * (2.0 * (cross[j] - mxy) + c2)) / ((msq + c1) * (sq[j] - msq + c2))
            for j in range(crop, w - crop):
                ssim_cols[j] += ssim_row[j]
    return sse_cols.sum(), ssim_cols.sum(), (h - 2 * crop) * (w - 2 * crop) * c


class _Workspace(threading.local):
    """Per-thread float64 buffers, reused across images of one width and channel count."""

    key: tuple = ()
    buffers: tuple = ()
    luma_shape: tuple = ()
    luma: tuple = ()

    def get(self, width: int, channels: int) -> tuple:
        if self.key != (width, channels):
            planes = 4 * channels
            self.key = (width, channels)
            self.buffers = (np.empty((planes, width)), np.empty((planes, width + 2 * RADIUS)),
                            np.empty((planes, 2 * RADIUS + 1, width)), np.empty((planes, width)), np.empty(width),
                            np.empty((2, width)))
        return self.buffers

    def luma_planes(self, shape: tuple) -> tuple:
        if self.luma_shape != shape:
            self.luma_shape, self.luma = shape, (np.empty(shape + (1,)), np.empty(shape + (1,)))
        return self.luma


_workspace = _Workspace()
_IDENTITY = np.ones((1, 1))
_MIX: dict[int, np.ndarray] = {}


def _mix_matrix(channels: int) -> np.ndarray:
    if channels not in _MIX:
        _MIX[channels] = replicate_matrix(channels, list(_TAPS)).numpy() if channels > 1 else _IDENTITY
    return _MIX[channels]


def _sse_ssim(x: np.ndarray, y: np.ndarray, crop: int, data_range: float) -> tuple[float, float]:
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
    sse, total, count = _sse_ssim_sum(x, y, _mix_matrix(x.shape[2]), crop, c1, c2,
                                      *_workspace.get(x.shape[1], x.shape[2]))
    return sse, total / count


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` Y of uint8 …×H×W×3 as uint8; same arithmetic as ``kernels.rgb_to_y_matlab``."""
    flat = np.ascontiguousarray(rgb).reshape(-1, rgb.shape[-2], 3)
    out = np.empty(flat.shape[:2])
    _luma_into(flat, out)
    return out.astype(np.uint8).reshape(rgb.shape[:-1])


def y_psnr_ssim_one(pred: np.ndarray, target: np.ndarray, luma: bool = False) -> tuple[float, float]:
    """``y_channel`` protocol on one uint8 pair (H×W×3, or H×W luma planes with ``luma``)."""
    shape = pred.shape[:2]
    if min(shape) < 2 * RADIUS + 1:
        raise ValueError(f"Wang's ssim_index needs images of at least 11×11 pixels, got {shape}")
    if luma:
        x, y = pred[..., None], target[..., None]
    else:
        x, y = _workspace.luma_planes(shape)
        _luma_into(np.ascontiguousarray(pred), x[..., 0])
        _luma_into(np.ascontiguousarray(target), y[..., 0])
    sse, ssim = _sse_ssim(x, y, RADIUS, 255.0)
    psnr = math.inf if sse == 0 else 20.0 * math.log10(255.0 / math.sqrt(sse / (shape[0] * shape[1])))
    return psnr, ssim


def volume_psnr_ssim_one(pred: np.ndarray, target: np.ndarray, peak: float) -> tuple[float, float]:
    """MATLAB ``psnr`` and ``ssim`` of two H×W×C volumes: 3-D Gaussian, replicate padding, same-size map."""
    sse, ssim = _sse_ssim(pred, target, 0, peak)
    psnr = math.inf if sse == 0 else 10.0 * math.log10(peak * peak * pred.size / sse)
    return psnr, ssim


_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def map_images(fn: Callable[[int], tuple[float, float]], count: int, workers: int = 2) -> list[tuple[float, float]]:
    """``[fn(i) for i in range(count)]`` on ``workers`` threads.

    The threads persist between calls so that their workspaces (:class:`_Workspace`) are reused.
    """
    global _pool
    if count == 1 or workers <= 1:
        return [fn(i) for i in range(count)]
    with _lock:
        if _pool is None or _pool._max_workers != workers:
            if _pool is not None:
                _pool.shutdown()
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mprnet-metrics")
        return list(_pool.map(fn, range(count)))
