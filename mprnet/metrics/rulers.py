"""The rulers people use instead of the paper's, as plain functions, and how far each one moves a score.

The paper scores each test set with one ruler (:mod:`.protocols`: ``y_channel``, ``rgb``,
``realblur``, ``sidd``). Readers who re-score restored images usually use another: a Python
library's defaults, a training framework's validation metric, or the paper's ruler with one step
left out. Each function here reproduces one such ruler on one pair of images and returns
``(psnr, ssim)``; :data:`RULERS` names them, says what each is and which paper protocols it is an
alternative to; :func:`ruler_sensitivity` scores a test set (arrays, or two folders through
:func:`read_pairs`) under the paper's ruler and the alternatives and reports the differences per
image and per ruler.

Inputs, for every ruler: ``pred`` and ``target`` are H×W×3 arrays of one shape, RGB, each either
uint8 (0–255) or floating point in [0, 1] (the unquantised SIDD outputs; ``mprnet restore
--save-float``). Where a ruler works on [0, 1] floats, uint8 images are divided by 255 in float32
(``uint8_to_single``: what torchvision's ``to_tensor`` and MATLAB's ``im2single`` give); where it
works on 0–255 values, floats are multiplied by 255. A shape, channel or dtype mismatch raises
``ValueError``; so does an image smaller than the ruler's window. PSNR is in dB (``inf`` for
identical images, except where the library adds an epsilon); SSIM is unitless, at most 1.

Libraries light enough to depend on are called (scikit-image); the others are reimplemented from
their published code, in float64 where the library computes in float64 and with the library's
float32 steps where they change results (noted per function), and held to the real library by
``tests/test_rulers.py`` where it is installed (the measured agreement is in each test's
docstring).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..images import to_uint8
from ..vocabulary import PAPER as PAPER_ROW
from .protocols import (PROTOCOL_REGISTRY, PROTOCOLS, get_protocol, psnr_ssim, psnr_ssim_sidd, rgb_batch, sidd_batch,
                        uint8_to_single)
from .realblur import SSIM_CROP, masked_psnr, masked_ssim
from .reference import fspecial_gaussian
from .scoring import find_pairs, load_pair

Pair = tuple[float, float]


# --------------------------------------------------------------------------- input handling


def _check_pair(pred: np.ndarray, target: np.ndarray, min_side: int, name: str, *, uint8_only: bool = False) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"{name}: prediction {pred.shape} and target {target.shape} differ in shape")
    for what, a in (("prediction", pred), ("target", target)):
        kind_ok = a.dtype == np.uint8 or (not uint8_only and np.issubdtype(a.dtype, np.floating))
        if a.ndim != 3 or a.shape[2] != 3 or not kind_ok:
            wanted = "uint8" if uint8_only else "uint8 or float"
            raise ValueError(f"{name}: {what} must be an H×W×3 {wanted} array, got {a.dtype} {a.shape}")
    if min(pred.shape[:2]) < min_side:
        raise ValueError(f"{name}: images must be at least {min_side}×{min_side} pixels, got {pred.shape[:2]}")


def _unit(image: np.ndarray) -> np.ndarray:
    """Values in [0, 1]: uint8 divided by 255 in float32 (``to_tensor``, ``im2single``); floats as they are."""
    return uint8_to_single(image) if image.dtype == np.uint8 else image


def _psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """10·log10(peak² / MSE), MSE in float64 over every element; inf for identical arrays."""
    mse = float(np.mean(np.square(a.astype(np.float64) - b.astype(np.float64))))
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def _planes(image: np.ndarray) -> np.ndarray:
    """H×W×3 → 3×H×W×1: each colour channel as a one-channel image of a batch."""
    return np.ascontiguousarray(np.moveaxis(image, -1, 0)[..., None])


# --------------------------------------------------------------------------- scikit-image


def skimage_defaults(pred: np.ndarray, target: np.ndarray) -> Pair:
    """scikit-image's ``peak_signal_noise_ratio`` and ``structural_similarity`` with their defaults.

    PSNR over all three channels, data range 255 (1 for float inputs); SSIM with
    ``channel_axis=-1`` and nothing else: a 7×7 uniform window, sample covariance (N/(N−1)),
    K1 0.01, K2 0.03, the map cropped by 3 pixels, mean per channel, mean of the channels.
    Calls scikit-image itself (a dependency; checked with 0.26.0). uint8 pairs are passed as
    they are (scikit-image computes in float64); float pairs as float64 [0, 1] values with
    data range 1 (scikit-image would compute float32 inputs in float32). Needs ≥ 7×7 pixels.
    """
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    _check_pair(pred, target, 7, "skimage")
    if pred.dtype == target.dtype == np.uint8:
        p, t, data_range = pred, target, 255
    else:
        p, t, data_range = _unit(pred).astype(np.float64), _unit(target).astype(np.float64), 1.0
    with np.errstate(divide="ignore"):  # identical images: inf, as scikit-image returns it
        psnr = peak_signal_noise_ratio(t, p, data_range=data_range)
    return float(psnr), float(structural_similarity(t, p, channel_axis=-1, data_range=data_range))


# --------------------------------------------------------------------------- SSIM map, libraries' variations


def _ssim_terms(filtered: Sequence[np.ndarray], c1: float, c2: float, *, clamp_variance: bool = False,
                relu_cs: bool = False) -> np.ndarray:
    """SSIM map l·cs from the filtered (μx, μy, E[x²], E[y²], E[xy]) (Wang et al. 2004, eq. 13, C3 = C2/2)."""
    mu_x, mu_y, xx, yy, xy = filtered
    var_x, var_y = xx - mu_x * mu_x, yy - mu_y * mu_y
    if clamp_variance:  # torchmetrics: "should be non-negative"
        var_x, var_y = np.maximum(var_x, 0.0), np.maximum(var_y, 0.0)
    cs = (2.0 * (xy - mu_x * mu_y) + c2) / (var_x + var_y + c2)
    if relu_cs:  # pyiqa: "force the ssim response to be nonnegative"
        cs = np.maximum(cs, 0.0)
    return (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1) * cs


# --------------------------------------------------------------------------- torchmetrics


def torchmetrics_defaults(pred: np.ndarray, target: np.ndarray, *, data_range: float | None = 1.0) -> Pair:
    """torchmetrics' ``peak_signal_noise_ratio`` and ``structural_similarity_index_measure`` (1.9.0).

    As the library's own definition (``functional/image/psnr.py``, ``ssim.py``), on [0, 1] RGB
    tensors, N×3×H×W, one image per call:

    * PSNR = 10·log10(data_range² / MSE) over all channels, data_range 1 (the library requires
      it), evaluated as (2·ln(range) − ln(MSE))·(10 / ln 10) with that factor in float32 as the
      library computes it (5e-8 of the value);
    * SSIM with its defaults: Gaussian kernel 11×11, σ 1.5 (int(3.5σ + 0.5)·2 + 1 taps), K1 0.01,
      K2 0.03; both images padded by 5 pixels with ``reflect`` (mirror without repeating the edge
      pixel); variances clamped at 0; the map is the input's size (the padded border is *not*
      cropped, unlike scikit-image and Wang's code) and its mean over pixels and channels is the
      score.

    ``data_range`` is the SSIM's (default 1.0, i.e. 255 on 8-bit values); ``None`` reproduces
    the library's SSIM default, which takes max(pred.max() − pred.min(), target.max() −
    target.min()) of the pair, so its constants change from image to image.

    Computed in float64 (torchmetrics computes in the input's dtype: on float32 tensors its
    numbers differ from these by up to ~1e-5 in SSIM, see ``tests/test_rulers.py``).
    Needs ≥ 6×6 pixels (reflect padding by 5).
    """
    import torch
    from scipy.ndimage import correlate1d

    from .kernels import RADIUS, gaussian_taps

    _check_pair(pred, target, RADIUS + 1, "torchmetrics")
    p, t = _unit(pred).astype(np.float64), _unit(target).astype(np.float64)
    mse = float(np.mean(np.square(p - t)))
    # psnr.py: (2·ln(range) − ln(MSE))·(10 / ln 10), the last factor from float32 tensors
    psnr = math.inf if mse == 0 else -math.log(mse) * float(10 / torch.log(torch.tensor(10.0)))
    if data_range is None:
        data_range = max(float(p.max() - p.min()), float(t.max() - t.min()))
    # reflect-padding then 'valid' filtering = same-size filtering with SciPy's 'mirror' boundary
    taps = np.array(gaussian_taps())
    filtered = [correlate1d(correlate1d(m, taps, axis=0, mode="mirror"), taps, axis=1, mode="mirror")
                for m in (p, t, p * p, t * t, p * t)]
    ssim_map = _ssim_terms(filtered, (0.01 * data_range) ** 2, (0.03 * data_range) ** 2, clamp_variance=True)
    return psnr, float(ssim_map.mean())


# --------------------------------------------------------------------------- BasicSR


def basicsr_y_channel(image: np.ndarray) -> np.ndarray:
    """BasicSR's float Y (``metric_util.to_y_channel`` → ``bgr2ycbcr(y_only=True)``), H×W float64, 0–255 scale.

    For an RGB image (uint8, or float already on the 0–255 scale): ``img.astype(float32) / 255``,
    then 16 + 65.481·R + 128.553·G + 24.966·B (the dot product in float64, BasicSR's BGR order),
    divided by 255 and cast to float32, times 255 in float32. No rounding to integers, unlike
    MATLAB's ``rgb2ycbcr`` (the paper's ``y_channel``); the float32 casts are BasicSR's.
    """
    img = image.astype(np.float32) / np.float32(255.0)
    y = np.dot(img[..., ::-1], [24.966, 128.553, 65.481]) + 16.0
    return ((y / 255.0).astype(np.float32) * np.float32(255.0)).astype(np.float64)


def _wang_ssim_per_plane(planes_x: Sequence[np.ndarray], planes_y: Sequence[np.ndarray]) -> float:
    """Mean over the planes of Wang's ``ssim_index`` ('valid' 11×11 Gaussian σ 1.5, L 255)."""
    from .kernels_cpu import y_psnr_ssim_one

    return float(np.mean([y_psnr_ssim_one(a, b, luma=True)[1] for a, b in zip(planes_x, planes_y)]))


