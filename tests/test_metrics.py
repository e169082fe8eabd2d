"""The fast protocols against the literal float64 MATLAB transcriptions and scikit-image."""

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mprnet.metrics import (
    psnr_ssim,
    psnr_ssim_rgb,
    psnr_ssim_sidd,
    psnr_ssim_y,
    reference,
    rgb_batch,
    rgb_to_y,
    sidd_batch,
    uint8_to_single,
    y_channel_batch,
)
from mprnet.metrics import kernels

TOL = 1e-6
BACKENDS = ["numba", "torch"]  # the CPU default, and the GPU code run on the CPU


def textured(rng, shape, noise=12):
    """A smooth random scene and a noisy, slightly darkened 'restoration' of it (uint8)."""
    scene = gaussian_filter(rng.random(shape), sigma=(3, 3, 0)[: len(shape)])
    scene = (scene - scene.min()) / (scene.max() - scene.min())
    target = np.rint(scene * 255).astype(np.uint8)
    pred = np.clip(target * 0.97 + rng.normal(0, noise, shape), 0, 255).astype(np.uint8)
    return pred, target


SHAPES = [(11, 11, 3), (37, 53, 3), (64, 48, 3), (29, 70, 3)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_y_channel_matches_matlab_transcription(shape, backend):
    pred, target = textured(np.random.default_rng(sum(shape)), shape)
    psnr, ssim = psnr_ssim_y(pred, target, device="cpu", backend=backend)
    ref_psnr, ref_ssim = reference.y_channel(pred, target)
    assert abs(psnr - ref_psnr) <= TOL
    assert abs(ssim - ref_ssim) <= TOL


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES + [(5, 7, 3), (1, 1, 3)])
def test_rgb_matches_matlab_transcription(shape, backend):
    pred, target = textured(np.random.default_rng(sum(shape)), shape)
    psnr, ssim = psnr_ssim_rgb(pred, target, device="cpu", backend=backend)
    ref_psnr, ref_ssim = reference.rgb(pred, target)
    assert abs(psnr - ref_psnr) <= TOL
    assert abs(ssim - ref_ssim) <= TOL


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(32, 32, 3), (41, 23, 3)])
def test_sidd_matches_matlab_transcription_on_unquantised_floats(shape, backend):
    rng = np.random.default_rng(7)
    _, target = textured(rng, shape)
    pred = np.clip(target / 255.0 + rng.normal(0, 0.02, shape), 0, 1).astype(np.float32)
    psnr, ssim = psnr_ssim_sidd(pred, target, device="cpu", backend=backend)
    gt = uint8_to_single(target).astype(np.float64)
    ref_psnr, ref_ssim = reference.sidd(pred.astype(np.float64), gt)
    assert abs(psnr - ref_psnr) <= TOL
    assert abs(ssim - ref_ssim) <= TOL
    # Quantising the prediction first would change the score: the protocol must not do it.
    q_psnr, _ = psnr_ssim_sidd(np.rint(pred * 255).astype(np.uint8), target)
    assert abs(q_psnr - psnr) > 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
def test_bright_flat_regions_keep_full_precision(backend):
    # E[x²] − μ² of a flat region near 255 is where float32 loses precision (here 4.5e-6 of SSIM).
    target = np.full((40, 40, 3), 250, np.uint8)
    target[:, 20:] = 5
    pred = target.copy()
    pred[10:30, 10:30] = 252
    for protocol, ref in (("y_channel", reference.y_channel), ("rgb", reference.rgb)):
        psnr, ssim = psnr_ssim(protocol, pred, target, device="cpu", backend=backend)
        ref_psnr, ref_ssim = ref(pred, target)
        assert abs(psnr - ref_psnr) <= TOL and abs(ssim - ref_ssim) <= TOL


def test_closed_form_for_constant_images():
    c1 = (0.01 * 255) ** 2
    a, b = np.full((16, 16, 3), 100, np.uint8), np.full((16, 16, 3), 110, np.uint8)
    psnr, ssim = psnr_ssim_rgb(a, b)
    assert psnr == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-12)
    assert ssim == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1), abs=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_identical_images_give_infinite_psnr_and_ssim_one(backend):
    pred, _ = textured(np.random.default_rng(0), (30, 30, 3))
    for protocol in ("y_channel", "rgb", "sidd"):
        psnr, ssim = psnr_ssim(protocol, pred, pred.copy(), device="cpu", backend=backend)
        assert psnr == math.inf
        assert ssim == pytest.approx(1.0, abs=1e-12)


