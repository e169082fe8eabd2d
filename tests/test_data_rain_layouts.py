"""The `rain_norain` converter and the drop helper: JORDER-style numbered rain/clean pairs in
every layout they circulate in, and every kind of bad input refused before anything is written.

Tiny synthetic images only; the real Rain100L files are checked by tests/test_realdata.py.
"""

from __future__ import annotations

import hashlib
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from image_files import rgb, save
from mprnet.data import pairs as pairs_module
from mprnet.data.drop import stage_drop
from mprnet.data.fetch import fetch_source
from mprnet.data.lock import FileRecord, LockFile
from mprnet.data.prepare import prepare_dataset, read_manifest
from mprnet.data.registry import load_registry
from mprnet.errors import ConfigError, DataError
from mprnet.images import read_rgb


def save_png16(path: Path, image: np.ndarray) -> Path:
    """A 16-bit RGB PNG written from the specification (Pillow cannot write one)."""
    height, width, _ = image.shape
    rows = b"".join(b"\x00" + image[r].astype(">u2").tobytes() for r in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path


class Project:
    """A temporary project: a registry with one rain_norain dataset and a data folder."""

    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        self.src = self.data / "downloads" / "src"
        self.src.mkdir(parents=True)
        self.registry_path = root / "datasets.yaml"

    def write_registry(self, splits: dict, *, kind: str = "http") -> None:
        source = {"kind": kind, "url": "http://127.0.0.1/src", "title": "src"}
        if kind == "manual":
            source["download"] = ["the rain/norain folders"]
        raw = {"schema_version": 1, "sources": {"src": source},
               "datasets": {"rain": {"title": "rain", "task": "deraining", "role": "test", "protocol": "y_channel",
                                     "licence": "test", "layout": {"converter": "rain_norain", "original": "-",
                                                                   "stem": "number", "splits": splits}}}}
        self.registry_path.write_text(yaml.safe_dump(raw, sort_keys=False))

    def prepare(self, splits: dict | None = None, **kwargs):
        self.write_registry(splits or {"test": {"source": "src"}})
        return prepare_dataset("rain", load_registry(self.registry_path), data_dir=self.data, progress=False,
                               **kwargs)

    def nothing_written(self) -> bool:
        return not (self.data / "rain").exists()


@pytest.fixture
def project(tmp_path) -> Project:
    return Project(tmp_path)


def check(split_dir: Path, expected: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """The split holds exactly ``expected`` (stem -> (rainy, clean)), rainy as input."""
    rows = read_manifest(split_dir / "manifest.csv")
    assert [r["stem"] for r in rows] == sorted(expected)
    for row in rows:
        rainy, clean = expected[row["stem"]]
        assert np.array_equal(read_rgb(split_dir / "input" / f"{row['stem']}.png"), rainy)
        assert np.array_equal(read_rgb(split_dir / "target" / f"{row['stem']}.png"), clean)
        for side in ("input", "target"):
            digest = hashlib.sha256((split_dir / side / f"{row['stem']}.png").read_bytes()).hexdigest()
            assert digest == row[f"{side}_sha256"]


def scenes(numbers, h=12, w=16) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    return {n: (rgb(h, w, 100 + n), rgb(h, w, n)) for n in numbers}


# --------------------------------------------------------------------------- layouts

def test_rcdnet_layout_train_and_test_in_one_source(project):
    """rain/norain-N.png + norain/norain-N.png (the rainy files are named norain too)."""
    data = {"train": scenes(range(1, 13)), "test": scenes(range(1, 4), h=10)}
    for split, pairs in data.items():
        for n, (rainy, clean) in pairs.items():
            save(project.src / "rain100L" / split / "rain" / f"norain-{n}.png", rainy)
            save(project.src / "rain100L" / split / "norain" / f"norain-{n}.png", clean)
    splits = {"train": {"source": "src", "folder": ["train", "RainTrainL"], "count": 12},
              "test": {"source": "src", "folder": ["test", "Rain100L"], "count": 3}}
    train_dir, test_dir = project.prepare(splits)
    assert test_dir == project.data / "rain" / "test"
    # Stems are N, as MPRNet's copy names the same images (N.png): one name per image, whatever the copy.
    check(train_dir, {str(n): p for n, p in data["train"].items()})
    check(test_dir, {str(n): p for n, p in data["test"].items()})
    # Byte for byte: an 8-bit RGB PNG is copied as it is.
    assert (test_dir / "target" / "2.png").read_bytes() == \
        (project.src / "rain100L" / "test" / "norain" / "norain-2.png").read_bytes()
    assert not [p for p in (project.data / "rain").rglob(".*")]


def test_rcdnet_small_subfolder(project):
    """RCDNet's own README nests the folders one level deeper: test/small/{rain,norain}."""
    data = scenes([1, 2])
    for n, (rainy, clean) in data.items():
        save(project.src / "test" / "small" / "rain" / f"norain-{n}.png", rainy)
        save(project.src / "test" / "small" / "norain" / f"norain-{n}.png", clean)
    (out,) = project.prepare({"test": {"source": "src", "count": 2}})
    check(out, {str(n): p for n, p in data.items()})


def test_prenet_layouts_with_zero_padded_numbers(project):
    """PReNet: Rain100L/rainy/rain-NNN.png + Rain100L/norain-NNN.png; RainTrainL side by side."""
    test, train = scenes([1, 2, 10]), scenes([1, 2, 3])
    for n, (rainy, clean) in test.items():
        save(project.src / "test" / "Rain100L" / "rainy" / f"rain-{n:03d}.png", rainy)
        save(project.src / "test" / "Rain100L" / f"norain-{n:03d}.png", clean)
    for n, (rainy, clean) in train.items():
        save(project.src / "train" / "RainTrainL" / f"rain-{n}.png", rainy)
        save(project.src / "train" / "RainTrainL" / f"norain-{n}.png", clean)
    (project.src / "train" / "RainTrainL" / "notes.txt").write_text("not an image: ignored\n")
    splits = {"train": {"source": "src", "folder": ["train", "RainTrainL"], "count": 3},
              "test": {"source": "src", "folder": ["test", "Rain100L"], "count": 3}}
    train_dir, test_dir = project.prepare(splits)
    check(train_dir, {str(n): p for n, p in train.items()})
    check(test_dir, {str(n): p for n, p in test.items()})
    provenance = (test_dir / "provenance.json").read_text()
    assert "rainy/rain-N.png + norain-N.png" in provenance


def test_mspfn_crops_of_rain100h(project):
    """MSPFN's test data: R100H/inputcrop/N.png + R100H/cleancrop/N.png (gaps are theirs)."""
    data = scenes([1, 3, 100])
    for n, (rainy, clean) in data.items():
        save(project.src / "test_data" / "R100H" / "inputcrop" / f"{n}.png", rainy)
        save(project.src / "test_data" / "R100H" / "cleancrop" / f"{n}.png", clean)
    (out,) = project.prepare({"test": {"source": "src", "folder": "R100H", "count": 3}})
    check(out, {str(n): p for n, p in data.items()})


def test_a_source_holding_one_split_flat(project):
    """No folder matches the pattern: the source folder itself is read (RainTrainL dropped alone)."""
    data = scenes([1, 2])
    for n, (rainy, clean) in data.items():
        save(project.src / f"rain-{n}.png", rainy)
        save(project.src / f"norain-{n}.png", clean)
    (out,) = project.prepare({"train": {"source": "src"}})
    check(out, {str(n): p for n, p in data.items()})


def test_shipped_registry_entries():
    root = Path(__file__).resolve().parents[1]
    registry = load_registry(root / "config" / "datasets.yaml")
    test = registry.datasets["rain100l_orig"]["layout"]["splits"]["test"]
    train = registry.datasets["raintrainl"]["layout"]["splits"]["train"]
    assert (test["count"], train["count"]) == (100, 200)
    assert test["source"] == train["source"] == "rain100l_jorder"
    source = registry.sources["rain100l_jorder"]
    assert source["kind"] == "manual" and source["download"]
    # The MPRNet-cropped copy stays a separate entry.
    assert registry.datasets["rain100l"]["layout"]["splits"]["test"]["source"] == "rain_test_gdrive"
    locked = LockFile(registry.lock_path).files("rain100l_jorder")
    assert len(locked) == 600
    assert sum(rec.size for rec in locked.values()) == 161_607_230


def test_folder_key_is_only_for_rain_norain(tmp_path):
    project = Project(tmp_path)
    project.write_registry({"test": {"source": "src", "folder": "x"}})
    raw = yaml.safe_load(project.registry_path.read_text())
    raw["datasets"]["rain"]["layout"]["converter"] = "paired_folders"
    project.registry_path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"datasets.rain.layout.splits.test: key\(s\) folder mean nothing"):
        load_registry(project.registry_path)


# --------------------------------------------------------------------------- bad input

def _rcdnet(project: Project, numbers, *, rainy_numbers=None, clean_numbers=None) -> None:
    for n in rainy_numbers if rainy_numbers is not None else numbers:
        save(project.src / "test" / "rain" / f"norain-{n}.png", rgb(8, 8, 100 + n))
    for n in clean_numbers if clean_numbers is not None else numbers:
        save(project.src / "test" / "norain" / f"norain-{n}.png", rgb(8, 8, n))


def test_missing_and_extra_numbers_name_the_files(project):
    _rcdnet(project, None, rainy_numbers=[1, 2, 3, 4], clean_numbers=[1, 3, 4, 5])
    with pytest.raises(DataError) as info:
        project.prepare({"test": {"source": "src", "count": 4}})
    message = str(info.value)
    assert "N=2: rainy " in message and str(project.src / "test" / "rain" / "norain-2.png") + " has no clean image" in message
    assert "N=5: clean " in message and str(project.src / "test" / "norain" / "norain-5.png") + " has no rainy image" in message
    assert project.nothing_written()


def test_duplicated_number(project):
    _rcdnet(project, [1, 2])
    save(project.src / "test" / "rain" / "norain-01.png", rgb(8, 8, 7))
    with pytest.raises(DataError, match=r"norain-1.png: N=1 twice, also .*norain-01.png|norain-01.png: N=1 twice"):
        project.prepare()
    assert project.nothing_written()


def test_a_pair_missing_on_both_sides_is_named_against_the_count(project):
    _rcdnet(project, [1, 2, 4, 5, 7])
    with pytest.raises(DataError, match=r"5 pairs, but .* expects 6 .*N missing from 1..6: 3, 6; N beyond 6: 7"):
        project.prepare({"test": {"source": "src", "count": 6}})
    assert project.nothing_written()
    # Accepted on purpose: written, with the reason in the provenance.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (out,) = project.prepare({"test": {"source": "src", "count": 6}}, allow_count_mismatch=True)
    assert [r["stem"] for r in read_manifest(out / "manifest.csv")] == ["1", "2", "4", "5", "7"]
    assert "N missing from 1..6: 3, 6" in (out / "provenance.json").read_text()


def test_a_file_that_does_not_fit_the_layout(project):
    _rcdnet(project, [1, 2])
    save(project.src / "test" / "rain" / "norain-2 copy.png", rgb(8, 8, 9))
    with pytest.raises(DataError, match=r"rain/norain-2 copy.png: not a rainy image of this layout"):
        project.prepare()
    assert project.nothing_written()


def test_size_mismatch_names_both_files(project):
    _rcdnet(project, [1, 2, 3])
    save(project.src / "test" / "norain" / "norain-2.png", rgb(8, 9, 2))
    with pytest.raises(DataError) as info:
        project.prepare()
    message = str(info.value)
    assert str(project.src / "test" / "rain" / "norain-2.png") in message
    assert str(project.src / "test" / "norain" / "norain-2.png") in message
    assert "8x8" in message and "8x9" in message
    assert project.nothing_written()


def test_a_16_bit_file_is_refused_by_name(project):
    _rcdnet(project, [1, 2, 3])
    bad = save_png16(project.src / "test" / "norain" / "norain-3.png",
                     np.random.default_rng(0).integers(0, 65536, (8, 8, 3)).astype(np.uint16))
    with pytest.raises(DataError, match=rf"{bad}: 16-bit"):
        project.prepare()
    assert project.nothing_written()


def test_a_folder_in_another_layout(project):
    for k in range(2):
        save(project.src / "test" / "input" / f"{k}.png", rgb(8, 8, k))
        save(project.src / "test" / "target" / f"{k}.png", rgb(8, 8, k))
    with pytest.raises(DataError) as info:
        project.prepare()
    message = str(info.value)
    assert "no rainy/clean pairs in a known layout" in message
    assert str(project.src / "test") + " holds input/, target/" in message
    assert "rain/<x>-N.png + norain/<x>-N.png" in message and "inputcrop/N.png + cleancrop/N.png" in message
    assert project.nothing_written()


def test_two_layouts_in_one_folder(project):
    _rcdnet(project, [1])
    save(project.src / "test" / "rain-1.png", rgb(8, 8, 1))
    save(project.src / "test" / "norain-1.png", rgb(8, 8, 1))
    with pytest.raises(DataError, match=r"test holds several layouts at once \(rain_norain_folders, side_by_side\)"):
        project.prepare()
    assert project.nothing_written()


def test_two_candidate_folders(project):
    for folder in ("a/test", "b/test"):
        for n in (1, 2):
            save(project.src / folder / f"rain-{n}.png", rgb(8, 8, n))
            save(project.src / folder / f"norain-{n}.png", rgb(8, 8, n))
    with pytest.raises(DataError, match=r"2 folders under .* hold rainy/clean pairs for test"):
        project.prepare()
    assert project.nothing_written()


def test_a_failure_half_way_leaves_the_previous_split_untouched(project, monkeypatch):
    _rcdnet(project, [1, 2, 3])
    (out,) = project.prepare()
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    save(project.src / "test" / "rain" / "norain-1.png", rgb(8, 8, 55))  # the source changed
    calls = []
    original = pairs_module._place_image

    def failing(src, dst):
        calls.append(src)
        if len(calls) == 3:
            raise OSError("disk full")
        original(src, dst)

    monkeypatch.setattr(pairs_module, "_place_image", failing)
    with pytest.raises(OSError, match="disk full"):
        project.prepare(force=True)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in (project.data / "rain").iterdir()] == ["test"]  # no temporary folder left


