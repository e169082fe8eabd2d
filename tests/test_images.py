"""The one image reader (``mprnet.images``): bit depth and colour type come from the file's header.

Pillow decodes an image with more than one 16-bit channel as 8-bit and keeps the high byte; the
study's policy (README, input policy) is to refuse 16-bit, float and CMYK files everywhere:
``read_rgb``, ``mprnet score``, ``prepare`` (which must never write a file the reader would not
take as it is), the training set check and ``restore``.
"""

from __future__ import annotations

import re
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
import yaml
from PIL import Image

from mprnet.cli import main
from mprnet.errors import DataError
from mprnet.images import inspect_image, read_image, read_rgb, write_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOUR_TYPE = {"grey": 0, "rgb": 2, "palette": 3, "grey+alpha": 4, "rgba": 6}


# --------------------------------------------------------------------------- test files

def ihdr(path: Path) -> tuple[int, int]:
    """(bit depth, colour type) of a PNG, read from its IHDR bytes."""
    head = path.read_bytes()[:26]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", path
    return head[24], head[25]


def png_chunks(path: Path) -> list[bytes]:
    data, names, pos = path.read_bytes(), [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        names.append(data[pos + 4:pos + 8])
        pos += 12 + length
    return names


def write_png_by_hand(path: Path, samples: np.ndarray, depth: int, colour: str) -> Path:
    """A minimal PNG encoder (filter 0, no interlace), independent of the code under test.

    ``samples``: H×W×C unsigned integers below 2**depth; for depths under 8 (one channel)
    the samples are packed most significant bits first, as the PNG specification says.
    """
    height, width = samples.shape[:2]
    if depth == 16:
        rows = [samples[r].astype(">u2").tobytes() for r in range(height)]
    elif depth == 8:
        rows = [samples[r].astype(np.uint8).tobytes() for r in range(height)]
    else:
        per_byte = 8 // depth
        rows = []
        for r in range(height):
            values = list(samples[r].ravel()) + [0] * (-width % per_byte)
            packed = bytearray()
            for i in range(0, len(values), per_byte):
                byte = 0
                for v in values[i:i + per_byte]:
                    byte = (byte << depth) | int(v)
                packed.append(byte)
            rows.append(bytes(packed))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, depth, PNG_COLOUR_TYPE[colour], 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def write_png16(path: Path, image: np.ndarray) -> Path:
    """Write a uint16 H×W, H×W×3 (RGB) or H×W×4 (RGBA) array as a 16-bit PNG through OpenCV."""
    assert image.dtype == np.uint16
    bgr = image if image.ndim == 2 else image[..., [2, 1, 0, 3][:image.shape[2]]]
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), bgr)
    return path