def _to_255(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) if image.dtype == np.uint8 else image.astype(np.float64) * 255.0


def basicsr_y(pred: np.ndarray, target: np.ndarray) -> Pair:
    """BasicSR's ``calculate_psnr`` / ``calculate_ssim`` with ``test_y_channel=True``, ``crop_border=0``.

    ``basicsr/metrics/psnr_ssim.py`` of BasicSR 1.4.2 (the last release), fed the images in the
    channel order it expects (BGR, as ``cv2.imread`` gives; here from RGB, so Y is right):
    Y = :func:`basicsr_y_channel` (float, unrounded); PSNR = 10·log10(255² / MSE) in float64;
    SSIM = the ``_ssim`` of the Y plane: ``cv2.getGaussianKernel(11, 1.5)`` outer product,
    ``filter2D`` then the 5-pixel border cut (Wang's 'valid' region), C1 = (0.01·255)²,
    C2 = (0.03·255)², mean of the map. The same formulas as the paper's ``y_channel`` except that
    Y is not rounded to integers. Needs ≥ 11×11 pixels.
    """
    _check_pair(pred, target, 11, "basicsr_y")
    yp, yt = basicsr_y_channel(_to_255(pred)), basicsr_y_channel(_to_255(target))
    return _psnr(yp, yt, 255.0), _wang_ssim_per_plane([yp], [yt])


