"""Reading, writing and pairing the 8-bit RGB images every part of the study works on."""

from __future__ import annotations

import os
import struct
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .atomic import atomic_path
from .errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# The decoders' 8-bit modes. A decoded mode outside this set means Pillow disagrees with the
# header checks below, and the file is refused rather than guessed at.
_EIGHT_BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "YCbCr")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR = {0: "grey", 2: "rgb", 3: "palette", 4: "grey+alpha", 6: "rgba"}
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_TIFF_SAMPLE_FORMAT = {1: "unsigned integer", 2: "signed integer", 3: "floating-point", 4: "undefined"}
_TIFF_PHOTOMETRIC = {0: "grey", 1: "grey", 2: "rgb", 3: "palette", 6: "rgb"}  # 6: YCbCr, decoded to RGB
_CONVERT_HINT = "convert it to 8-bit RGB first (README: input policy)"
# The most pixels an image may claim: Pillow's default limit (2**30 / 12, a 1 GiB float32 RGB
# array), checked from the header before anything is decoded. A larger claim is a corrupt
# header or a decompression bomb (a few bytes that decode to gigabytes), never a study image.
MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class ImageInfo:
    """What an image file's own header says about it (not Pillow's mode after decoding).

    ``format``: ``"PNG"``, ``"JPEG"``, ``"BMP"`` or ``"TIFF"``; ``bits``: bits per sample as
    stored (per index for palette images; always ≤ 8 for a file :func:`inspect_image` accepts);
    ``colour``: ``"grey"``, ``"grey+alpha"``, ``"rgb"``, ``"rgba"`` or ``"palette"``;
    ``transparency``: an alpha channel or a transparent colour (PNG ``tRNS``), dropped on reading.
    """

    path: Path
    format: str
    width: int
    height: int
    bits: int
    colour: str
    transparency: bool

    @property
    def grey(self) -> bool:
        """True for one-channel images (with or without alpha), which MATLAB reads as 2-D arrays."""
        return self.colour in ("grey", "grey+alpha")

    @property
    def plain_rgb_png(self) -> bool:
        """True when :func:`read_rgb` returns the file's own samples: an 8-bit RGB PNG without transparency."""
        return self.format == "PNG" and self.colour == "rgb" and self.bits == 8 and not self.transparency


