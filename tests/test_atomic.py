"""Atomic writes of files and folders: all or nothing at the final path, with ordinary permissions."""

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mprnet.atomic import _UMASK, atomic_path, atomic_write_text, staged_folder


def test_written_file_has_umask_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "scores.csv", "image,psnr,ssim\n")
    finally:
        os.umask(umask)
    mode = stat.S_IMODE((tmp_path / "scores.csv").stat().st_mode)
    assert mode == 0o666 & ~umask


def test_failure_leaves_nothing_behind(tmp_path):
    target = tmp_path / "model.pt"
    target.write_text("previous")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


# --------------------------------------------------------------------------- staged_folder


def test_staged_folder_appears_complete_by_one_rename(tmp_path):
    final = tmp_path / "out" / "restored"
    with staged_folder(final) as staging:
        assert staging.parent == final.parent and staging.name.startswith(".restored.")
        assert staging.name.endswith(".partial") and not final.exists()
        (staging / "a.png").write_bytes(b"a")
        (staging / "float").mkdir()
        (staging / "float" / "a.npy").write_bytes(b"f")
        inode = staging.stat().st_ino
    assert final.stat().st_ino == inode  # renamed, not copied
    assert sorted(p.relative_to(final).as_posix() for p in final.rglob("*")) == ["a.png", "float", "float/a.npy"]
    assert sorted(p.name for p in final.parent.iterdir()) == ["restored"]
    assert stat.S_IMODE(final.stat().st_mode) == 0o777 & ~_UMASK  # not mkdtemp's 0700


def test_staged_folder_into_a_folder_with_files_keeps_them(tmp_path):
    final = tmp_path / "restored"
    (final / "float").mkdir(parents=True)
    (final / "notes.txt").write_text("mine")
    (final / "a.png").write_text("old")
    with staged_folder(final) as staging:
        (staging / "a.png").write_text("new")
        (staging / "float").mkdir()
        (staging / "float" / "a.npy").write_text("f")
    assert (final / "notes.txt").read_text() == "mine" and (final / "a.png").read_text() == "new"
    assert (final / "float" / "a.npy").read_text() == "f"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["restored"]


def test_staged_folder_failure_leaves_nothing(tmp_path):
    final = tmp_path / "restored"
    with pytest.raises(RuntimeError):
        with staged_folder(final) as staging:
            (staging / "a.png").write_bytes(b"half")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):
        with staged_folder(tmp_path / "file") as staging:  # a file where the folder should go
            (staging / "a.png").write_bytes(b"a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


STAGE_AND_SIGNAL = """
import os, signal, sys
from mprnet.atomic import staged_folder
with staged_folder(sys.argv[1]) as staging:
    (staging / "a.png").write_bytes(b"a")
    os.kill(os.getpid(), signal.SIGTERM)
    (staging / "b.png").write_bytes(b"b")
"""


def test_staged_folder_sigterm_cleans_up_and_exits_143(tmp_path):
    final = tmp_path / "out" / "restored"
    proc = subprocess.run([sys.executable, "-c", STAGE_AND_SIGNAL, str(final)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_staged_folder_restores_the_previous_sigterm_handler(tmp_path):
    def mine(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        with staged_folder(tmp_path / "x"):
            assert signal.getsignal(signal.SIGTERM) is not mine
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)