def basicsr_rgb(pred: np.ndarray, target: np.ndarray) -> Pair:
    """BasicSR's ``calculate_psnr`` / ``calculate_ssim`` on RGB (``test_y_channel=False``, ``crop_border=0``).

    As NAFNet and other BasicSR-based code score GoPro and SIDD: PSNR = 10·log10(255² / MSE)
    over all channels (for uint8 images identical to MATLAB's ``psnr``, the paper's ``rgb``
    PSNR); SSIM = the mean over the three channels of the 2-D 'valid' Gaussian SSIM (as in
    :func:`basicsr_y`), instead of MATLAB's 3-D SSIM of the volume. Floats are scaled to 0–255.
    Needs ≥ 11×11 pixels.
    """
    _check_pair(pred, target, 11, "basicsr_rgb")
    p, t = _to_255(pred), _to_255(target)
    return _psnr(p, t, 255.0), _wang_ssim_per_plane(list(np.moveaxis(p, -1, 0)), list(np.moveaxis(t, -1, 0)))


# --------------------------------------------------------------------------- IQA-PyTorch (pyiqa)

PYIQA_EPS = 1e-8  # added to the MSE by pyiqa's ``psnr``
_YIQ = ((0.299, 0.587, 0.114), (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112))


def _pyiqa_tensor(image: np.ndarray):
    """1×3×H×W float32 tensor in [0, 1], laid out as torchvision's ``to_tensor`` leaves it."""
    import torch

    return torch.from_numpy(np.array(_unit(image), dtype=np.float32)).permute(2, 0, 1).contiguous()[None]


