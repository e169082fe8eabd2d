"""Downloads and manual drops are accepted by content, not by name: whatever archive or folder
holds what the converters need is taken (unpacked safely), and anything else is refused with
what was found and what is missing. Real-shaped copies: the RealBlur archive as the authors'
download_dataset.sh fetches it, Restormer's SIDD and DND archives."""

from __future__ import annotations

import io
import shutil
import tarfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from data_project import Project, prepare_shipped, shipped_registry, write_dnd, zip_folder
from image_files import rgb, save
from mprnet.data.gate import content_gate
from mprnet.data.fetch import ManualDownloadRequired, fetch_source
from mprnet.data.lock import LockFile
from mprnet.data.prepare import prepare_dataset, read_manifest
from mprnet.errors import DataError

REALBLUR_ROOTS = {"J": "RealBlur-J_ECC_IMCORR_centroid_itensity_ref", "R": "RealBlur-R_BM3D_ECC_IMCORR_centroid_itensity_ref"}


def realblur_tree(root: Path, *, letters: str = "JR") -> Path:
    """RealBlur.zip's content: both image folders at the root and the four list files."""
    for letter in letters:
        for split, scenes in (("train", ["scene183"]), ("test", ["scene230"])):
            lines = []
            for scene in scenes:
                for k in (1, 2):
                    gt = f"{REALBLUR_ROOTS[letter]}/{scene}/gt/gt_{k}.png"
                    blur = f"{REALBLUR_ROOTS[letter]}/{scene}/blur/blur_{k}.png"
                    save(root / gt, rgb(8, 8, k))
                    save(root / blur, rgb(8, 8, 10 + k))
                    lines.append(f"{gt} {blur} ")
            (root / f"RealBlur_{letter}_{split}_list.txt").write_text("\n".join(lines))
    return root


def fetch_shipped(source_id: str, tmp_path: Path, **kwargs) -> Path:
    """``mprnet fetch`` of a source of the shipped registry into ``tmp_path/data``, with the
    content check the command uses; the locks live in ``tmp_path``."""
    registry = shipped_registry()
    data = tmp_path / "data"
    return fetch_source(source_id, registry.sources[source_id], downloads=data / "downloads", drop=data / "drop",
                        lock=LockFile(tmp_path / "pinned.yaml"), progress=False,
                        content_check=content_gate(registry, source_id, data), **kwargs)


