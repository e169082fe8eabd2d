"""One name per test image, whatever copy it was prepared from: for each dataset, two real-shaped
copies (tiny synthetic images in the layouts the copies are distributed in) prepare to the same
stems, in the form of MPRNet's copies and the authors' released results.

The real RealBlur-J lists are checked in tests/test_realdata.py (MPRNET_REALBLUR_LISTS).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from data_project import Project, prepare_shipped, write_dnd, zip_folder
from image_files import rgb, save
from mprnet.data.prepare import read_manifest
from mprnet.data.stems import SCHEMES, canonical_pairs
from mprnet.errors import DataError
from mprnet.images import read_rgb


# --------------------------------------------------------------------------- the schemes

@pytest.mark.parametrize("scheme, raw, canonical", [
    ("number", "7", "7"), ("number", "007", "7"), ("number", "100", "100"), ("number", "0", None),
    ("number", "rain-7", None),
    ("scene_frame", "scene230-7", "scene230-7"), ("scene_frame", "scene230_7", "scene230-7"),
    ("scene_frame", "scene002-10", "scene002-10"), ("scene_frame", "scene230-07", "scene230-7"),
    ("scene_frame", "scene23-7", None), ("scene_frame", "blur_7", None),
    ("gopro", "GOPR0884_11_00-000285", "GOPR0884_11_00-000285"), ("gopro", "GOPR0884_11_00_000285", None),
    ("image_k", "926_10", "926_10"), ("image_k", "926_10(1)", None),
    ("block", "0001_01", "0001_01"), ("block", "1_1", None),
    ("name", "100fromGOPR1040.MP4", "100fromGOPR1040.MP4"), ("name", ".hidden", None),
])
def test_schemes_read_every_circulating_form_and_nothing_else(scheme, raw, canonical):
    assert SCHEMES[scheme].canonical_stem(raw) == canonical
    if canonical is not None:
        assert SCHEMES[scheme].is_canonical(canonical)


def test_unknown_forms_and_collisions_are_listed_by_file():
    a, b, c = Path("in/scene230_7.png"), Path("in/scene230-7.png"), Path("in/blur_3.png")
    pairs = [("scene230_7", a, a), ("scene230-7", b, b), ("blur_3", c, c)]
    with pytest.raises(DataError) as info:
        canonical_pairs(pairs, SCHEMES["scene_frame"], "realblur/test")
    message = str(info.value)
    assert "realblur/test: 2 image name(s)" in message
    assert "in/blur_3.png: stem 'blur_3' is not a scene_frame stem (expected like 'scene230-7'" in message
    assert "names the same image as in/scene230_7.png ('scene230-7')" in message


# --------------------------------------------------------------------------- two copies per dataset

def _realblur_official(root: Path, pairs: list[tuple[str, int]], list_name: str = "RealBlur_J_test_list.txt") -> None:
    """The RealBlur archive: <root folder>/<scene>/{gt,blur}/{gt,blur}_<k>.png and a list file
    '<gt> <blur> ' per line with a trailing space and no final newline, as distributed."""
    lines = []
    for scene, k in pairs:
        gt = f"RealBlur-J_ECC_IMCORR_centroid_itensity_ref/{scene}/gt/gt_{k}.png"
        blur = f"RealBlur-J_ECC_IMCORR_centroid_itensity_ref/{scene}/blur/blur_{k}.png"
        save(root / gt, rgb(12, 20, k))
        save(root / blur, rgb(12, 20, 50 + k))
        lines.append(f"{gt} {blur} ")
    (root / list_name).write_text("\n".join(lines))


def test_realblur_official_archive_and_mprnet_copy_get_the_released_results_names(tmp_path):
    """Before: scene230_7 from the official lists, scene230-7 from MPRNet's copy. Now both scene230-7."""
    pairs = [("scene230", 7), ("scene230", 2), ("scene002", 10)]
    official = tmp_path / "a" / "downloads" / "realblur_official"
    _realblur_official(official / "RealBlur", pairs)
    _realblur_official(official / "RealBlur", [("scene183", 1)], "RealBlur_J_train_list.txt")
    flat = tmp_path / "b" / "downloads" / "realblur_j_test_gdrive" / "RealBlur_J" / "test"
    for scene, k in pairs:
        save(flat / "input" / f"{scene}-{k}.png", rgb(12, 20, 50 + k))
        save(flat / "target" / f"{scene}-{k}.png", rgb(12, 20, k))
    from_list = prepare_shipped("realblur_j_train", "test", tmp_path / "a")
    from_copy = prepare_shipped("realblur_j", "test", tmp_path / "b")
    assert from_list == from_copy == ["scene002-10", "scene230-2", "scene230-7"]
    for data in ("a", "b"):  # and the same pixels under the same name
        split = tmp_path / data / ("realblur_j_train" if data == "a" else "realblur_j") / "test"
        assert np.array_equal(read_rgb(split / "input" / "scene230-7.png"), rgb(12, 20, 57))
    assert prepare_shipped("realblur_j_train", "train", tmp_path / "a") == ["scene183-1"]


