"""``mprnet score`` and ``score_folders``: pairing, batching by size, CSV output, bad input."""

import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from mprnet.cli import main
from mprnet.errors import DataError
from mprnet.images import write_png
from mprnet.metrics import psnr_ssim, reference, score_folders


def pair(rng, shape):
    s = gaussian_filter(rng.random(shape), sigma=(2, 2, 0))
    target = np.rint((s - s.min()) / (s.max() - s.min()) * 255).astype(np.uint8)
    pred = np.clip(target + rng.normal(0, 6, shape), 0, 255).astype(np.uint8)
    return pred, target


@pytest.fixture
def folders(tmp_path):
    """Five pairs of mixed (odd) sizes; ``im0`` is restored perfectly."""
    rng = np.random.default_rng(0)
    pred_dir, target_dir = tmp_path / "pred", tmp_path / "target"
    arrays = {}
    for i, shape in enumerate([(33, 41, 3), (33, 41, 3), (24, 19, 3), (33, 41, 3), (24, 19, 3)]):
        pred, target = pair(rng, shape)
        if i == 0:
            pred = target.copy()
        write_png(pred_dir / f"im{i}.png", pred)
        write_png(target_dir / f"im{i}.png", target)
        arrays[f"im{i}"] = (pred, target)
    return pred_dir, target_dir, arrays


@pytest.mark.parametrize("protocol", ["y_channel", "rgb", "sidd"])
def test_scores_every_pair_by_stem_across_sizes(folders, protocol):
    pred_dir, target_dir, arrays = folders
    with pytest.warns(UserWarning, match="unquantised") if protocol == "sidd" else _no_warning():
        scores = score_folders(protocol, pred_dir, target_dir)
    assert list(scores.columns) == ["image", "psnr", "ssim"]
    assert list(scores["image"]) == sorted(arrays)
    ref = {"y_channel": reference.y_channel, "rgb": reference.rgb}.get(protocol)
    for row in scores.itertuples():
        pred, target = arrays[row.image]
        if ref is None:
            expected = reference.sidd(pred / np.float32(255), target / np.float32(255))
        else:
            expected = ref(pred, target)
        if math.isinf(expected[0]):
            assert math.isinf(row.psnr)
        else:
            assert row.psnr == pytest.approx(expected[0], abs=1e-6)
        assert row.ssim == pytest.approx(expected[1], abs=1e-6)


class _no_warning:
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def test_pairs_by_stem_not_by_position_and_ignores_extensions(tmp_path):
    rng = np.random.default_rng(1)
    a, b = pair(rng, (20, 20, 3)), pair(rng, (20, 20, 3))
    # "b" sorts first among predictions only because of its extension; stems decide.
    write_png(tmp_path / "p" / "x_a.png", a[0])
    Image.fromarray(b[0]).save(tmp_path / "p" / "x_b.bmp")
    write_png(tmp_path / "t" / "x_a.png", a[1])
    write_png(tmp_path / "t" / "x_b.png", b[1])
    scores = score_folders("rgb", tmp_path / "p", tmp_path / "t").set_index("image")
    assert scores.loc["x_b", "psnr"] == pytest.approx(psnr_ssim("rgb", *b)[0], abs=1e-9)


def test_sidd_reads_unquantised_float_outputs(tmp_path):
    rng = np.random.default_rng(2)
    _, target = pair(rng, (32, 32, 3))
    pred = np.clip(target / 255 + rng.normal(0, 0.03, target.shape), 0, 1).astype(np.float32)
    write_png(tmp_path / "t" / "0001_01.png", target)
    write_png(tmp_path / "p" / "0001_01.png", np.rint(pred * 255).astype(np.uint8))
    (tmp_path / "p" / "float").mkdir()
    np.save(tmp_path / "p" / "float" / "0001_01.npy", pred)
    scores = score_folders("sidd", tmp_path / "p", tmp_path / "t")
    expected = reference.sidd(pred.astype(np.float64), (target / np.float32(255)).astype(np.float64))
    assert scores.loc[0, "psnr"] == pytest.approx(expected[0], abs=1e-6)
    assert scores.loc[0, "ssim"] == pytest.approx(expected[1], abs=1e-6)

    np.save(tmp_path / "p" / "float" / "0001_01.npy", pred * 1.5)
    with pytest.raises(DataError, match=r"0001_01\.npy.*outside \[0, 1\]"):
        score_folders("sidd", tmp_path / "p", tmp_path / "t")
    np.save(tmp_path / "p" / "float" / "0002_01.npy", pred)
    with pytest.raises(DataError, match="0002_01"):
        score_folders("sidd", tmp_path / "p", tmp_path / "t")


def test_cli_writes_csv_with_inf_and_prints_means(folders, tmp_path, capsys):
    pred_dir, target_dir, _ = folders
    out = tmp_path / "scores" / "y.csv"
    code = main(["score", "--protocol", "y_channel", "--pred", str(pred_dir), "--target", str(target_dir),
                 "--out", str(out)])
    assert code == 0
    text = out.read_text()
    assert text.splitlines()[0] == "image,psnr,ssim"
    assert text.splitlines()[1].startswith("im0,inf,1.0")
    table = pd.read_csv(out)
    assert len(table) == 5 and math.isinf(table.loc[0, "psnr"])
    expected = score_folders("y_channel", pred_dir, target_dir)
    pd.testing.assert_frame_equal(table, expected)
    printed = capsys.readouterr().out
    assert "5 images" in printed and "mean PSNR inf" in printed
    finite_mean = expected["psnr"][1:].mean()
    assert f"{finite_mean:.4f}" in printed
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    (tmp_path / "p").mkdir()
    write_png(tmp_path / "t" / "a.png", np.zeros((12, 12, 3), np.uint8))
    code = main(["score", "--protocol", "rgb", "--pred", str(tmp_path / "p"), "--target", str(tmp_path / "t")])
    assert code == 2
    assert "no images" in capsys.readouterr().err


