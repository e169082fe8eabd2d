"""Restoring with trained weights: a tiny MPRNet learns, tiled = whole, outputs, official .pth files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mprnet.cli import main
from mprnet.errors import CheckpointError, ConfigError
from mprnet.images import read_rgb, to_uint8, write_png
from train_worker import TINY_MODEL, smooth_image, tiny_config


pytestmark = pytest.mark.usefixtures("one_thread")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny denoiser trained for 60 iterations on the demo_noise training pairs (~15 s)."""
    from mprnet.data.demo import make_demo
    from mprnet.training import train

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("learn")
    demo = make_demo(root / "demo", seed=0)["noise"]
    config = tiny_config(demo / "train", length=60, batch_size=4, optim={"lr": 2e-3},
                         schedule={"unit": "iteration", "length": 60, "warmup": 5},
                         runtime={"num_workers": 0, "checkpoint_every": 60, "log_every": 5, "progress": False})
    final = train(config, root / "run")
    return root, demo, final


@pytest.mark.slow
def test_a_tiny_mprnet_learns_and_restores_above_the_input(trained, tmp_path):
    import pandas as pd

    root, demo, final = trained
    loss = pd.read_csv(root / "run" / "metrics.csv")["loss"].dropna().to_numpy()
    assert loss[-3:].mean() < 0.6 * loss[:3].mean(), loss
    # The demo test split includes sizes that are not multiples of 8 (padding inside the model).
    assert main(["restore", "--checkpoint", str(final), "--input", str(demo / "test" / "input"),
                 "--output", str(tmp_path / "out"), "--no-progress"]) == 0
    targets = sorted((demo / "test" / "target").glob("*.png"))
    from mprnet.data.demo import TEST_SIZES

    assert len(targets) == len(TEST_SIZES)
    for target_path in targets:
        target = read_rgb(target_path)
        before = _psnr(read_rgb(demo / "test" / "input" / target_path.name), target)
        restored = read_rgb(tmp_path / "out" / target_path.name)
        assert restored.shape == target.shape
        after = _psnr(restored, target)
        assert after > before + 1.0, (target_path.stem, before, after)  # on every image, not only on average


def _test_image_512x768(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    import skimage.data
    from PIL import Image

    clean = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((768, 512), Image.BICUBIC)) / 255.0
    noisy = np.clip(clean + np.random.default_rng(seed).normal(0, 0.08, clean.shape), 0, 1)
    return clean, noisy


@pytest.mark.slow
def test_tiled_restore_equals_whole_image_restore_within_001_db(trained):
    from mprnet.restore import load_restorer, restore_tensor

    model, _ = load_restorer(trained[2])
    clean, noisy = _test_image_512x768()
    x = torch.from_numpy(noisy.transpose(2, 0, 1).copy()).float()[None]
    whole = to_uint8(restore_tensor(model, x)[0][0].permute(1, 2, 0).numpy())
    tiled = to_uint8(restore_tensor(model, x, tile=256, overlap=32)[0][0].permute(1, 2, 0).numpy())
    reference = to_uint8(clean)
    difference = _psnr(whole, reference) - _psnr(tiled, reference)
    print(f"whole {_psnr(whole, reference):.4f} dB, tiled {_psnr(tiled, reference):.4f} dB, "
          f"tiled vs whole {_psnr(tiled, whole):.2f} dB, input {_psnr(to_uint8(noisy), reference):.2f} dB")
    assert abs(difference) < 0.01
    assert _psnr(tiled, whole) > 40.0  # and the two images agree pixel by pixel


def _our_checkpoint(path, task="denoising"):
    """A model file in the format the trainer writes (model + effective config)."""
    from mprnet.model import build_model
    from mprnet.training.config import resolve_config

    torch.manual_seed(0)
    model = build_model(task, **TINY_MODEL)
    cfg = resolve_config({"task": task, "data": {"train": "unused"}, "model": {"overrides": dict(TINY_MODEL)}})
    torch.save({"format": "mprnet-model/1", "model": model.state_dict(), "config": cfg, "iteration": 0}, path)
    return model


