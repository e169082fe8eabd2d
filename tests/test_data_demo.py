"""make_demo: offline synthetic sets in the prepared layout, byte-identical for a seed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from mprnet.data.demo import line_kernel, make_demo, shake_kernel
from mprnet.data.pairs import read_manifest
from mprnet.images import pair_by_stem, read_rgb


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    make_demo(out, seed=0)
    return out


def test_layout_and_manifests(demo):
    assert sorted(p.name for p in demo.iterdir()) == ["demo_blur", "demo_noise", "demo_rain"]
    pngs = list(demo.rglob("*.png"))
    assert len(pngs) >= 30
    odd_sizes = 0
    for dataset in demo.iterdir():
        for split, n in (("train", 6), ("test", 4)):
            split_dir = dataset / split
            pairs = pair_by_stem(split_dir / "input", split_dir / "target")
            rows = read_manifest(split_dir / "manifest.csv")
            assert len(pairs) == len(rows) == n
            for (stem, a, b), row in zip(pairs, rows):
                x, y = read_rgb(a), read_rgb(b)
                assert row["stem"] == stem and x.shape == y.shape == (int(row["height"]), int(row["width"]), 3)
                assert hashlib.sha256(a.read_bytes()).hexdigest() == row["input_sha256"]
                assert not np.array_equal(x, y)  # the degradation did something
                if split == "train":
                    assert min(x.shape[:2]) >= 64  # the trainers cut 64x64 patches
                else:
                    odd_sizes += x.shape[0] % 8 != 0 or x.shape[1] % 8 != 0
    assert odd_sizes >= 2 * 3  # padding gets exercised in every task


def test_degradations_look_like_their_task(demo):
    def mean_diff(name):
        out = []
        for stem, a, b in pair_by_stem(demo / name / "test" / "input", demo / name / "test" / "target"):
            out.append(read_rgb(a).astype(float) - read_rgb(b).astype(float))
        return out

    # Rain is screen-blended: it only brightens.
    assert all((d >= -1).all() and d.mean() > 0.5 for d in mean_diff("demo_rain"))
    # Blur keeps the mean brightness; noise is zero-mean up to clipping.
    assert all(abs(d.mean()) < 3 for d in mean_diff("demo_blur"))
    assert all(d.std() > 2 for d in mean_diff("demo_noise"))


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
    k = shake_kernel(np.random.default_rng(0), 17)
    assert k.shape == (17, 17) and abs(k.sum() - 1) < 1e-12 and (k >= 0).all()
    assert (k > 0).sum() > 5  # a trajectory, not a single point
    line = line_kernel(11, 0.0)
    assert line.max() == 1.0 and np.count_nonzero(line.sum(axis=0) > 0.5) == 1  # vertical streak


def test_make_demo_command(tmp_path, capsys):
    from mprnet.cli import main

    assert main(["make-demo", "--out", str(tmp_path / "d"), "--seed", "3"]) == 0
    assert "demo_rain" in capsys.readouterr().out
    assert (tmp_path / "d" / "demo_noise" / "test" / "manifest.csv").is_file()