# --------------------------------------------------------------------------- drop helper

def _manual_project(tmp_path: Path) -> tuple[Project, Path]:
    """A manual source with a lock that records copy/test/{rain,norain}/norain-{1,2}.png."""
    project = Project(tmp_path)
    project.src.rmdir()
    project.write_registry({"test": {"source": "src", "count": 2}}, kind="manual")
    copy = tmp_path / "share" / "copy"
    _files = {}
    for n in (1, 2):
        for side, seed in (("rain", 100 + n), ("norain", n)):
            path = save(copy / "test" / side / f"norain-{n}.png", rgb(8, 8, seed))
            _files[f"copy/test/{side}/norain-{n}.png"] = FileRecord(path.stat().st_size,
                                                                    hashlib.sha256(path.read_bytes()).hexdigest())
    (copy / "README.md").write_text("not part of the source\n")
    lock = LockFile(tmp_path / "datasets.lock.yaml")
    lock.check("src", _files, where="test")
    lock.save()
    return project, copy


def _snapshot(folder: Path) -> dict:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("given", ["copy", "parent"])
def test_stage_drop_links_the_locked_files_and_fetch_verifies_them(tmp_path, given):
    project, copy = _manual_project(tmp_path)
    before = _snapshot(copy.parent)
    registry = load_registry(project.registry_path)
    drop = stage_drop(copy if given == "copy" else copy.parent, "rain", registry, data_dir=project.data)
    assert drop == project.data / "drop" / "src"
    linked = sorted(p.relative_to(drop).as_posix() for p in drop.rglob("*") if p.is_file())
    assert linked == sorted(LockFile(registry.lock_path).files("src"))  # README.md stays out
    assert os.path.samefile(drop / "copy/test/rain/norain-1.png", copy / "test/rain/norain-1.png")
    fetch_source("src", registry.sources["src"], downloads=project.data / "downloads", drop=project.data / "drop",
                 lock=LockFile(registry.lock_path), progress=False)
    (out,) = prepare_dataset("rain", registry, data_dir=project.data, progress=False)
    assert [r["stem"] for r in read_manifest(out / "manifest.csv")] == ["1", "2"]
    assert _snapshot(copy.parent) == before  # the copy itself is never modified
    assert stage_drop(copy, "rain", registry, data_dir=project.data) is None  # fetched already


