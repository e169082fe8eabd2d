"""Tiles against whole images: how much restoring in tiles moves a study's scores.

Users report that tiled inference changes scores (leftthomas/Restormer#1; the seams of SwinIR's
tiles). MPRNet is not translation invariant either (stage 1 and 2 split their input into
quadrants and halves, channel attention pools over the whole input; :mod:`mprnet.restore`), so
a window restored alone differs from the same pixels restored within the whole image. Where a
study restores a task in tiles (``restore.tile``), :func:`tile_check` restores a sample of each
scored test set whole as well; where it restores whole images and the study's ``report:`` sets
``tile_check_tile``, it restores the sample in those tiles. The other side is the study's own
per-image scores (the ``score`` rule's file), so the comparison is with the numbers the tables
report, scored with the same protocol (:func:`mprnet.metrics.score_folders`), model, precision
and device.

* :func:`sample_stems`: the sample, ``n`` stems evenly spaced in sorted order (deterministic);
* :func:`tile_check`: one (model, test set): per image ``tiled_psnr``, ``tiled_ssim``,
  ``whole_psnr``, ``whole_ssim``, ``delta_psnr`` and ``delta_ssim`` (tiled − whole; PSNR in dB,
  SSIM in [0, 1]), ``tile``, ``overlap`` (pixels), ``study`` (``tiled`` or ``whole``: which
  side is the study's own) and ``split`` (whether the tile is smaller than the image: an image no
  larger than the tile is restored whole either way, Δ 0 by construction, as SIDD's 256×256
  blocks with 256-pixel tiles); columns ``vocabulary.TILE_CHECK_COLUMNS``;
* :func:`tiles_table`: the ``tiles`` table, one row per (task, test set): mean Δ and max |Δ|.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..atomic import atomic_path
from ..csv_files import read_csv_checked
from ..errors import DataError
from ..images import index_by_stem, inspect_image, list_images
from ..vocabulary import TILE_CHECK_COLUMNS, TILES_TABLE
from .table import Table, format_count, format_number

PathLike = str | os.PathLike
TILED, WHOLE = "tiled", "whole"
# Decimals of the table's differences: a tiling moves PSNR by hundredths of a dB or less.
DELTA_DIGITS = {"psnr": 3, "ssim": 4}


def sample_stems(stems: Sequence[str], n: int) -> list[str]:
    """``n`` of ``stems`` evenly spaced in sorted order, the first and last included (all of them
    when there are no more than ``n``); the same stems every time. Raises ``ValueError`` for
    ``n`` < 1."""
    if n < 1:
        raise ValueError(f"a sample of {n} images")
    ordered = sorted(set(stems))
    if len(ordered) <= n:
        return ordered
    if n == 1:
        return ordered[:1]
    step = (len(ordered) - 1) / (n - 1)  # >= 1: the indices below are distinct
    return [ordered[math.floor(i * step + 0.5)] for i in range(n)]


def _link_sample(files: dict[str, Path], stems: Sequence[str], folder: Path, what: str) -> Path:
    folder.mkdir(parents=True)
    for stem in stems:
        if stem not in files:
            raise DataError(f"{what}: no file for image {stem!r} of the study's scores")
        (folder / files[stem].name).symlink_to(files[stem].resolve())
    return folder


def tile_check(checkpoint: PathLike, inputs: PathLike, targets: PathLike, protocol: str, study_scores: PathLike,
               out: PathLike, *, tile: int, overlap: int, study_tiles: bool, images: int,
               precision: str = "fp32", save_float: bool = False, device: str = "auto") -> pd.DataFrame:
    """Compare tiled and whole-image restorations of a sample of one test set; write ``out`` (CSV).

    ``study_scores``: the study's per-image scores of the model ``checkpoint`` on this test set
    (columns image, psnr, ssim), restored in ``tile``×``tile`` windows overlapping by ``overlap``
    pixels when ``study_tiles``, else whole. :func:`sample_stems` picks ``images`` of its images;
    their degraded inputs (``inputs``) are restored the other way with
    :func:`mprnet.restore.restore_checkpoint` (``precision``, ``save_float``: the study's settings
    for this test set; ``device`` as ``mprnet restore``) and scored against ``targets`` with
    ``protocol``. Returns the per-image frame (module docstring); raises ``DataError`` naming the
    file for a sample image missing from the inputs or targets, and as restoring and scoring do.
    """
    from ..metrics import score_folders
    from ..restore import list_inputs, restore_checkpoint, splits
    from ..study.aggregate import read_scores

    own = read_scores(study_scores).set_index("image")
    own.index = own.index.astype(str)
    stems = sample_stems(list(own.index), images)
    target_files = index_by_stem(list_images(targets), Path(targets), "targets")
    with tempfile.TemporaryDirectory(prefix="mprnet-tiles-") as tmp:
        sample_in = _link_sample({p.stem: p for p in list_inputs(inputs)}, stems, Path(tmp) / "input", str(inputs))
        sample_target = _link_sample(target_files, stems, Path(tmp) / "target", str(targets))
        restored = Path(tmp) / "restored"
        restore_checkpoint(checkpoint, sample_in, restored, tile=None if study_tiles else tile, overlap=overlap,
                           precision=precision, save_float=save_float, device=device, progress=False)
        other = score_folders(protocol, restored, sample_target).set_index("image")
    other.index = other.index.astype(str)
    own = own.loc[stems]
    tiled, whole = (own, other.loc[stems]) if study_tiles else (other.loc[stems], own)
    frame = pd.DataFrame({"image": stems})
    for side, scores in ((TILED, tiled), (WHOLE, whole)):
        for metric in ("psnr", "ssim"):
            frame[f"{side}_{metric}"] = scores[metric].to_numpy(dtype=float)
    for metric in ("psnr", "ssim"):
        a, b = frame[f"{TILED}_{metric}"].to_numpy(), frame[f"{WHOLE}_{metric}"].to_numpy()
        with np.errstate(invalid="ignore"):
            frame[f"delta_{metric}"] = np.where(a == b, 0.0, a - b)  # inf == inf (identical images): no change
    frame["tile"], frame["overlap"], frame["study"] = tile, overlap, TILED if study_tiles else WHOLE
    sizes = [inspect_image(target_files[stem]) for stem in stems]
    frame["split"] = [splits(info.height, info.width, tile) for info in sizes]
    frame = frame[list(TILE_CHECK_COLUMNS)]
    with atomic_path(out) as path:
        frame.to_csv(path, index=False, float_format="%.10g")
    print(frame.to_string(index=False))
    return frame


def read_tile_checks(files) -> pd.DataFrame:
    """The per-image files of :func:`tile_check` as one frame, with each file's fields as columns
    (``files``: (fields, path) pairs, as the study manifest lists them). ``DataError`` naming a
    file that is missing or lacks a column."""
    frames = []
    for fields, path in files:
        frame = read_csv_checked(path, TILE_CHECK_COLUMNS, "tile check")
        if frame.empty:
            raise DataError(f"{path}: no images in the tile check")
        for key, value in dict(fields).items():
            frame[key] = value
        frames.append(frame)
    if not frames:
        raise DataError("no tile checks to tabulate")
    return pd.concat(frames, ignore_index=True)


def tiles_summary(checks: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, dataset): tile, overlap, study, ``n_images``, and per metric the mean
    Δ (``delta_<m>_mean``, tiled − whole) and the largest |Δ| (``delta_<m>_max_abs``)."""
    rows = []
    for (task, dataset), group in checks.groupby(["task", "dataset"], sort=False):
        row = {"task": task, "dataset": dataset, "tile": int(group["tile"].iloc[0]),
               "overlap": int(group["overlap"].iloc[0]), "study": group["study"].iloc[0], "n_images": len(group),
               "n_split": int(group["split"].astype(bool).sum())}
        for metric in ("psnr", "ssim"):
            delta = group[f"delta_{metric}"].to_numpy(dtype=float)
            row[f"delta_{metric}_mean"] = float(delta.mean())
            row[f"delta_{metric}_max_abs"] = float(np.abs(delta).max())
        rows.append(row)
    return pd.DataFrame(rows)


