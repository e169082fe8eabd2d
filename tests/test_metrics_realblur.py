"""RealBlur protocol: ECC homography alignment, masked PSNR and SSIM."""

import math

import cv2
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity

from mprnet.errors import DataError
from mprnet.images import write_png
from mprnet.metrics import psnr_ssim, reference, score_folders
from mprnet.metrics.realblur import align, masked_psnr, masked_ssim


def scene(seed=0, shape=(96, 128, 3)):
    rng = np.random.default_rng(seed)
    s = gaussian_filter(rng.random(shape), sigma=(2, 2, 0))
    return np.rint((s - s.min()) / (s.max() - s.min()) * 255).astype(np.uint8)


def warp_matrix(angle_deg=1.0, tx=1.5, ty=-1.0):
    a = np.deg2rad(angle_deg)
    return np.array([[np.cos(a), -np.sin(a), tx], [np.sin(a), np.cos(a), ty], [0, 0, 1]])


def test_known_homography_is_recovered_and_alignment_raises_psnr():
    target = scene()
    h, w = target.shape[:2]
    true_warp = warp_matrix()
    pred = cv2.warpPerspective(target, true_warp, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    unaligned = reference.psnr(pred, target, 255.0)
    psnr, ssim = psnr_ssim("realblur", pred, target)
    assert psnr > unaligned + 15, (psnr, unaligned)
    assert ssim > 0.99
    # pred(W·p) ≈ target(p): ECC's warp (used with WARP_INVERSE_MAP) is the warp we applied.
    _, _, _, found = align(pred.astype(np.float32) / 255, target.astype(np.float32) / 255)
    np.testing.assert_allclose(found, true_warp, atol=0.03)


def test_intensity_matching_removes_a_global_gain():
    target = scene(1)
    pred = np.rint(target * 0.8).astype(np.uint8)
    psnr, _ = psnr_ssim("realblur", pred, target)
    assert psnr > reference.psnr(pred, target, 255.0) + 10


def test_mask_excludes_pixels_warped_in_from_outside():
    target = scene(2)
    h, w = target.shape[:2]
    pred = cv2.warpPerspective(target, warp_matrix(0.0, 4.0, 0.0), (w, h), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REFLECT)
    aligned, masked_target, mask, _ = align(pred.astype(np.float32) / 255, target.astype(np.float32) / 255)
    assert mask.shape == target.shape
    assert 0 < mask.mean() < 1  # a strip of about 4 columns is invalid
    assert np.all(aligned[mask == 0] == 0) and np.all(masked_target[mask == 0] == 0)


def test_masked_metrics_with_a_full_mask_reduce_to_plain_ones():
    target = scene(3).astype(np.float32) / 255
    pred = np.clip(target + np.random.default_rng(0).normal(0, 0.02, target.shape), 0, 1).astype(np.float32)
    mask = np.ones_like(target)
    assert masked_psnr(target, pred, mask) == pytest.approx(reference.psnr(target, pred, 1.0), abs=1e-4)
    full = structural_similarity(target, pred, channel_axis=-1, gaussian_weights=True,
                                 use_sample_covariance=False, data_range=1.0)
    assert masked_ssim(target, pred, mask) == pytest.approx(full, abs=1e-5)


def test_identical_images_score_very_high_and_never_crash():
    target = scene(4)
    psnr, ssim = psnr_ssim("realblur", target, target.copy())
    assert psnr > 100 or math.isinf(psnr)
    assert ssim == pytest.approx(1.0, abs=1e-5)


def test_failed_alignment_is_an_error_naming_the_files(tmp_path):
    rng = np.random.default_rng(5)
    write_png(tmp_path / "p" / "noise.png", rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    write_png(tmp_path / "t" / "noise.png", rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    write_png(tmp_path / "p" / "black.png", np.zeros((48, 48, 3), np.uint8))
    write_png(tmp_path / "t" / "black.png", scene(5, (48, 48, 3)))
    with pytest.raises(DataError, match=r"p/black\.png.*all black"):
        score_folders("realblur", tmp_path / "p", tmp_path / "t")
    (tmp_path / "p" / "black.png").unlink()
    (tmp_path / "t" / "black.png").unlink()
    with pytest.raises(DataError, match=r"p/noise\.png.*ECC alignment failed"):
        score_folders("realblur", tmp_path / "p", tmp_path / "t")
