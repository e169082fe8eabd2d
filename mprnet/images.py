"""Reading, writing and pairing the 8-bit RGB images every part of the study works on."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name; hidden (temporary) files are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image as an H×W×3 uint8 array.

    Grayscale is expanded to three channels and RGBA drops its alpha, each with a warning;
    16-bit images are refused rather than rescaled, because a silent ÷257 would change scores.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode.startswith("I") or mode == "F":
                raise DataError(f"{path}: {mode} image (16-bit or float); convert it to 8-bit RGB first")
            if mode in ("RGBA", "LA", "PA"):
                warnings.warn(f"{path}: {mode} image, the alpha channel is dropped", stacklevel=2)
            if mode in ("L", "LA", "1"):
                warnings.warn(f"{path}: {mode} (grayscale) image expanded to RGB", stacklevel=2)
            array = np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(f"{path}: unreadable or truncated image ({exc})") from None
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise DataError(f"{path}: expected 8-bit RGB, got {array.dtype} with shape {array.shape}")
    return array


def read_float_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an unquantised prediction saved as ``.npy`` (H×W×3 float in [0, 1]) as float32.

    Out-of-range values are refused, not clamped: the official test scripts clamp before saving,
    so values outside [0, 1] mean the file did not come from a restore step.
    """
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: unreadable .npy file ({exc})") from None
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype.kind != "f":
        raise DataError(f"{path}: expected an H×W×3 float array, got {array.dtype} {array.shape}")
    if not np.isfinite(array).all():
        raise DataError(f"{path}: contains NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise DataError(f"{path}: values outside [0, 1] ({low:.4g}..{high:.4g}); clamp outputs as the test scripts do")
    return array.astype(np.float32, copy=False)


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
    found: dict[str, Path] = {}
    for path in list_images(folder):
        if path.stem in found:
            raise DataError(f"{folder}: two images share the stem {path.stem!r}: {found[path.stem].name}, {path.name}")
        found[path.stem] = path
    return found


def _preview(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names)} in all)"