def pyiqa_y_channel(image: np.ndarray):
    """pyiqa's Y (``utils/color_util.to_y_channel``, ``color_space='yiq'``): a 1×1×H×W float32 tensor.

    ``image``: H×W×3 uint8 or [0, 1] float. Y of YIQ, 0.299·R + 0.587·G + 0.114·B on [0, 1]
    values, in [0, 1]: full range, not the 16–235 BT.601 Y of MATLAB and BasicSR (which is
    16 + 219/255 of it; chaofengc/IQA-PyTorch#257). Computed as pyiqa computes it, a float32
    ``matmul`` of the N×H×W×3 view with the 3×3 YIQ matrix: of the 2^24 colours, 16,782 have
    255·Y exactly on .5 in exact arithmetic, and the float32 rounding decides on which side they
    fall when pyiqa rounds 255·Y for its SSIM (on this CPU, 2,925 colours then round otherwise
    than exact arithmetic would).
    """
    import torch

    x = _pyiqa_tensor(image)
    weights = torch.tensor(_YIQ).t()
    return torch.matmul(x.permute(0, 2, 3, 1), weights).permute(0, 3, 1, 2)[:, :1]


def _pyiqa_psnr(x, y) -> float:
    """pyiqa's ``psnr`` (``archs/psnr_arch.py``) of two 1×C×H×W float32 tensors in [0, 1].

    10·log10(1 / (mean((x − y)²) + 1e-8)), in float32 as pyiqa computes it; the epsilon caps
    identical images at 80 dB.
    """
    import torch

    mse = torch.mean((x - y) ** 2, dim=[1, 2, 3])
    return float(10 * torch.log10(1.0 / (mse + PYIQA_EPS)))


def _pyiqa_ssim(yp, yt) -> float:
    """pyiqa's ``ssim`` (``archs/ssim_arch.py``; SSIM module defaults) of two Y planes in [0, 1].

    255·Y rounded half to even (``to_y_channel`` with data range 255, then ``preprocess_rgb``),
    float64; the window is MATLAB ``fspecial('gaussian', 11, 1.5)`` rounded to float32 (pyiqa
    builds it with ``.float()``; this alone moves SSIM by ~7e-7), 'valid' 2-D correlation,
    C1 = (0.01·255)², C2 = (0.03·255)², the contrast-structure term clamped at 0 (``relu``),
    mean of the map. ``downsample`` is False by default (pyiqa's ``ssim`` entry); pyiqa filters
    with ``conv2d``, this with SciPy's FFT correlation (≤ 5.2e-14 of SSIM apart on Rain100L).
    """
    from scipy.signal import correlate

    x = (yp[0, 0] * 255.0).round().double().numpy()
    y = (yt[0, 0] * 255.0).round().double().numpy()
    window = fspecial_gaussian(11, 1.5).astype(np.float32).astype(np.float64)
    filtered = [correlate(m, window, mode="valid") for m in (x, y, x * x, y * y, x * y)]
    return float(_ssim_terms(filtered, (0.01 * 255) ** 2, (0.03 * 255) ** 2, relu_cs=True).mean())


def pyiqa_defaults(pred: np.ndarray, target: np.ndarray) -> Pair:
    """IQA-PyTorch's ``pyiqa.create_metric('psnr')`` and ``create_metric('ssim')`` with their defaults (pyiqa 0.1.16).

    The two metrics do not agree on the colour space by default:

    * ``psnr``: RGB, ``test_y_channel=False``, on [0, 1] float32 tensors (:func:`_pyiqa_psnr`):
      the epsilon lowers a 40 dB score by 4e-4 dB and caps identical images at 80 dB; float32
      arithmetic puts the score ~2e-6 dB from its float64 value;
    * ``ssim``: ``test_y_channel=True``: the Y of :func:`pyiqa_y_channel` (YIQ), ×255 and
      rounded, then :func:`_pyiqa_ssim`.

    Needs ≥ 11×11 pixels.
    """
    _check_pair(pred, target, 11, "pyiqa")
    psnr = _pyiqa_psnr(_pyiqa_tensor(pred), _pyiqa_tensor(target))
    return psnr, _pyiqa_ssim(pyiqa_y_channel(pred), pyiqa_y_channel(target))


def pyiqa_y(pred: np.ndarray, target: np.ndarray) -> Pair:
    """IQA-PyTorch's ``psnry`` (``psnr`` with ``test_y_channel=True``) and its default ``ssim`` (pyiqa 0.1.16).

    PSNR = :func:`_pyiqa_psnr` of the unrounded YIQ Y in [0, 1] (:func:`pyiqa_y_channel`;
    ``to_y_channel`` rounds only when asked for a 0–255 range); SSIM as in :func:`pyiqa_defaults`.
    Needs ≥ 11×11 pixels.
    """
    _check_pair(pred, target, 11, "pyiqa_y")
    yp, yt = pyiqa_y_channel(pred), pyiqa_y_channel(target)
    return _pyiqa_psnr(yp, yt), _pyiqa_ssim(yp, yt)