def test_matlab_rounding_of_y_changes_the_result():
    # Y(100,100,100) = 101.882 and Y(101,100,100) = 102.139: both MATLAB-round to 102.
    target = np.full((20, 20, 3), 100, np.uint8)
    pred = target.copy()
    pred[..., 0] = 101
    psnr, ssim = psnr_ssim_y(pred, target)
    assert psnr == math.inf and ssim == 1.0
    unrounded = 65.481 / 255  # the Y difference without rounding
    assert 20 * math.log10(255 / unrounded) < 60
    # On a real-looking pair the rounded and unrounded Y give measurably different PSNR.
    pred, target = textured(np.random.default_rng(3), (48, 48, 3), noise=2)
    weights = np.array([65.481, 128.553, 24.966]) / 255
    y_float = [16 + img.astype(np.float64) @ weights for img in (pred, target)]
    psnr_unrounded = 10 * math.log10(255**2 / np.mean((y_float[0] - y_float[1]) ** 2))
    assert abs(psnr_ssim_y(pred, target)[0] - psnr_unrounded) > 0.01


@pytest.mark.slow
def test_y_conversion_over_the_whole_colour_cube():
    v = np.arange(256, dtype=np.uint8)
    cube = np.stack(np.meshgrid(v, v, v, indexing="ij"), axis=-1).reshape(4096, 4096, 3)
    ours = rgb_to_y(cube)
    assert ours.dtype == np.uint8 and ours.shape == (4096, 4096)
    np.testing.assert_array_equal(ours, reference.rgb2ycbcr_y(cube))
    np.testing.assert_array_equal(kernels.rgb_to_y_matlab(torch.from_numpy(cube)).numpy(), ours)
    # Versus exact rational arithmetic, only exact .5 ties may differ (MATLAB's double order).
    c = cube.astype(np.int64)
    scaled = 65481 * c[..., 0] + 128553 * c[..., 1] + 24966 * c[..., 2]  # 255000·(Y − 16)
    exact = (scaled + 16 * 255000 + 127500) // 255000
    ties = scaled % 255000 == 127500
    assert np.count_nonzero(ties) == 194
    assert np.array_equal(ours[~ties], exact[~ties])
    # (0, 204, 68) is exactly 125.5; in imlincomb's double arithmetic it lands just below.
    assert rgb_to_y(np.array([[[0, 204, 68]]], np.uint8))[0, 0] == 125


def test_psnr_agrees_with_scikit_image():
    pred, target = textured(np.random.default_rng(11), (45, 61, 3))
    expected = peak_signal_noise_ratio(target, pred, data_range=255)
    assert abs(psnr_ssim_rgb(pred, target)[0] - expected) <= TOL
    yp, yt = rgb_to_y(pred), rgb_to_y(target)
    assert abs(psnr_ssim_y(pred, target)[0] - peak_signal_noise_ratio(yt, yp, data_range=255)) <= TOL


def test_wang_ssim_equals_scikit_image_gaussian_ssim_on_y():
    # scikit-image crops (win−1)/2 = 5 pixels, leaving exactly the 'valid' region of ssim_index.
    pred, target = textured(np.random.default_rng(12), (45, 61, 3))
    expected = structural_similarity(rgb_to_y(target), rgb_to_y(pred), gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=255)
    assert abs(psnr_ssim_y(pred, target)[1] - expected) <= TOL


def test_per_channel_valid_ssim_equals_scikit_image_channel_axis():
    pred, target = textured(np.random.default_rng(13), (40, 52, 3))
    p = torch.from_numpy(pred).permute(2, 0, 1).double()
    t = torch.from_numpy(target).permute(2, 0, 1).double()
    ours = kernels.ssim_valid(p, t, 255.0).mean().item()
    expected = structural_similarity(pred, target, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=255, channel_axis=-1)
    assert abs(ours - expected) <= TOL


