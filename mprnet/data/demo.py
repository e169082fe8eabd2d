"""Small synthetic benchmark sets, one per task, built offline from scikit-image's sample images.

``make_demo(out_dir, seed)`` writes ``demo_rain``, ``demo_blur`` and ``demo_noise``, each with
``train`` (6 pairs) and ``test`` (4 pairs) splits in the same layout and manifest as the real
data, so every command of the study runs end to end in seconds without a download. The clean
images are random crops of rescaled PNGs that ship inside scikit-image (astronaut, coffee,
chelsea, immunohistochemistry, motorcycle); JPEG samples are avoided because decoders differ
between libjpeg builds. Training images are at least 128 px per side (the trainers cut 64×64
patches); two test images per task have sides that are not multiples of 8, to exercise padding.

Degradations (all in float64, rounded once at the end like the official test scripts):

* rain: sparse random seeds (one of three densities) smeared into streaks by a line kernel at a
  random angle near vertical, softened, then screen-blended over the image;
* blur: a random camera-shake trajectory (a damped random walk with occasional jerks, as in
  Boracchi & Foi 2012) splatted into a normalised kernel and convolved with each channel;
* noise: signal-dependent Poisson-Gaussian noise on linear intensities,
  y = a·Poisson(x/a) + N(0, σ²), then back to sRGB (the heteroscedastic model of Foi et al. 2008).

The same seed gives byte-identical PNGs: one ``numpy.random.default_rng([seed, task])`` per task,
deterministic SciPy/PIL operations, and no timestamps in any file.
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

TASKS = ("rain", "blur", "noise")
SOURCE_NAMES = ("astronaut", "coffee", "chelsea", "immunohistochemistry", "motorcycle")
# (height, width) per split; the last two test sizes are not multiples of 8.
TRAIN_SIZES = ((128, 128), (128, 160), (160, 128), (144, 144), (128, 136), (152, 128))
TEST_SIZES = ((128, 128), (120, 160), (100, 132), (117, 141))


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


def _clean_crop(rng: np.random.Generator, source: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    # Downscale first so that a small crop still shows a recognisable structure.
    src_h, src_w = source.shape[:2]
    scale = rng.uniform(0.4, 0.7)
    scale = max(scale, (height + 2) / src_h, (width + 2) / src_w)
    new_size = (max(width, round(src_w * scale)), max(height, round(src_h * scale)))
    small = np.asarray(Image.fromarray(source).resize(new_size, Image.Resampling.BICUBIC))
    top = int(rng.integers(0, small.shape[0] - height + 1))
    left = int(rng.integers(0, small.shape[1] - width + 1))
    crop = small[top:top + height, left:left + width].astype(np.float64) / 255.0
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
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
    from scipy.ndimage import convolve, gaussian_filter

    height, width = image.shape[:2]
    density = float(rng.choice([0.004, 0.008, 0.016]))
    length = int(rng.integers(9, 22))
    angle = float(rng.uniform(-30.0, 30.0))
    opacity = float(rng.uniform(0.55, 0.85))
    seeds = (rng.random((height, width)) < density) * rng.uniform(0.6, 1.0, (height, width))
    streaks = convolve(seeds, line_kernel(length, angle), mode="wrap")
    streaks = np.clip(gaussian_filter(streaks, 0.6), 0.0, 1.0)
    # Screen blend: rain brightens, never darkens, and saturates towards white.
    rainy = 1.0 - (1.0 - image) * (1.0 - opacity * streaks[..., None])
    return rainy, {"density": density, "length": length, "angle_deg": round(angle, 4), "opacity": round(opacity, 4)}


def shake_kernel(rng: np.random.Generator, size: int = 17, steps: int = 96) -> np.ndarray:
    """A random camera-shake blur kernel (damped random walk with jerks), normalised to sum 1."""
    from scipy.ndimage import gaussian_filter

    position = np.zeros(2)
    velocity = rng.normal(0.0, 1.0, 2)
    points = []
    for _ in range(steps):
        jerk = rng.normal(0.0, 2.5, 2) if rng.random() < 0.05 else 0.0
        velocity = 0.85 * velocity + rng.normal(0.0, 0.5, 2) + jerk - 0.02 * position
        position = position + velocity * 0.25
        points.append(position.copy())
    trajectory = np.array(points)
    trajectory -= trajectory.mean(axis=0)
    extent = np.abs(trajectory).max()
    reach = rng.uniform(0.6, 1.0) * (size - 3) / 2
    if extent > 0:
        trajectory *= reach / extent
    kernel = np.zeros((size, size))
    centre = (size - 1) / 2
    for y, x in trajectory:
        _splat(kernel, centre + y, centre + x, 1.0)
    kernel = gaussian_filter(kernel, 0.4)
    return kernel / kernel.sum()


def add_blur(rng: np.random.Generator, image: np.ndarray) -> tuple[np.ndarray, dict]:
    size = int(rng.choice([13, 17, 21]))
    kernel = shake_kernel(rng, size)
    return _convolve_rgb(image, kernel), {"kernel_size": size}


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def add_noise(rng: np.random.Generator, image: np.ndarray) -> tuple[np.ndarray, dict]:
    shot = float(rng.uniform(0.004, 0.02))  # variance per unit intensity (gain)
    read = float(rng.uniform(0.004, 0.015))  # standard deviation of the signal-independent part
    linear = _srgb_to_linear(image)
    noisy = shot * rng.poisson(linear / shot) + rng.normal(0.0, read, linear.shape)
    return _linear_to_srgb(np.clip(noisy, 0.0, 1.0)), {"shot_gain": round(shot, 6), "read_sigma": round(read, 6)}


DEGRADATIONS = {"rain": add_rain, "blur": add_blur, "noise": add_noise}


def _build_task(task: str, task_index: int, seed: int, sources: dict[str, np.ndarray], out: Path) -> None:
    from .pairs import write_manifest

    rng = np.random.default_rng([seed, task_index])
    names = list(SOURCE_NAMES)
    counter = task_index  # each task starts its cycle through the sources at a different image
    for split, sizes in (("train", TRAIN_SIZES), ("test", TEST_SIZES)):
        split_dir = out / split
        records = []
        for k, (height, width) in enumerate(sizes):
            source = names[counter % len(names)]
            counter += 1
            clean = _clean_crop(rng, sources[source], height, width)
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
    demo set is replaced only by a complete new one.
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
