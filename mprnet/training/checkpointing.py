"""Training checkpoints: everything needed to continue bit-identically, loadable with weights_only.

A checkpoint is a dict of tensors and plain Python values only (so ``torch.load(...,
weights_only=True)`` accepts it): ``model`` (state dict without ``module.``), ``optimizer``,
``scaler``, ``rng`` (Python, NumPy, torch CPU and CUDA generator states), ``iteration`` (the
number of finished iterations, which fixes the position in the data order), ``best_psnr``,
``config`` (the effective run config) and ``format``. It is written to a hidden temporary file
and renamed, so a crash or SIGKILL during the write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path
from ..errors import CheckpointError, OutputError, one_line

FORMAT = "mprnet-train/1"


def capture_rng() -> dict[str, Any]:
    import torch

    np_state = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "key": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng(state: dict[str, Any]) -> None:
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    npst = state["numpy"]
    np.random.set_state(
        ("MT19937", npst["key"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """``torch.save`` through a temporary file and an atomic rename. The file is written through
    a Python file object, so that a failed write raises the ``OSError`` itself (given a path,
    torch's own writer reports a full disk as "unexpected pos ..."), which ``atomic_path`` turns
    into one ``OutputError`` naming ``path`` and the cause; the previous file stays."""
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        try:
            torch.save({"format": FORMAT, **state}, fh)
        except RuntimeError as exc:
            # torch's zip writer, failing to finish the file after a failed write, raises a
            # RuntimeError ("unexpected pos ...") over the OSError that says why.
            cause = exc.__context__
            while cause is not None and not isinstance(cause, OSError):
                cause = cause.__context__
            if cause is None:
                raise OutputError(f"{path}: not written (torch.save: {one_line(exc, 200)}); whatever was there "
                                  "before is unchanged") from None
            raise cause from None


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a training checkpoint written by ``save_checkpoint`` (weights_only)."""
    import torch

    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as exc:  # torch raises several types for truncated/foreign files
        raise CheckpointError(f"{path}: not a loadable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an mprnet training checkpoint (format {FORMAT!r} expected)")
    return state
