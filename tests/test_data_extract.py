"""safe_extract: ordinary archives unpack; hostile ones are refused and write nothing anywhere."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from mprnet.data import UnsafeArchiveError, safe_extract
from mprnet.errors import DataError


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as handle:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                handle.addfile(info, io.BytesIO(data))
            else:
                handle.addfile(info)
    return path


def file_info(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def link_info(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def special_info(name: str, kind) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info


def make_zip(path: Path, members: dict[str, bytes], modes: dict[str, int] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as handle:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if modes and name in modes:
                info.external_attr = modes[name] << 16
            handle.writestr(info, data)
    return path


@pytest.fixture
def box(tmp_path):
    """A sandbox: archives in tmp/in, destination tmp/box/dest; anything else under tmp/box is a leak."""
    (tmp_path / "in").mkdir()
    (tmp_path / "box").mkdir()
    return tmp_path


def assert_nothing_written(box: Path) -> None:
    assert list((box / "box").iterdir()) == [], "files written despite the refusal"
    assert sorted(p.name for p in box.iterdir()) == ["box", "in"]


def test_zip_and_tar_unpack_with_internal_links(box):
    z = make_zip(box / "in" / "a.zip", {"set/input/1.png": b"one", "set/target/1.png": b"two"})
    out = safe_extract(z, box / "box" / "zip")
    assert (out / "set" / "input" / "1.png").read_bytes() == b"one"

    t = make_tar(box / "in" / "a.tar.gz", [
        (file_info("set/input/1.png"), b"one"),
        (link_info("set/alias.png", "input/1.png"), None),
        (link_info("set/hard.png", "set/input/1.png", tarfile.LNKTYPE), None),
    ], mode="w:gz")
    out = safe_extract(t, box / "box" / "tar")
    assert (out / "set" / "alias.png").read_bytes() == b"one"
    assert (out / "set" / "hard.png").read_bytes() == b"one"
    assert [p.name for p in (box / "box").iterdir() if p.name.startswith(".")] == []  # no temp folder left


@pytest.mark.parametrize("name", ["../evil.txt", "ok/../../evil.txt", "..\\evil.txt"])
def test_zip_slip_is_refused(box, name):
    z = make_zip(box / "in" / "a.zip", {"fine.txt": b"x", name: b"evil"})
    with pytest.raises(UnsafeArchiveError, match=r"contains '\.\.'") as info:
        safe_extract(z, box / "box" / "dest")
    assert repr(name) in str(info.value) or name in str(info.value)
    assert_nothing_written(box)


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_absolute_paths_are_refused(box, kind):
    evil = str(box / "box" / "evil.txt")
    if kind == "zip":
        archive = make_zip(box / "in" / "a.zip", {evil: b"evil"})
    else:
        archive = make_tar(box / "in" / "a.tar", [(file_info(evil), b"evil")])
    with pytest.raises(UnsafeArchiveError, match="absolute path"):
        safe_extract(archive, box / "box" / "dest")
    assert_nothing_written(box)


def test_symlink_escape_is_refused(box):
    t = make_tar(box / "in" / "a.tar", [
        (link_info("data/link", "../../../box"), None),
        (file_info("data/link/evil.txt"), b"evil"),
    ])
    with pytest.raises(UnsafeArchiveError, match="'data/link' is a symlink"):
        safe_extract(t, box / "box" / "dest")
    assert_nothing_written(box)


def test_absolute_symlink_is_refused(box):
    t = make_tar(box / "in" / "a.tar", [(link_info("etc", str(box / "box")), None)])
    with pytest.raises(UnsafeArchiveError, match="symlink to the absolute path"):
        safe_extract(t, box / "box" / "dest")
    assert_nothing_written(box)


def test_symlink_chain_escape_is_refused(box):
    # Each link looks harmless on its own ("a" -> ".", "a/b" -> ".."), but together "a/b"
    # points above the destination; only the real-path check catches it.
    t = make_tar(box / "in" / "a.tar", [
        (link_info("a", "."), None),
        (link_info("a/b", ".."), None),
        (file_info("a/b/evil.txt"), b"evil"),
    ])
    with pytest.raises(UnsafeArchiveError, match="'a/b'"):
        safe_extract(t, box / "box" / "dest")
    assert_nothing_written(box)


def test_zip_symlink_escape_is_refused(box):
    z = make_zip(box / "in" / "a.zip", {"link": b"../../outside"}, modes={"link": stat.S_IFLNK | 0o777})
    with pytest.raises(UnsafeArchiveError, match="'link' is a symlink"):
        safe_extract(z, box / "box" / "dest")
    assert_nothing_written(box)


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd"])
def test_hardlink_escape_is_refused(box, target):
    t = make_tar(box / "in" / "a.tar", [(link_info("innocent.txt", target, tarfile.LNKTYPE), None)])
    with pytest.raises(UnsafeArchiveError, match="'innocent.txt' is a hardlink"):
        safe_extract(t, box / "box" / "dest")
    assert_nothing_written(box)


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_and_fifo_members_are_refused(box, kind):
    t = make_tar(box / "in" / "a.tar", [(file_info("ok.txt"), b"x"), (special_info("dev/node", kind), None)])
    with pytest.raises(UnsafeArchiveError, match="'dev/node' is a device, fifo"):
        safe_extract(t, box / "box" / "dest")
    assert_nothing_written(box)


def test_zip_fifo_member_is_refused(box):
    z = make_zip(box / "in" / "a.zip", {"pipe": b""}, modes={"pipe": stat.S_IFIFO | 0o644})
    with pytest.raises(UnsafeArchiveError, match="'pipe' is a device"):
        safe_extract(z, box / "box" / "dest")
    assert_nothing_written(box)


def test_truncated_and_unknown_archives(box):
    good = make_tar(box / "in" / "good.tar.gz", [(file_info("a.bin"), bytes(range(256)) * 400)], mode="w:gz")
    data = good.read_bytes()
    (box / "in" / "cut.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        safe_extract(box / "in" / "cut.tar.gz", box / "box" / "dest")
    (box / "in" / "page.zip").write_bytes(b"<html>quota</html>")
    with pytest.raises(DataError, match="not a zip or tar archive"):
        safe_extract(box / "in" / "page.zip", box / "box" / "dest")
    assert_nothing_written(box)


def test_existing_destination_is_not_overwritten(box):
    z = make_zip(box / "in" / "a.zip", {"a.txt": b"new"})
    (box / "box" / "dest").mkdir()
    (box / "box" / "dest" / "a.txt").write_bytes(b"old")
    with pytest.raises(DataError, match="already exists"):
        safe_extract(z, box / "box" / "dest")
    assert (box / "box" / "dest" / "a.txt").read_bytes() == b"old"