def test_restore_writes_png_float_and_stage_images_of_any_size(tmp_path):
    model = _our_checkpoint(tmp_path / "model.pt").eval()
    rng = np.random.default_rng(0)
    image = np.rint(smooth_image(rng, 45, 61) * 255).astype(np.uint8)  # not a multiple of 8
    write_png(tmp_path / "in" / "odd.png", image)
    out = tmp_path / "out"
    # --device cpu: the reference below is computed on the CPU (a GPU's fp32 differs in the last bits)
    assert main(["restore", "--checkpoint", str(tmp_path / "model.pt"), "--input", str(tmp_path / "in"),
                 "--output", str(out), "--save-float", "--save-stages", "--no-progress", "--device", "cpu"]) == 0
    png = read_rgb(out / "odd.png")
    array = np.load(out / "float" / "odd.npy")
    assert png.shape == image.shape and array.shape == image.shape and array.dtype == np.float32
    assert array.min() >= 0 and array.max() <= 1
    assert np.array_equal(to_uint8(array), png)
    with torch.no_grad():
        expected = model(torch.from_numpy(image.transpose(2, 0, 1).copy()).float().div(255)[None])
    # fp32 (the default) is the plain forward pass, bit for bit: no autocast, no conversion.
    np.testing.assert_array_equal(array, expected[0][0].clamp(0, 1).permute(1, 2, 0).numpy())
    stage1 = read_rgb(out / "stages" / "odd_stage1.png")
    assert np.array_equal(stage1, to_uint8(expected[2][0].permute(1, 2, 0).numpy()))
    assert (out / "stages" / "odd_stage2.png").exists() and not (out / "stages" / "odd_stage3.png").exists()


def _model_output(model, image: np.ndarray) -> np.ndarray:
    """The clamped final output for an H×W×3 float image, as restore_folder computes it."""
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None])
    return out[0][0].clamp(0, 1).permute(1, 2, 0).numpy()


def test_float_npy_inputs_are_restored_unquantised_and_named_by_stem(tmp_path):
    """DND's exact float crops (prepare's input_float/*.npy): fed as they are, not rounded to 8 bits."""
    model = _our_checkpoint(tmp_path / "model.pt").eval()
    rng = np.random.default_rng(3)
    crops = {f"0001_{k:02d}": np.clip(smooth_image(rng, 21, 34) + rng.normal(0, 0.05, (21, 34, 3)), 0, 1)
             .astype(np.float32) for k in (1, 2)}
    for stem, crop in crops.items():
        (tmp_path / "input_float").mkdir(exist_ok=True)
        np.save(tmp_path / "input_float" / f"{stem}.npy", crop)
        write_png(tmp_path / "input" / f"{stem}.png", to_uint8(crop))  # what prepare writes beside them
    runs = {}
    for name in ("input_float", "input"):
        out = tmp_path / f"out_{name}"
        assert main(["restore", "--checkpoint", str(tmp_path / "model.pt"), "--input", str(tmp_path / name),
                     "--output", str(out), "--save-float", "--no-progress", "--device", "cpu"]) == 0
        # Named by stem whatever the input's extension: what dnd-bundle and the scorers pair by.
        assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
            "0001_01.png", "0001_02.png", "float/0001_01.npy", "float/0001_02.npy", "restore.json"]
        runs[name] = {stem: np.load(out / "float" / f"{stem}.npy") for stem in crops}
        for stem, array in runs[name].items():
            assert np.array_equal(read_rgb(out / f"{stem}.png"), to_uint8(array))
    for stem, crop in crops.items():
        rounded = to_uint8(crop).astype(np.float32) / np.float32(255)
        assert 0 < np.abs(rounded - crop).max() <= 0.5 / 255 + 1e-7  # the PNGs really are rounded
        np.testing.assert_allclose(runs["input_float"][stem], _model_output(model, crop), rtol=0, atol=1e-6)
        np.testing.assert_allclose(runs["input"][stem], _model_output(model, rounded), rtol=0, atol=1e-6)
        gap = np.abs(runs["input_float"][stem] - runs["input"][stem]).max()
        print(f"{stem}: float vs 8-bit input, outputs differ by up to {gap * 255:.3f}/255")
        assert gap > 1e-4  # the rounding of the input reaches the output


