"""Atomic writes: all or nothing at the final path, with the permissions of an ordinary file."""

import os
import stat

import pytest

from mprnet.atomic import atomic_path, atomic_write_text


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
