"""prepare: tiny fabricated datasets in each original layout become data/<name>/<split>/{input,target}."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_project import Project, write_dnd
from image_files import rgb, save
from mprnet.data.prepare import read_manifest
from mprnet.errors import DataError
from mprnet.images import read_rgb, to_uint8


@pytest.fixture
def project(tmp_path) -> Project:
    return Project(tmp_path)


def no_leftovers(folder: Path) -> bool:
    return not folder.exists() or not [p for p in folder.rglob(".*")]


def check_split(split_dir: Path, stems: list[str]) -> list[dict]:
    rows = read_manifest(split_dir / "manifest.csv")
    assert [r["stem"] for r in rows] == sorted(stems)
    for row in rows:
        for side in ("input", "target"):
            data = (split_dir / side / f"{row['stem']}.png").read_bytes()
            assert hashlib.sha256(data).hexdigest() == row[f"{side}_sha256"]
        image = read_rgb(split_dir / "input" / f"{row['stem']}.png")
        assert image.shape == (int(row["height"]), int(row["width"]), 3)
    assert json.loads((split_dir / "provenance.json").read_text())["count"] == len(stems)
    return rows


# --------------------------------------------------------------------------- folder layouts

def test_rain13k_style_folders(project):
    src = project.source("rain_train")
    images = {}
    for k in range(3):
        clean, rainy = rgb(24, 32, k), rgb(24, 32, 10 + k)
        save(src / "train" / "target" / f"{k}.png", clean)
        # JPEG inputs are decoded once and stored as PNG.
        (src / "train" / "input").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rainy).save(src / "train" / "input" / f"{k}.jpg", quality=95)
        images[str(k)] = clean
    project.dataset("rain13k", "paired_folders", {"train": {"source": "rain_train", "count": 3}}, task="deraining")
    (out,) = project.prepare("rain13k")
    assert out == project.data / "rain13k" / "train"
    check_split(out, ["0", "1", "2"])
    for stem, clean in images.items():
        assert np.array_equal(read_rgb(out / "target" / f"{stem}.png"), clean)
        jpeg = np.asarray(Image.open(project.data / "downloads" / "rain_train" / "train" / "input" / f"{stem}.jpg").convert("RGB"))
        assert np.array_equal(read_rgb(out / "input" / f"{stem}.png"), jpeg)
    assert no_leftovers(project.data / "rain13k")


def test_one_folder_with_several_test_sets(project):
    src = project.source("rain_test")
    for name, n in (("Rain100H", 2), ("Rain100L", 3)):
        for k in range(n):
            save(src / "test" / name / "input" / f"{k}.png", rgb(16, 16, k))
            save(src / "test" / name / "target" / f"{k}.png", rgb(16, 16, 50 + k))
    project.dataset("rain100l", "paired_folders", {"test": {"source": "rain_test", "input": "Rain100L/input",
                                                            "target": "Rain100L/target", "count": 3}})
    (out,) = project.prepare("rain100l")
    check_split(out, ["0", "1", "2"])
    # Without a precise pattern the two "input" folders are ambiguous: a clear error, not a guess.
    project.dataset("ambiguous", "paired_folders", {"test": {"source": "rain_test"}})
    with pytest.raises(DataError, match="2 input folders match"):
        project.prepare("ambiguous")
    assert not (project.data / "ambiguous").exists()


def test_gopro_sequence_folders_inside_a_zip(project):
    src = project.source("gopro_zip")
    buffer = io.BytesIO()
    frames = {}
    with zipfile.ZipFile(buffer, "w") as handle:
        for split, sequences in (("train", ["GOPR0372_07_00"]), ("test", ["GOPR0384_11_00", "GOPR0884_11_00"])):
            for seq in sequences:
                for frame in ("000047", "000285"):
                    for kind, seed in (("blur", 1), ("sharp", 2)):
                        image = rgb(16, 24, hash((seq, frame, kind)) % 1000)
                        png = io.BytesIO()
                        Image.fromarray(image).save(png, format="PNG")
                        handle.writestr(f"GOPRO_Large/{split}/{seq}/{kind}/{frame}.png", png.getvalue())
                        frames[(split, f"{seq}-{frame}", kind)] = image
    (src / "GOPRO_Large.zip").write_bytes(buffer.getvalue())
    project.dataset("gopro", "gopro", {"train": {"source": "gopro_zip", "count": 2},
                                       "test": {"source": "gopro_zip", "count": 4}})
    train, test = project.prepare("gopro")
    check_split(train, ["GOPR0372_07_00-000047", "GOPR0372_07_00-000285"])
    check_split(test, ["GOPR0384_11_00-000047", "GOPR0384_11_00-000285", "GOPR0884_11_00-000047", "GOPR0884_11_00-000285"])
    stem = "GOPR0884_11_00-000285"
    assert np.array_equal(read_rgb(test / "input" / f"{stem}.png"), frames[("test", stem, "blur")])
    assert np.array_equal(read_rgb(test / "target" / f"{stem}.png"), frames[("test", stem, "sharp")])
    assert (project.data / "raw" / "gopro_zip" / "GOPRO_Large").is_dir()  # unpacked once, reused


def test_gopro_mprnet_copy_and_hide_original_layout(project):
    src = project.source("gopro_test")
    for k in range(2):
        save(src / "test" / "input" / f"GOPR0384_11_00-00000{k}.png", rgb(16, 16, k))
        save(src / "test" / "target" / f"GOPR0384_11_00-00000{k}.png", rgb(16, 16, k + 9))
    project.dataset("gopro", "gopro", {"test": {"source": "gopro_test", "count": 2}})
    (out,) = project.prepare("gopro")
    check_split(out, ["GOPR0384_11_00-000000", "GOPR0384_11_00-000001"])

    hide = project.source("hide_orig")
    save(hide / "HIDE_dataset" / "GT" / "6fromGOPR0950.png", rgb(20, 16, 1))
    save(hide / "HIDE_dataset" / "GT" / "9fromGOPR1036.png", rgb(20, 16, 2))
    save(hide / "HIDE_dataset" / "GT" / "train_only.png", rgb(20, 16, 3))
    save(hide / "HIDE_dataset" / "test" / "test-close-ups" / "6fromGOPR0950.png", rgb(20, 16, 4))
    save(hide / "HIDE_dataset" / "test" / "test-long-shot" / "9fromGOPR1036.png", rgb(20, 16, 5))
    project.dataset("hide", "hide", {"test": {"source": "hide_orig", "count": 2}})
    (out,) = project.prepare("hide")
    check_split(out, ["6fromGOPR0950", "9fromGOPR1036"])
    assert np.array_equal(read_rgb(out / "target" / "9fromGOPR1036.png"), rgb(20, 16, 2))


def test_realblur_lists(project):
    src = project.source("realblur")
    base = src / "RealBlur"
    lines = []
    for scene in ("scene001", "scene230"):
        for k in (1, 2):
            gt = f"RealBlur-J_ECC_IMCORR_centroid_itensity_ref/{scene}/gt/gt_{k}.png"
            blur = f"RealBlur-J_ECC_IMCORR_centroid_itensity_ref/{scene}/blur/blur_{k}.png"
            save(base / gt, rgb(12, 20, k))
            save(base / blur, rgb(12, 20, k + 5))
            lines.append(f"{gt} {blur}")
    (base / "RealBlur_J_train_list.txt").write_text("\n".join(lines[:3]) + "\n")
    (base / "RealBlur_J_test_list.txt").write_text(lines[3] + "\n")
    project.dataset("realblur_j_train", "realblur", {
        "train": {"source": "realblur", "list": "RealBlur_J_train_list.txt", "count": 3},
        "test": {"source": "realblur", "list": "RealBlur_J_test_list.txt", "count": 1}}, protocol="realblur",
        stem="scene_frame")
    train, test = project.prepare("realblur_j_train")
    check_split(train, ["scene001-1", "scene001-2", "scene230-1"])
    check_split(test, ["scene230-2"])
    assert np.array_equal(read_rgb(test / "input" / "scene230-2.png"), rgb(12, 20, 7))


# --------------------------------------------------------------------------- .mat layouts

def _sidd_blocks(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (2, 3, 8, 8, 3), dtype=np.uint8)


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_sidd_validation_blocks(project, version):
    import h5py
    import scipy.io

    src = project.source("sidd_benchmark")
    noisy, gt = _sidd_blocks(1), _sidd_blocks(2)
    for name, blocks in (("ValidationNoisyBlocksSrgb", noisy), ("ValidationGtBlocksSrgb", gt)):
        if version == "v5":
            scipy.io.savemat(src / f"{name}.mat", {name: blocks})
        else:  # MATLAB -v7.3: a 512-byte MATLAB header, then HDF5 with the axes in reverse order
            with h5py.File(src / f"{name}.mat", "w", userblock_size=512) as handle:
                handle.create_dataset(name, data=blocks.transpose(4, 3, 2, 1, 0))
            with open(src / f"{name}.mat", "r+b") as fh:
                fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .")
    project.dataset("sidd", "sidd_blocks", {"test": {"source": "sidd_benchmark", "count": 6}}, protocol="sidd",
                    task="denoising")
    (out,) = project.prepare("sidd")
    check_split(out, ["0001_01", "0001_02", "0001_03", "0002_01", "0002_02", "0002_03"])
    assert np.array_equal(read_rgb(out / "input" / "0002_03.png"), noisy[1, 2])
    assert np.array_equal(read_rgb(out / "target" / "0001_02.png"), gt[0, 1])


def test_sidd_medium_patches_are_seeded_crops(project):
    src = project.source("sidd_medium")
    for scene in ("0001_001_S6_00100_00060_3200_L", "0002_001_S6_00100_00020_3200_N"):
        for shot in ("010", "011"):
            clean = rgb(40, 48, hash((scene, shot)) % 997) // 2
            save(src / "SIDD_Medium_Srgb" / "Data" / scene / f"{scene[:4]}_GT_SRGB_{shot}.PNG", clean)
            save(src / "SIDD_Medium_Srgb" / "Data" / scene / f"{scene[:4]}_NOISY_SRGB_{shot}.PNG", clean + 7)
    project.dataset("sidd_train", "sidd_medium_patches",
                    {"train": {"source": "sidd_medium", "patches": 3, "patch_size": 16, "seed": 0, "count": 12}},
                    task="denoising", protocol=None)
    (out,) = project.prepare("sidd_train")
    rows = check_split(out, [f"0001_001_S6_00100_00060_3200_L_{s}_{j:03d}" for s in ("010", "011") for j in range(3)]
                       + [f"0002_001_S6_00100_00020_3200_N_{s}_{j:03d}" for s in ("010", "011") for j in range(3)])
    for row in rows:
        noisy = read_rgb(out / "input" / f"{row['stem']}.png").astype(int)
        clean = read_rgb(out / "target" / f"{row['stem']}.png").astype(int)
        assert noisy.shape == (16, 16, 3) and np.all(noisy - clean == 7)  # the same crop of both images
    first = (out / "manifest.csv").read_text()
    (again,) = project.prepare("sidd_train", force=True)
    assert (again / "manifest.csv").read_text() == first  # seeded: the same patches every time
    (other,) = project.prepare("sidd_train", force=True, options={"seed": 1, "patches": 2})
    assert len(read_manifest(other / "manifest.csv")) == 8


def test_dnd_crops(project):
    src = project.source("dnd")
    rng = np.random.default_rng(0)
    images = [rng.random((30, 40, 3)).astype(np.float32) for _ in range(2)]
    # 1-based inclusive MATLAB boxes [r0 c0 r1 c1]
    boxes = [np.array([[1, 1, 8, 8], [11, 21, 20, 40], [23, 5, 30, 16]]), np.array([[2, 3, 9, 10], [21, 31, 30, 40], [5, 5, 12, 12]])]
    write_dnd(src / "DND", images, boxes)
    project.dataset("dnd", "dnd_crops", {"test": {"source": "dnd", "count": 6}}, protocol="dnd", task="denoising")
    (out,) = project.prepare("dnd")
    rows = read_manifest(out / "manifest.csv")
    assert [r["stem"] for r in rows] == ["0001_01", "0001_02", "0001_03", "0002_01", "0002_02", "0002_03"]
    assert all(r["target_sha256"] == "" for r in rows) and not (out / "target").exists()
    exact = np.load(out / "input_float" / "0001_02.npy")
    assert exact.dtype == np.float32 and np.array_equal(exact, images[0][10:20, 20:40])
    assert np.array_equal(read_rgb(out / "input" / "0002_03.png"), to_uint8(images[1][4:12, 4:12]))
    with open(out / "boxes.csv") as fh:
        box_rows = list(csv.DictReader(fh))
    assert box_rows[1] == {"stem": "0001_02", "image": "1", "box": "2", "row_start": "10", "row_stop": "20",
                           "col_start": "20", "col_stop": "40"}
    notes = " ".join(json.loads((out / "provenance.json").read_text())["notes"])
    assert "not all multiples of 1/255" in notes


# --------------------------------------------------------------------------- bad input

def test_mismatched_sizes_list_every_offender(project):
    src = project.source("bad")
    for k in range(4):
        save(src / "input" / f"{k}.png", rgb(16, 16, k))
        save(src / "target" / f"{k}.png", rgb(16 if k % 2 == 0 else 17, 16, k))
    project.dataset("bad", "paired_folders", {"test": {"source": "bad"}})
    with pytest.raises(DataError, match=r"2 bad pair\(s\): 1: input .* is 16x16 but target .* is 17x16; 3: ") as info:
        project.prepare("bad")
    assert "0:" not in str(info.value)
    assert not (project.data / "bad").exists()


def test_missing_pairs_are_listed(project):
    src = project.source("bad")
    for k in range(3):
        save(src / "input" / f"{k}.png", rgb(8, 8, k))
    save(src / "target" / "0.png", rgb(8, 8, 0))
    save(src / "target" / "9.png", rgb(8, 8, 0))
    project.dataset("bad", "paired_folders", {"test": {"source": "bad"}})
    with pytest.raises(DataError, match=r"only in .*input: 1, 2; only in .*target: 9"):
        project.prepare("bad")
    assert not (project.data / "bad").exists()


def test_pairing_by_position_when_names_differ(project):
    src = project.source("rain100h")
    for k in range(2):
        save(src / "input" / f"rain-{k:03d}.png", rgb(8, 8, k))
        save(src / "target" / f"norain-{k:03d}.png", rgb(8, 8, k + 3))
    project.dataset("rain100h", "paired_folders", {"test": {"source": "rain100h"}})
    with pytest.raises(DataError, match="pair_by: position"):
        project.prepare("rain100h")
    project.dataset("rain100h", "paired_folders", {"test": {"source": "rain100h", "pair_by": "position"}})
    (out,) = project.prepare("rain100h")
    assert np.array_equal(read_rgb(out / "target" / "rain-001.png"), rgb(8, 8, 4))


def test_count_mismatch_and_rebuilds(project):
    src = project.source("s")
    for k in range(2):
        save(src / "input" / f"{k}.png", rgb(8, 8, k))
        save(src / "target" / f"{k}.png", rgb(8, 8, k))
    project.dataset("s", "paired_folders", {"test": {"source": "s", "count": 3}})
    with pytest.raises(DataError, match=r"2 pairs, but .*datasets.yaml expects 3"):
        project.prepare("s")
    assert not (project.data / "s").exists()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (out,) = project.prepare("s", allow_count_mismatch=True)
    assert caught and out.is_dir()
    with pytest.raises(DataError, match="already prepared"):
        project.prepare("s", allow_count_mismatch=True)
    with pytest.warns(UserWarning, match="expects 3"):
        project.prepare("s", allow_count_mismatch=True, force=True)
    assert no_leftovers(project.data / "s")


def test_a_folder_without_manifest_is_not_a_prepared_split(project):
    # Snakemake creates the folder of a job's output (manifest.csv) before running the job,
    # and deletes a stale manifest.csv before running it again.
    src = project.source("s")
    save(src / "input" / "a.png", rgb(8, 8, 1))
    save(src / "target" / "a.png", rgb(8, 8, 2))
    project.dataset("s", "paired_folders", {"test": {"source": "s"}})
    (project.data / "s" / "test").mkdir(parents=True)
    (out,) = project.prepare("s")
    (out / "manifest.csv").unlink()
    (out / "input" / "stale.png").write_bytes(b"left over")
    (out,) = project.prepare("s")
    assert (out / "manifest.csv").is_file() and not (out / "input" / "stale.png").exists()


def test_not_fetched_yet(project):
    project.sources["nothing"] = {"kind": "http", "url": "http://127.0.0.1/x", "title": "x"}
    project.dataset("n", "paired_folders", {"test": {"source": "nothing"}})
    with pytest.raises(DataError, match="run `mprnet fetch n` first"):
        project.prepare("n")
    assert not (project.data / "n").exists()


def test_copy_files_for_weights(project):
    import torch

    from mprnet.errors import CheckpointError

    src = project.source("w")
    torch.save({"state_dict": {"conv.weight": torch.ones(2, 2)}}, src / "model_deblurring.pth")
    project.dataset("pretrained_deblurring", "copy_files",
                    {"files": {"source": "w", "files": {"model_deblurring.pth": "*.pth"}}})
    (out,) = project.prepare("pretrained_deblurring")
    assert out == project.data / "pretrained_deblurring"
    assert (out / "model_deblurring.pth").read_bytes() == (src / "model_deblurring.pth").read_bytes()
    # What prepare accepts it reads as its user will: weights that do not load, or are NaN, are refused.
    for content in (b"weights", {"state_dict": {"conv.weight": torch.full((2, 2), float("nan"))}}):
        if isinstance(content, bytes):
            (src / "model_deblurring.pth").write_bytes(content)
        else:
            torch.save(content, src / "model_deblurring.pth")
        with pytest.raises(CheckpointError, match="model_deblurring.pth"):
            project.prepare("pretrained_deblurring", force=True)
    assert (out / "model_deblurring.pth").exists() and not list(project.data.glob(".*prepare-*"))


@pytest.mark.parametrize("converter", ["paired_folders", "copy_tree"])
def test_a_truncated_png_is_refused_and_no_split_is_called_prepared(project, converter):
    """Before: prepare checked headers only and copied a truncated 8-bit RGB PNG byte for byte
    into a split it called validated (Snakemake then took the split as done)."""
    src = project.source("s")
    for k in range(3):
        save(src / "test" / "input" / f"{k}.png", rgb(24, 32, k))
        save(src / "test" / "target" / f"{k}.png", rgb(24, 32, 10 + k))
    victim = src / "test" / "target" / "1.png"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) * 2 // 3])
    split = {"test": {"source": "s", "count": 3}} if converter == "paired_folders" else {"files": {"source": "s"}}
    project.dataset("set", converter, split)
    with pytest.raises(DataError, match=r"1\.png: unreadable, truncated or corrupt image"):
        project.prepare("set")
    assert not (project.data / "set").exists()


def test_prepare_command(project, capsys):
    from mprnet.cli import main

    src = project.source("s")
    save(src / "input" / "a.png", rgb(8, 8, 1))
    save(src / "target" / "a.png", rgb(8, 8, 2))
    project.dataset("s", "paired_folders", {"test": {"source": "s", "count": 1}})
    project.prepare("s")
    args = ["--registry", str(project.root / "datasets.yaml"), "--data-dir", str(project.data)]
    assert main(["prepare", "s", *args]) == 2  # already prepared: one-line error, exit 2
    assert "already prepared" in capsys.readouterr().err
    assert main(["prepare", "s", *args, "--force", "--quiet"]) == 0