def test_gopro_large_and_the_flattened_copy_get_the_same_stems_from_blur_never_blur_gamma(tmp_path):
    frames = [("GOPR0384_11_00", "000001"), ("GOPR0884_11_00", "000285")]
    original = tmp_path / "a" / "downloads" / "gopro_test_gdrive" / "GOPRO_Large" / "test"
    flat = tmp_path / "b" / "downloads" / "gopro_test_gdrive" / "test"
    for k, (sequence, frame) in enumerate(frames):
        save(original / sequence / "blur" / f"{frame}.png", rgb(10, 14, k))
        save(original / sequence / "blur_gamma" / f"{frame}.png", rgb(10, 14, 20 + k))
        save(original / sequence / "sharp" / f"{frame}.png", rgb(10, 14, 40 + k))
        save(flat / "input" / f"{sequence}-{frame}.png", rgb(10, 14, k))
        save(flat / "target" / f"{sequence}-{frame}.png", rgb(10, 14, 40 + k))
    stems = prepare_shipped("gopro", "test", tmp_path / "a")
    assert stems == prepare_shipped("gopro", "test", tmp_path / "b") == ["GOPR0384_11_00-000001", "GOPR0884_11_00-000285"]
    for data in ("a", "b"):
        assert np.array_equal(read_rgb(tmp_path / data / "gopro" / "test" / "input" / f"{stems[1]}.png"), rgb(10, 14, 1))


def test_hide_dataset_and_mprnet_copy_get_the_same_stems(tmp_path):
    names = ["100fromGOPR1040.MP4", "6fromGOPR0950"]
    original = tmp_path / "a" / "downloads" / "hide_test_gdrive" / "HIDE_dataset"
    flat = tmp_path / "b" / "downloads" / "hide_test_gdrive" / "test"
    for k, (name, subset) in enumerate(zip(names, ("test-long-shot", "test-close-ups"))):
        save(original / "test" / subset / f"{name}.png", rgb(10, 12, k))
        save(original / "GT" / f"{name}.png", rgb(10, 12, 30 + k))
        save(flat / "input" / f"{name}.png", rgb(10, 12, k))
        save(flat / "target" / f"{name}.png", rgb(10, 12, 30 + k))
    assert prepare_shipped("hide", "test", tmp_path / "a") == prepare_shipped("hide", "test", tmp_path / "b") \
        == sorted(names)


def _sidd_mats(folder: Path) -> None:
    import scipy.io

    for name, seed in (("ValidationNoisyBlocksSrgb", 1), ("ValidationGtBlocksSrgb", 2)):
        blocks = np.random.default_rng(seed).integers(0, 256, (2, 3, 8, 8, 3), dtype=np.uint8)
        folder.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(folder / f"{name}.mat", {name: blocks})


def test_sidd_blocks_from_the_benchmark_page_and_from_restormers_archive(tmp_path):
    _sidd_mats(tmp_path / "a" / "downloads" / "sidd_benchmark")  # the two .mat files, loose
    _sidd_mats(tmp_path / "unzipped" / "test" / "SIDD")  # Restormer's test.zip: test/SIDD/*.mat
    zip_folder(tmp_path / "unzipped", tmp_path / "b" / "downloads" / "sidd_benchmark" / "test.zip")
    expected = [f"{i:04d}_{k:02d}" for i in (1, 2) for k in (1, 2, 3)]
    assert prepare_shipped("sidd", "test", tmp_path / "a") == prepare_shipped("sidd", "test", tmp_path / "b") == expected


