"""Score the intermediate stage outputs that ``mprnet restore --save-stages`` writes.

``restore`` writes ``<out>/<stem>.png`` (final, stage S) and ``<out>/stages/<stem>_stage<k>.png``
for k = 1..S-1. Each stage is scored through the public ``score_folders`` with the dataset's
own protocol, by linking its files under their plain stems into a temporary folder. All
stages, the final one included, are read from PNGs, so the comparison between stages is
like for like (the ``sidd`` protocol's unquantised floats exist only for the final output).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..images import list_images
from ..metrics import score_folders

_STAGE_NAME = re.compile(r"^(?P<stem>.+)_stage(?P<k>\d+)$")


def stage_files(output_dir: str | os.PathLike) -> dict[int, dict[str, Path]]:
    """{stage k: {stem: path}}, the final output included as stage S = (largest k) + 1."""
    output_dir = Path(output_dir)
    stages_dir = output_dir / "stages"
    if not stages_dir.is_dir():
        raise DataError(f"{stages_dir}: no stage outputs (run `mprnet restore --save-stages`)")
    found: dict[int, dict[str, Path]] = {}
    for path in list_images(stages_dir):
        m = _STAGE_NAME.match(path.stem)
        if m:
            found.setdefault(int(m.group("k")), {})[m.group("stem")] = path
    if not found:
        raise DataError(f"{stages_dir}: no files named <stem>_stage<k>.png")
    final = {p.stem: p for p in list_images(output_dir)}
    found[max(found) + 1] = final
    stems = set(final)
    for k, files in found.items():
        if set(files) != stems:
            missing = sorted(stems ^ set(files))[:5]
            raise DataError(f"{stages_dir}: stage {k} outputs do not match the final outputs (e.g. {', '.join(missing)})")
    return dict(sorted(found.items()))


def score_stages(output_dir: str | os.PathLike, target_dir: str | os.PathLike, protocol: str) -> pd.DataFrame:
    """Per image and stage: image, stage, n_stages, psnr, ssim (stage n_stages is the final output)."""
    stages = stage_files(output_dir)
    frames = []
    with tempfile.TemporaryDirectory(prefix="mprnet-stages-") as tmp:
        for k, files in stages.items():
            folder = Path(tmp) / f"stage{k}"
            folder.mkdir()
            for stem, path in files.items():
                (folder / f"{stem}{path.suffix}").symlink_to(path.resolve())
            scores = score_folders(protocol, folder, target_dir)
            scores = scores[["image", "psnr", "ssim"]].copy()
            scores.insert(1, "stage", k)
            frames.append(scores)
    out = pd.concat(frames, ignore_index=True)
    out.insert(2, "n_stages", max(stages))
    return out