def test_stage_drop_refuses_another_copy_before_linking(tmp_path):
    project, copy = _manual_project(tmp_path)
    (copy / "test" / "rain" / "norain-2.png").unlink()
    save(copy / "test" / "norain" / "norain-1.png", rgb(9, 8, 1))  # another size
    before = _snapshot(copy.parent)
    with pytest.raises(DataError) as info:
        stage_drop(copy, "rain", load_registry(project.registry_path), data_dir=project.data)
    message = str(info.value)
    assert "read as drop/src/copy/: 1 missing, e.g. test/rain/norain-2.png; 1 of another size, e.g. " \
           "test/norain/norain-1.png" in message
    assert "--update-lock" in message
    assert not (project.data / "drop").exists()
    assert _snapshot(copy.parent) == before


def test_stage_drop_only_for_manual_sources(tmp_path):
    project = Project(tmp_path)
    project.write_registry({"test": {"source": "src"}})
    with pytest.raises(DataError, match="is http, not manual"):
        stage_drop(tmp_path, "rain", load_registry(project.registry_path), data_dir=project.data)
    with pytest.raises(ConfigError, match="no dataset 'nope'"):
        stage_drop(tmp_path, "nope", load_registry(project.registry_path), data_dir=project.data)


# --------------------------------------------------------------------------- numeric stems downstream