def drop(tmp_path: Path, source_id: str) -> Path:
    folder = tmp_path / "data" / "drop" / source_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def make_tar_gz(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as handle:
        for path in sorted(folder.rglob("*")):
            handle.add(path, path.relative_to(folder).as_posix(), recursive=False)
    return archive


# --------------------------------------------------------------------------- accepted

@pytest.mark.parametrize("form", ["RealBlur.zip", "RealBlur.tar.gz", "folder", "renamed.zip"])
def test_the_realblur_archive_is_accepted_in_any_form(tmp_path, form):
    tree = realblur_tree(tmp_path / "content")
    target = drop(tmp_path, "realblur_official")
    if form == "folder":
        shutil.copytree(tree, target / "RealBlur")
    elif form.endswith(".tar.gz"):
        make_tar_gz(tree, target / form)
    else:
        zip_folder(tree, target / form)
    folder = fetch_shipped("realblur_official", tmp_path)
    assert folder == tmp_path / "data" / "downloads" / "realblur_official"
    assert prepare_shipped("realblur_j_train", "test", tmp_path / "data") == ["scene230-1", "scene230-2"]


def test_restormers_sidd_archives_are_accepted(tmp_path):
    """Restormer's train.zip unpacks to train/<scene>/..., its test.zip to test/SIDD/*.mat: no
    SIDD_Medium_Srgb/Data folder, no loose .mat file, and both are what the converters need."""
    import scipy.io

    content = tmp_path / "train_content" / "train"
    for scene in ("0001_001_S6_00100_00060_3200_L", "0002_001_S6_00100_00020_3200_N"):
        for shot in ("010", "011"):
            clean = rgb(16, 16, hash((scene, shot)) % 97) // 2
            save(content / scene / f"{scene[:4]}_GT_SRGB_{shot}.PNG", clean)
            save(content / scene / f"{scene[:4]}_NOISY_SRGB_{shot}.PNG", clean + 3)
    zip_folder(tmp_path / "train_content", drop(tmp_path, "sidd_medium_srgb") / "train.zip")
    fetch_shipped("sidd_medium_srgb", tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (split,) = prepare_dataset("sidd_train", shipped_registry(), data_dir=tmp_path / "data", progress=False,
                                   allow_count_mismatch=True, options={"patches": 2, "patch_size": 8})
    assert len(read_manifest(split / "manifest.csv")) == 8

    mats = tmp_path / "test_content" / "test" / "SIDD"
    mats.mkdir(parents=True)
    for name in ("ValidationNoisyBlocksSrgb", "ValidationGtBlocksSrgb"):
        scipy.io.savemat(mats / f"{name}.mat", {name: np.zeros((1, 2, 4, 4, 3), np.uint8)})
    zip_folder(tmp_path / "test_content", drop(tmp_path, "sidd_benchmark") / "test.zip")
    fetch_shipped("sidd_benchmark", tmp_path)


def test_a_dnd_archive_is_accepted(tmp_path):
    """The info.mat of a DND archive is inside it: judged after unpacking, not by loose names."""
    images = [np.zeros((8, 8, 3), np.float32)] * 2
    write_dnd(tmp_path / "content" / "test" / "DND", images, [np.array([[1, 1, 4, 4]])] * 2)
    zip_folder(tmp_path / "content", drop(tmp_path, "dnd") / "test.zip")
    fetch_shipped("dnd", tmp_path)
    assert prepare_shipped("dnd", "test", tmp_path / "data") == ["0001_01", "0002_01"]


# --------------------------------------------------------------------------- refused

def test_a_drop_that_cannot_be_prepared_says_what_was_found_and_what_is_missing(tmp_path):
    """RealBlur-J only: the registry's realblur_r_train reads the same source and finds nothing."""
    zip_folder(realblur_tree(tmp_path / "content", letters="J"), drop(tmp_path, "realblur_official") / "RealBlur.zip")
    with pytest.raises(ManualDownloadRequired) as info:
        fetch_shipped("realblur_official", tmp_path)
    text = info.value.instructions
    assert "What was dropped cannot be prepared" in text
    assert "found RealBlur.zip, RealBlur/ (" in text and "RealBlur/RealBlur_J_test_list.txt" in text
    assert "missing: realblur_r_train/train: no RealBlur list file matching 'RealBlur_R_train_list.txt'" in text
    assert "realblur_r_train/test: no RealBlur list file matching 'RealBlur_R_test_list.txt'" in text
    assert "realblur_j_train" not in text.split("missing:")[1]  # the J half is fine
    # The user's file is back where it was; nothing was kept, unpacked or recorded.
    assert [p.name for p in drop(tmp_path, "realblur_official").iterdir()] == ["RealBlur.zip"]
    assert not (tmp_path / "data" / "downloads" / "realblur_official").exists()
    assert not (tmp_path / "data" / "raw" / "realblur_official").exists()
    assert not (tmp_path / "data" / "downloads" / "sources.lock.yaml").exists()


def test_a_dnd_archive_missing_an_image_is_refused_by_name(tmp_path):
    images = [np.zeros((8, 8, 3), np.float32)] * 3
    write_dnd(tmp_path / "content", images, [np.array([[1, 1, 4, 4]])] * 3)
    (tmp_path / "content" / "images_srgb" / "0002.mat").unlink()
    zip_folder(tmp_path / "content", drop(tmp_path, "dnd") / "dnd.zip")
    with pytest.raises(ManualDownloadRequired) as info:
        fetch_shipped("dnd", tmp_path)
    assert "1 of the 3 images info.mat lists are missing: 0002.mat" in info.value.instructions


def test_a_hostile_archive_is_refused_and_handed_back(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        handle.writestr("../escape.txt", b"x")
    (drop(tmp_path, "dnd") / "dnd.zip").write_bytes(buffer.getvalue())
    with pytest.raises(ManualDownloadRequired) as info:
        fetch_shipped("dnd", tmp_path)
    assert "member '../escape.txt' contains '..'; refused" in info.value.instructions
    assert (drop(tmp_path, "dnd") / "dnd.zip").is_file() and not (tmp_path / "escape.txt").exists()


def test_an_empty_drop_folder_prints_what_to_download(tmp_path):
    with pytest.raises(ManualDownloadRequired) as info:
        fetch_shipped("realblur_official", tmp_path)
    assert "RealBlur.zip" in info.value.instructions and "Nothing is in" in info.value.instructions


def test_a_download_without_the_content_is_refused_and_kept_for_the_next_run(tmp_path):
    """Not only manual drops: an automatic download that lacks what prepare needs is refused too."""
    project = Project(tmp_path)
    project.sources["x"] = {"kind": "gdrive_folder", "url": "https://drive.google.com/drive/folders/x", "title": "x"}
    project.dataset("x", "paired_folders", {"test": {"source": "x", "input": "Test100/input", "target": "Test100/target"}},
                    stem="number")
    registry = project.registry()
    partial = tmp_path / "data" / "downloads" / ".partial" / "x"
    save(partial / "Test100" / "input" / "1.png", rgb(4, 4, 1))  # the target folder was not listed

    import mprnet.data.fetch as fetch_module

    def listed(*args, **kwargs):  # gdown found nothing more to download
        pass

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fetch_module, "gdrive_download", listed)
        with pytest.raises(DataError) as info:
            fetch_source("x", registry.sources["x"], downloads=tmp_path / "data" / "downloads", drop=tmp_path / "drop",
                         lock=LockFile(tmp_path / "pinned.yaml"), progress=False,
                         content_check=content_gate(registry, "x", tmp_path / "data"))
    message = str(info.value)
    assert "cannot be prepared from what was downloaded: found Test100/ (1 file), Test100/input/ (1 file)" in message
    assert "missing: x/test: no target folder matching 'Test100/target'" in message
    assert (partial / "Test100" / "input" / "1.png").is_file()  # kept: the next run resumes
