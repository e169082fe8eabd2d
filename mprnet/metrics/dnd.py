"""The DND submission bundle: what the online benchmark (noise.visinf.tu-darmstadt.de, sRGB track) takes.

DND has no public ground truth. ``Denoising/test_DND.py`` denoises the 20 boxes of each of the
50 images and writes one ``%04d.mat`` per image holding ``Idenoised`` (a 1×20 cell of float32
H×W×3 crops in [0,1]), ``israw = false`` and ``eval_version = '1.0'``; the server's own
bundling script reads exactly these files.

Input layout (ours): one restored crop per file, named ``<image>_<box>`` with 1-based numbers
(``0001_01`` … ``0050_20``, as the official script names its PNGs ``%04d_%02d.png``):

* ``DIR/float/<image>_<box>.npy`` (``mprnet restore --save-float`` output), else
* ``DIR/<image>_<box>.npy``, else
* ``DIR/<image>_<box>.png`` (8-bit, converted with /255 and a warning: the official bundle
  holds the unquantised float32 output).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import DataError
from ..images import list_images, read_float_input

BOXES_PER_IMAGE = 20
DND_IMAGES = 50
EVAL_VERSION = "1.0"
_NAME = re.compile(r"^(\d+)_(\d+)$")


def _crop_files(input_dir: Path) -> tuple[list[Path], bool]:
    """The crop files to bundle and whether they are float (.npy) files."""
    float_dir = input_dir / "float"
    for folder in (float_dir, input_dir):
        if folder.is_dir():
            npy = sorted(p for p in folder.glob("*.npy") if not p.name.startswith("."))
            if npy:
                return npy, True
    if not input_dir.is_dir():
        raise DataError(f"{input_dir}: not a folder")
    images = list_images(input_dir)
    if not images:
        raise DataError(f"{input_dir}: no restored crops (.npy or images named <image>_<box>)")
    return images, False


def collect_crops(input_dir: str | os.PathLike) -> dict[int, dict[int, Path]]:
    """{image number: {box number: file}}, checking names and that every image has all 20 boxes."""
    input_dir = Path(input_dir)
    files, _ = _crop_files(input_dir)
    crops: dict[int, dict[int, Path]] = {}
    bad = []
    for path in files:
        m = _NAME.match(path.stem)
        if not m or not 1 <= int(m.group(2)) <= BOXES_PER_IMAGE or int(m.group(1)) < 1:
            bad.append(path.name)
            continue
        image, box = int(m.group(1)), int(m.group(2))
        if box in crops.setdefault(image, {}):
            raise DataError(f"{path}: box {box} of image {image} given twice ({crops[image][box].name})")
        crops[image][box] = path
    if bad:
        raise DataError(f"{input_dir}: file names not of the form <image>_<box> (box 1..{BOXES_PER_IMAGE}): "
                        f"{', '.join(bad[:10])}{' ...' if len(bad) > 10 else ''}")
    for image, boxes in sorted(crops.items()):
        missing = [b for b in range(1, BOXES_PER_IMAGE + 1) if b not in boxes]
        if missing:
            raise DataError(f"{input_dir}: image {image:04d} lacks box(es) {', '.join(map(str, missing))}")
    return crops


def write_bundle(input_dir: str | os.PathLike, output_dir: str | os.PathLike, *, progress: bool = False) -> list[Path]:
    """Write one ``%04d.mat`` per image into ``output_dir``; returns the files written."""
    import scipy.io
    from tqdm import tqdm

    input_dir, output_dir = Path(input_dir), Path(output_dir)
    crops = collect_crops(input_dir)
    _, is_float = _crop_files(input_dir)
    if not is_float:
        warnings.warn(f"{input_dir}: bundling 8-bit crops; the official bundle holds the unquantised float32 "
                      "outputs (mprnet restore --save-float)", stacklevel=2)
    if len(crops) != DND_IMAGES:
        warnings.warn(f"{input_dir}: {len(crops)} images, the DND benchmark has {DND_IMAGES}", stacklevel=2)
    written = []
    for image in tqdm(sorted(crops), desc="dnd-bundle", unit="img", disable=not progress):
        denoised = np.empty((BOXES_PER_IMAGE,), dtype=object)
        for box in range(1, BOXES_PER_IMAGE + 1):
            denoised[box - 1] = read_float_input(crops[image][box])
        target = output_dir / f"{image:04d}.mat"
        with atomic_path(target) as tmp:
            scipy.io.savemat(tmp, {"Idenoised": denoised, "israw": False, "eval_version": EVAL_VERSION})
        written.append(target)
    return written