# --------------------------------------------------------------------------- the paper's rulers, one step changed


def matlab_ssim_2d(pred: np.ndarray, target: np.ndarray) -> Pair:
    """The ``rgb`` protocol with SSIM per channel: MATLAB ``psnr`` and the mean of three 2-D ``ssim``.

    ``mean([ssim(A(:,:,1), R(:,:,1)), ssim(A(:,:,2), R(:,:,2)), ssim(A(:,:,3), R(:,:,3))])``:
    MATLAB's default ``ssim`` of each colour channel as a 2-D image (11×11 Gaussian σ 1.5,
    replicate padding, same-size map, L = 255, or 1 for float images), averaged over the channels,
    instead of one ``ssim`` of the H×W×3 volume with a 3-D Gaussian (the paper's
    ``evaluate_GOPRO_HIDE.m`` and ``evaluate_SIDD.m``: the ``rgb`` and ``sidd`` protocols). Not the grey
    image: ``rgb2gray`` first would be a third ruler. PSNR is the paper's (MSE over all channels,
    peak 255 or 1). Floats (SIDD) are scored as ``sidd`` scores them (peak 1, L = 1).
    """
    _check_pair(pred, target, 1, "matlab_ssim_2d")
    if pred.dtype == target.dtype == np.uint8:
        p, t, peak, batch = pred, target, 255.0, rgb_batch
    else:
        p, t, peak, batch = _unit(pred), _unit(target), 1.0, sidd_batch
    _, ssim = batch(_planes(p), _planes(t))
    return _psnr(p, t, peak), float(np.mean(ssim))


def realblur_unaligned(pred: np.ndarray, target: np.ndarray) -> Pair:
    """``evaluate_RealBlur.py`` with its alignment step (``image_align``) skipped.

    Neither the intensity matching nor the ECC homography: the prediction is scored where it
    lies, with an all-ones mask, through the script's own masked PSNR and SSIM
    (:mod:`.realblur`): float32 /255 images, PSNR = 10·log10(1 / MSE), scikit-image's Gaussian
    SSIM map (σ 1.5, population covariance, data range 1), 5-pixel border cut, mean per channel,
    mean of the channels. This is how RealBlur is scored by code that treats it like GoPro.
    uint8 images only (RealBlur is 8-bit); needs > 11×11 pixels.
    """
    _check_pair(pred, target, 2 * SSIM_CROP + 2, "realblur_unaligned", uint8_only=True)
    x, z = uint8_to_single(target), uint8_to_single(pred)
    mask = np.ones_like(x)
    return masked_psnr(x, z, mask), masked_ssim(x, z, mask)


def sidd_8bit(pred: np.ndarray, target: np.ndarray) -> Pair:
    """The ``sidd`` protocol on the 8-bit output instead of the unquantised float output.

    The float prediction in [0, 1] is quantised as the PNG files are written
    (:func:`mprnet.images.to_uint8`: clamp, ×255, round half to even), read back as
    ``im2single``, then scored as ``evaluate_SIDD.m`` (MATLAB ``psnr`` with peak 1 and 3-D
    ``ssim``). A uint8 prediction is already quantised and scores as the ``sidd`` protocol does.
    """
    _check_pair(pred, target, 1, "sidd_8bit")
    quantised = pred if pred.dtype == np.uint8 else to_uint8(pred)
    return psnr_ssim_sidd(quantised, target)


# --------------------------------------------------------------------------- per-dataset aggregation


