"""Real images: the Rain100L test set as distributed, through the registry's manual drop and
`prepare`, scores what the official MATLAB script prints for the rainy inputs.

Runs only when MPRNET_REALDATA names a copy of the JORDER Rain100L distribution (the
`rain100L` folder with `test/` and `train/`, e.g. ../shared/realdata/rain100L); `.ci/run` sets
it whenever ../shared/realdata exists and fails if this test did not pass. A user's clone
without the images skips it. The images are linked into a temporary data folder, never copied
into the repository.

Reference: rainy vs clean, y_channel protocol, mean of the 100 pairs, as printed by the official
MATLAB evaluation script under GNU Octave: 26.897982 dB / 0.838215.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mprnet.data.drop import stage_drop
from mprnet.data.fetch import fetch_source
from mprnet.data.lock import LockFile
from mprnet.data.prepare import prepare_dataset, read_manifest
from mprnet.data.registry import load_registry

ROOT = Path(__file__).resolve().parents[1]
ENV = "MPRNET_REALDATA"
SOURCE = "rain100l_jorder"
PSNR, SSIM = 26.897982, 0.838215

pytestmark = pytest.mark.skipif(
    not os.environ.get(ENV),
    reason=f"{ENV} is not set (point it at a copy of the Rain100L distribution, e.g. ../shared/realdata/rain100L)",
)


@pytest.fixture(scope="module")
def realdata() -> Path:
    folder = Path(os.environ[ENV])
    if not folder.is_dir():  # set but wrong: an error, not a skip
        pytest.fail(f"{ENV}={folder} is not a folder")
    return folder


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
    folder = fetch_source(SOURCE, registry.sources[SOURCE], downloads=tmp_path / "downloads",
                          drop=tmp_path / "drop", lock=lock, progress=False)
    assert registry.lock_path.read_bytes() == lock_bytes
    (split,) = prepare_dataset("rain100l_orig", registry, data_dir=tmp_path, splits=["test"], progress=False)

    rows = read_manifest(split / "manifest.csv")
    assert [r["stem"] for r in rows] == [f"{n:03d}" for n in range(1, 101)]
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
