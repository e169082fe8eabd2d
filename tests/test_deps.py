"""Dependency floors: pyproject.toml's are the versions the code works with, an installed library
below its floor is named with the fix before it fails, and a library's failure becomes one line
naming the data source and what to do."""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

import pytest

from mprnet import deps
from mprnet.data.fetch import fetch_source
from mprnet.data.lock import LockFile
from mprnet.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
GDRIVE = "https://drive.google.com/drive/folders/1PDWggNh8ylevFmrjo-JEvlmqsDlWWvZs?usp=sharing"


def pyproject_floors() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {m.group(1).lower(): m.group(2) for r in project["dependencies"]
            if (m := re.match(r"([A-Za-z0-9_.-]+)>=([0-9.]+)$", r))}


def test_every_dependency_has_a_floor_and_the_known_ones_are_high_enough():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = pyproject_floors()
    assert len(floors) == len(project["dependencies"]), "every dependency is written name>=version"
    # Facts the code depends on (pyproject.toml says why, next to each floor):
    minimum = {
        "gdown": (6, 3),            # 5.x: 50 files per Drive folder; before 6.3: no `retries` argument
        "torch": (2, 3),            # torch.amp.GradScaler(device); numpy 2
        "opencv-python-headless": (5, 0),  # the RealBlur protocol's ECC numbers the tests pin
        "numpy": (2, 0),            # opencv 5 needs it
        "pillow": (13, 0),          # the demo's resampling (byte-identical demo data)
    }
    for dist, least in minimum.items():
        assert deps.release(floors[dist])[:2] >= least, (dist, floors[dist])


def test_the_gdown_arguments_the_code_passes_exist_in_the_installed_gdown():
    import gdown

    for function in (gdown.download, gdown.download_folder):
        inspect.signature(function).bind(url=GDRIVE, output="out", quiet=True, resume=True, retries=3)


def test_release_compares_numbers_not_text():
    assert deps.release("2.13.0+cpu") == (2, 13, 0)
    assert deps.release("6.3") == (6, 3, 0) < deps.release("6.10.1")
    assert deps.release("1.26.0rc1") == (1, 26, 0)


def _installed(monkeypatch, requires: list[str], versions: dict[str, str]) -> None:
    monkeypatch.setattr(deps.metadata, "requires", lambda name: requires if name == deps.PACKAGE else None)

    def version(dist):
        if dist not in versions:
            raise deps.metadata.PackageNotFoundError(dist)
        return versions[dist]

    monkeypatch.setattr(deps.metadata, "version", version)


def test_require_names_the_version_the_floor_and_the_fix(monkeypatch):
    _installed(monkeypatch, ["gdown>=6.3", "numpy>=2.0", 'pytest>=8; extra == "dev"'],
               {"gdown": "5.2.0", "numpy": "2.4.6"})
    with pytest.raises(deps.DependencyError) as info:
        deps.require("gdown")
    assert str(info.value) == ("gdown 5.2.0 is installed, but mprnet-study needs gdown>=6.3: pip install -c "
                               "constraints.txt -e . (from the repository root), or `make venv`, or pip install 'gdown>=6.3'")
    deps.require("numpy")  # met
    deps.require("pytest")  # an extra: not checked
    assert [f.dist for f in deps.outdated()] == ["gdown"]


def test_an_old_gdown_is_refused_before_anything_is_downloaded(monkeypatch, tmp_path):
    import gdown

    _installed(monkeypatch, ["gdown>=6.3"], {"gdown": "5.2.0"})
    monkeypatch.setattr(gdown, "download_folder", lambda **kwargs: pytest.fail("gdown must not be called"))
    source = {"kind": "gdrive_folder", "url": GDRIVE, "title": "t"}
    with pytest.raises(deps.DependencyError, match=r"gdown 5.2.0 is installed, but mprnet-study needs gdown>=6.3"):
        fetch_source("rain_test_gdrive", source, downloads=tmp_path / "d", drop=tmp_path / "drop",
                     lock=LockFile(tmp_path / "lock.yaml"), progress=False)


def test_gdown_5s_folder_limit_is_explained_with_the_source_and_the_fix(monkeypatch, tmp_path):
    """gdown 5.x raises FolderContentsMaximumLimitError on a folder of more than 50 files."""
    import gdown

    class FolderContentsMaximumLimitError(Exception):
        pass

    def refuse(**kwargs):
        raise FolderContentsMaximumLimitError(
            f"The gdrive folder with url: {kwargs['url']} has more than 50 files, gdrive can't download more than this limit.")

    monkeypatch.setattr(deps, "require", lambda dist: None)  # as if an old gdown passed the check
    monkeypatch.setattr(gdown, "download_folder", refuse)
    source = {"kind": "gdrive_folder", "url": GDRIVE, "title": "t"}
    with pytest.raises(DataError) as info:
        fetch_source("rain_test_gdrive", source, downloads=tmp_path / "d", drop=tmp_path / "drop",
                     lock=LockFile(tmp_path / "lock.yaml"), progress=False)
    message = str(info.value)
    assert message.startswith(f"source 'rain_test_gdrive' ({GDRIVE}): gdown ")
    assert "stops at 50 files per Google Drive folder" in message and "pip install 'gdown>=6.3'" in message
    assert "\n" not in message


def test_any_other_failure_inside_gdown_names_the_source_and_the_fix(monkeypatch, tmp_path):
    import gdown

    def broken(**kwargs):
        raise KeyError("_DRIVE_ivd")  # e.g. Drive changed its page and an old gdown cannot parse it

    monkeypatch.setattr(gdown, "download", broken)
    source = {"kind": "gdrive_file", "url": "https://drive.google.com/file/d/abc/view", "title": "w",
              "filename": "model_deblurring.pth"}
    with pytest.raises(DataError, match=r"source 'w' \(https://drive.google.com/file/d/abc/view\): gdown [0-9.]+ "
                                        r"failed inside the library \(KeyError: '_DRIVE_ivd'\)\. Install the versions"):
        fetch_source("w", source, downloads=tmp_path / "d", drop=tmp_path / "drop",
                     lock=LockFile(tmp_path / "lock.yaml"), progress=False)


def test_a_command_failing_inside_an_outdated_library_prints_one_line(monkeypatch, capsys):
    from mprnet.cli import main
    from mprnet.data import registry as registry_module

    def broken(path):
        raise TypeError("download_folder() got an unexpected keyword argument 'retries'")

    monkeypatch.setattr(registry_module, "load_registry", broken)
    monkeypatch.setattr(deps, "outdated", lambda: [deps.Floor("gdown", "6.3", "6.0.0")])
    assert main(["datasets"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mprnet datasets: error: TypeError: download_folder() got an unexpected keyword argument")
    assert "gdown 6.0.0 is installed, but mprnet-study needs gdown>=6.3" in err and err.count("\n") == 1
    # With every library at its floor the same failure is a bug: its traceback is kept.
    monkeypatch.setattr(deps, "outdated", lambda: [])
    with pytest.raises(TypeError):
        main(["datasets"])