def inspect_image(path: str | os.PathLike, *, verify: bool = False) -> ImageInfo:
    """Check an image file from its header, without decoding the pixels.

    Refuses what :func:`read_rgb` refuses (see there) from the same header checks; damaged
    pixel data shows only on decoding, or with ``verify``, which checks the file's checksums
    where the format has them (PNG CRCs, through ``PIL.Image.verify``). Returns the
    :class:`ImageInfo`; raises ``DataError`` naming the file for a missing, unreadable or
    refused image.
    """
    return _examine(Path(path), decode=False, verify=verify)[1]


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, ImageInfo]:
    """:func:`read_rgb` and the file's :class:`ImageInfo` (e.g. to know it was grey), in one read."""
    return _examine(Path(path), decode=True)


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image as an H×W×3 uint8 array: the one reader of every image the study uses.

    The bit depth and colour type come from the file's header (PNG ``IHDR``; TIFF
    ``BitsPerSample``, ``SampleFormat``, ``PhotometricInterpretation``; JPEG ``SOF``; BMP bit
    count), never from Pillow's mode after decoding, which keeps only the high byte of 16-bit
    colour images without a word. Policy (README, "input policy"):

    * 8-bit RGB PNG, JPEG, BMP, TIFF: read as they are.
    * Palette images (PNG, BMP, TIFF ≤ 8-bit indices): looked up to RGB, exactly.
    * Grey (1, 2, 4, 8 bits): expanded to three equal channels, with a warning; 1/2/4-bit
      values scale by 255/(2^bits - 1) as the PNG specification says, which is exact.
    * Alpha or a transparent colour: dropped with a warning (MATLAB ``imread`` returns it apart).
    * Refused with ``DataError`` naming the file: more than 8 bits per sample (16-bit PNG or
      TIFF of any colour type, 16-bit-per-pixel BMP), floating-point or signed TIFF, CMYK
      (JPEG or TIFF) and other colour spaces, TIFF palettes with 16-bit entries, formats other
      than PNG/JPEG/BMP/TIFF, a header claiming more than ``MAX_PIXELS`` pixels (checked
      before decoding: a decompression bomb), and missing, truncated or unreadable files.
      Nothing is rescaled: a silent ÷257 or colour conversion would change every score
      computed from it.
    """
    return _examine(Path(path), decode=True)[0]


def _examine(path: Path, *, decode: bool, verify: bool = False) -> tuple[np.ndarray | None, ImageInfo]:
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            info = _header_info(path, head, fh)
            if info is not None:
                check_pixels(path, info.width, info.height)
            elif head.startswith(b"\xff\xd8"):
                check_pixels(path, *_jpeg_size(fh))
            fh.seek(0)
            with Image.open(fh) as img:
                info = _complete_info(path, head, img, info)
                if verify:
                    img.verify()
                if not decode:
                    return None, info
                img.load()
                if img.mode not in _EIGHT_BIT_MODES:
                    raise DataError(f"{path}: decodes as {img.mode} although its header says {info.bits}-bit "
                                    f"{info.colour}; {_CONVERT_HINT}")
                if info.transparency:
                    warnings.warn(f"{path}: {info.colour} image, the alpha channel (transparency) is dropped",
                                  stacklevel=3)
                    img.info.pop("transparency", None)  # Pillow would warn again without the file name
                if info.grey:
                    warnings.warn(f"{path}: {info.bits}-bit grayscale image expanded to RGB", stacklevel=3)
                array = np.asarray(img.convert("RGB"))
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: a folder, not an image file") from None
    except Image.DecompressionBombError as exc:  # a size the header checks above did not see
        raise DataError(f"{path}: refused, its size is a decompression bomb's ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError, ValueError, KeyError, struct.error) as exc:
        raise DataError(f"{path}: unreadable, truncated or corrupt image ({exc})") from None
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise DataError(f"{path}: expected 8-bit RGB, got {array.dtype} with shape {array.shape}")
    return array, info


def check_pixels(path: Path, width: int, height: int) -> None:
    """Refuse (``DataError`` naming the file) an image whose header claims more than
    ``MAX_PIXELS`` pixels, before any of them is decoded."""
    if width * height > MAX_PIXELS:
        raise DataError(f"{path}: its header claims {width}x{height} pixels ({width * height:,}), more than the "
                        f"{MAX_PIXELS:,} the study decodes; a corrupt header or a decompression bomb, refused "
                        "before decoding")


def _jpeg_size(fh: Any) -> tuple[int, int]:
    """(width, height) from a JPEG's frame header (SOF), read marker by marker; (0, 0) if none."""
    fh.seek(2)
    while True:
        marker = fh.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return 0, 0
        if marker[1] in (0xD8, 0x01) or 0xD0 <= marker[1] <= 0xD7 or marker[1] == 0xFF:
            if marker[1] == 0xFF:
                fh.seek(-1, 1)
            continue
        length = fh.read(2)
        if len(length) < 2:
            return 0, 0
        if marker[1] in _JPEG_SOF:
            frame = fh.read(5)
            if len(frame) < 5:
                return 0, 0
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        fh.seek(struct.unpack(">H", length)[0] - 2, 1)


def _refuse(path: Path, what: str) -> DataError:
    return DataError(f"{path}: {what}; {_CONVERT_HINT}")


def _header_info(path: Path, head: bytes, fh: Any) -> ImageInfo | None:
    """Header facts read from the file's bytes (PNG, BMP, TIFF); None for JPEG and other formats."""
    if head.startswith(_PNG_SIGNATURE):
        if len(head) < 26 or head[12:16] != b"IHDR":
            raise DataError(f"{path}: PNG without its IHDR header (truncated or corrupt)")
        width, height, depth, ctype = struct.unpack(">IIBB", head[16:26])
        if ctype not in _PNG_COLOUR or depth not in _PNG_DEPTHS[ctype]:
            raise DataError(f"{path}: invalid PNG header (bit depth {depth}, colour type {ctype})")
        colour = _PNG_COLOUR[ctype]
        if depth > 8:
            raise _refuse(path, f"{depth}-bit {colour} PNG")
        return ImageInfo(path, "PNG", width, height, depth, colour, ctype in (4, 6))
    if head.startswith(b"BM") and len(head) >= 30:
        header_size = int.from_bytes(head[14:18], "little")
        bits = int.from_bytes(head[24:26] if header_size == 12 else head[28:30], "little")
        if header_size == 12:
            width, height = struct.unpack("<HH", head[18:22])
        else:
            width, height = (abs(v) for v in struct.unpack("<ii", head[18:26]))  # negative: top-down
        if bits in (1, 4, 8):
            return ImageInfo(path, "BMP", width, height, bits, "palette", False)
        if bits in (24, 32):
            return ImageInfo(path, "BMP", width, height, 8, "rgb", False)
        raise _refuse(path, f"BMP with {bits} bits per pixel (not 8 bits per channel)")
    if head[:4] in _TIFF_MAGIC:
        return _tiff_info(path, head, fh)
    return None