def test_dnd_loose_and_in_restormers_archive(tmp_path):
    images = [np.random.default_rng(i).random((20, 24, 3)).astype(np.float32) for i in range(2)]
    boxes = [np.array([[1, 1, 8, 8], [5, 9, 12, 20]])] * 2
    write_dnd(tmp_path / "a" / "downloads" / "dnd", images, boxes)
    write_dnd(tmp_path / "unzipped" / "test" / "DND", images, boxes)
    zip_folder(tmp_path / "unzipped", tmp_path / "b" / "downloads" / "dnd" / "test.zip")
    assert prepare_shipped("dnd", "test", tmp_path / "a") == prepare_shipped("dnd", "test", tmp_path / "b") \
        == ["0001_01", "0001_02", "0002_01", "0002_02"]


def test_rain100l_mprnet_copy_and_the_jorder_release_name_an_image_alike(tmp_path):
    """MPRNet's Rain100L (N.png) and the JORDER release (RCDNet's norain-N.png; PReNet's
    zero-padded rain-NNN.png) are two registry entries for the same test images: stems are N."""
    numbers = [1, 2, 10]
    mprnet = tmp_path / "a" / "downloads" / "rain_test_gdrive" / "test" / "Rain100L"
    rcdnet = tmp_path / "b" / "downloads" / "rain100l_jorder" / "rain100L" / "test"
    prenet = tmp_path / "c" / "downloads" / "rain100l_jorder" / "Rain100L"
    for n in numbers:
        save(mprnet / "input" / f"{n}.png", rgb(8, 8, n))
        save(mprnet / "target" / f"{n}.png", rgb(8, 8, 50 + n))
        save(rcdnet / "rain" / f"norain-{n}.png", rgb(9, 9, n))
        save(rcdnet / "norain" / f"norain-{n}.png", rgb(9, 9, 50 + n))
        save(prenet / "rainy" / f"rain-{n:03d}.png", rgb(9, 9, n))
        save(prenet / f"norain-{n:03d}.png", rgb(9, 9, 50 + n))
    expected = ["1", "10", "2"]
    assert prepare_shipped("rain100l", "test", tmp_path / "a") == expected
    assert prepare_shipped("rain100l_orig", "test", tmp_path / "b") == expected
    assert prepare_shipped("rain100l_orig", "test", tmp_path / "c") == expected


def test_rain100h_mprnet_copy_and_mspfns_crops_name_an_image_alike(tmp_path):
    numbers = [1, 3, 100]
    flat = tmp_path / "a" / "downloads" / "rain_test_gdrive" / "test" / "Rain100H"
    for n in numbers:
        save(flat / "input" / f"{n}.png", rgb(8, 8, n))
        save(flat / "target" / f"{n}.png", rgb(8, 8, 50 + n))
    project = Project(tmp_path / "b")
    mspfn = project.source("mspfn") / "test_data" / "R100H"
    for n in numbers:
        save(mspfn / "inputcrop" / f"{n}.png", rgb(8, 8, n))
        save(mspfn / "cleancrop" / f"{n}.png", rgb(8, 8, 50 + n))
    project.dataset("rain100h", "rain_norain", {"test": {"source": "mspfn", "folder": "R100H"}}, stem="number")
    (out,) = project.prepare("rain100h")
    assert [r["stem"] for r in read_manifest(out / "manifest.csv")] == prepare_shipped("rain100h", "test", tmp_path / "a") \
        == ["1", "100", "3"]


