"""Small synthetic benchmark sets, one per task, built offline from scikit-image's sample images.

``make_demo(out_dir, seed)`` writes ``demo_rain``, ``demo_blur`` and ``demo_noise``, each with
``train`` (``N_TRAIN`` pairs) and ``test`` (``len(TEST_SIZES)`` = 12 pairs) splits in the same
layout and manifest as the real data, so every command of the study runs end to end without a
download. The clean images are crops of the RGB PNGs that ship inside scikit-image (astronaut,
coffee, chelsea, immunohistochemistry, motorcycle), rescaled by a random factor in [0.5, 1]
(never enlarged, so targets stay sharp) and flipped at random; JPEG samples are avoided because
decoders differ between libjpeg builds. Test crops come from the left ``TEST_FRACTION`` of each
photograph and training crops from the part right of a gap, so no test pixel was seen in
training; a crop that is nearly flat (mean absolute difference between neighbouring luminance
values below ``TEXTURE_MIN``) is drawn again, as there is nothing to restore in it. Every image
is at least 128×128; half of the test sizes are not multiples of 8, to exercise padding.

The degradations are the tasks' own, at strengths a tiny network learns within the demo's
budget of a few hundred CPU iterations (all in float64, rounded once at the end like the
official test scripts):

* rain: sparse random seeds smeared into streaks by a line kernel at one random angle near
  vertical per image, softened, then screen-blended over the image (rain brightens);
* blur: defocus, a pillbox of radius 1.5 to 2.5 px (antialiased, normalised to sum 1)
  convolved with each channel. Camera shake (random trajectories of 9 to 13 px) was tried
  and dropped: a tiny network gained under 0.5 dB on it in 200 iterations, against 1.4 dB
  on defocus, because every image needs a different inverse;
* noise: signal-dependent Poisson-Gaussian noise on linear intensities,
  y = a·Poisson(x/a) + N(0, σ²), then back to sRGB (the heteroscedastic model of Foi et al. 2008).

The same seed gives byte-identical PNGs: one ``numpy.random.default_rng([seed, task, split])``
per task and split, deterministic SciPy/PIL operations, and no timestamps in any file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..images import to_uint8, write_png
from .pairs import write_manifest

TASKS = ("rain", "blur", "noise")
SOURCE_NAMES = ("astronaut", "coffee", "chelsea", "immunohistochemistry", "motorcycle")
N_TRAIN = 36
TRAIN_SIDES = (128, 176)  # training crops: height and width drawn in this range (inclusive)
# (height, width) of the test images; the second half are not multiples of 8.
TEST_SIZES = ((128, 128), (128, 160), (160, 128), (144, 144), (136, 152), (152, 136),
              (131, 157), (141, 133), (149, 163), (157, 139), (129, 171), (170, 130))
TEST_FRACTION = 0.4  # the left 40% of each photograph (before any flip) holds the test crops
GAP_FRACTION = 0.05  # and the 5% right of it is used by neither split
SCALES = (0.5, 1.0)  # rescaling factor of the photograph before cropping
TEXTURE_MIN = 0.035  # mean |neighbour difference| of the luminance in [0, 1]; flatter crops are redrawn
MAX_DRAWS = 20


def _source_images() -> dict[str, np.ndarray]:
    import skimage.data

    images = {
        "astronaut": skimage.data.astronaut(),
        "coffee": skimage.data.coffee(),
        "chelsea": skimage.data.chelsea(),
        "immunohistochemistry": skimage.data.immunohistochemistry(),
        "motorcycle": skimage.data.stereo_motorcycle()[0],
    }
    return {name: np.ascontiguousarray(img[..., :3]) for name, img in images.items()}


def split_region(source: np.ndarray, split: str) -> np.ndarray:
    """The columns of ``source`` that ``split`` ("train" or "test") may crop from."""
    width = source.shape[1]
    test_end = round(width * TEST_FRACTION)
    if split == "test":
        return source[:, :test_end]
    return source[:, test_end + round(width * GAP_FRACTION):]


def texture(image: np.ndarray) -> float:
    """Mean absolute difference between neighbouring pixels of the mean of the channels (0..1 scale)."""
    grey = image.mean(axis=-1)
    return float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())


def _textured_crop(rng: np.random.Generator, region: np.ndarray, height: int, width: int) -> np.ndarray:
    """The first of up to ``MAX_DRAWS`` random crops whose ``texture`` reaches ``TEXTURE_MIN``."""
    for _ in range(MAX_DRAWS - 1):
        crop = _clean_crop(rng, region, height, width)
        if texture(crop) >= TEXTURE_MIN:
            return crop
    return _clean_crop(rng, region, height, width)


def _clean_crop(rng: np.random.Generator, region: np.ndarray, height: int, width: int) -> np.ndarray:
    """A random ``height``×``width`` crop of ``region`` rescaled by a factor in ``SCALES``, in [0, 1]."""
    from PIL import Image

    src_h, src_w = region.shape[:2]
    smallest = max(height / src_h, width / src_w, SCALES[0])
    if smallest > SCALES[1]:
        raise ValueError(f"a {height}x{width} crop does not fit a {src_h}x{src_w} region without enlarging it")
    scale = rng.uniform(smallest, SCALES[1])
    new_size = (max(width, round(src_w * scale)), max(height, round(src_h * scale)))
    small = region if new_size == (src_w, src_h) else np.asarray(
        Image.fromarray(np.ascontiguousarray(region)).resize(new_size, Image.Resampling.BICUBIC))
    top = int(rng.integers(0, small.shape[0] - height + 1))
    left = int(rng.integers(0, small.shape[1] - width + 1))
    crop = small[top:top + height, left:left + width].astype(np.float64) / 255.0
    flips = int(rng.integers(0, 4))
    if flips & 1:
        crop = crop[:, ::-1]
    if flips & 2:
        crop = crop[::-1]
    return np.ascontiguousarray(crop)


def _convolve_rgb(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    from scipy.ndimage import convolve

    return np.stack([convolve(image[..., c], kernel, mode="reflect") for c in range(3)], axis=-1)


def line_kernel(length: int, angle_deg: float) -> np.ndarray:
    """A line of ``length`` pixels through the centre at ``angle_deg`` from vertical, peak 1."""
    size = length + 2 if length % 2 else length + 3
    kernel = np.zeros((size, size))
    centre = (size - 1) / 2
    theta = np.deg2rad(angle_deg)
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * length):
        _splat(kernel, centre + t * np.cos(theta), centre + t * np.sin(theta), 1.0)
    return kernel / kernel.max()


def _splat(grid: np.ndarray, y: float, x: float, weight: float) -> None:
    """Add ``weight`` at a sub-pixel position with bilinear weights."""
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    dy, dx = y - y0, x - x0
    for yy, xx, w in ((y0, x0, (1 - dy) * (1 - dx)), (y0, x0 + 1, (1 - dy) * dx),
                      (y0 + 1, x0, dy * (1 - dx)), (y0 + 1, x0 + 1, dy * dx)):
        if 0 <= yy < grid.shape[0] and 0 <= xx < grid.shape[1]:
            grid[yy, xx] += weight * w


def add_rain(rng: np.random.Generator, image: np.ndarray) -> tuple[np.ndarray, dict]:
    """Screen-blended rain streaks; returns the rainy image and its parameters."""
    from scipy.ndimage import convolve, gaussian_filter

    height, width = image.shape[:2]
    density = float(rng.choice([0.004, 0.008, 0.012]))
    length = int(rng.integers(9, 22))
    angle = float(rng.uniform(-20.0, 20.0))
    opacity = float(rng.uniform(0.6, 0.9))
    seeds = (rng.random((height, width)) < density) * rng.uniform(0.6, 1.0, (height, width))
    streaks = convolve(seeds, line_kernel(length, angle), mode="wrap")
    streaks = np.clip(gaussian_filter(streaks, 0.6), 0.0, 1.0)
    # Screen blend: rain brightens, never darkens, and saturates towards white.
    rainy = 1.0 - (1.0 - image) * (1.0 - opacity * streaks[..., None])
    return rainy, {"density": density, "length": length, "angle_deg": round(angle, 4), "opacity": round(opacity, 4)}


def disk_kernel(radius: float, supersample: int = 8) -> np.ndarray:
    """A defocus pillbox of ``radius`` px, antialiased by ``supersample``² sub-pixels, sum 1."""
    half = int(np.ceil(radius))
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    axis = np.arange(-half, half + 1)
    ys = (axis[:, None] + offsets[None, :]).reshape(-1)
    inside = (ys[:, None] ** 2 + ys[None, :] ** 2) <= radius * radius
    n = 2 * half + 1
    kernel = inside.reshape(n, supersample, n, supersample).mean(axis=(1, 3))
    return kernel / kernel.sum()


def add_blur(rng: np.random.Generator, image: np.ndarray) -> tuple[np.ndarray, dict]:
    """Defocus blur (pillbox of radius 1.5 to 2.5 px); returns the blurred image and its radius."""
    radius = float(rng.uniform(1.5, 2.5))
    return _convolve_rgb(image, disk_kernel(radius)), {"kind": "defocus", "radius_px": round(radius, 4)}


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def add_noise(rng: np.random.Generator, image: np.ndarray) -> tuple[np.ndarray, dict]:
    """Poisson-Gaussian noise on linear intensities; returns the noisy image and parameters."""
    shot = float(rng.uniform(0.01, 0.03))  # variance per unit intensity (gain)
    read = float(rng.uniform(0.01, 0.03))  # standard deviation of the signal-independent part
    linear = _srgb_to_linear(image)
    noisy = shot * rng.poisson(linear / shot) + rng.normal(0.0, read, linear.shape)
    return _linear_to_srgb(np.clip(noisy, 0.0, 1.0)), {"shot_gain": round(shot, 6), "read_sigma": round(read, 6)}


DEGRADATIONS = {"rain": add_rain, "blur": add_blur, "noise": add_noise}


def _split_sizes(rng: np.random.Generator, split: str) -> list[tuple[int, int]]:
    if split == "test":
        return list(TEST_SIZES)
    lo, hi = TRAIN_SIDES
    return [(int(h), int(w)) for h, w in rng.integers(lo, hi + 1, size=(N_TRAIN, 2))]


def _build_task(task: str, task_index: int, seed: int, sources: dict[str, np.ndarray], out: Path) -> None:
    names = list(SOURCE_NAMES)
    for split_index, split in enumerate(("train", "test")):
        rng = np.random.default_rng([seed, task_index, split_index])
        split_dir = out / split
        records = []
        for k, (height, width) in enumerate(_split_sizes(rng, split)):
            # Each task starts its cycle through the sources at a different photograph.
            source = names[(k + task_index) % len(names)]
            clean = _textured_crop(rng, split_region(sources[source], split), height, width)
            degraded, params = DEGRADATIONS[task](rng, clean)
            stem = f"{k:03d}_{source}"
            write_png(split_dir / "input" / f"{stem}.png", to_uint8(degraded))
            write_png(split_dir / "target" / f"{stem}.png", to_uint8(clean))
            records.append({"stem": stem, "source": f"skimage.data.{source}", "height": height,
                            "width": width, **params})
        write_manifest(split_dir)
        atomic_write_text(split_dir / "provenance.json", json.dumps({
            "dataset": f"demo_{task}", "split": split, "generator": "mprnet.data.demo", "seed": seed,
            "task": {"rain": "deraining", "blur": "deblurring", "noise": "denoising"}[task],
            "images": records,
        }, indent=2) + "\n")


def make_demo(out_dir: str | os.PathLike, seed: int = 0) -> dict[str, Path]:
    """Write ``demo_rain``, ``demo_blur`` and ``demo_noise`` under ``out_dir``; return their paths.

    Each dataset is built in a hidden temporary folder and swapped in whole, so an existing
    demo set is replaced only by a complete new one. Needs scikit-image's bundled sample
    images (no download); about a second per task.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = _source_images()
    built = {}
    for index, task in enumerate(TASKS):
        final = out_dir / f"demo_{task}"
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.build-", dir=out_dir))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the data set is not
        try:
            _build_task(task, index, seed, sources, tmp)
            if final.exists():
                old = out_dir / f".{final.name}.old-{os.getpid()}"
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        built[task] = final
    return built