def _tiff_info(path: Path, head: bytes, fh: Any) -> ImageInfo:
    from PIL import TiffImagePlugin

    def several(value: Any) -> tuple:
        return tuple(value) if isinstance(value, (tuple, list)) else (value,)

    ifd = TiffImagePlugin.ImageFileDirectory_v2(head[:16] if head[2] == 43 else head[:8])  # 43: BigTIFF
    fh.seek(ifd.next)
    ifd.load(fh)
    bits = several(ifd.get(258, 1))        # BitsPerSample
    formats = several(ifd.get(339, 1))     # SampleFormat
    photometric = ifd.get(262)             # PhotometricInterpretation
    samples = int(ifd.get(277, 1))         # SamplesPerPixel
    bad = sorted({int(f) for f in formats} - {1})
    if bad:
        raise _refuse(path, f"{_TIFF_SAMPLE_FORMAT.get(bad[0], f'sample format {bad[0]}')} TIFF "
                            f"({max(bits)} bits per sample)")
    if max(bits) > 8:
        raise _refuse(path, f"{max(bits)}-bit TIFF")
    if photometric not in _TIFF_PHOTOMETRIC:
        kind = {5: "CMYK (separated)", 8: "CIELab", 4: "transparency mask"}.get(photometric, f"photometric {photometric}")
        raise _refuse(path, f"{kind} TIFF")
    colour = _TIFF_PHOTOMETRIC[photometric]
    if colour == "palette":
        # Entries are 16-bit; the decoder keeps the high byte, which is exact only for the usual
        # 8-bit embeddings (v·257, or v·256 as Pillow and others write).
        entries = several(ifd.get(320, ()))   # ColorMap
        if not (all(e % 257 == 0 for e in entries) or all(e % 256 == 0 for e in entries)):
            raise _refuse(path, "TIFF palette with 16-bit colours")
    alpha = samples > (3 if colour == "rgb" else 1)
    if alpha:
        colour = {"grey": "grey+alpha", "rgb": "rgba"}.get(colour, colour)
    return ImageInfo(path, "TIFF", int(ifd.get(256, 0)), int(ifd.get(257, 0)), max(bits), colour, alpha)


