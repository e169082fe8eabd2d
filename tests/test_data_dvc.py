"""DVC round trip: `dvc add data/<name>`, push to a local remote, delete, pull, same bytes.

Runs the real `dvc` command in a throw-away git repository, configured like this project
(a default local remote, data/*.dvc files tracked by git while data/ itself is not).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mprnet.data.demo import make_demo

ROOT = Path(__file__).resolve().parents[1]
# Every folder directly under data/ is ignored, files (data/<name>.dvc) are not. Not "/data/":
# dvc refuses to write a git-ignored .dvc file; not "/data/*" + "!/data/*.dvc": DVC's own
# gitignore matcher (scmrepo) then treats data/ as ignored and never finds the .dvc files.
PROJECT_DATA_IGNORE = "/data/?*/\n"


def run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_TERMINAL_PROMPT": "0"}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def dvc(*args: str, cwd: Path) -> str:
    return run([sys.executable, "-m", "dvc", *args], cwd)


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_push_then_pull_on_a_clean_checkout_restores_the_data(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    run(["git", "init", "-q"], repo)
    (repo / ".gitignore").write_text(PROJECT_DATA_IGNORE)
    dvc("init", "-q", cwd=repo)
    dvc("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=repo)

    make_demo(repo / "data", seed=0)
    before = digests(repo / "data" / "demo_rain")
    dvc("add", "-q", "data/demo_rain", cwd=repo)
    pointer = repo / "data" / "demo_rain.dvc"
    assert pointer.is_file()
    # git sees the pointer file but not the data.
    status = run(["git", "status", "--porcelain", "--untracked-files=all"], repo)
    assert "data/demo_rain.dvc" in status and "data/demo_rain/" not in status
    dvc("push", "-q", cwd=repo)

    # A clean checkout: the data and the local cache are gone, only the pointer is left.
    shutil.rmtree(repo / "data" / "demo_rain")
    shutil.rmtree(repo / ".dvc" / "cache")
    dvc("pull", "-q", cwd=repo)
    assert digests(repo / "data" / "demo_rain") == before


def test_project_is_a_dvc_project_with_a_default_local_remote():
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    assert config["core"]["remote"] == "local"
    # DVC writes the section name with quotes; the url is relative to .dvc/, i.e. ../mprnet-dvc-store
    assert config["'remote \"local\"'"]["url"] == "../../mprnet-dvc-store"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_project_gitignore_lets_git_track_dvc_pointer_files():
    # `dvc add data/<name>` refuses to write a pointer file that git ignores.
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run(["git", "check-ignore", "-q", "data/gopro.dvc"], cwd=ROOT)
    assert result.returncode == 1, "data/*.dvc is git-ignored: `dvc add data/<name>` would fail"
    result = subprocess.run(["git", "check-ignore", "-q", "data/gopro/test/input/x.png"], cwd=ROOT)
    assert result.returncode == 0, "prepared data must stay out of git"
    # DVC finds .dvc files through scmrepo's gitignore matcher, which must not skip data/ itself.
    from scmrepo.git import Git

    scm = Git(str(ROOT))
    assert not scm.is_ignored(str(ROOT / "data") + os.sep), "DVC would never look inside data/"
