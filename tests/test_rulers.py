"""Alternative rulers (mprnet.metrics.rulers) against their libraries and against literal
transcriptions of the published code, written here step by step from the libraries' sources
(scikit-image 0.26, torchmetrics 1.9.0 ``functional/image``, BasicSR 1.4.2
``basicsr/metrics/psnr_ssim.py`` + ``metric_util.py`` + ``utils/color_util.py``, IQA-PyTorch
(pyiqa) 0.1.16 ``archs/psnr_arch.py`` + ``archs/ssim_arch.py`` + ``utils/color_util.py``,
``evaluate_RealBlur.py``); the library itself where it is installed; the Rain100L test images
where ``MPRNET_REALDATA`` names them (as in tests/test_realdata.py)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from scipy.signal import correlate
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mprnet.images import to_uint8
from mprnet.metrics import psnr_ssim, reference, rulers, uint8_to_single
from mprnet.metrics.protocols import PROTOCOLS

SHAPES = [(11, 11, 3), (12, 17, 3), (37, 53, 3), (64, 48, 3)]


def pair(seed: int, shape=(37, 53, 3), noise: float = 9.0):
    """A coloured scene with a saturated band and a black corner, and a noisy, biased restoration."""
    rng = np.random.default_rng(seed)
    scene = gaussian_filter(rng.random(shape), sigma=(3, 3, 0))
    target = np.rint((scene - scene.min()) / (scene.max() - scene.min()) * 255).astype(np.uint8)
    band = max(1, shape[0] // 4)
    target[:band] = np.clip(target[:band].astype(int) + 140, 0, 255)  # saturated at 255
    target[-3:, :5] = 0
    target[..., 1] //= 2  # unequal channels
    pred = np.clip(target * 0.97 + rng.normal(0, noise, shape) + 4, 0, 255).astype(np.uint8)
    return pred, target


def float_pair(seed: int, shape=(37, 53, 3)):
    """SIDD-like: an unquantised float32 prediction in [0, 1] and its uint8 target."""
    _, target = pair(seed, shape)
    rng = np.random.default_rng(seed + 100)
    pred = np.clip(target / 255.0 + rng.normal(0, 0.02, shape), 0, 1).astype(np.float32)
    return pred, target


def _psnr(a, b, peak):
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


# ---------------------------------------------------------------------------- literal transcriptions


def skimage_literal(pred, target, data_range):
    """scikit-image's default SSIM: 7×7 mean filter, sample covariance, crop 3, mean per channel."""
    window = np.full((7, 7), 1 / 49)
    cov_norm = 49 / 48
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for ch in range(3):
        x, y = pred[..., ch].astype(np.float64), target[..., ch].astype(np.float64)
        ux, uy = correlate(x, window, "valid", "direct"), correlate(y, window, "valid", "direct")
        vx = cov_norm * (correlate(x * x, window, "valid", "direct") - ux * ux)
        vy = cov_norm * (correlate(y * y, window, "valid", "direct") - uy * uy)
        vxy = cov_norm * (correlate(x * y, window, "valid", "direct") - ux * uy)
        s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        values.append(s.mean())
    return _psnr(pred, target, data_range), float(np.mean(values))


