"""Real data as distributed: the Rain100L test set through the registry's manual drop, the content
check and `prepare` scores what the official MATLAB script prints for the rainy inputs; the
official RealBlur-J lists name their pairs as MPRNet's copy and the released results do.

Each test runs only when its switch names a real copy; `.ci/run` sets both whenever
../shared/realdata exists and fails unless both passed. A user's clone without them skips them.
Nothing real is copied into the repository (the images are linked into a temporary data folder).

* MPRNET_REALDATA: the JORDER Rain100L distribution (the `rain100L` folder with `test/` and
  `train/`, e.g. ../shared/realdata/rain100L). Reference: rainy vs clean, y_channel protocol,
  mean of the 100 pairs, as printed by the official MATLAB evaluation script under GNU Octave:
  26.897982 dB / 0.838215.
* MPRNET_REALBLUR_LISTS: the folder of the official RealBlur_J_{train,test}_list.txt (names only,
  e.g. ../shared/realdata/realblur_j_lists). MPRNet's Drive copy of the test set, and so the
  released results, name the pairs scene<NNN>-<k> (e.g. scene002-10 ... scene011-19).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mprnet.data.gate import content_gate
from mprnet.data.drop import stage_drop
from mprnet.data.fetch import fetch_source
from mprnet.data.lock import LockFile
from mprnet.data.prepare import prepare_dataset, read_manifest
from mprnet.data.registry import load_registry

ROOT = Path(__file__).resolve().parents[1]
ENV = "MPRNET_REALDATA"
LISTS_ENV = "MPRNET_REALBLUR_LISTS"
SOURCE = "rain100l_jorder"
PSNR, SSIM = 26.897982, 0.838215


def switch(env: str, example: str) -> Path:
    """The folder ``env`` names: skip when unset, fail when set but not a folder."""
    if not os.environ.get(env):
        pytest.skip(f"{env} is not set (point it at {example})")
    folder = Path(os.environ[env])
    if not folder.is_dir():  # set but wrong: an error, not a skip
        pytest.fail(f"{env}={folder} is not a folder")
    return folder


@pytest.fixture(scope="module")
def realdata() -> Path:
    return switch(ENV, "a copy of the Rain100L distribution, e.g. ../shared/realdata/rain100L")


@pytest.fixture(scope="module")
def realblur_lists() -> Path:
    return switch(LISTS_ENV, "the official RealBlur-J lists, e.g. ../shared/realdata/realblur_j_lists")


def test_rain100l_test_set_from_the_distribution_layout(realdata, tmp_path):
    from mprnet.metrics.scoring import score_folders

    registry = load_registry(ROOT / "config" / "datasets.yaml")
    lock = LockFile(registry.lock_path)
    locked = lock.files(SOURCE)
    # The fetch below must verify against the committed lock, never write a new one.
    assert len(locked) == 600, f"{registry.lock_path} must record the 600 files of {SOURCE}"
    lock_bytes = registry.lock_path.read_bytes()

    drop = stage_drop(realdata, "rain100l_orig", registry, data_dir=tmp_path)
    assert drop == tmp_path / "drop" / SOURCE
    # Accepted by content (both registry entries that read the source find their pairs), then
    # compared with the pinned lock.
    folder = fetch_source(SOURCE, registry.sources[SOURCE], downloads=tmp_path / "downloads",
                          drop=tmp_path / "drop", lock=lock, progress=False,
                          content_check=content_gate(registry, SOURCE, tmp_path))
    assert registry.lock_path.read_bytes() == lock_bytes
    (split,) = prepare_dataset("rain100l_orig", registry, data_dir=tmp_path, splits=["test"], progress=False)
    assert not (tmp_path / "downloads" / "sources.lock.yaml").exists()  # pinned: nothing trusted anew

    rows = read_manifest(split / "manifest.csv")
    assert sorted(int(r["stem"]) for r in rows) == list(range(1, 101))  # stems N, as MPRNet's copy names them
    sizes = sorted({(int(r["width"]), int(r["height"])) for r in rows})
    assert sizes == [(321, 481), (481, 321)]
    # The prepared images are the distributed files byte for byte, rainy from rain/, clean from norain/.
    for row in rows[:3] + rows[-3:]:
        n = int(row["stem"])
        assert row["input_sha256"] == locked[f"rain100L/test/rain/norain-{n}.png"].sha256
        assert row["target_sha256"] == locked[f"rain100L/test/norain/norain-{n}.png"].sha256
    assert folder.is_dir() and not any((tmp_path / "drop" / SOURCE).rglob("*.png"))

    scores = score_folders("y_channel", split / "input", split / "target")
    assert len(scores) == 100
    assert abs(scores["psnr"].mean() - PSNR) <= 1e-4
    assert abs(scores["ssim"].mean() - SSIM) <= 1e-6


def test_the_official_realblur_j_lists_name_pairs_as_mprnets_copy(realblur_lists, tmp_path):
    """A copy of the RealBlur archive shaped by the real lists (tiny stand-in images at every
    listed path, the list files byte for byte) and MPRNet's flattened copy of the test set
    prepare to the same 980 stems, among them the names seen in MPRNet's Drive copy."""
    import shutil

    registry = load_registry(ROOT / "config" / "datasets.yaml")
    archive = tmp_path / "a" / "downloads" / "realblur_official" / "RealBlur"
    png = _tiny_png()
    listed = {}
    for split in ("train", "test"):
        name = f"RealBlur_J_{split}_list.txt"
        (archive).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(realblur_lists / name, archive / name)
        listed[split] = [line.split() for line in (archive / name).read_text().splitlines() if line.strip()]
        for gt, blur in listed[split]:
            for path in (gt, blur):
                (archive / path).parent.mkdir(parents=True, exist_ok=True)
                (archive / path).write_bytes(png)
    assert (len(listed["train"]), len(listed["test"])) == (3758, 980)

    flat = tmp_path / "b" / "downloads" / "realblur_j_test_gdrive" / "RealBlur_J" / "test"
    for side in ("input", "target"):
        (flat / side).mkdir(parents=True)
    for gt, blur in listed["test"]:  # MPRNet's copy: scene and frame joined by a hyphen
        parts = Path(blur).parts
        name = f"{parts[-3]}-{Path(blur).stem.removeprefix('blur_')}.png"
        (flat / "input" / name).write_bytes(png)
        (flat / "target" / name).write_bytes(png)

    stems = {}
    for data, name, split in (("a", "realblur_j_train", "test"), ("a", "realblur_j_train", "train"),
                              ("b", "realblur_j", "test")):
        (out,) = prepare_dataset(name, registry, data_dir=tmp_path / data, splits=[split], progress=False)
        stems[(name, split)] = [row["stem"] for row in read_manifest(out / "manifest.csv")]
    assert stems[("realblur_j_train", "test")] == stems[("realblur_j", "test")]
    assert len(stems[("realblur_j", "test")]) == 980 and len(stems[("realblur_j_train", "train")]) == 3758
    assert {"scene002-10", "scene011-19"} <= set(stems[("realblur_j_train", "test")])  # MPRNet's Drive names
    assert not set(stems[("realblur_j_train", "test")]) & set(stems[("realblur_j_train", "train")])


def _tiny_png() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