def _write_pair(tmp_path, pred, target, name="a"):
    write_png(tmp_path / "t" / f"{name}.png", target)
    if isinstance(pred, np.ndarray):
        write_png(tmp_path / "p" / f"{name}.png", pred)
    return tmp_path / "p", tmp_path / "t"


def test_size_mismatch_names_both_files(tmp_path):
    p, t = _write_pair(tmp_path, np.zeros((20, 21, 3), np.uint8), np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(DataError, match=r"size mismatch.*p/a\.png.*21×20.*t/a\.png.*20×20"):
        score_folders("rgb", p, t)


def test_missing_and_extra_files_are_named(tmp_path):
    img = np.zeros((12, 12, 3), np.uint8)
    _write_pair(tmp_path, img, img, "a")
    write_png(tmp_path / "p" / "extra.png", img)
    write_png(tmp_path / "t" / "missing.png", img)
    with pytest.raises(DataError, match=r"extra.*missing"):
        score_folders("rgb", tmp_path / "p", tmp_path / "t")


def test_truncated_image_is_named(tmp_path):
    p, t = _write_pair(tmp_path, np.zeros((30, 30, 3), np.uint8), np.zeros((30, 30, 3), np.uint8))
    data = (p / "a.png").read_bytes()
    (p / "a.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"p/a\.png"):
        score_folders("y_channel", p, t)


def test_grayscale_against_rgb_is_an_error_naming_the_gray_file(tmp_path):
    target = np.full((16, 16, 3), 90, np.uint8)
    p, t = _write_pair(tmp_path, None, target)
    p.mkdir()
    Image.fromarray(np.full((16, 16), 90, np.uint8), mode="L").save(p / "a.png")
    with pytest.warns(UserWarning, match="grayscale"), pytest.raises(DataError, match=r"grayscale vs RGB: \S*p/a\.png"):
        score_folders("rgb", p, t)


def test_grayscale_pairs_are_scored_like_matlab_2d_images(tmp_path):
    rng = np.random.default_rng(4)
    pred, target = pair(rng, (20, 24, 3))
    pred, target = pred[..., 0], target[..., 0]
    (tmp_path / "p").mkdir()
    (tmp_path / "t").mkdir()
    Image.fromarray(pred, mode="L").save(tmp_path / "p" / "g.png")
    Image.fromarray(target, mode="L").save(tmp_path / "t" / "g.png")
    with pytest.warns(UserWarning):
        y = score_folders("y_channel", tmp_path / "p", tmp_path / "t")
        rgb = score_folders("rgb", tmp_path / "p", tmp_path / "t")
        with pytest.raises(DataError, match="needs RGB"):
            score_folders("realblur", tmp_path / "p", tmp_path / "t")
    # MATLAB skips rgb2ycbcr for 2-D images: the gray values are the Y channel.
    assert y.loc[0, "ssim"] == pytest.approx(reference.ssim_index(pred, target), abs=1e-6)
    assert rgb.loc[0, "ssim"] == pytest.approx(reference.ssim_matlab(pred, target, 255.0), abs=1e-6)


def test_rgba_is_scored_without_alpha_with_a_warning(tmp_path):
    rng = np.random.default_rng(5)
    pred, target = pair(rng, (16, 16, 3))
    p, t = _write_pair(tmp_path, None, target)
    p.mkdir()
    rgba = np.concatenate([pred, np.full((16, 16, 1), 7, np.uint8)], axis=2)
    Image.fromarray(rgba, mode="RGBA").save(p / "a.png")
    with pytest.warns(UserWarning, match="alpha"):
        scores = score_folders("rgb", p, t)
    assert scores.loc[0, "psnr"] == pytest.approx(reference.psnr(pred, target, 255.0), abs=1e-9)


def test_sixteen_bit_png_is_refused(tmp_path):
    p, t = _write_pair(tmp_path, None, np.zeros((16, 16, 3), np.uint8))
    p.mkdir()
    Image.fromarray(np.full((16, 16), 30000, np.uint16)).save(p / "a.png")
    with pytest.raises(DataError, match=r"p/a\.png.*16-bit"):
        score_folders("rgb", p, t)


def test_y_channel_refuses_images_smaller_than_the_window(tmp_path):
    p, t = _write_pair(tmp_path, np.zeros((10, 30, 3), np.uint8), np.zeros((10, 30, 3), np.uint8))
    with pytest.raises(DataError, match=r"a\.png.*11×11"):
        score_folders("y_channel", p, t)


def test_unknown_protocol(tmp_path):
    with pytest.raises(DataError, match="unknown protocol"):
        score_folders("psnr", tmp_path, tmp_path)


def test_unavailable_device_is_a_one_line_error(folders, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    pred_dir, target_dir, _ = folders
    code = main(["score", "--protocol", "rgb", "--pred", str(pred_dir), "--target", str(target_dir),
                 "--device", "cuda"])
    assert code == 2
    assert "device 'cuda' is not available" in capsys.readouterr().err