def test_rgb_ssim_is_the_3d_volume_not_the_per_channel_mean():
    pred, target = textured(np.random.default_rng(14), (40, 52, 3))
    pred[..., 0] = target[..., 0]  # channels now differ a lot in quality
    per_channel = np.mean([reference.ssim_matlab(pred[..., c], target[..., c], 255.0) for c in range(3)])
    assert abs(psnr_ssim_rgb(pred, target)[1] - per_channel) > 1e-3


def test_colour_axis_weights_fold_the_gaussian_tail_onto_edge_slices():
    g = kernels.gaussian_taps()
    m = kernels.replicate_matrix(3, g)
    assert m[0].tolist() == pytest.approx([sum(g[:6]), g[6], sum(g[7:])])
    assert m[1].tolist() == pytest.approx([sum(g[:5]), g[5], sum(g[6:])])
    assert m.sum(1).tolist() == pytest.approx([1.0, 1.0, 1.0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("channels", [2, 4])
def test_volumes_of_other_depths_match_matlab_3d_ssim(channels, backend):
    pred, target = textured(np.random.default_rng(channels), (23, 31, channels))
    psnr, ssim = rgb_batch(pred[None], target[None], device="cpu", backend=backend)
    assert abs(psnr[0] - reference.psnr(pred, target, 255.0)) <= TOL
    assert abs(ssim[0] - reference.ssim_matlab(pred, target, 255.0)) <= TOL


@pytest.mark.parametrize("backend", BACKENDS)
def test_grayscale_rgb_protocol_equals_matlab_2d_ssim(backend):
    pred, target = textured(np.random.default_rng(15), (30, 33))
    psnr, ssim = rgb_batch(pred[None, ..., None], target[None, ..., None], device="cpu", backend=backend)
    assert abs(ssim[0] - reference.ssim_matlab(pred, target, 255.0)) <= TOL
    assert abs(psnr[0] - reference.psnr(pred, target, 255.0)) <= TOL


@pytest.mark.parametrize("backend", BACKENDS)
def test_batches_give_the_same_scores_as_single_images(backend):
    rng = np.random.default_rng(16)
    pairs = [textured(rng, (24, 31, 3)) for _ in range(5)]
    preds, targets = np.stack([p for p, _ in pairs]), np.stack([t for _, t in pairs])
    kw = dict(device="cpu", backend=backend)
    for batch_fn, one in ((y_channel_batch, psnr_ssim_y), (rgb_batch, psnr_ssim_rgb)):
        psnr, ssim = batch_fn(preds, targets, **kw)
        for i, (p, t) in enumerate(pairs):
            assert (psnr[i], ssim[i]) == pytest.approx(one(p, t, **kw), abs=1e-12)
    psnr, _ = sidd_batch(uint8_to_single(preds), uint8_to_single(targets), **kw)
    assert psnr[2] == pytest.approx(psnr_ssim_sidd(*pairs[2], **kw)[0], abs=1e-12)


def test_backends_agree_on_a_full_size_image():
    pred, target = textured(np.random.default_rng(18), (321, 481, 3))
    for protocol in ("y_channel", "rgb"):
        fused = psnr_ssim(protocol, pred, target, device="cpu", backend="numba")
        pt = psnr_ssim(protocol, pred, target, device="cpu", backend="torch")
        assert fused == pytest.approx(pt, abs=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_y_channel_rejects_images_smaller_than_the_window(backend):
    a = np.zeros((10, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="11×11"):
        psnr_ssim_y(a, a, device="cpu", backend=backend)


def test_unknown_protocol_is_an_error():
    a = np.zeros((12, 12, 3), np.uint8)
    with pytest.raises(ValueError, match="unknown protocol"):
        psnr_ssim("ycbcr", a, a)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    pred, target = textured(np.random.default_rng(17), (64, 80, 3))
    for protocol in ("y_channel", "rgb", "sidd"):
        assert psnr_ssim(protocol, pred, target, device="cuda") == pytest.approx(
            psnr_ssim(protocol, pred, target, device="cpu"), abs=1e-9)
