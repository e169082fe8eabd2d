"""Helpers shared by the training/restore tests: tiny synthetic pairs and tiny run configs.

Run as a script it trains once in-process: ``python train_worker.py CONFIG.yaml OUT [--resume]``
(used where a test needs a separate process without the CLI's argument handling).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

TINY_MODEL = {"n_feat": 8, "scale_unetfeats": 4, "scale_orsnetfeats": 4, "num_cab": 1}


def smooth_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random RGB image in [0, 1] (a blurred noise field stretched to full range)."""
    from scipy.ndimage import gaussian_filter

    img = gaussian_filter(rng.random((height, width, 3)), sigma=(4, 4, 0))
    img -= img.min(axis=(0, 1))
    img /= img.max(axis=(0, 1)) + 1e-12
    return img


def make_pairs(root: Path, count: int, *, seed: int = 0, size: tuple[int, int] = (64, 80),
               noise: float = 0.1) -> Path:
    """Write ``count`` noisy/clean pairs as ``root/{input,target}/<stem>.png``; returns ``root``."""
    from mprnet.images import write_png

    rng = np.random.default_rng(seed)
    for i in range(count):
        clean = smooth_image(rng, *size)
        noisy = np.clip(clean + rng.normal(0.0, noise, clean.shape), 0.0, 1.0)
        write_png(root / "input" / f"img{i:03d}.png", np.rint(noisy * 255).astype(np.uint8))
        write_png(root / "target" / f"img{i:03d}.png", np.rint(clean * 255).astype(np.uint8))
    return root


def tiny_config(train_dir: Path, *, task: str = "denoising", length: int = 6, batch_size: int = 2,
                patch_size: int = 32, **sections) -> dict:
    """A run config for a tiny MPRNet that runs in well under a second per iteration on the CPU.
    The device is pinned to ``cpu``: the tests compare runs bit for bit and name the device in
    messages, and on a machine with a GPU ``auto`` would train there (issue 22)."""
    config = {
        "task": task,
        "model": {"overrides": dict(TINY_MODEL)},
        "data": {"train": str(train_dir), "patch_size": patch_size, "batch_size": batch_size},
        "schedule": {"unit": "iteration", "length": length, "warmup": 2},
        "runtime": {"device": "cpu", "num_workers": 0, "checkpoint_every": 2, "log_every": 1, "progress": False},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


def write_config(path: Path, config: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(config))
    return path


def tiny_model_file(path: Path, state: dict | None = None) -> Path:
    """A model file as ``mprnet train`` writes it (format, weights, effective config) of a tiny
    denoiser: ``state``, or the seeded initial weights."""
    import torch

    from mprnet.model import build_model
    from mprnet.training.config import resolve_config

    if state is None:
        torch.manual_seed(0)
        state = build_model("denoising", **TINY_MODEL).state_dict()
    cfg = resolve_config({"task": "denoising", "data": {"train": "unused"}, "model": {"overrides": dict(TINY_MODEL)}})
    torch.save({"format": "mprnet-model/1", "model": state, "config": cfg, "iteration": 1}, path)
    return path


def final_weights(out_dir: Path) -> dict:
    import torch

    return torch.load(out_dir / "model_final.pt", map_location="cpu", weights_only=True)["model"]


if __name__ == "__main__":
    from mprnet.training import train
    from mprnet.training.config import load_config

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    train(load_config(sys.argv[1]), sys.argv[2], resume="--resume" in sys.argv[3:])