def quiet(call, *args):
    """Call with every warning turned into an error: the file must be read as it is."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call(*args)


def refused(path: Path, what: str) -> None:
    """read_rgb, read_image and inspect_image all refuse ``path`` with a message naming it and ``what``."""
    pattern = re.escape(str(path)) + ".*" + what
    for call in (read_rgb, read_image, inspect_image):
        with pytest.raises(DataError, match=pattern):
            call(path)


# --------------------------------------------------------------------------- the reader

@pytest.mark.parametrize("colour, channels", [("rgb", 3), ("rgba", 4), ("grey", 1)])
def test_sixteen_bit_pngs_are_refused(tmp_path, colour, channels):
    rng = np.random.default_rng(1)
    shape = (12, 10) if channels == 1 else (12, 10, channels)
    image = rng.integers(0, 65536, shape, dtype=np.uint16)
    path = write_png16(tmp_path / f"{colour}16.png", image)
    assert ihdr(path) == (16, PNG_COLOUR_TYPE[colour])  # the file really holds 16-bit samples
    if channels > 1:
        # The fault this guards against: Pillow's 8-bit mode with the high byte of each sample.
        with Image.open(path) as img:
            assert img.mode == ("RGB" if channels == 3 else "RGBA")
            assert np.array_equal(np.asarray(img), (image >> 8).astype(np.uint8))
    refused(path, f"16-bit {colour} PNG")


def test_sixteen_bit_grey_alpha_png_is_refused(tmp_path):
    samples = np.random.default_rng(2).integers(0, 65536, (6, 5, 2))
    path = write_png_by_hand(tmp_path / "la16.png", samples, 16, "grey+alpha")
    assert ihdr(path) == (16, 4)
    refused(path, "16-bit grey\\+alpha PNG")


@pytest.mark.parametrize("kind, dtype, what", [
    ("rgb", np.uint16, "16-bit TIFF"),
    ("grey", np.uint16, "16-bit TIFF"),
    ("rgb", np.float32, "floating-point TIFF"),
    ("grey", np.float32, "floating-point TIFF"),
    ("rgb", np.int8, "signed integer TIFF"),
])
def test_sixteen_bit_float_and_signed_tiffs_are_refused(tmp_path, kind, dtype, what):
    rng = np.random.default_rng(3)
    shape = (9, 7, 3) if kind == "rgb" else (9, 7)
    if np.dtype(dtype).kind == "f":
        image = rng.random(shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        image = rng.integers(info.min, int(info.max) + 1, shape).astype(dtype)
    path = tmp_path / f"{kind}_{np.dtype(dtype).name}.tif"
    tifffile.imwrite(path, image, photometric="rgb" if kind == "rgb" else "minisblack")
    with tifffile.TiffFile(path) as tif:  # what the file holds, read by tifffile
        page = tif.pages[0]
        assert page.bitspersample == np.dtype(dtype).itemsize * 8
        assert int(page.sampleformat) == {"u": 1, "i": 2, "f": 3}[np.dtype(dtype).kind]
    refused(path, what)


def test_eight_bit_rgb_tiff_is_read_as_it_is(tmp_path):
    image = np.random.default_rng(4).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb8.tif", image, photometric="rgb")
    array, info = quiet(read_image, tmp_path / "rgb8.tif")
    assert np.array_equal(array, image)
    assert (info.format, info.bits, info.colour, info.width, info.height) == ("TIFF", 8, "rgb", 7, 9)


def test_palette_png_and_tiff_are_looked_up_to_rgb_exactly(tmp_path):
    rng = np.random.default_rng(5)
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    index = rng.integers(0, 256, (11, 13), dtype=np.uint8)
    img = Image.fromarray(index, mode="P")
    img.putpalette(palette.ravel().tolist())
    img.save(tmp_path / "p.png")
    img.save(tmp_path / "p.tif")
    assert ihdr(tmp_path / "p.png") == (8, 3)
    for name in ("p.png", "p.tif"):
        array, info = quiet(read_image, tmp_path / name)
        assert info.colour == "palette" and not info.grey
        assert np.array_equal(array, palette[index]), name


def test_tiff_palette_with_sixteen_bit_colours_is_refused(tmp_path):
    index = np.arange(12, dtype=np.uint8).reshape(3, 4)
    colormap = np.random.default_rng(6).integers(0, 65536, (3, 256)).astype(np.uint16)
    colormap[0, 0] = 1000  # neither v*256 nor v*257: the decoder's high byte would not be exact
    tifffile.imwrite(tmp_path / "p16.tif", index, photometric="palette", colormap=colormap)
    refused(tmp_path / "p16.tif", "TIFF palette with 16-bit colours")


def test_grey_alpha_png_drops_alpha_and_expands_with_warnings(tmp_path):
    rng = np.random.default_rng(7)
    la = rng.integers(0, 256, (8, 6, 2), dtype=np.uint8)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    assert ihdr(tmp_path / "la.png") == (8, 4)
    with pytest.warns(UserWarning) as record:
        array, info = read_image(tmp_path / "la.png")
    messages = [str(w.message) for w in record]
    assert any("la.png" in m and "alpha" in m for m in messages)
    assert any("la.png" in m and "grayscale" in m for m in messages)
    assert info.grey and info.transparency
    assert np.array_equal(array, np.repeat(la[..., :1], 3, axis=2))


def test_rgba_png_drops_alpha_with_a_warning(tmp_path):
    rgba = np.random.default_rng(8).integers(0, 256, (8, 6, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    with pytest.warns(UserWarning, match=r"a\.png.*alpha"):
        array = read_rgb(tmp_path / "a.png")
    assert np.array_equal(array, rgba[..., :3])


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_low_bit_grey_pngs_scale_exactly_as_the_png_specification_says(tmp_path, depth):
    samples = np.arange(2**depth).repeat(3).reshape(1, -1, 1) % 2**depth
    path = write_png_by_hand(tmp_path / f"g{depth}.png", samples, depth, "grey")
    assert ihdr(path) == (depth, 0)
    with pytest.warns(UserWarning, match="grayscale"):
        array = read_rgb(path)
    expected = (samples[..., 0] * 255 // (2**depth - 1)).astype(np.uint8)  # exact: 2**depth - 1 divides 255
    assert np.array_equal(array, np.repeat(expected[..., None], 3, axis=2))


def test_cmyk_jpeg_is_refused(tmp_path):
    cmyk = np.random.default_rng(9).integers(0, 256, (16, 16, 4), dtype=np.uint8)
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "c.jpg")
    data = (tmp_path / "c.jpg").read_bytes()
    sof = re.search(rb"\xff[\xc0-\xc2]", data).start()
    assert data[sof + 9] == 4  # the frame header's component count: four (CMYK)
    refused(tmp_path / "c.jpg", "CMYK JPEG")


def test_rgb_and_grey_jpegs_are_read(tmp_path):
    rng = np.random.default_rng(10)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "c.jpg")
    Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8), mode="L").save(tmp_path / "g.jpg")
    with Image.open(tmp_path / "c.jpg") as img:
        decoded = np.asarray(img.convert("RGB"))
    assert np.array_equal(quiet(read_rgb, tmp_path / "c.jpg"), decoded)
    with pytest.warns(UserWarning, match="grayscale"):
        array, info = read_image(tmp_path / "g.jpg")
    assert info.grey and array.shape == (16, 16, 3)


def test_other_formats_are_refused_by_content_not_name(tmp_path):
    from PIL import features

    if not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "w.png", format="WEBP")
    refused(tmp_path / "w.png", "WEBP image")


def test_missing_and_truncated_files_are_named(tmp_path):
    refused(tmp_path / "none.png", "no such file")
    write_png(tmp_path / "t.png", np.random.default_rng(11).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[:len(data) // 2])
    with pytest.raises(DataError, match=r"t\.png.*truncated"):
        read_rgb(tmp_path / "t.png")
    with pytest.raises(DataError, match=r"t\.png.*truncated"):
        inspect_image(tmp_path / "t.png", verify=True)


# --------------------------------------------------------------------------- every path

def issue_case(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """An 8-bit prediction (48×64, random, seed 0) and a 16-bit RGB target ``v·257 + u``, u < 200."""
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    v = np.clip(np.rint(pred + rng.normal(0.0, 16.0, pred.shape)), 0, 254).astype(np.uint16)
    u = rng.integers(0, 200, pred.shape).astype(np.uint16)
    target16 = v * 257 + u
    write_png(tmp_path / "pred" / "a.png", pred)
    path = write_png16(tmp_path / "target" / "a.png", target16)
    assert ihdr(path) == (16, 2)
    return tmp_path / "pred", tmp_path / "target", pred, target16


def test_score_cli_refuses_a_sixteen_bit_target(tmp_path, capsys):
    pred_dir, target_dir, _, target16 = issue_case(tmp_path)
    # The case is one where reading by Pillow's mode changes the values: the high byte is not
    # the exact 8-bit value round(t / 257) at many pixels.
    with Image.open(target_dir / "a.png") as img:
        high_byte = np.asarray(img)
    assert np.array_equal(high_byte, target16 >> 8)
    assert (high_byte != np.rint(target16 / 257.0)).mean() > 0.1
    out = tmp_path / "scores.csv"
    code = main(["score", "--protocol", "rgb", "--pred", str(pred_dir), "--target", str(target_dir),
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert re.search(re.escape(str(target_dir / "a.png")) + r".*16-bit rgb PNG", err), err
    assert not out.exists()


def _prepare(tmp_path: Path):
    """Run ``prepare`` (paired_folders converter) on ``tmp_path/data/downloads/src``."""
    from mprnet.data.prepare import prepare_dataset
    from mprnet.data.registry import load_registry

    registry = {
        "schema_version": 1,
        "sources": {"src": {"kind": "http", "url": "http://127.0.0.1/src", "title": "src"}},
        "datasets": {"mixed": {"title": "mixed", "task": "deblurring", "role": "test", "protocol": "rgb",
                               "licence": "test", "layout": {"converter": "paired_folders", "original": "-",
                                                             "stem": "name", "splits": {"test": {"source": "src"}}}}},
    }
    (tmp_path / "datasets.yaml").write_text(yaml.safe_dump(registry, sort_keys=False))
    return prepare_dataset("mixed", load_registry(tmp_path / "datasets.yaml"), data_dir=tmp_path / "data",
                           progress=False)


def test_prepare_refuses_a_sixteen_bit_png_and_writes_nothing(tmp_path):
    src = tmp_path / "data" / "downloads" / "src"
    write_png(src / "input" / "a.png", np.zeros((48, 64, 3), np.uint8))
    write_png16(src / "target" / "a.png", np.full((48, 64, 3), 40000, np.uint16))
    with pytest.raises(DataError, match=re.escape(str(src / "target" / "a.png")) + ".*16-bit rgb PNG"):
        _prepare(tmp_path)
    assert not (tmp_path / "data" / "mixed").exists()


def test_prepare_writes_only_files_the_reader_takes_as_they_are(tmp_path):
    src = tmp_path / "data" / "downloads" / "src"
    rng = np.random.default_rng(12)
    rgb = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    (src / "input").mkdir(parents=True)
    (src / "target").mkdir(parents=True)
    Image.fromarray(rgb).save(src / "input" / "plain.png")
    Image.fromarray(rgb).save(src / "input" / "trns.png", transparency=tuple(int(c) for c in rgb[0, 0]))
    Image.fromarray(rng.integers(0, 256, (10, 12, 4), dtype=np.uint8), mode="RGBA").save(src / "input" / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (10, 12, 2), dtype=np.uint8), mode="LA").save(src / "input" / "la.png")
    Image.fromarray(rng.integers(0, 256, (10, 12), dtype=np.uint8), mode="L").convert("P").save(src / "input" / "pal.png")
    for stem in ("plain", "trns", "rgba", "la", "pal"):
        Image.fromarray(rgb).save(src / "target" / f"{stem}.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the source files' alpha and grey warnings
        expected = {p.stem: read_rgb(p) for p in (src / "input").iterdir()}
        (split,) = _prepare(tmp_path)
    for side in ("input", "target"):
        for path in sorted((split / side).glob("*.png")):
            assert ihdr(path) == (8, 2), path
            assert b"tRNS" not in png_chunks(path), path
            array = quiet(read_rgb, path)
            assert np.array_equal(array, expected[path.stem] if side == "input" else rgb), path
    assert (split / "input" / "plain.png").read_bytes() == (src / "input" / "plain.png").read_bytes()


def test_training_set_check_refuses_a_sixteen_bit_png(tmp_path):
    from mprnet.training.dataset import scan_pairs

    write_png(tmp_path / "train" / "input" / "a.png", np.zeros((48, 64, 3), np.uint8))
    target = write_png16(tmp_path / "train" / "target" / "a.png", np.full((48, 64, 3), 40000, np.uint16))
    with pytest.raises(DataError, match=re.escape(str(target)) + ".*16-bit rgb PNG"):
        scan_pairs(tmp_path / "train", patch_size=32)


def test_restore_refuses_a_sixteen_bit_input_and_writes_nothing(tmp_path):
    from mprnet.model import build_model
    from mprnet.restore import restore_folder

    path = write_png16(tmp_path / "in" / "a.png", np.full((16, 16, 3), 40000, np.uint16))
    model = build_model("denoising", n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)
    with pytest.raises(DataError, match=re.escape(str(path)) + ".*16-bit rgb PNG"):
        restore_folder(model, tmp_path / "in", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))


def test_two_files_sharing_a_stem_are_refused_naming_both(tmp_path):
    """Pairs and outputs are named by stem: a.png and a.jpg in one folder cannot both be image a."""
    from mprnet.images import index_by_stem, pair_by_stem

    for folder in ("pred", "target"):
        write_png(tmp_path / folder / "a.png", np.zeros((8, 8, 3), np.uint8))
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "pred" / "a.jpg")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'pred'}: two images share the stem 'a': a.jpg, a.png")):
        pair_by_stem(tmp_path / "pred", tmp_path / "target")
    found = index_by_stem([tmp_path / "target" / "b.npy", tmp_path / "target" / "a.png"], tmp_path / "target", "inputs")
    assert list(found) == ["a", "b"]  # in name order
