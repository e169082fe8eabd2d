"""Image pairs and manifests: the checks every prepared split passes before it is kept.

A pair is ``(stem, input_path, target_path)``. ``validate_pairs`` insists that both images of a
pair have the same size and lists every offender at once; ``write_manifest`` records
(stem, height, width, input_sha256, target_sha256) for a finished split.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from ..errors import DataError
from ..images import inspect_image, list_images, pair_by_stem, read_image, write_png
from .fetch import sha256_file

MANIFEST_COLUMNS = ("stem", "height", "width", "input_sha256", "target_sha256")
Pair = tuple[str, Path, Path]


def default_workers() -> int:
    """Threads for image I/O: PIL and zlib release the GIL while decoding and encoding."""
    return max(1, min(8, os.cpu_count() or 1))


def pair_folders(input_dir: Path, target_dir: Path, pair_by: str = "stem") -> list[Pair]:
    """Pair two image folders by stem (default) or by sorted position like the official loaders."""
    if pair_by == "position":
        inputs, targets = list_images(input_dir), list_images(target_dir)
        if len(inputs) != len(targets):
            raise DataError(f"{input_dir} has {len(inputs)} images but {target_dir} has {len(targets)}; "
                            "pairing by position needs equal counts")
        return [(a.stem, a, b) for a, b in zip(inputs, targets)]
    try:
        return pair_by_stem(input_dir, target_dir)
    except DataError as exc:
        inputs, targets = list_images(input_dir), list_images(target_dir)
        hint = ""
        if inputs and len(inputs) == len(targets) and not {p.stem for p in inputs} & {p.stem for p in targets}:
            hint = " (no stem is shared: if the names differ by design, set pair_by: position in the registry)"
        raise DataError(f"{exc}{hint}") from None


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the image header, without decoding the pixels.

    Raises ``DataError`` for any file :func:`mprnet.images.read_rgb` would refuse (16-bit,
    float, CMYK, unreadable), so a split with such a file is never written.
    """
    info = inspect_image(path)
    return info.height, info.width


def validate_pairs(pairs: list[Pair]) -> list[tuple[str, int, int]]:
    """Check every pair has the same size; return (stem, height, width) or list all offenders."""
    stems: dict[str, Path] = {}
    offenders = []
    sizes = []
    with ThreadPoolExecutor(default_workers()) as pool:
        measured = list(pool.map(lambda p: (image_size(p[1]), image_size(p[2])), pairs))
    for (stem, a, b), (size_a, size_b) in zip(pairs, measured):
        if stem in stems:
            offenders.append(f"{stem}: two inputs share this stem ({stems[stem]}, {a})")
        stems[stem] = a
        if size_a != size_b:
            offenders.append(f"{stem}: input {a} is {size_a[0]}x{size_a[1]} but target {b} is {size_b[0]}x{size_b[1]}")
        sizes.append((stem, *size_a))
    if offenders:
        shown = "; ".join(offenders[:20]) + (f"; ... ({len(offenders)} in all)" if len(offenders) > 20 else "")
        raise DataError(f"{len(offenders)} bad pair(s): {shown}")
    return sizes


def _place_image(src: Path, dst: Path) -> None:
    # Every image is decoded here, so a truncated or corrupt file (whose header alone looks
    # fine) is refused, naming it, before the split is called prepared. Only a file that
    # read_rgb returns as it is (8-bit RGB PNG, no transparency, by its IHDR) is then copied
    # byte for byte; anything else accepted (JPEG, palette, grey, alpha) is written from the
    # decoded pixels so every later reader sees the same ones; the rest is refused.
    image, info = read_image(src)
    if src.suffix.lower() == ".png" and info.plain_rgb_png:
        shutil.copyfile(src, dst)
    else:
        write_png(dst, image)


def copy_pairs(pairs: list[Pair], out: Path, *, progress: bool = True, label: str = "") -> None:
    """Validate the pairs, then write them as ``out/{input,target}/<stem>.png``."""
    from tqdm import tqdm

    validate_pairs(pairs)
    (out / "input").mkdir(parents=True, exist_ok=True)
    (out / "target").mkdir(parents=True, exist_ok=True)

    def place(pair: Pair) -> None:
        stem, a, b = pair
        _place_image(a, out / "input" / f"{stem}.png")
        _place_image(b, out / "target" / f"{stem}.png")

    with ThreadPoolExecutor(default_workers()) as pool:
        list(tqdm(pool.map(place, pairs), total=len(pairs), desc=label or "copy", unit="pair",
                  disable=not progress, leave=False))


# --------------------------------------------------------------------------- manifest

def write_manifest(split_dir: Path) -> list[dict[str, Any]]:
    """Validate the written split and write ``manifest.csv``; return its rows.

    With a ``target`` folder the two folders must pair by stem with equal sizes; without one
    (DND, whose ground truth is private) the target columns stay empty.
    """
    input_dir = split_dir / "input"
    target_dir = split_dir / "target"
    if target_dir.is_dir():
        pairs = pair_by_stem(input_dir, target_dir)
    else:
        pairs = [(p.stem, p, None) for p in list_images(input_dir)]
        if not pairs:
            raise DataError(f"{input_dir}: no images")
    sizes = validate_pairs([p for p in pairs if p[2] is not None]) if target_dir.is_dir() else None

    def row(i_pair):
        i, (stem, a, b) = i_pair
        height, width = (sizes[i][1], sizes[i][2]) if sizes else image_size(a)
        return {"stem": stem, "height": height, "width": width, "input_sha256": sha256_file(a),
                "target_sha256": sha256_file(b) if b is not None else ""}

    with ThreadPoolExecutor(default_workers()) as pool:
        rows = list(pool.map(row, enumerate(pairs)))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(split_dir / "manifest.csv", buffer.getvalue())
    return rows


def read_manifest(path: str | os.PathLike) -> list[dict[str, str]]:
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
                raise DataError(f"{path}: expected columns {','.join(MANIFEST_COLUMNS)}, got {reader.fieldnames}")
            return list(reader)
    except FileNotFoundError:
        raise DataError(f"{path}: no manifest (prepare the dataset first)") from None