def test_test100_in_the_five_set_folder_and_in_the_issue_23_folder(tmp_path):
    """MPRNet's Drive folder of the five test sets (test/Test100/{input,target}) and the Test100
    folder re-shared in swz30/MPRNet#23 ({input,target} at its root): the same N.png names."""
    five = tmp_path / "a" / "downloads" / "rain_test_gdrive" / "test" / "Test100"
    project = Project(tmp_path / "b")
    alone = project.source("test100_issue23_gdrive")
    for n in (1, 2, 27, 98):
        for root in (five, alone):
            save(root / "input" / f"{n}.png", rgb(8, 8, n))
            save(root / "target" / f"{n}.png", rgb(8, 8, 50 + n))
    project.dataset("test100", "paired_folders", {"test": {"source": "test100_issue23_gdrive"}}, stem="number")
    (out,) = project.prepare("test100")
    assert [r["stem"] for r in read_manifest(out / "manifest.csv")] == prepare_shipped("test100", "test", tmp_path / "a")


def test_test100_pairing_by_stem_and_by_sorted_position(tmp_path):
    """evaluate_PSNR_SSIM.m pairs the j-th result with the j-th target of each folder's sorted
    listing. With the same names on both sides that is the pairing by stem; with one name
    different on each side (e.g. input 27 and target 11 missing) position pairing silently pairs
    17 inputs with the wrong target (11..19, 2, 20..26 in name order: 1, 10, 100, 11, ...), while
    pairing by stem refuses the copy by name."""
    project = Project(tmp_path)
    src = project.source("t100")
    for n in range(1, 101):
        if n != 27:
            save(src / "input" / f"{n}.png", rgb(4, 4, n))
        if n != 11:
            save(src / "target" / f"{n}.png", rgb(4, 4, 200 + n))
    project.dataset("by_position", "paired_folders", {"test": {"source": "t100", "pair_by": "position"}}, stem="number")
    (out,) = project.prepare("by_position")
    wrong = [n for n in range(1, 101) if n != 27
             and not np.array_equal(read_rgb(out / "target" / f"{n}.png"), rgb(4, 4, 200 + n))]
    assert wrong == [2, *range(11, 27)]
    project.dataset("by_stem", "paired_folders", {"test": {"source": "t100"}}, stem="number")
    with pytest.raises(DataError, match=r"only in .*input: 11; only in .*target: 27"):
        project.prepare("by_stem")

    (src / "target" / "27.png").unlink()  # the same 98 names on both sides: the same pairs either way
    (src / "input" / "11.png").unlink()
    (by_position,) = project.prepare("by_position", force=True)
    (by_stem,) = project.prepare("by_stem")
    assert read_manifest(by_position / "manifest.csv") == read_manifest(by_stem / "manifest.csv")
    assert len(read_manifest(by_stem / "manifest.csv")) == 98


def test_the_test2800_duplicate_is_refused_by_name(tmp_path):
    """swz30/MPRNet#23: a copy of the Test2800 input folder holds 926_10(1).jpg besides 926_10.jpg."""
    test = tmp_path / "downloads" / "rain_test_gdrive" / "test" / "Test2800"
    for name in ("926_10", "926_11"):
        save(test / "input" / f"{name}.jpg", rgb(8, 8, 1))
        save(test / "target" / f"{name}.jpg", rgb(8, 8, 2))
    save(test / "input" / "926_10(1).jpg", rgb(8, 8, 1))
    save(test / "target" / "926_10(1).jpg", rgb(8, 8, 2))  # even with a partner it is no Test2800 image
    with pytest.raises(DataError, match=r"926_10\(1\).jpg: stem '926_10\(1\)' is not an? image_k stem"):
        prepare_shipped("test2800", "test", tmp_path)
    assert not (tmp_path / "test2800").exists()


def test_a_stem_a_converter_writes_itself_is_checked_too(tmp_path, monkeypatch):
    """Converters that write files themselves (SIDD blocks, DND) are held to the scheme as well."""
    from mprnet.data import converters

    _sidd_mats(tmp_path / "downloads" / "sidd_benchmark")
    original = converters.write_png

    def misnamed(path, image):
        original(path.with_name(path.name.replace("_", "-")), image)

    monkeypatch.setattr(converters, "write_png", misnamed)
    with warnings.catch_warnings(), pytest.raises(DataError, match=r"6 stem\(s\) not in the block form '0001_01': 0001-01"):
        warnings.simplefilter("ignore")
        prepare_shipped("sidd", "test", tmp_path)