def _complete_info(path: Path, head: bytes, img: Any, info: ImageInfo | None) -> ImageInfo:
    """Add what the opened file tells (JPEG SOF, PNG tRNS, BMP alpha, the size); refuse other formats."""
    width, height = img.size
    if info is None:
        if img.format not in ("JPEG", "MPO") or not head.startswith(b"\xff\xd8"):
            raise _refuse(path, f"{img.format} image (the study reads PNG, JPEG, BMP and TIFF)")
        # Pillow reads the JPEG's SOF segment at open: sample precision and component count.
        # (It refuses 12-bit JPEGs itself.)
        if img.bits != 8:
            raise _refuse(path, f"{img.bits}-bit JPEG")
        components = {1: "grey", 3: "rgb"}.get(img.layers)
        if components is None:
            raise _refuse(path, f"{'CMYK' if img.layers == 4 else f'{img.layers}-component'} JPEG "
                                "(its conversion to RGB depends on the colour profile)")
        return ImageInfo(path, "JPEG", width, height, 8, components, False)
    transparency = info.transparency or "transparency" in img.info
    colour = info.colour
    if info.format == "BMP" and img.mode == "RGBA":
        colour, transparency = "rgba", True
    return replace(info, width=width, height=height, colour=colour, transparency=transparency)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name; hidden (temporary) files are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def read_float_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an unquantised prediction saved as ``.npy`` (H×W×3 float in [0, 1]) as float32.

    The header is checked before any value is read: the shape (H×W×3, at most ``MAX_PIXELS``
    pixels), a float dtype, and a file long enough for that shape (a truncated file, or a
    header claiming more than the file holds, is refused rather than allocated). NaN,
    infinite and out-of-range values are refused, not clamped: the official test scripts clamp
    before saving, so values outside [0, 1] mean the file did not come from a restore step.
    """
    path = Path(path)
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)  # the header only, nothing read yet
    except (OSError, ValueError, EOFError) as exc:
        if "mmap length is greater than file size" in str(exc):
            raise DataError(f"{path}: its .npy header claims a larger array than the file holds (truncated, or "
                            "a corrupt header), refused before reading") from None
        raise DataError(f"{path}: unreadable .npy file ({exc})") from None
    if (not isinstance(mapped, np.ndarray) or mapped.ndim != 3 or mapped.shape[2] != 3 or mapped.dtype.kind != "f"
            or mapped.size == 0):
        what = f"{mapped.dtype} {mapped.shape}" if isinstance(mapped, np.ndarray) else type(mapped).__name__
        raise DataError(f"{path}: expected an H×W×3 float array, got {what}")
    check_pixels(path, mapped.shape[1], mapped.shape[0])
    try:
        array = np.array(mapped)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable .npy file ({exc})") from None
    del mapped
    if not np.isfinite(array).all():
        raise DataError(f"{path}: contains NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise DataError(f"{path}: values outside [0, 1] ({low:.4g}..{high:.4g}); clamp outputs as the test scripts do")
    return array.astype(np.float32, copy=False)


def read_float_input(path: str | os.PathLike) -> np.ndarray:
    """An image or ``.npy`` float array as H×W×3 float32 in [0, 1], the way the network sees it.

    ``.npy``: :func:`read_float_rgb` (unquantised, as ``Denoising/test_DND.py`` feeds the DND
    crops); any image: :func:`read_rgb` divided by 255 in float32. Raises ``DataError`` as those do.
    """
    if Path(path).suffix.lower() == ".npy":
        return read_float_rgb(path)
    return read_rgb(path).astype(np.float32) / np.float32(255.0)


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an H×W×3 uint8 array as PNG, atomically."""
    from PIL import Image

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"write_png expects H×W×3 uint8, got {image.dtype} {image.shape}")
    with atomic_path(path) as tmp:
        Image.fromarray(image, mode="RGB").save(tmp, format="PNG")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in [0,1] to uint8 as the official test scripts do (clamp, ×255, round half to even)."""
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def pair_by_stem(
    first: str | os.PathLike, second: str | os.PathLike
) -> list[tuple[str, Path, Path]]:
    """Match the images of two folders by file stem, whatever their extensions.

    Unlike the official scripts, which pair by list position, a missing or extra file is an
    error that names it, so one stray image cannot shift every pair after it.
    """
    a = _by_stem(first)
    b = _by_stem(second)
    if not a:
        raise DataError(f"{first}: no images")
    if not b:
        raise DataError(f"{second}: no images")
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    if only_a or only_b:
        lines = []
        if only_a:
            lines.append(f"only in {first}: {_preview(only_a)}")
        if only_b:
            lines.append(f"only in {second}: {_preview(only_b)}")
        raise DataError("unpaired images; " + "; ".join(lines))
    return [(stem, a[stem], b[stem]) for stem in sorted(a)]


def _by_stem(folder: str | os.PathLike) -> dict[str, Path]:
    return index_by_stem(list_images(folder), folder)


def index_by_stem(paths: Iterable[Path], folder: str | os.PathLike, kind: str = "images") -> dict[str, Path]:
    """``{stem: path}`` for files of ``folder``, in name order, refusing two files with one stem.

    Outputs and pairs are named by stem (``a.png`` and ``a.jpg`` would both be ``a``), so a
    shared stem raises ``DataError`` naming ``folder``, the stem and both files, e.g.
    ``"DIR: two images share the stem 'a': a.jpg, a.png"`` (``kind`` replaces ``images``).
    """
    found: dict[str, Path] = {}
    for path in sorted(paths):
        if path.stem in found:
            raise DataError(f"{folder}: two {kind} share the stem {path.stem!r}: {found[path.stem].name}, {path.name}")
        found[path.stem] = path
    return found


def _preview(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names)} in all)"