def psnr_of_mean_mse(psnr: Sequence[float] | np.ndarray, weights: Sequence[float] | np.ndarray | None = None) -> float:
    """PSNR of the mean MSE of a test set, from the per-image PSNRs (dB), instead of the mean PSNR.

    Every PSNR here is 10·log10(peak² / MSE) with one peak per test set, so
    MSE_i / peak² = 10^(−PSNR_i/10) and the aggregate is −10·log10(Σ w_i·10^(−PSNR_i/10) / Σ w_i),
    whatever the peak. ``weights`` None: each image counts once (the mean of the per-image
    MSEs); the number of values each MSE was taken over (H·W·C): the MSE pooled over every
    pixel, which is what torchmetrics' ``PeakSignalNoiseRatio`` module reports when it is updated
    image by image over a test set (it accumulates squared errors and counts).

    By Jensen's inequality the result is ≤ the mean PSNR, with equality only when all images
    score the same. An infinite PSNR (identical images) adds an MSE of 0; all infinite gives inf.
    Raises ValueError for an empty list, NaN, or weights of another length or not positive.
    """
    values = np.asarray(psnr, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or np.isnan(values).any():
        raise ValueError(f"psnr_of_mean_mse needs a non-empty list of PSNRs without NaN, got {values!r}")
    w = np.ones_like(values) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != values.shape or not (w > 0).all():
        raise ValueError(f"weights must be {values.size} positive numbers, got {w!r}")
    mean_mse = float(np.sum(w * np.power(10.0, -values / 10.0)) / np.sum(w))  # relative to peak²
    return math.inf if mean_mse == 0 else -10.0 * math.log10(mean_mse)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Ruler:
    """An alternative ruler: ``score(pred, target) -> (psnr, ssim)`` for one pair, or, for a
    ``dataset`` ruler, ``score(psnrs) -> psnr`` of the per-image PSNRs of the paper's ruler."""

    name: str
    score: Callable
    description: str
    protocols: tuple[str, ...]  # the paper protocols it is an alternative to
    kind: str = "image"  # "image" or "dataset"
    label: str = ""  # its name in tables and figures (default: ``name``)

    @property
    def datasets(self) -> tuple[str, ...]:
        """The paper's test sets scored with those protocols."""
        return tuple(d for p in self.protocols for d in PROTOCOL_REGISTRY[p].datasets)


_ALL = PROTOCOLS
RULERS: dict[str, Ruler] = {r.name: r for r in (
    Ruler("skimage", skimage_defaults, "scikit-image defaults: RGB PSNR, SSIM 7×7 uniform window per channel", _ALL,
          label="scikit-image"),
    Ruler("torchmetrics", torchmetrics_defaults,
          "torchmetrics: RGB PSNR, Gaussian SSIM over RGB, reflect-padded, uncropped map", _ALL, label="torchmetrics"),
    Ruler("basicsr_y", basicsr_y, "BasicSR test_y_channel: float (unrounded) BT.601 Y, Wang's SSIM", ("y_channel",),
          label="BasicSR (Y)"),
    Ruler("basicsr_rgb", basicsr_rgb, "BasicSR on RGB: PSNR over channels, mean of 2-D 'valid' SSIM per channel",
          ("rgb", "realblur", "sidd"), label="BasicSR (RGB)"),
    Ruler("pyiqa", pyiqa_defaults, "IQA-PyTorch 'psnr' (RGB, +1e-8) and 'ssim' (YIQ Y, rounded)", _ALL,
          label="IQA-PyTorch"),
    Ruler("pyiqa_y", pyiqa_y, "IQA-PyTorch 'psnry' (YIQ Y, unrounded, +1e-8) and 'ssim'", ("y_channel",),
          label="IQA-PyTorch (psnry)"),
    Ruler("matlab_ssim_2d", matlab_ssim_2d, "MATLAB ssim per colour channel (2-D), averaged, not of the 3-D volume",
          ("rgb", "sidd"), label="MATLAB 2-D SSIM"),
    Ruler("realblur_unaligned", realblur_unaligned, "RealBlur script without alignment (no intensity matching, no ECC)",
          ("realblur",), label="RealBlur, no alignment"),
    Ruler("sidd_8bit", sidd_8bit, "SIDD script on the 8-bit (quantised) outputs", ("sidd",), label="SIDD, 8-bit outputs"),
    Ruler("psnr_of_mean_mse", psnr_of_mean_mse, "per test set: PSNR of the mean MSE instead of the mean PSNR",
          _ALL, kind="dataset", label="PSNR of mean MSE"),
)}


def rulers_for(protocol: str) -> list[str]:
    """Names of the rulers that are alternatives to the paper's ``protocol``, in registry order."""
    get_protocol(protocol, scored=True)  # ValueError naming the choices
    return [name for name, r in RULERS.items() if protocol in r.protocols]


# --------------------------------------------------------------------------- sensitivity

PAPER = PAPER_ROW  # the paper's own ruler, first in every table
PER_IMAGE_COLUMNS = ["image", "ruler", "psnr", "ssim", "paper_psnr", "paper_ssim", "d_psnr", "d_ssim"]
SUMMARY_COLUMNS = ["ruler", "kind", "n_images", "psnr", "ssim", "d_psnr_mean", "d_psnr_std", "d_psnr_min",
                   "d_psnr_max", "d_ssim_mean", "d_ssim_std", "d_ssim_min", "d_ssim_max"]


class Sensitivity(NamedTuple):
    """The two tables of :func:`ruler_sensitivity`."""

    per_image: object  # pandas DataFrame, PER_IMAGE_COLUMNS
    summary: object  # pandas DataFrame, SUMMARY_COLUMNS


def _delta(value: float, paper: float) -> float:
    """value − paper; 0 where both are the same infinity (identical images under both rulers)."""
    return 0.0 if value == paper else value - paper


def select_rulers(protocol: str, rulers: Iterable[str] | None) -> list[Ruler]:
    """The :class:`Ruler` s named ``rulers`` (None: :func:`rulers_for` the protocol), checked:
    ValueError naming a ruler that is unknown or no alternative to ``protocol``."""
    names = rulers_for(protocol) if rulers is None else list(rulers)
    unknown = [n for n in names if n not in RULERS]
    if unknown:
        raise ValueError(f"unknown ruler(s) {', '.join(unknown)}; choose from {', '.join(RULERS)}")
    wrong = [n for n in names if protocol not in RULERS[n].protocols]
    if wrong:
        raise ValueError(f"ruler(s) {', '.join(wrong)} are not alternatives to the {protocol} protocol "
                         f"(for {protocol}: {', '.join(rulers_for(protocol))})")
    return [RULERS[n] for n in names]


def read_pairs(protocol: str, pred_dir: str | os.PathLike, target_dir: str | os.PathLike, *,
               progress: bool = False) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(stem, pred, target) of every image of two folders, one pair at a time, for :func:`ruler_scores`.

    Paired and read as ``mprnet score --protocol PROTOCOL`` reads them
    (:func:`mprnet.metrics.scoring.find_pairs`: by stem; for ``sidd`` the unquantised
    ``<pred_dir>/float/<stem>.npy`` when that folder exists), with the same checks (unpaired
    files, size mismatch, grey against RGB, images smaller than the window: ``DataError`` naming
    the files). Images are uint8 H×W×3 (H×W×1 for grey pairs, which the rulers refuse); the SIDD
    prediction float32 in [0, 1] from ``float/``, and the SIDD target stays uint8 (the protocol
    and the rulers convert it themselves). ``progress``: a progress bar over the pairs (stderr).
    """
    record = get_protocol(protocol, scored=True)
    found = find_pairs(protocol, pred_dir, target_dir)
    if progress:
        from tqdm import tqdm

        found = tqdm(found, desc=f"rulers {protocol}", unit="img")
    for stem, pred_path, target_path in found:
        pair = load_pair(record, stem, pred_path, target_path, as_float=False)  # the rulers convert themselves
        yield stem, pair.pred, pair.target


def ruler_scores(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]], protocol: str,
                 rulers: Iterable[str] | None = None):
    """Every image under the paper's ``protocol`` and under each alternative image ruler.

    ``pairs``: (stem, pred, target) as the protocol takes them (uint8 H×W×3; for ``sidd`` the
    float32 prediction in [0, 1] and the uint8 target). ``rulers``: registry names, default
    :func:`rulers_for` the protocol; a name that is unknown or not an alternative to the protocol
    raises ValueError. Dataset rulers add no rows here (see :func:`sensitivity_summary`).

    Returns a pandas DataFrame with :data:`PER_IMAGE_COLUMNS`, one row per (image, ruler), the
    paper's own ruler first as ruler ``"paper"`` (Δ 0): ``psnr``/``ssim`` under the ruler,
    ``paper_psnr``/``paper_ssim`` under the protocol, ``d_psnr``/``d_ssim`` = ruler − paper (dB,
    SSIM units; 0 where both PSNRs are infinite). A ruler's or protocol's error is re-raised as
    ``type(error)`` with the stem in front.
    """
    import pandas as pd

    image_rulers = [r for r in select_rulers(protocol, rulers) if r.kind == "image"]
    rows = []
    for stem, pred, target in pairs:
        try:
            paper = psnr_ssim(protocol, pred, target)
            scored = [(PAPER, paper)] + [(r.name, r.score(pred, target)) for r in image_rulers]
        except (ValueError, RuntimeError) as exc:
            raise type(exc)(f"{stem}: {exc}") from exc
        for name, (psnr, ssim) in scored:
            rows.append({"image": stem, "ruler": name, "psnr": psnr, "ssim": ssim, "paper_psnr": paper[0],
                         "paper_ssim": paper[1], "d_psnr": _delta(psnr, paper[0]), "d_ssim": ssim - paper[1]})
    return pd.DataFrame(rows, columns=PER_IMAGE_COLUMNS)


def sensitivity_summary(per_image, protocol: str, rulers: Iterable[str] | None = None):
    """One row per ruler of a test set: its scores and the spread of its Δ against the paper's ruler.

    ``per_image``: :func:`ruler_scores`' table (it must hold the ``"paper"`` rows). ``rulers``:
    as there; the summary lists ``"paper"``, then each image ruler found in the table, then each
    dataset ruler. Returns a pandas DataFrame with :data:`SUMMARY_COLUMNS`:

    * ``psnr``, ``ssim``: the test set's score under the ruler (mean over images; for a dataset
      ruler its aggregate of the paper's per-image PSNRs, and no SSIM);
    * ``d_psnr_mean``: the mean per-image Δ (dB; = ``psnr`` − the paper ruler's mean PSNR where
      all are finite; for a dataset ruler exactly that difference), and the spread of the Δ:
      ``d_psnr_std`` (sample std, ddof 1; NaN for one image or for a dataset ruler),
      ``d_psnr_min``, ``d_psnr_max``; the same for SSIM. An infinite Δ (one ruler
      infinite, the other not) makes the mean infinite and the std NaN.
    """
    import pandas as pd

    selected = select_rulers(protocol, rulers)
    paper = per_image[per_image["ruler"] == PAPER]
    if paper.empty:
        raise ValueError("the per-image table has no 'paper' rows (make it with ruler_scores)")
    rows = []
    names = [PAPER] + [r.name for r in selected if r.kind == "image" and r.name in set(per_image["ruler"])]
    for name in names:
        sub = per_image[per_image["ruler"] == name]
        row = {"ruler": name, "kind": "image", "n_images": len(sub), "psnr": sub["psnr"].mean(),
               "ssim": sub["ssim"].mean()}
        for metric in ("psnr", "ssim"):
            d = sub[f"d_{metric}"].to_numpy(dtype=np.float64)
            with np.errstate(invalid="ignore"):
                std = float(np.std(d, ddof=1)) if len(d) > 1 else math.nan
            row |= {f"d_{metric}_mean": float(d.mean()), f"d_{metric}_std": std,
                    f"d_{metric}_min": float(d.min()), f"d_{metric}_max": float(d.max())}
        rows.append(row)
    for ruler in (r for r in selected if r.kind == "dataset"):
        value = ruler.score(paper["psnr"].to_numpy())
        rows.append({"ruler": ruler.name, "kind": "dataset", "n_images": len(paper), "psnr": value,
                     "d_psnr_mean": _delta(value, float(paper["psnr"].mean()))})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def ruler_sensitivity(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]], protocol: str,
                      rulers: Iterable[str] | None = None) -> Sensitivity:
    """:func:`ruler_scores` and :func:`sensitivity_summary` of one test set: ``(per_image, summary)``."""
    rulers = None if rulers is None else list(rulers)
    per_image = ruler_scores(pairs, protocol, rulers)
    return Sensitivity(per_image, sensitivity_summary(per_image, protocol, rulers))


def write_ruler_scores(per_image, path: str | os.PathLike) -> None:
    """Write :func:`ruler_scores`' table atomically (every float exactly: ``repr``; ``inf`` as ``inf``).

    Refuses (``NonFiniteError`` naming ``path``) a table whose paper rows hold a NaN, as
    ``mprnet score`` refuses such scores: an alternative ruler may not hide a failed restore.
    """
    from ..atomic import atomic_path
    from .scoring import check_scores

    check_scores(per_image[per_image["ruler"] == PAPER], str(path))
    with atomic_path(path) as tmp:
        per_image.to_csv(tmp, index=False, float_format=None)


def read_ruler_scores(path: str | os.PathLike):
    """A file of :func:`write_ruler_scores` as a DataFrame with :data:`PER_IMAGE_COLUMNS` (stems as
    text); ``DataError`` naming the file when a column is absent or it holds no paper rows."""
    from ..csv_files import read_csv_checked
    from ..errors import DataError

    frame = read_csv_checked(path, PER_IMAGE_COLUMNS, "ruler score", dtype={"image": str, "ruler": str})
    if not (frame["ruler"] == PAPER).any():
        raise DataError(f"{path}: no rows of the paper's ruler ('{PAPER}')")
    return frame