BAD_FLOAT_INPUTS = {
    "integer": (np.zeros((8, 8, 3), np.uint8), "float"),
    "2-D": (np.zeros((8, 8), np.float32), "float"),
    "4 channels": (np.zeros((8, 8, 4), np.float32), "float"),
    "above 1": (np.full((8, 8, 3), 1.5, np.float32), r"\[0, 1\]"),
    "NaN": (np.full((8, 8, 3), np.nan, np.float32), "NaN"),
    "not a .npy": (b"not an array", "unreadable"),
    "pickled object": (np.array([{"a": 1}], dtype=object), "unreadable"),
}


@pytest.mark.parametrize("case", sorted(BAD_FLOAT_INPUTS))
def test_bad_float_inputs_are_refused_naming_the_file(tmp_path, case):
    from mprnet.errors import DataError
    from mprnet.restore import restore_folder

    model = _our_checkpoint(tmp_path / "model.pt").eval()
    content, message = BAD_FLOAT_INPUTS[case]
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "0001_01.npy", np.zeros((8, 8, 3), np.float32))
    bad = tmp_path / "in" / "0001_02.npy"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        np.save(bad, content, allow_pickle=True)
    with pytest.raises(DataError, match=rf"0001_02\.npy.*{message}"):
        restore_folder(model, tmp_path / "in", tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "0001_02.png").exists()


def test_inputs_sharing_a_stem_or_no_inputs_are_refused(tmp_path, capsys):
    _our_checkpoint(tmp_path / "model.pt")
    args = ["restore", "--checkpoint", str(tmp_path / "model.pt"), "--input", str(tmp_path / "in"),
            "--output", str(tmp_path / "out"), "--no-progress"]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("neither an image nor an array")
    assert main(args) == 2
    assert "in: no images or .npy float arrays to restore" in capsys.readouterr().err
    write_png(tmp_path / "in" / "a.png", np.zeros((8, 8, 3), np.uint8))
    np.save(tmp_path / "in" / "a.npy", np.zeros((8, 8, 3), np.float32))
    assert main(args) == 2
    assert "two inputs share the stem 'a': a.npy, a.png" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _restore_cli(tmp_path, name, *extra):
    out = tmp_path / name
    assert main(["restore", "--checkpoint", str(tmp_path / "model.pt"), "--input", str(tmp_path / "in"),
                 "--output", str(out), "--save-float", "--no-progress", "--device", "cpu", *extra]) == 0
    return out


def _cpu_bf16_missing() -> str | None:
    from mprnet.precision import bf16_support

    support = bf16_support("cpu")
    return None if support.native else f"bf16 is not native here: {support.reason}"


@pytest.mark.skipif(_cpu_bf16_missing() is not None, reason=str(_cpu_bf16_missing()))
def test_bf16_restore_is_close_to_fp32_and_says_so_in_its_record(tmp_path):
    import hashlib
    import json

    from mprnet.restore import read_record, restore_tensor

    model = _our_checkpoint(tmp_path / "model.pt").eval()
    rng = np.random.default_rng(5)
    image = np.rint(smooth_image(rng, 45, 61) * 255).astype(np.uint8)
    write_png(tmp_path / "in" / "odd.png", image)
    fp32 = _restore_cli(tmp_path, "fp32")
    bf16 = _restore_cli(tmp_path, "bf16", "--precision", "bf16")
    a, b = (np.load(out / "float" / "odd.npy") for out in (fp32, bf16))
    assert b.dtype == np.float32 and b.shape == a.shape and 0 <= b.min() and b.max() <= 1
    gap = np.abs(a - b)
    print(f"bf16 vs fp32: max |diff| {gap.max():.2e}, mean {gap.mean():.2e}, PSNR {_psnr(a * 255, b * 255):.1f} dB")
    assert gap.max() > 0  # bf16 really ran
    assert gap.max() < 0.03 and _psnr(a * 255, b * 255) > 45  # bf16 keeps ~3 significant digits
    assert np.array_equal(read_rgb(bf16 / "odd.png"), to_uint8(b))

    records = {name: read_record(out) for name, out in (("fp32", fp32), ("bf16", bf16))}
    assert records["fp32"]["precision"] == "fp32" and records["bf16"]["precision"] == "bf16"
    record = records["bf16"]
    assert record["checkpoint"] == str(tmp_path / "model.pt")
    assert record["checkpoint_sha256"] == hashlib.sha256((tmp_path / "model.pt").read_bytes()).hexdigest()
    assert (record["tile"], record["overlap"], record["device"], record["images"]) == (None, 32, "cpu", 1)
    assert record["torch"] == torch.__version__ and "denoising" in record["model"]
    assert json.loads((bf16 / "restore.json").read_text()) == record

    # Tiled bf16: the tiles are blended in float32, close to the tiled fp32 result.
    x = torch.from_numpy(image.transpose(2, 0, 1).copy()).float().div(255)[None]
    tiled = [restore_tensor(model, x, tile=32, overlap=8, precision=p)[0] for p in ("fp32", "bf16")]
    assert tiled[1].dtype == torch.float32
    assert 0 < (tiled[0] - tiled[1]).abs().max() < 0.05