def test_zero_padded_stems_stay_text_in_score_csvs_and_figures(tmp_path):
    """Stems like 001 are names, not numbers: the study's CSV readers and the comparison grid keep them."""
    import pandas as pd

    from mprnet.csv_files import read_csv_checked
    from mprnet.report.jobs import visual_grid

    stems = ["001", "002", "010"]
    target = rgb(16, 16, 0)
    for stem, k in zip(stems, range(3)):
        save(tmp_path / "target" / f"{stem}.png", target)
        save(tmp_path / "input" / f"{stem}.png", np.clip(target.astype(int) + 40 + k, 0, 255).astype(np.uint8))
        save(tmp_path / "full" / f"{stem}.png", np.clip(target.astype(int) + 4 + k, 0, 255).astype(np.uint8))
    for name, base in (("input", 20.0), ("full", 35.0)):
        pd.DataFrame({"image": stems, "psnr": [base - k for k in range(3)], "ssim": 0.5}).to_csv(
            tmp_path / f"{name}.csv", index=False)
    assert list(read_csv_checked(tmp_path / "full.csv", ("image",))["image"]) == stems
    visual_grid(tmp_path / "input", tmp_path / "target", [("full", tmp_path / "full", tmp_path / "full.csv")],
                tmp_path / "fig" / "visual", input_scores=tmp_path / "input.csv", n_images=2)
    assert (tmp_path / "fig" / "visual.png").is_file()


def test_real_study_config_uses_these_datasets():
    """config/rain100l.yaml: trained on raintrainl, scored on rain100l_orig with the paper's ruler."""
    from mprnet.study.config import load_study

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config" / "rain100l.yaml").read_text())
    study = load_study(config, root / "workflow" / "schemas" / "config.schema.yaml", root)
    assert study.name == "rain100l" and study.data.source == "registry"
    assert {(ts.name, ts.split, ts.protocol) for ts in study.test_sets["deraining"].values()} == \
        {("rain100l_orig", "test", "y_channel")}
    (run,) = [r for r in study.runs if r.group == "main"]
    assert run.config["data"]["train"] == "data/raintrainl/train" and run.config["task"] == "deraining"
