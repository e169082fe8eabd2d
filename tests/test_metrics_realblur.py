"""RealBlur protocol: ECC homography alignment, masked PSNR and SSIM."""

import math

import cv2
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.data import astronaut
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


def shifted(target, dx, dy):
    """The issue's prediction: ``target`` moved by (dx, dy) with bilinear sampling and reflected borders."""
    h, w = target.shape[:2]
    return cv2.warpAffine(target, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def astronaut_320x240():
    return cv2.resize(astronaut(), (320, 240), interpolation=cv2.INTER_AREA)


# Computed with the functions of the published evaluate_RealBlur.py itself; before the
# mask was warped like the image the product printed 32.2521 / 0.99882 and 35.0995 / 0.98955.
@pytest.mark.parametrize("dx, dy, psnr_expected, ssim_expected", [
    (3, 0, 33.6724, 0.99887),
    (1.5, -1.0, 35.3151, 0.98956),
])
def test_right_values_of_the_official_script(dx, dy, psnr_expected, ssim_expected):
    target = astronaut_320x240()
    psnr, ssim = psnr_ssim("realblur", shifted(target, dx, dy), target)
    assert psnr == pytest.approx(psnr_expected, abs=1e-3)
    assert ssim == pytest.approx(ssim_expected, abs=1e-5)


def affine(angle_deg=0.0, scale=1.0, tx=0.0, ty=0.0, perspective=(0.0, 0.0)):
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx],
                     [scale * np.sin(a), scale * np.cos(a), ty],
                     [perspective[0], perspective[1], 1.0]])


WARPS = {
    "shift right": affine(tx=3.0),
    "shift up-left, subpixel": affine(tx=-1.5, ty=-2.25),
    "rotation 2 deg": affine(angle_deg=2.0),
    "zoom 1.03": affine(scale=1.03, tx=-4.0, ty=-3.0),
    "shrink 0.97": affine(scale=0.97, tx=3.0, ty=2.0),
    "perspective": affine(angle_deg=-1.0, tx=1.0, perspective=(2e-5, -1e-5)),
}


@pytest.mark.parametrize("name", sorted(WARPS))
def test_equals_a_literal_transcription_of_the_script(name):
    """Every step (matching, ECC, both warps, mask, masked PSNR/SSIM) against ``reference.realblur``."""
    target = astronaut_320x240()
    pred = cv2.warpPerspective(target, WARPS[name], (320, 240), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
    pred = np.clip(pred.astype(np.float64) * 0.9 + 6, 0, 255).astype(np.uint8)  # a gain to match
    ours = psnr_ssim("realblur", pred, target)
    assert ours == pytest.approx(reference.realblur(pred, target), abs=1e-9)
    assert ours[0] > reference.psnr(pred, target, 255.0) + 5  # alignment mattered


@pytest.mark.parametrize("case", ["identical", "noisy, unmoved", "small odd size"])
def test_edge_cases_equal_the_transcription(case):
    target = astronaut_320x240()
    if case == "identical":
        pred = target.copy()
    elif case == "noisy, unmoved":
        pred = np.clip(target + np.random.default_rng(0).normal(0, 4, target.shape), 0, 255).astype(np.uint8)
    else:
        target = target[37:62, 101:134]
        pred = shifted(target, 1.0, 0.5)
    ours = psnr_ssim("realblur", pred, target)
    expected = reference.realblur(pred, target)
    assert ours[1] == pytest.approx(expected[1], abs=1e-9)
    assert ours[0] == expected[0] or ours[0] == pytest.approx(expected[0], abs=1e-9)


def test_mask_marks_the_pixels_whose_source_lies_outside_the_prediction():
    # pred(x) = target(x − 4): aligned back, target columns x ≥ W − 4 would sample pred beyond
    # its right edge, so the mask must drop the *right* strip and keep the left one.
    target = scene(2)
    h, w = target.shape[:2]
    pred = shifted(target, 4.0, 0.0)
    x = target.astype(np.float32) / 255
    aligned, masked_target, mask, _ = align(pred.astype(np.float32) / 255, x)
    assert mask.shape == target.shape
    assert np.all(mask[:, : w - 5] == 1) and np.all(mask[:, w - 3:] == 0)
    assert np.all(aligned[mask == 0] == 0) and np.all(masked_target[mask == 0] == 0)
    assert np.abs(aligned - masked_target)[mask == 1].max() < 0.05  # nothing reflected is counted (0.93 before)


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