def tiles_table(checks: pd.DataFrame, *, name: str = TILES_TABLE) -> Table:
    """The ``tiles`` table from :func:`read_tile_checks`' frame: one row per (task, test set)."""
    data = tiles_summary(checks)
    header = [("Tiles", "tile / overlap (px)"), ("Study", "restores"), ("Images", "sample"),
              ("Δ PSNR (dB)", "mean"), ("Δ PSNR (dB)", "max abs"), ("Δ SSIM", "mean"), ("Δ SSIM", "max abs")]
    rows, rules, previous = [], set(), None
    for _, r in data.iterrows():
        if previous is not None and r["task"] != previous:
            rules.add(len(rows))
        previous = r["task"]
        if r["n_split"]:
            deltas = [format_number(r["delta_psnr_mean"], DELTA_DIGITS["psnr"], signed=True),
                      format_number(r["delta_psnr_max_abs"], DELTA_DIGITS["psnr"]),
                      format_number(r["delta_ssim_mean"], DELTA_DIGITS["ssim"], signed=True),
                      format_number(r["delta_ssim_max_abs"], DELTA_DIGITS["ssim"])]
        else:  # every image fits in one tile: restored whole either way, nothing measured
            deltas = ["not split: images ≤ tile", "–", "–", "–"]
        rows.append((f"{r['task']}: {r['dataset']}", [
            f"{r['tile']} / {r['overlap']}", "tiles" if r["study"] == TILED else "whole images",
            f"{format_count(r['n_images'])} ({r['n_split']} split)", *deltas]))
    notes = [
        "Δ = tiled − whole, per image, on a sample of each test set (its images evenly spaced in name order), "
        "scored with the test set's protocol; mean Δ and the largest absolute Δ (max abs) over the sample.",
        "The side the study restores is its own per-image scores (the numbers of the main table); the other side "
        "is the same model restored here the other way, in the same precision on the same device.",
        "Split: the sample's images larger than the tile; an image no larger than the tile is restored whole "
        "either way (Δ 0 by construction), so a test set with none split measures nothing.",
    ]
    return Table(name=name, title="Tiles vs whole images: how much tiled restoration moves the scores",
                 row_header="Test set", header=header, rows=rows, data=data, notes=notes, rules_before=rules)


def write_tiles_table(files, out_dir: PathLike) -> list[Path]:
    """The ``tiles`` table of the study's tile checks (``files``: (fields, path) pairs of the study
    manifest's ``tile_checks``) in every format, into ``out_dir``; returns the paths written."""
    from .render import write_table

    table = tiles_table(read_tile_checks(files))
    print(table.data.to_string(index=False))
    return write_table(table, out_dir)