def torchmetrics_literal(pred, target, data_range=1.0):
    """torchmetrics 1.9.0: reflect pad 5, 2-D Gaussian from its 1-D kernel, variances ≥ 0, uncropped map."""
    x, y = [a.astype(np.float32) / np.float32(255) if a.dtype == np.uint8 else a for a in (pred, target)]
    x, y = x.astype(np.float64), y.astype(np.float64)
    mse = np.mean((x - y) ** 2)
    psnr = -math.log(mse) * float(10 / torch.log(torch.tensor(10.0)))  # psnr.py, factor from float32 tensors
    if data_range is None:
        data_range = max(x.max() - x.min(), y.max() - y.min())
    dist = np.arange(-5, 6, dtype=np.float64)
    g = np.exp(-((dist / 1.5) ** 2) / 2)
    g /= g.sum()
    kernel = np.outer(g, g)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    maps = []
    for ch in range(3):
        a = np.pad(x[..., ch], 5, mode="reflect")
        b = np.pad(y[..., ch], 5, mode="reflect")
        mu_a, mu_b = correlate(a, kernel, "valid", "direct"), correlate(b, kernel, "valid", "direct")
        var_a = np.maximum(correlate(a * a, kernel, "valid", "direct") - mu_a**2, 0)
        var_b = np.maximum(correlate(b * b, kernel, "valid", "direct") - mu_b**2, 0)
        cov = correlate(a * b, kernel, "valid", "direct") - mu_a * mu_b
        maps.append((2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    return psnr, float(np.mean(maps))


def basicsr_literal(pred_rgb, target_rgb, test_y_channel):
    """calculate_psnr / calculate_ssim(crop_border=0) on the BGR images cv2.imread would give."""
    img, img2 = pred_rgb[..., ::-1], target_rgb[..., ::-1]
    if test_y_channel:
        def to_y(im):  # metric_util.to_y_channel → color_util.bgr2ycbcr(y_only=True)
            im = im.astype(np.float32) / 255.0
            out = np.dot(im, [24.966, 128.553, 65.481]) + 16.0
            out = (out / 255.0).astype(np.float32)
            return out[..., None] * 255.0
        img, img2 = to_y(img), to_y(img2)
    img, img2 = img.astype(np.float64), img2.astype(np.float64)
    mse = np.mean((img - img2) ** 2)
    psnr = math.inf if mse == 0 else 10.0 * np.log10(255.0 * 255.0 / mse)
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(kernel, kernel.transpose())
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssims = []
    for i in range(img.shape[2]):
        a, b = img[..., i], img2[..., i]
        mu1 = cv2.filter2D(a, -1, window)[5:-5, 5:-5]
        mu2 = cv2.filter2D(b, -1, window)[5:-5, 5:-5]
        s1 = cv2.filter2D(a**2, -1, window)[5:-5, 5:-5] - mu1**2
        s2 = cv2.filter2D(b**2, -1, window)[5:-5, 5:-5] - mu2**2
        s12 = cv2.filter2D(a * b, -1, window)[5:-5, 5:-5] - mu1 * mu2
        ssims.append((((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))).mean())
    return float(psnr), float(np.mean(ssims))


YIQ = [[0.299, 0.587, 0.114], [0.5959, -0.2746, -0.3213], [0.2115, -0.5227, 0.3112]]


def pyiqa_literal(pred, target):
    """psnr (RGB), psnry and ssim of pyiqa 0.1.16 on torchvision-style float32 tensors."""
    def tensor(a):
        return torch.tensor(a).permute(2, 0, 1)[None].float() / 255 if a.dtype == np.uint8 else \
            torch.tensor(a, dtype=torch.float32).permute(2, 0, 1)[None]

    def psnr(x, y):
        mse = torch.mean((x - y) ** 2, dim=[1, 2, 3])
        return float(10 * torch.log10(1.0 / (mse + 1e-8)))

    def y_channel(x):
        return torch.matmul(x.permute(0, 2, 3, 1), torch.tensor(YIQ).t()).permute(0, 3, 1, 2)[:, [0]]

    X, Y = tensor(pred), tensor(target)
    yx, yy = y_channel(X), y_channel(Y)
    a, b = (yx * 255).round().double(), (yy * 255).round().double()
    win = torch.from_numpy(reference.fspecial_gaussian(11, 1.5)).float()[None, None].to(a)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = F.conv2d(a, win), F.conv2d(b, win)
    s1, s2 = F.conv2d(a * a, win) - mu1**2, F.conv2d(b * b, win) - mu2**2
    s12 = F.conv2d(a * b, win) - mu1 * mu2
    cs = F.relu((2 * s12 + c2) / (s1 + s2 + c2))
    ssim = float((((2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1)) * cs).mean())
    return {"psnr": psnr(X, Y), "psnry": psnr(yx, yy), "ssim": ssim}


def realblur_unaligned_literal(pred, target):
    """evaluate_RealBlur.py's compute_psnr / compute_ssim with ``image_align`` removed (mask of ones)."""
    tar, prd = target.astype(np.float32) / 255.0, pred.astype(np.float32) / 255.0
    cr = np.ones_like(tar, dtype="float32")
    err = np.sum((tar - prd) ** 2, dtype=np.float64) / np.sum(cr)
    psnr = math.inf if err == 0 else 10 * np.log10(1.0 / err)
    _, ssim_map = structural_similarity(tar, prd, channel_axis=-1, gaussian_weights=True,
                                        use_sample_covariance=False, data_range=1.0, full=True)
    ssim_map = ssim_map * cr
    cropped, crop_cr = ssim_map[5:-5, 5:-5, :], cr[5:-5, 5:-5, :]
    return float(psnr), float(np.mean(cropped.sum(axis=0).sum(axis=0) / crop_cr.sum(axis=0).sum(axis=0)))


# ---------------------------------------------------------------------------- scikit-image


@pytest.mark.parametrize("shape", [(7, 7, 3)] + SHAPES)
def test_skimage_ruler_is_scikit_image_with_its_defaults(shape):
    pred, target = pair(sum(shape), shape)
    ours = rulers.skimage_defaults(pred, target)
    library = (peak_signal_noise_ratio(target, pred, data_range=255),
               structural_similarity(target, pred, channel_axis=-1, data_range=255))
    assert ours == pytest.approx(library, abs=1e-12)
    assert ours == pytest.approx(skimage_literal(pred, target, 255.0), abs=1e-10)


def test_skimage_ruler_scores_float_predictions_on_the_unit_range():
    pred, target = float_pair(1)
    t = uint8_to_single(target).astype(np.float64)
    ours = rulers.skimage_defaults(pred, target)
    assert ours == pytest.approx(skimage_literal(pred.astype(np.float64), t, 1.0), abs=1e-10)
    assert ours[1] == pytest.approx(structural_similarity(t, pred.astype(np.float64), channel_axis=-1,
                                                          data_range=1.0), abs=1e-12)


# ---------------------------------------------------------------------------- torchmetrics


@pytest.mark.parametrize("shape", [(6, 6, 3)] + SHAPES)
def test_torchmetrics_ruler_matches_its_published_definition(shape):
    pred, target = pair(sum(shape) + 1, shape)
    assert rulers.torchmetrics_defaults(pred, target) == pytest.approx(torchmetrics_literal(pred, target), abs=1e-10)
    pred, target = pred // 2 + 60, target // 3 + 50  # ranges 0.5 and 0.33: the library's default data_range
    auto = rulers.torchmetrics_defaults(pred, target, data_range=None)
    assert auto == pytest.approx(torchmetrics_literal(pred, target, None), abs=1e-10)
    assert abs(auto[1] - rulers.torchmetrics_defaults(pred, target)[1]) > 1e-4


def test_torchmetrics_ssim_keeps_the_border_that_scikit_image_crops():
    # Same Gaussian, same population covariance: only the padded border (and the clamp) differ.
    pred, target = pair(5, (40, 52, 3))
    t, p = uint8_to_single(target).astype(np.float64), uint8_to_single(pred).astype(np.float64)
    cropped = structural_similarity(t, p, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1.0)
    ours = rulers.torchmetrics_defaults(pred, target)[1]
    assert abs(ours - cropped) > 1e-4


def test_torchmetrics_clamps_negative_variances():
    # E[x²] − μ² < 0 comes only from rounding (float32 flat regions); in float64 it is ~1e-16,
    # so the clamp is checked on the map function itself.
    mu = np.array([0.5])
    filtered = [mu, mu, mu * mu - 1e-4, mu * mu - 1e-4, mu * mu]
    c1, c2 = 1e-4, 9e-4
    clamped = rulers._ssim_terms(filtered, c1, c2, clamp_variance=True)
    assert clamped == pytest.approx([1.0], abs=1e-15)  # σ² clamped to 0, σxy = 0: c2/c2
    assert rulers._ssim_terms(filtered, c1, c2)[0] == pytest.approx(c2 / (c2 - 2e-4))


def test_torchmetrics_ruler_equals_the_library():
    """Agreement measured with torchmetrics 1.9.0 (CPU, torch 2.13), on these synthetic pairs and
    on the 100 Rain100L pairs (rainy vs clean): on float64 tensors ≤ 4e-15 dB and ≤ 4.4e-14 SSIM,
    also with ``data_range=None``; on float32 tensors, as the library is usually fed, ≤ 2.3e-6 dB
    and ≤ 1.2e-5 SSIM (its float32 variances), hence the looser second check."""
    tm = pytest.importorskip("torchmetrics.functional.image")
    for seed, shape in enumerate([(6, 6, 3)] + SHAPES + [(101, 77, 3)]):
        pred, target = pair(seed, shape)
        x = torch.from_numpy(pred).permute(2, 0, 1)[None].float() / 255
        y = torch.from_numpy(target).permute(2, 0, 1)[None].float() / 255
        ours = rulers.torchmetrics_defaults(pred, target)
        for dtype, tol_psnr, tol_ssim in ((torch.float64, 1e-12, 1e-12), (torch.float32, 5e-6, 3e-5)):
            xd, yd = x.to(dtype), y.to(dtype)
            library = (tm.peak_signal_noise_ratio(xd, yd, data_range=1.0).item(),
                       tm.structural_similarity_index_measure(xd, yd, data_range=1.0).item())
            assert ours[0] == pytest.approx(library[0], abs=tol_psnr)
            assert ours[1] == pytest.approx(library[1], abs=tol_ssim)
        auto = tm.structural_similarity_index_measure(x.double(), y.double()).item()
        assert rulers.torchmetrics_defaults(pred, target, data_range=None)[1] == pytest.approx(auto, abs=1e-12)


def test_torchmetrics_psnr_module_over_a_test_set_is_the_psnr_of_the_pooled_mse():
    """The PeakSignalNoiseRatio module accumulates squared errors and counts over its updates."""
    tm = pytest.importorskip("torchmetrics")
    metric = tm.image.PeakSignalNoiseRatio(data_range=1.0).double()
    psnrs, sizes = [], []
    for seed, shape in enumerate([(20, 30, 3), (33, 17, 3), (40, 40, 3)]):
        pred, target = pair(seed, shape, noise=4 + 6 * seed)
        x = torch.from_numpy(pred).permute(2, 0, 1)[None].double() / 255
        y = torch.from_numpy(target).permute(2, 0, 1)[None].double() / 255
        metric.update(x, y)
        psnrs.append(_psnr(pred, target, 255.0))
        sizes.append(pred.size)
    pooled = rulers.psnr_of_mean_mse(psnrs, weights=sizes)
    assert pooled == pytest.approx(metric.compute().item(), abs=1e-5)  # float32 10/ln 10 in the library
    assert pooled < np.mean(psnrs) - 0.5


# ---------------------------------------------------------------------------- BasicSR


@pytest.mark.parametrize("shape", SHAPES + [(101, 77, 3)])
def test_basicsr_rulers_match_the_published_calculate_psnr_ssim(shape):
    pred, target = pair(sum(shape) + 2, shape)
    assert rulers.basicsr_y(pred, target) == pytest.approx(basicsr_literal(pred, target, True), abs=1e-10)
    assert rulers.basicsr_rgb(pred, target) == pytest.approx(basicsr_literal(pred, target, False), abs=1e-10)


def test_basicsr_y_is_float_y_without_rounding():
    v = np.arange(0, 256, 5, dtype=np.uint8)
    cube = np.stack(np.meshgrid(v, v, v, indexing="ij"), axis=-1).reshape(-1, 52, 3)
    y = rulers.basicsr_y_channel(cube)
    exact = 16 + (65.481 * cube[..., 0] + 128.553 * cube[..., 1] + 24.966 * cube[..., 2]) / 255
    assert np.abs(y - exact).max() < 3e-5  # float32 casts only
    assert np.abs(y - np.rint(exact)).max() > 0.49  # not rounded to integers
    # Two colours that MATLAB's rounded Y cannot tell apart (both Y = 102) differ in BasicSR's Y.
    target = np.full((20, 20, 3), 100, np.uint8)
    pred = target.copy()
    pred[..., 0] = 101
    assert psnr_ssim("y_channel", pred, target)[0] == math.inf
    assert rulers.basicsr_y(pred, target)[0] == pytest.approx(20 * math.log10(255 / (65.481 / 255)), abs=1e-3)


def test_basicsr_rgb_psnr_is_the_papers_rgb_psnr_and_its_ssim_is_2d_valid():
    pred, target = pair(21, (40, 52, 3))
    paper = psnr_ssim("rgb", pred, target)
    ours = rulers.basicsr_rgb(pred, target)
    assert ours[0] == pytest.approx(paper[0], abs=1e-12)
    per_channel = np.mean([reference.ssim_index(pred[..., c], target[..., c]) for c in range(3)])
    assert ours[1] == pytest.approx(per_channel, abs=1e-10)
    assert abs(ours[1] - paper[1]) > 1e-3


def _basicsr_library():
    try:
        from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim
    except Exception as exc:  # not installed, or its import of torchvision fails
        pytest.skip(f"basicsr is not importable ({type(exc).__name__}: {exc})")
    return calculate_psnr, calculate_ssim


def test_basicsr_rulers_equal_the_library():
    """Agreement measured with BasicSR 1.4.2's own metric files (``psnr_ssim.py``, ``metric_util.py``,
    ``color_util.py``, loaded from its sdist with the package ``__init__`` stubbed, since importing
    ``basicsr`` needs a torchvision older than torch 2.13's), on these synthetic pairs and the 100
    Rain100L pairs: ≤ 7.2e-15 dB and ≤ 3.9e-14 SSIM for ``basicsr_y``, ≤ 7.2e-15 dB and
    ≤ 8.7e-15 SSIM for ``basicsr_rgb``; its float Y equals ours bit for bit on all 2^24 colours."""
    calculate_psnr, calculate_ssim = _basicsr_library()
    for seed, shape in enumerate(SHAPES + [(101, 77, 3)]):
        pred, target = pair(seed, shape)
        bgr_p, bgr_t = pred[..., ::-1].copy(), target[..., ::-1].copy()
        for test_y, ruler in ((True, rulers.basicsr_y), (False, rulers.basicsr_rgb)):
            library = (calculate_psnr(bgr_p, bgr_t, 0, test_y_channel=test_y),
                       calculate_ssim(bgr_p, bgr_t, 0, test_y_channel=test_y))
            assert ruler(pred, target) == pytest.approx(library, abs=1e-12)


# ---------------------------------------------------------------------------- IQA-PyTorch


@pytest.mark.parametrize("shape", SHAPES + [(101, 77, 3)])
def test_pyiqa_rulers_match_the_published_psnr_and_ssim(shape):
    pred, target = pair(sum(shape) + 3, shape)
    literal = pyiqa_literal(pred, target)
    assert rulers.pyiqa_defaults(pred, target) == pytest.approx((literal["psnr"], literal["ssim"]), abs=1e-12)
    assert rulers.pyiqa_y(pred, target) == pytest.approx((literal["psnry"], literal["ssim"]), abs=1e-12)
    fpred, ftarget = float_pair(sum(shape), shape)
    literal = pyiqa_literal(fpred, ftarget)
    assert rulers.pyiqa_defaults(fpred, ftarget) == pytest.approx((literal["psnr"], literal["ssim"]), abs=1e-12)


def test_pyiqa_y_is_yiq_full_range_not_bt601():
    """BT.601's Y is 16 + 219/255 of YIQ's Y, so unrounded Y PSNRs differ by 20·log10(219/255) dB."""
    pred, target = pair(31, (48, 64, 3))
    gap = rulers.pyiqa_y(pred, target)[0] - rulers.basicsr_y(pred, target)[0]
    assert gap == pytest.approx(20 * math.log10(219 / 255), abs=2e-4)  # -1.3220 dB; float32 Ys


def test_pyiqa_epsilon_and_nonnegative_contrast_term():
    pred, target = pair(32, (30, 40, 3))
    assert rulers.pyiqa_defaults(target, target.copy()) == (pytest.approx(80.0, abs=1e-6), 1.0)
    # PSNR: the +1e-8 moves a finite score slightly down.
    assert rulers.pyiqa_defaults(pred, target)[0] < rulers.skimage_defaults(pred, target)[0]
    # An inverted image: Wang's SSIM is negative (-0.25; pyiqa's map without its relu: -0.35),
    # pyiqa's relu on c·s keeps every map value ≥ 0 (0.077).
    inverted = 255 - target
    assert psnr_ssim("y_channel", inverted, target)[1] < -0.2
    assert 0.05 < rulers.pyiqa_defaults(inverted, target)[1] < 0.1


def _pyiqa_library():
    try:
        import pyiqa
    except Exception as exc:
        pytest.skip(f"pyiqa is not importable ({type(exc).__name__}: {exc})")
    return pyiqa


def test_pyiqa_rulers_equal_the_library():
    """Agreement measured with pyiqa 0.1.16's own files (``archs/psnr_arch.py``, ``archs/ssim_arch.py``,
    ``utils/color_util.py``, ``matlab_utils``, loaded from its wheel with the package ``__init__``
    stubbed: the package pulls transformers and more), on these synthetic pairs and the 100
    Rain100L pairs: PSNR and PSNR-Y equal to the last bit, SSIM ≤ 5.2e-14 (FFT vs direct
    filtering); the rounded YIQ Y equals pyiqa's on all 2^24 colours (16,782 of which are exact
    .5 ties that float32 arithmetic decides)."""
    pyiqa = _pyiqa_library()
    metrics = {name: pyiqa.create_metric(name, device="cpu") for name in ("psnr", "psnry", "ssim")}
    for seed, shape in enumerate(SHAPES + [(101, 77, 3)]):
        pred, target = pair(seed, shape)
        x = torch.from_numpy(pred).permute(2, 0, 1)[None].float() / 255
        y = torch.from_numpy(target).permute(2, 0, 1)[None].float() / 255
        library = {name: float(m(x, y)) for name, m in metrics.items()}
        assert rulers.pyiqa_defaults(pred, target) == pytest.approx((library["psnr"], library["ssim"]), abs=1e-12)
        assert rulers.pyiqa_y(pred, target) == pytest.approx((library["psnry"], library["ssim"]), abs=1e-12)


# ---------------------------------------------------------------------------- the paper's rulers with a step changed


@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 7, 3)] + SHAPES)
def test_matlab_2d_ssim_is_the_mean_of_matlab_ssim_per_channel(shape):
    pred, target = pair(sum(shape) + 4, shape)
    psnr, ssim = rulers.matlab_ssim_2d(pred, target)
    assert psnr == pytest.approx(reference.psnr(pred, target, 255.0), abs=1e-10)
    assert ssim == pytest.approx(np.mean([reference.ssim_matlab(pred[..., c], target[..., c], 255.0)
                                          for c in range(3)]), abs=1e-9)
    fpred, ftarget = float_pair(sum(shape), shape)
    t = uint8_to_single(ftarget).astype(np.float64)
    psnr, ssim = rulers.matlab_ssim_2d(fpred, ftarget)
    assert psnr == pytest.approx(reference.psnr(fpred, t, 1.0), abs=1e-10)
    assert ssim == pytest.approx(np.mean([reference.ssim_matlab(fpred[..., c].astype(np.float64), t[..., c], 1.0)
                                          for c in range(3)]), abs=1e-9)


