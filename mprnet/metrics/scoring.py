"""Score folders of restored images against their ground truth, per image (the paper's ruler per protocol).

Pairs are matched by file stem (the official scripts pair by list position, so one stray file
shifts every later pair). Images are read two at a time in threads (PNG decoding releases the
GIL) and scored in batches of equal size.

Input policy, stricter than the official scripts where they would silently compare different
things:

* 16-bit, float, CMYK, truncated or unreadable images: error naming the file
  (:func:`mprnet.images.read_rgb`, which reads the bit depth from the file's header).
* RGBA: the alpha channel is dropped with a warning (MATLAB ``imread`` returns it separately).
* Grayscale against RGB: error naming both files. MATLAB would score such a pair differently
  from an RGB pair (``rgb2ycbcr`` is skipped for 2-D images; ``ssim`` becomes 2-D).
* Both grayscale: scored as MATLAB scores 2-D images: ``y_channel`` uses the gray values as Y
  (the deraining script calls ``rgb2ycbcr`` only when ``size(img,3) == 3``); ``rgb`` and
  ``sidd`` use 2-D PSNR/SSIM; ``realblur`` refuses them (the RealBlur script needs RGB).
* Sizes differ: error naming both files (the official scripts have no resizing either).
* ``sidd`` predictions are read from ``<pred>/float/<stem>.npy`` (H×W×3 float in [0,1], as
  ``mprnet restore --save-float`` writes) when that folder exists, else from the 8-bit files
  with a warning, because the paper's SIDD numbers are computed on unquantised outputs.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import DataError, NonFiniteError
from ..images import list_images, pair_by_stem, read_float_rgb, read_image
from .protocols import PROTOCOLS, Protocol, get_protocol, uint8_to_single

FLOAT_SUBDIR = "float"
_CHUNK = 32  # pairs read ahead of scoring: bounds memory on large test sets


@dataclass
class _Pair:
    stem: str
    pred_path: Path
    target_path: Path
    pred: np.ndarray | None = None
    target: np.ndarray | None = None
    gray: bool = False


def _read_image(path: Path) -> tuple[np.ndarray, bool]:
    image, info = read_image(path)
    return image, info.grey


def _pair_float(pred_dir: Path, target_dir: Path) -> list[tuple[str, Path, Path]]:
    float_dir = pred_dir / FLOAT_SUBDIR
    preds = {p.stem: p for p in sorted(float_dir.glob("*.npy")) if not p.name.startswith(".")}
    targets = {p.stem: p for p in list_images(target_dir)}
    if not preds:
        raise DataError(f"{float_dir}: no .npy files")
    if not targets:
        raise DataError(f"{target_dir}: no images")
    only_p, only_t = sorted(set(preds) - set(targets)), sorted(set(targets) - set(preds))
    if only_p or only_t:
        parts = [f"only in {d}: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}"
                 for d, names in ((float_dir, only_p), (target_dir, only_t)) if names]
        raise DataError("unpaired images; " + "; ".join(parts))
    return [(stem, preds[stem], targets[stem]) for stem in sorted(preds)]


def find_pairs(protocol: str, pred_dir: str | os.PathLike, target_dir: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """(stem, prediction file, target file) for every image, as ``score_folders`` will read them."""
    pred_dir, target_dir = Path(pred_dir), Path(target_dir)
    if get_protocol(protocol).float_predictions and (pred_dir / FLOAT_SUBDIR).is_dir():
        return _pair_float(pred_dir, target_dir)
    return pair_by_stem(pred_dir, target_dir)


def load_pair(protocol: Protocol, stem: str, pred_path: Path, target_path: Path, *, as_float: bool = True) -> _Pair:
    """One pair read and checked as ``protocol`` scores it (``DataError`` naming the files for a size
    mismatch, grey against RGB, grey pairs the protocol refuses, images below its ``min_side``).
    Grey pairs keep one channel. ``as_float``: a ``float_predictions`` protocol's target (and an
    8-bit prediction) become float32 in [0, 1] (``uint8_to_single``); False leaves them as read."""
    pair = _Pair(stem, pred_path, target_path)
    target, target_gray = _read_image(target_path)
    if pred_path.suffix == ".npy":
        pred, pred_gray = read_float_rgb(pred_path), False
    else:
        pred, pred_gray = _read_image(pred_path)
    both = f"{pred_path} and {target_path}"
    if pred.shape != target.shape:
        raise DataError(f"size mismatch: {pred_path} is {pred.shape[1]}×{pred.shape[0]}, "
                        f"{target_path} is {target.shape[1]}×{target.shape[0]}")
    if pred_gray != target_gray:
        gray_one = pred_path if pred_gray else target_path
        raise DataError(f"grayscale vs RGB: {gray_one} is grayscale, the other of {both} is not; "
                        "convert both to RGB (the official scripts score 2-D images differently)")
    if protocol.grey == "refuse" and target_gray:
        raise DataError(f"{both}: grayscale images; the {protocol.title} protocol needs RGB")
    if min(pred.shape[:2]) < protocol.min_side:
        side = protocol.min_side
        raise DataError(f"{both}: {pred.shape[1]}×{pred.shape[0]} is smaller than the {side}×{side} SSIM window")
    pair.gray = target_gray
    if target_gray:
        pred, target = pred[..., :1], target[..., :1]
    if protocol.float_predictions and as_float:
        target = uint8_to_single(target)
        pred = pred if pred.dtype == np.float32 else uint8_to_single(pred)
    pair.pred, pair.target = pred, target
    return pair


def _score_group(protocol: Protocol, pairs: list[_Pair], device: str | None) -> tuple[np.ndarray, np.ndarray]:
    if protocol.score_batch is None:
        def one(p: _Pair) -> tuple[float, float]:
            try:
                return protocol.score_pair(p.pred, p.target, device=device)
            except RuntimeError as exc:
                raise DataError(f"{p.pred_path} vs {p.target_path}: {exc}") from None

        # Pair by pair: RealBlur's ECC alignment dominates (~1 s per image); OpenCV releases the GIL.
        with ThreadPoolExecutor(max_workers=2) as pool:
            out = list(pool.map(one, pairs))
        return np.array([o[0] for o in out]), np.array([o[1] for o in out])
    preds = np.stack([p.pred for p in pairs])
    targets = np.stack([p.target for p in pairs])
    if pairs[0].gray and protocol.grey == "luma":
        return protocol.score_batch(preds[..., 0], targets[..., 0], device=device, luma=True)
    return protocol.score_batch(preds, targets, device=device)


def _chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def score_folders(
    protocol: str,
    pred_dir: str | os.PathLike,
    target_dir: str | os.PathLike,
    *,
    device: str | None = None,
    progress: bool = False,
    workers: int = 2,
):
    """Score every image of ``pred_dir`` against the same-stem image of ``target_dir``.

    Returns a pandas DataFrame with columns ``image`` (the stem), ``psnr`` (dB; ``inf`` for
    identical images) and ``ssim``, one row per image, sorted by stem.
    """
    import pandas as pd
    from tqdm import tqdm

    if protocol not in PROTOCOLS:
        raise DataError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    record = get_protocol(protocol)
    pairs = find_pairs(protocol, pred_dir, target_dir)
    if record.float_predictions and pairs[0][1].suffix != ".npy":
        warnings.warn(f"{pred_dir}: no '{FLOAT_SUBDIR}/' folder of .npy outputs; scoring the 8-bit images, "
                      f"whereas the paper's {record.title} scores use unquantised outputs "
                      "(mprnet restore --save-float)", stacklevel=2)
    results: dict[str, tuple[float, float]] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            tqdm(total=len(pairs), desc=f"score {protocol}", unit="img", disable=not progress) as bar:
        chunks = list(_chunks(pairs, _CHUNK))
        pending = [pool.submit(load_pair, record, *p) for p in chunks[0]]
        for k in range(len(chunks)):
            loaded = [f.result() for f in pending]
            # Decode the next chunk while this one is scored.
            pending = [pool.submit(load_pair, record, *p) for p in chunks[k + 1]] if k + 1 < len(chunks) else []
            groups: dict[tuple, list[_Pair]] = {}
            for p in loaded:
                groups.setdefault((p.pred.shape, p.gray), []).append(p)
            for group in groups.values():
                psnr, ssim = _score_group(record, group, device)
                for p, ps, ss in zip(group, psnr, ssim):
                    results[p.stem] = (float(ps), float(ss))
                bar.update(len(group))
    stems = [stem for stem, _, _ in pairs]
    scores = pd.DataFrame({
        "image": stems,
        "psnr": [results[s][0] for s in stems],
        "ssim": [results[s][1] for s in stems],
    })
    check_scores(scores, f"{pred_dir} vs {target_dir}")
    return scores


def check_scores(scores, where: str) -> None:
    """Refuse (``NonFiniteError`` naming ``where`` and the images) scores that are no result: a
    NaN PSNR or SSIM, a PSNR of -inf or an infinite SSIM. PSNR ``inf`` (identical images) is one."""
    psnr, ssim = scores["psnr"].to_numpy(dtype=float), scores["ssim"].to_numpy(dtype=float)
    bad = np.isnan(psnr) | (psnr == -np.inf) | ~np.isfinite(ssim)
    if bad.any():
        images = ", ".join(str(i) for i in scores["image"][bad][:10])
        raise NonFiniteError(f"{where}: {int(bad.sum())} of {len(scores)} images scored NaN or infinite "
                             f"({images}); not a result, nothing written")


def write_scores_csv(scores, path: str | os.PathLike) -> None:
    """Write per-image scores atomically (``check_scores`` first); infinite PSNR is written as ``inf``."""
    check_scores(scores, str(path))
    with atomic_path(path) as tmp:
        scores.to_csv(tmp, index=False, float_format=None)


def summarize(scores) -> dict[str, float]:
    """Mean PSNR and SSIM over images (an infinite PSNR makes the mean infinite, as in MATLAB)."""
    return {"images": len(scores), "psnr": float(scores["psnr"].mean()), "ssim": float(scores["ssim"].mean())}


def format_means(protocol: str, scores) -> str:
    s = summarize(scores)
    psnr = "inf" if math.isinf(s["psnr"]) else f"{s['psnr']:.4f}"
    line = f"{protocol}: {s['images']} images, mean PSNR {psnr} dB, mean SSIM {s['ssim']:.6f}"
    finite = scores["psnr"][np.isfinite(scores["psnr"])]
    if len(finite) < len(scores):
        rest = f"{finite.mean():.4f} dB" if len(finite) else "none"
        line += f" ({len(scores) - len(finite)} identical to the target, PSNR inf; mean over the rest {rest})"
    return line
