"""Small random images written to disk, shared by the data-preparation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def rgb(h: int, w: int, seed: int) -> np.ndarray:
    """A seeded random H×W×3 uint8 image."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(path: Path, image: np.ndarray) -> Path:
    """Write ``image`` with Pillow (format from the suffix), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path