def test_matlab_2d_ssim_differs_from_the_3d_volume_when_channels_differ():
    pred, target = pair(14, (40, 52, 3))
    pred[..., 0] = target[..., 0]
    paper, ours = psnr_ssim("rgb", pred, target), rulers.matlab_ssim_2d(pred, target)
    assert ours[0] == pytest.approx(paper[0], abs=1e-12)
    assert abs(ours[1] - paper[1]) > 1e-3


def test_realblur_unaligned_is_the_script_without_image_align():
    target = pair(41, (64, 80, 3))[1]
    moved = cv2.warpAffine(target, np.float32([[1, 0, 1.5], [0, 1, -1.0]]), (80, 64), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    for pred in (pair(41, (64, 80, 3))[0], moved):
        assert rulers.realblur_unaligned(pred, target) == pytest.approx(realblur_unaligned_literal(pred, target),
                                                                        abs=1e-9)
    # Alignment is the step that matters for a moved image: the paper's ruler scores it far higher.
    assert psnr_ssim("realblur", moved, target)[0] > rulers.realblur_unaligned(moved, target)[0] + 5


def test_sidd_8bit_quantises_the_float_output_before_scoring():
    pred, target = float_pair(51)
    quantised = uint8_to_single(to_uint8(pred)).astype(np.float64)
    ours = rulers.sidd_8bit(pred, target)
    assert ours == pytest.approx(reference.sidd(quantised, uint8_to_single(target).astype(np.float64)), abs=1e-9)
    assert abs(ours[0] - psnr_ssim("sidd", pred, target)[0]) > 1e-3
    assert rulers.sidd_8bit(to_uint8(pred), target) == pytest.approx(ours, abs=1e-12)


# ---------------------------------------------------------------------------- PSNR of the mean MSE


def test_psnr_of_mean_mse_closed_form_and_jensen():
    # MSE/peak² of 20 dB and 30 dB: 1e-2 and 1e-3; their mean 5.5e-3.
    assert rulers.psnr_of_mean_mse([20.0, 30.0]) == pytest.approx(-10 * math.log10(5.5e-3), abs=1e-12)
    assert rulers.psnr_of_mean_mse([20.0, 30.0], weights=[1, 3]) == pytest.approx(-10 * math.log10(3.25e-3), abs=1e-12)
    rng = np.random.default_rng(0)
    values = rng.uniform(20, 40, 50)
    assert rulers.psnr_of_mean_mse(values) < values.mean()
    assert rulers.psnr_of_mean_mse([31.5] * 4) == pytest.approx(31.5, abs=1e-12)
    assert rulers.psnr_of_mean_mse([math.inf, 30.0]) == pytest.approx(30 + 10 * math.log10(2), abs=1e-12)
    assert rulers.psnr_of_mean_mse([math.inf, math.inf]) == math.inf
    # Per-image PSNRs at any peak give the pooled PSNR of the same images.
    preds, targets = zip(*(pair(s, (16, 16, 3), noise=3 + 5 * s) for s in range(3)))
    pooled = _psnr(np.stack(preds), np.stack(targets), 255.0)
    assert rulers.psnr_of_mean_mse([_psnr(p, t, 255.0) for p, t in zip(preds, targets)]) == pytest.approx(pooled)


@pytest.mark.parametrize("psnr, weights", [([], None), ([30.0, math.nan], None), ([30.0], [1, 2]), ([30.0], [0])])
def test_psnr_of_mean_mse_rejects_bad_input(psnr, weights):
    with pytest.raises(ValueError):
        rulers.psnr_of_mean_mse(psnr, weights)


# ---------------------------------------------------------------------------- inputs


IMAGE_RULERS = [name for name, r in rulers.RULERS.items() if r.kind == "image"]


@pytest.mark.parametrize("name", IMAGE_RULERS)
def test_every_ruler_refuses_mismatched_or_malformed_pairs(name):
    score = rulers.RULERS[name].score
    pred, target = pair(0, (24, 24, 3))
    with pytest.raises(ValueError, match="differ in shape"):
        score(pred[:, :20], target)
    with pytest.raises(ValueError, match="H×W×3"):
        score(pred[..., 0], target[..., 0])
    with pytest.raises(ValueError, match="H×W×3"):
        score(pred.astype(np.int16), target.astype(np.int16))
    with pytest.raises(ValueError, match="H×W×3"):
        score(np.dstack([pred, pred[..., :1]]), np.dstack([target, target[..., :1]]))


@pytest.mark.parametrize("name, side", [("skimage", 6), ("torchmetrics", 5), ("basicsr_y", 10), ("basicsr_rgb", 10),
                                        ("pyiqa", 10), ("pyiqa_y", 10), ("realblur_unaligned", 11)])
def test_rulers_refuse_images_smaller_than_their_window(name, side):
    pred, target = pair(0, (side, side + 3, 3))
    with pytest.raises(ValueError, match="at least"):
        rulers.RULERS[name].score(pred, target)
    bigger = pair(0, (side + 1, side + 3, 3))
    assert all(math.isfinite(v) for v in rulers.RULERS[name].score(*bigger))


def test_realblur_unaligned_takes_8bit_images_only():
    pred, target = float_pair(0, (24, 24, 3))
    with pytest.raises(ValueError, match="uint8"):
        rulers.realblur_unaligned(pred, target)


@pytest.mark.parametrize("name", IMAGE_RULERS)
def test_identical_images_score_ssim_one(name):
    _, target = pair(3, (24, 30, 3))
    if name == "sidd_8bit":
        psnr, ssim = rulers.sidd_8bit(uint8_to_single(target), target)
    else:
        psnr, ssim = rulers.RULERS[name].score(target, target.copy())
    assert ssim == pytest.approx(1.0, abs=1e-6)
    if name.startswith("pyiqa"):
        assert psnr == pytest.approx(80.0, abs=1e-4)  # its +1e-8
    else:
        assert psnr == math.inf


# ---------------------------------------------------------------------------- registry and sensitivity


def test_registry_describes_every_ruler_and_where_it_applies():
    for name, ruler in rulers.RULERS.items():
        assert ruler.name == name and ruler.description and callable(ruler.score)
        assert ruler.protocols and set(ruler.protocols) <= set(PROTOCOLS), name
        assert ruler.kind in ("image", "dataset") and ruler.score.__doc__
        assert set(ruler.datasets) >= {"GoPro"} or "rgb" not in ruler.protocols
    assert rulers.rulers_for("y_channel") == ["skimage", "torchmetrics", "basicsr_y", "pyiqa", "pyiqa_y",
                                              "psnr_of_mean_mse"]
    assert rulers.rulers_for("rgb") == ["skimage", "torchmetrics", "basicsr_rgb", "pyiqa", "matlab_ssim_2d",
                                        "psnr_of_mean_mse"]
    assert "realblur_unaligned" in rulers.rulers_for("realblur") and "sidd_8bit" in rulers.rulers_for("sidd")
    with pytest.raises(ValueError, match="unknown protocol"):
        rulers.rulers_for("dnd")


def test_ruler_sensitivity_reports_each_image_and_the_spread():
    pairs = [(f"img{k}", *pair(60 + k, (24 + k, 31, 3), noise=3 + 4 * k)) for k in range(4)]
    pairs.append(("same", pairs[0][2], pairs[0][2].copy()))
    result = rulers.ruler_sensitivity(pairs, "y_channel", ["basicsr_y", "skimage", "psnr_of_mean_mse"])
    per_image, summary = result.per_image, result.summary
    assert list(per_image.columns) == rulers.PER_IMAGE_COLUMNS
    assert list(per_image["ruler"].unique()) == ["paper", "basicsr_y", "skimage"]
    assert len(per_image) == 5 * 3
    for stem, pred, target in pairs:
        rows = per_image[per_image["image"] == stem].set_index("ruler")
        paper = psnr_ssim("y_channel", pred, target)
        assert tuple(rows.loc["paper", ["psnr", "ssim"]]) == pytest.approx(paper)
        for name in ("basicsr_y", "skimage"):
            psnr, ssim = rulers.RULERS[name].score(pred, target)
            assert rows.loc[name, "d_ssim"] == pytest.approx(ssim - paper[1], abs=1e-12)
            expected = 0.0 if psnr == paper[0] else psnr - paper[0]  # identical: inf and inf, Δ 0
            assert rows.loc[name, "d_psnr"] == pytest.approx(expected, abs=1e-12)
    assert list(summary.columns) == rulers.SUMMARY_COLUMNS
    assert list(summary["ruler"]) == ["paper", "basicsr_y", "skimage", "psnr_of_mean_mse"]
    row = summary.set_index("ruler").loc["skimage"]
    d = per_image.loc[per_image["ruler"] == "skimage", "d_psnr"]
    assert (row["n_images"], row["d_psnr_mean"], row["d_psnr_min"], row["d_psnr_max"]) == pytest.approx(
        (5, d.mean(), d.min(), d.max()))
    assert row["d_psnr_std"] == pytest.approx(np.std(d, ddof=1))
    assert row["d_psnr_max"] == 0.0 and row["d_psnr_min"] < -1  # the identical pair, and RGB vs Y
    dataset = summary.set_index("ruler").loc["psnr_of_mean_mse"]
    paper_psnr = per_image.loc[per_image["ruler"] == "paper", "psnr"]
    assert dataset["kind"] == "dataset" and np.isnan(dataset["ssim"]) and np.isnan(dataset["d_psnr_std"])
    assert dataset["psnr"] == pytest.approx(rulers.psnr_of_mean_mse(paper_psnr))
    assert dataset["d_psnr_mean"] == -math.inf  # the identical pair makes the paper's mean infinite


def test_ruler_sensitivity_on_float_sidd_outputs_and_realblur():
    pairs = [(f"b{k}", *float_pair(70 + k, (32, 40, 3))) for k in range(2)]
    summary = rulers.ruler_sensitivity(pairs, "sidd").summary.set_index("ruler")
    assert list(summary.index) == ["paper"] + rulers.rulers_for("sidd")
    assert summary.loc["sidd_8bit", "d_psnr_mean"] != 0
    assert abs(summary.loc["matlab_ssim_2d", "d_psnr_mean"]) < 1e-9  # same PSNR, other SSIM
    target = pair(80, (64, 80, 3))[1]
    moved = cv2.warpAffine(target, np.float32([[1, 0, 2.0], [0, 1, 0.0]]), (80, 64), borderMode=cv2.BORDER_REFLECT)
    summary = rulers.ruler_sensitivity([("m", moved, target)], "realblur", ["realblur_unaligned"]).summary
    assert summary.set_index("ruler").loc["realblur_unaligned", "d_psnr_mean"] < -5


def test_ruler_sensitivity_refuses_rulers_of_other_protocols_and_names_the_image():
    pairs = [("a", *pair(0, (24, 24, 3)))]
    with pytest.raises(ValueError, match="not alternatives to the y_channel"):
        rulers.ruler_sensitivity(pairs, "y_channel", ["matlab_ssim_2d"])
    with pytest.raises(ValueError, match="unknown ruler"):
        rulers.ruler_sensitivity(pairs, "rgb", ["matlab"])
    with pytest.raises(ValueError, match="^tiny: .*11×11"):
        rulers.ruler_sensitivity([("tiny", *pair(0, (9, 9, 3)))], "rgb", ["basicsr_rgb"])
    with pytest.raises(ValueError, match="no 'paper' rows"):
        rulers.sensitivity_summary(rulers.ruler_scores([], "rgb"), "rgb")


def test_read_pairs_reads_folders_as_mprnet_score_does(tmp_path):
    from mprnet.errors import DataError
    from mprnet.images import write_png
    from mprnet.metrics import score_folders

    pairs = {f"im{k}": pair(90 + k, (24, 30 + k, 3)) for k in range(3)}
    for stem, (pred, target) in pairs.items():
        write_png(tmp_path / "pred" / f"{stem}.png", pred)
        write_png(tmp_path / "gt" / f"{stem}.png", target)
    read = list(rulers.read_pairs("y_channel", tmp_path / "pred", tmp_path / "gt"))
    assert [stem for stem, _, _ in read] == sorted(pairs)
    for stem, pred, target in read:
        assert np.array_equal(pred, pairs[stem][0]) and np.array_equal(target, pairs[stem][1])
    per_image = rulers.ruler_scores(iter(read), "y_channel", ["basicsr_y"])
    paper = per_image[per_image["ruler"] == "paper"].set_index("image")
    official = score_folders("y_channel", tmp_path / "pred", tmp_path / "gt").set_index("image")
    assert paper.loc[official.index, "psnr"].to_numpy() == pytest.approx(official["psnr"].to_numpy(), abs=1e-9)
    # SIDD: the float outputs of `mprnet restore --save-float`, the uint8 target.
    for stem, (pred, target) in pairs.items():
        (tmp_path / "pred" / "float").mkdir(exist_ok=True)
        np.save(tmp_path / "pred" / "float" / f"{stem}.npy", uint8_to_single(pred))
    stem, pred, target = next(rulers.read_pairs("sidd", tmp_path / "pred", tmp_path / "gt"))
    assert pred.dtype == np.float32 and target.dtype == np.uint8
    write_png(tmp_path / "pred" / "stray.png", pairs["im0"][0])
    with pytest.raises(DataError, match="stray"):
        list(rulers.read_pairs("rgb", tmp_path / "pred", tmp_path / "gt"))


def test_rulers_command_writes_every_ruler_of_every_image(tmp_path):
    """The shell line of the workflow's ruler_scores rule: `mprnet rulers` pairs two folders, writes
    one row per (image, ruler) that equals ruler_scores of the same pairs, and reads back exactly."""
    import subprocess
    import sys

    from mprnet.images import write_png

    pairs = {f"{k:03d}": pair(40 + k, (26, 33, 3), noise=4 + 3 * k) for k in range(3)}
    for stem, (pred, target) in pairs.items():
        write_png(tmp_path / "pred" / f"{stem}.png", pred)
        write_png(tmp_path / "gt" / f"{stem}.png", target)
    out = tmp_path / "rulers" / "demo.csv"
    cmd = [sys.executable, "-m", "mprnet.cli", "rulers", "--protocol", "y_channel", "--pred", str(tmp_path / "pred"),
           "--target", str(tmp_path / "gt"), "--out", str(out), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "psnr_of_mean_mse" in proc.stdout and "basicsr_y" in proc.stdout
    written = rulers.read_ruler_scores(out)
    assert list(written["image"].unique()) == ["000", "001", "002"]  # stems stay text
    assert list(written["ruler"].unique()) == ["paper"] + [n for n in rulers.rulers_for("y_channel")
                                                          if rulers.RULERS[n].kind == "image"]
    expected = rulers.ruler_scores([(s, *pairs[s]) for s in sorted(pairs)], "y_channel")
    assert written[rulers.PER_IMAGE_COLUMNS[2:]].to_numpy() == pytest.approx(
        expected[rulers.PER_IMAGE_COLUMNS[2:]].to_numpy(), rel=0, abs=0)  # every float written exactly
    # --rulers chooses; a ruler of another protocol is refused in one line, nothing written.
    proc = subprocess.run(cmd[:-3] + ["--rulers", "matlab_ssim_2d", "--out", str(tmp_path / "no.csv")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "mprnet rulers: error: --rulers: ruler(s) matlab_ssim_2d are not alternatives to the y_channel" \
        in proc.stderr
    assert not (tmp_path / "no.csv").exists()
    # A pairing error names the folder at fault, as `mprnet score` does, not --pred in front of it.
    proc = subprocess.run(cmd[:8] + ["--target", str(tmp_path / "nope"), "--out", str(tmp_path / "no.csv")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr == f"mprnet rulers: error: {tmp_path / 'nope'}: not a folder\n"


def test_ruler_files_refuse_failed_scores_and_foreign_files(tmp_path):
    from mprnet.errors import DataError, NonFiniteError

    per_image = rulers.ruler_scores([("a", *pair(1, (24, 24, 3)))], "rgb", ["basicsr_rgb"])
    broken = per_image.copy()
    broken.loc[broken["ruler"] == "paper", "psnr"] = float("nan")
    with pytest.raises(NonFiniteError, match="bad.csv"):
        rulers.write_ruler_scores(broken, tmp_path / "bad.csv")
    assert not (tmp_path / "bad.csv").exists()
    (tmp_path / "scores.csv").write_text("image,psnr,ssim\na,30,0.9\n")
    with pytest.raises(DataError, match="scores.csv: ruler score file has missing columns ruler"):
        rulers.read_ruler_scores(tmp_path / "scores.csv")
    per_image[per_image["ruler"] != "paper"].to_csv(tmp_path / "nopaper.csv", index=False)
    with pytest.raises(DataError, match="no rows of the paper's ruler"):
        rulers.read_ruler_scores(tmp_path / "nopaper.csv")


# ---------------------------------------------------------------------------- real images

ENV = "MPRNET_REALDATA"
realdata = pytest.mark.skipif(not os.environ.get(ENV), reason=f"{ENV} is not set (a copy of the Rain100L "
                              "distribution, e.g. ../shared/realdata/rain100L)")


@pytest.fixture(scope="module")
def rain100l():
    """The 100 Rain100L test pairs as (stem, rainy image, clean image): the inputs scored as 'restorations'."""
    from mprnet.images import read_rgb

    folder = Path(os.environ[ENV], "test")
    if not folder.is_dir():
        pytest.fail(f"{ENV}={os.environ[ENV]} has no test/ folder")
    return [(str(k), read_rgb(folder / "rain" / f"norain-{k}.png"), read_rgb(folder / "norain" / f"norain-{k}.png"))
            for k in range(1, 101)]


@realdata
@pytest.mark.slow
def test_rulers_on_rain100l_match_their_published_definitions(rain100l):
    for stem, pred, target in rain100l[::25]:
        assert rulers.basicsr_y(pred, target) == pytest.approx(basicsr_literal(pred, target, True), abs=1e-10), stem
        literal = pyiqa_literal(pred, target)
        assert rulers.pyiqa_y(pred, target) == pytest.approx((literal["psnry"], literal["ssim"]), abs=1e-12), stem
        assert rulers.torchmetrics_defaults(pred, target) == pytest.approx(torchmetrics_literal(pred, target),
                                                                           abs=1e-10), stem


@realdata
@pytest.mark.slow
def test_ruler_sensitivity_on_rain100l(rain100l):
    """Measured (rainy vs clean, 100 pairs): paper 26.897983 dB / 0.838215 (the Octave run of the
    official script prints 26.897982 / 0.838215); Δ dB mean [min, max] and Δ SSIM mean:
    scikit-image −1.3766 [−1.855, −1.062] / −0.0243; torchmetrics −1.3766 / −0.0135; BasicSR Y
    +0.0027 [−0.0037, +0.0096] (|Δ| ≥ 1.5e-4 on every image) / +0.00016; pyiqa (RGB PSNR, YIQ
    SSIM) −1.3767 / −0.0125; pyiqa Y −1.3192 [−1.3256, −1.3124]; PSNR of the mean MSE −1.5228."""
    result = rulers.ruler_sensitivity(rain100l, "y_channel")
    summary = result.summary.set_index("ruler")
    per_image = result.per_image.pivot(index="image", columns="ruler", values="d_psnr")
    assert summary.loc["paper", "psnr"] == pytest.approx(26.897982, abs=1e-4)
    assert summary.loc["paper", "ssim"] == pytest.approx(0.838215, abs=1e-6)
    # Float Y (BasicSR) vs MATLAB's rounded Y: small but never zero.
    assert (per_image["basicsr_y"].abs() > 1e-4).all() and (per_image["basicsr_y"].abs() < 0.01).all()
    assert summary.loc["basicsr_y", "d_psnr_mean"] == pytest.approx(0.0027, abs=5e-4)
    # RGB PSNR is lower than Y PSNR on every rainy image (rain is near-grey: Y averages it).
    assert (per_image["skimage"] < -1.0).all() and summary.loc["skimage", "d_psnr_mean"] == pytest.approx(-1.377, abs=2e-3)
    assert summary.loc["skimage", "d_ssim_mean"] == pytest.approx(-0.0243, abs=5e-4)
    # pyiqa's YIQ Y is BT.601's Y × 255/219: −1.322 dB against BasicSR's float Y on every image.
    gap = per_image["pyiqa_y"] - per_image["basicsr_y"]
    assert np.allclose(gap, 20 * math.log10(219 / 255), atol=2e-4)
    dataset = summary.loc["psnr_of_mean_mse", "d_psnr_mean"]
    assert dataset < 0 and dataset == pytest.approx(-1.5228, abs=1e-3)


@realdata
@pytest.mark.slow
def test_libraries_agree_on_rain100l(rain100l):
    """The same checks as the library tests above, on real images, where the libraries are installed."""
    tm = pytest.importorskip("torchmetrics.functional.image")
    for stem, pred, target in rain100l[::10]:
        x = torch.tensor(pred).permute(2, 0, 1)[None].float().div(255).double()  # the values the ruler scores
        y = torch.tensor(target).permute(2, 0, 1)[None].float().div(255).double()
        library = (tm.peak_signal_noise_ratio(x, y, data_range=1.0).item(),
                   tm.structural_similarity_index_measure(x, y, data_range=1.0).item())
        assert rulers.torchmetrics_defaults(pred, target) == pytest.approx(library, abs=1e-12), stem
