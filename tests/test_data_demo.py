"""make_demo: offline synthetic sets in the prepared layout, byte-identical for a seed.

The demo study (config/demo.yaml) and the CI study (.test/config/config.yaml) read the same generated
sets, so the sizes, counts and determinism checked here hold for both; the demo's restoration
targets (≥ 1.5 dB per task) and its wall time are printed by `make demo` itself.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from mprnet.data import demo as demo_module
from mprnet.data.demo import disk_kernel, line_kernel, make_demo, split_region, texture
from mprnet.data.pairs import read_manifest
from mprnet.images import pair_by_stem, read_rgb

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
MIN_TEST_IMAGES = 12  # enough for a paired comparison: at least 12 test images of at least 128x128 per task
MIN_SIDE = 128


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def load_config(path: Path):
    import yaml

    from mprnet.study.config import load_study

    return load_study(yaml.safe_load(path.read_text()), SCHEMA, ROOT)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    make_demo(out, seed=0)
    return out


def test_layout_and_manifests(demo):
    assert sorted(p.name for p in demo.iterdir()) == ["demo_blur", "demo_noise", "demo_rain"]
    odd_sizes = 0
    for dataset in demo.iterdir():
        for split, n in (("train", demo_module.N_TRAIN), ("test", MIN_TEST_IMAGES)):
            split_dir = dataset / split
            pairs = pair_by_stem(split_dir / "input", split_dir / "target")
            rows = read_manifest(split_dir / "manifest.csv")
            assert len(pairs) == len(rows) == n
            for (stem, a, b), row in zip(pairs, rows):
                x, y = read_rgb(a), read_rgb(b)
                assert row["stem"] == stem and x.shape == y.shape == (int(row["height"]), int(row["width"]), 3)
                assert hashlib.sha256(a.read_bytes()).hexdigest() == row["input_sha256"]
                assert not np.array_equal(x, y)  # the degradation did something
                assert min(x.shape[:2]) >= MIN_SIDE
                if split == "test":
                    odd_sizes += x.shape[0] % 8 != 0 or x.shape[1] % 8 != 0
    assert odd_sizes >= 2 * 3  # padding gets exercised in every task


def test_demo_and_ci_studies_score_the_checked_sets(demo):
    """Both studies build the sets above (same generator, root and seed) and score full test sets."""
    demo_study = load_config(ROOT / "config" / "demo.yaml")
    ci_study = load_config(ROOT / ".test" / "config" / "config.yaml")
    for study in (demo_study, ci_study):
        assert study.data.source == "demo" and study.data.root == demo_study.data.root
        assert study.data.demo_seed == 0  # the seed of the fixture
    for sets in demo_study.test_sets.values():
        for test in sets.values():
            split_dir = demo / test.name / test.split
            sizes = [read_rgb(p).shape[:2] for _, p, _ in pair_by_stem(split_dir / "input", split_dir / "target")]
            assert len(sizes) >= MIN_TEST_IMAGES and min(min(s) for s in sizes) >= MIN_SIDE
    assert set(demo_study.test_sets) == set(ci_study.test_sets)  # CI restores and scores every task


def test_test_crops_come_from_columns_training_never_sees():
    source = np.broadcast_to(np.arange(451)[None, :, None], (300, 451, 3))  # each pixel holds its column
    test, train = split_region(source, "test"), split_region(source, "train")
    test_cols, train_cols = set(test[0, :, 0]), set(train[0, :, 0])
    assert not test_cols & train_cols
    assert min(train_cols) - max(test_cols) > 0.04 * 451  # a gap, so bicubic resampling cannot mix them
    assert test.shape[0] == train.shape[0] == 300 and len(test_cols) >= MIN_SIDE


def test_degradations_look_like_their_task(demo):
    def pairs(name):
        split_dir = demo / name / "test"
        return [(read_rgb(a).astype(float), read_rgb(b).astype(float))
                for _, a, b in pair_by_stem(split_dir / "input", split_dir / "target")]

    # Rain is screen-blended: it only brightens.
    assert all(((x - y) >= -1).all() and (x - y).mean() > 0.5 for x, y in pairs("demo_rain"))
    # Blur keeps the mean brightness and removes detail.
    assert all(abs((x - y).mean()) < 3 and texture(x / 255) < 0.8 * texture(y / 255) for x, y in pairs("demo_blur"))
    # Noise is zero-mean up to clipping, and strong enough to be worth removing.
    assert all(abs((x - y).mean()) < 3 and (x - y).std() > 4 for x, y in pairs("demo_noise"))
    # Nothing to restore in a flat crop: every test target has the minimum texture.
    for name in ("demo_rain", "demo_blur", "demo_noise"):
        assert min(texture(y / 255) for _, y in pairs(name)) >= demo_module.TEXTURE_MIN


def test_same_seed_same_bytes_other_seed_other_bytes(demo, tmp_path):
    make_demo(tmp_path / "again", seed=0)
    assert digests(tmp_path / "again") == digests(demo)
    make_demo(tmp_path / "other", seed=1)
    assert digests(tmp_path / "other") != digests(demo)
    # Rebuilding in place swaps complete folders and leaves no temporary ones.
    make_demo(tmp_path / "again", seed=0)
    assert digests(tmp_path / "again") == digests(demo)
    assert not [p for p in (tmp_path / "again").iterdir() if p.name.startswith(".")]


def test_kernels():
    disk = disk_kernel(2.0)
    assert disk.shape == (5, 5) and abs(disk.sum() - 1) < 1e-12 and (disk >= 0).all()
    assert np.allclose(disk, disk.T) and np.allclose(disk, disk[::-1])  # round
    assert disk[2, 2] == disk.max() and disk[0, 0] == 0.0  # corners lie outside radius 2
    # Antialiased area: a pixel fully inside the disk weighs 1/(pi r^2) of the whole.
    assert abs(disk[2, 2] - 1 / (np.pi * 4)) < 0.01
    line = line_kernel(11, 0.0)
    assert line.max() == 1.0 and np.count_nonzero(line.sum(axis=0) > 0.5) == 1  # vertical streak


def test_make_demo_command(tmp_path, capsys):
    from mprnet.cli import main

    assert main(["make-demo", "--out", str(tmp_path / "d"), "--seed", "3"]) == 0
    assert "demo_rain" in capsys.readouterr().out
    assert (tmp_path / "d" / "demo_noise" / "test" / "manifest.csv").is_file()