def test_bf16_on_a_device_that_would_emulate_it_is_refused_before_writing(tmp_path, capsys, monkeypatch):
    import mprnet.precision as precision
    import mprnet.restore as restore

    _our_checkpoint(tmp_path / "model.pt")
    write_png(tmp_path / "in" / "a.png", np.zeros((16, 16, 3), np.uint8))
    monkeypatch.setattr(precision, "bf16_support", lambda device: precision.Bf16Support(False, "test: no bf16 units"))
    assert main(["restore", "--checkpoint", str(tmp_path / "model.pt"), "--input", str(tmp_path / "in"),
                 "--output", str(tmp_path / "out"), "--precision", "bf16", "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--precision bf16: bf16 is not native on cpu: test: no bf16 units; emulated it runs about 11x slower" in err
    assert "Restore with --precision fp32" in err
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in", "model.pt"]
    with pytest.raises(ConfigError, match="expected one of fp32, bf16"):
        restore.check_precision("fp16", "cpu")


def test_restore_records(tmp_path):
    from mprnet.errors import DataError
    from mprnet.restore import read_record

    assert read_record(tmp_path) is None  # restored before records existed
    (tmp_path / "restore.json").write_text("{not json")
    with pytest.raises(DataError, match="restore.json: unreadable"):
        read_record(tmp_path)
    (tmp_path / "restore.json").write_text('{"format": "mprnet-restore/1", "precision": "fp16"}')
    with pytest.raises(DataError, match="restore.json: not a mprnet-restore/1 record"):
        read_record(tmp_path)


def test_released_pth_files_load_with_their_preset_recognised(tmp_path):
    from mprnet.model import build_model
    from mprnet.restore import load_restorer

    torch.manual_seed(0)
    official = build_model("deraining")
    # The release format: {"state_dict": ...} saved from nn.DataParallel ("module." prefixes).
    torch.save({"epoch": 250, "state_dict": {f"module.{k}": v for k, v in official.state_dict().items()}},
               tmp_path / "model_deraining.pth")
    model, what = load_restorer(tmp_path / "model_deraining.pth")
    assert "deraining" in what
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), official.state_dict().values()))
    with pytest.raises(CheckpointError, match="deblurring"):
        load_restorer(tmp_path / "model_deraining.pth", task="deblurring")


def test_bad_restore_requests_are_refused(tmp_path):
    from mprnet.restore import load_restorer, restore_tensor

    _our_checkpoint(tmp_path / "model.pt")
    with pytest.raises(ConfigError, match="trained for denoising"):
        load_restorer(tmp_path / "model.pt", task="deblurring")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth"):
        load_restorer(tmp_path / "junk.pth")
    model, _ = load_restorer(tmp_path / "model.pt")
    with pytest.raises(ConfigError, match="multiple of 8"):
        restore_tensor(model, torch.rand(1, 3, 64, 64), tile=20)
    with pytest.raises(ConfigError, match="overlap"):
        restore_tensor(model, torch.rand(1, 3, 64, 64), tile=32, overlap=32)


@pytest.mark.parametrize("size,tile,overlap", [(1280, 384, 32), (720, 384, 64), (768, 256, 32), (100, 64, 0), (513, 64, 8)])
def test_tiles_cover_the_image_with_at_least_the_overlap(size, tile, overlap):
    from mprnet.restore import tile_starts

    starts = tile_starts(size, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == size
    assert (tile - np.diff(starts) >= overlap).all()  # every overlap is at least the one asked for
    assert len(starts) == 1 + -(-(size - tile) // (tile - overlap))  # and no more windows than needed
