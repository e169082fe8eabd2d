"""Unpack zip and tar archives without letting a hostile member write outside the destination.

Python's ``zipfile`` and ``tarfile`` extract whatever an archive names: absolute paths,
``../`` components ("zip-slip"), symlinks or hardlinks pointing elsewhere, device nodes. A
dataset archive from a mirror or a shared drive is untrusted input, so every member is checked
twice: by name before anything is written (so a hostile archive writes nothing at all), and by
real path while writing (so a chain of in-archive symlinks cannot be used to escape either).
Everything goes into a hidden temporary folder next to ``dest`` that is renamed into place
only when the whole archive has been unpacked.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

from ..errors import DataError
from .filelock import exclusive

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


class UnsafeArchiveError(DataError):
    """An archive member would be written outside the destination or is a special file."""


def is_archive_name(path: str | os.PathLike) -> bool:
    name = os.fspath(path).lower()
    return name.endswith(ARCHIVE_SUFFIXES)


def archive_stem(path: str | os.PathLike) -> str:
    """``GoPro.tar.gz`` -> ``GoPro``: the folder an archive is unpacked into."""
    name = Path(path).name
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def unpack_archives(folder: str | os.PathLike, dest: str | os.PathLike, *, quiet: bool = False) -> list[Path]:
    """Unpack every archive below ``folder`` once, with :func:`safe_extract`, into ``dest``.

    An archive ``folder/a/b/X.zip`` goes to ``dest/a/b/X/``; one that is unpacked already is
    left as it is. Hidden files and partial downloads (``*.part``) are skipped. Parallel
    callers for the same ``dest`` unpack each archive once (a lock beside ``dest``). Returns the
    folders the archives were unpacked into.
    """
    folder, dest = Path(folder), Path(dest)
    archives = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and is_archive_name(path) and not any(part.startswith(".") for part in rel.parts):
            archives.append(path)
    if not archives:
        return []
    unpacked = []
    with exclusive(dest.parent / f".{dest.name}.lock"):
        for archive in archives:
            target = dest / archive.relative_to(folder).parent / archive_stem(archive)
            if not target.exists():
                if not quiet:
                    print(f"unpacking {archive} -> {target}")
                safe_extract(archive, target)
            unpacked.append(target)
    return unpacked


@dataclass(frozen=True)
class _Member:
    name: str
    kind: str  # "dir", "file", "symlink", "hardlink", "special"
    link: str = ""
    open: Callable[[], IO[bytes]] | None = None


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Unpack a zip or tar ``archive`` (any compression tarfile knows) into the new folder ``dest``.

    Raises ``UnsafeArchiveError`` naming the member for absolute paths, ``..`` components,
    links leaving ``dest`` and device/fifo members; ``DataError`` for a truncated or unknown
    archive or an existing ``dest``. On any error nothing is left at ``dest``.
    """
    archive = Path(archive)
    dest = Path(dest)
    if not archive.is_file():
        raise DataError(f"{archive}: no such archive")
    if dest.exists():
        raise DataError(f"{dest}: already exists; remove it to unpack {archive.name} again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the unpacked data is not
    try:
        with _MemberReader(archive) as members:
            members = list(members)
            for member in members:
                _check_name(archive, member)
            for member in members:
                _write_member(archive, member, tmp)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


class _MemberReader:
    """Context manager yielding the members of a zip or tar archive in archive order."""

    def __init__(self, archive: Path):
        self.archive = archive
        self._handle: zipfile.ZipFile | tarfile.TarFile | None = None

    def __enter__(self) -> Iterator[_Member]:
        archive = self.archive
        try:
            if zipfile.is_zipfile(archive):
                self._handle = zipfile.ZipFile(archive)
                return iter(list(self._zip_members(self._handle)))
            if tarfile.is_tarfile(archive):
                self._handle = tarfile.open(archive)
                return iter(list(self._tar_members(self._handle)))
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
            self.__exit__(None, None, None)
            raise DataError(f"{archive}: truncated or corrupt archive ({exc})") from None
        raise DataError(f"{archive}: not a zip or tar archive (truncated download?)")

    def __exit__(self, *exc_info) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    @staticmethod
    def _zip_members(handle: zipfile.ZipFile) -> Iterator[_Member]:
        for info in handle.infolist():
            mode = info.external_attr >> 16
            opener = (lambda i=info: handle.open(i))
            if info.is_dir():
                yield _Member(info.filename, "dir")
            elif stat.S_ISLNK(mode):
                target = handle.read(info).decode("utf-8", errors="replace")
                yield _Member(info.filename, "symlink", link=target)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                yield _Member(info.filename, "special")
            else:
                yield _Member(info.filename, "file", open=opener)

    @staticmethod
    def _tar_members(handle: tarfile.TarFile) -> Iterator[_Member]:
        for info in handle.getmembers():
            if info.isdir():
                yield _Member(info.name, "dir")
            elif info.issym():
                yield _Member(info.name, "symlink", link=info.linkname)
            elif info.islnk():
                yield _Member(info.name, "hardlink", link=info.linkname)
            elif info.isfile():
                yield _Member(info.name, "file", open=(lambda i=info: handle.extractfile(i)))
            else:  # character/block device, fifo, or anything tarfile cannot classify
                yield _Member(info.name, "special")


def _parts(name: str) -> list[str]:
    # Archives made on Windows may use backslashes; treat both as separators.
    return [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]


def _is_absolute(name: str) -> bool:
    slashed = name.replace("\\", "/")
    return slashed.startswith("/") or (len(slashed) > 1 and slashed[1] == ":")


def _check_name(archive: Path, member: _Member) -> None:
    where = f"{archive}: member {member.name!r}"
    if member.kind == "special":
        raise UnsafeArchiveError(f"{where} is a device, fifo or socket; refused")
    if _is_absolute(member.name):
        raise UnsafeArchiveError(f"{where} has an absolute path; refused")
    if ".." in _parts(member.name):
        raise UnsafeArchiveError(f"{where} contains '..'; refused")
    if not _parts(member.name):
        raise UnsafeArchiveError(f"{where} has an empty path; refused")
    if member.kind == "symlink":
        if _is_absolute(member.link):
            raise UnsafeArchiveError(f"{where} is a symlink to the absolute path {member.link!r}; refused")
        parent = posixpath.dirname("/".join(_parts(member.name)))
        if _escapes(parent, member.link):
            raise UnsafeArchiveError(f"{where} is a symlink to {member.link!r}, outside the destination; refused")
    if member.kind == "hardlink":
        if _is_absolute(member.link) or ".." in _parts(member.link):
            raise UnsafeArchiveError(f"{where} is a hardlink to {member.link!r}, outside the destination; refused")


def _escapes(parent: str, link: str) -> bool:
    depth = len(_parts(parent))
    for part in link.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        depth = depth - 1 if part == ".." else depth + 1
        if depth < 0:
            return True
    return False


def _inside(root: Path, path: Path) -> bool:
    root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    return real == root or root in real.parents


def _write_member(archive: Path, member: _Member, root: Path) -> None:
    where = f"{archive}: member {member.name!r}"
    target = root.joinpath(*_parts(member.name))
    # Check the real path of the parent, which resolves symlinks unpacked by earlier members.
    if not _inside(root, target.parent):
        raise UnsafeArchiveError(f"{where} would be written through a link outside the destination; refused")
    if member.kind == "dir":
        if target.is_symlink():
            raise UnsafeArchiveError(f"{where} is a folder over an earlier symlink; refused")
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if not _inside(root, target.parent):
        raise UnsafeArchiveError(f"{where} would be written through a link outside the destination; refused")
    if target.is_symlink() or target.is_file():
        target.unlink()  # a later member of the same name wins, as with tar; never follow a link
    elif target.exists():
        raise UnsafeArchiveError(f"{where} would replace a folder; refused")
    if member.kind == "symlink":
        if not _inside(root, target.parent / member.link.replace("\\", "/")):
            raise UnsafeArchiveError(f"{where} is a symlink to {member.link!r}, outside the destination; refused")
        os.symlink(member.link, target)
    elif member.kind == "hardlink":
        source = root.joinpath(*_parts(member.link))
        if not _inside(root, source):
            raise UnsafeArchiveError(f"{where} is a hardlink to {member.link!r}, outside the destination; refused")
        if not source.is_file():
            raise DataError(f"{where} is a hardlink to {member.link!r}, which is not an earlier file member")
        shutil.copyfile(source, target)
    else:
        assert member.open is not None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            with member.open() as src, os.fdopen(os.open(target, flags, 0o644), "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
            raise DataError(f"{where}: truncated or corrupt data ({exc})") from None
