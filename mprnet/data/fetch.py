"""Downloads that survive bad networks and never leave a wrong file at the final path.

One *source* of the registry (``config/datasets.yaml``) is fetched into
``<downloads>/<source_id>/``. Work in progress lives in ``<downloads>/.partial/<source_id>/``
and is kept between runs, so an interrupted transfer resumes (HTTP ``Range`` requests; gdown's
own resume for Google Drive). The final folder appears, by one rename, only after every file
has been checked: not an HTML page (Google Drive answers a quota page with status 200),
archives readable, the content preparable (``content_check``: what the converters need is
there, whatever the archive or folder is called) and sizes and sha256 equal to the lock that
holds the source (:class:`mprnet.data.lock.SourceLocks`: pinned, or trusted on the first
successful prepare).

Source kinds: ``http`` (a plain file URL), ``gdrive_file`` and ``gdrive_folder`` (through
``gdown``), ``manual`` (a page behind a registration form: the user downloads by hand into a
drop folder, and ``fetch`` picks the files up from there). A *mirror* (``mirror:`` in the
registry, ``--mirror`` or ``MPRNET_DATA_MIRROR``) replaces every source by
``<mirror>/<source_id>/<path>`` for each path recorded in the lock, which is exactly the
layout of a ``downloads`` folder served over HTTP.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import time
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import DataError
from .extract import is_archive_name
from .filelock import exclusive
from .lock import FileRecord, LockFile, SourceLocks, trusted_lock

CHUNK = 1 << 20
# Network reads are smaller: a cut connection loses the chunk being read, so this bounds what
# a resume has to fetch again.
NET_CHUNK = 1 << 16
HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<!--")
PARTIAL_DIR = ".partial"


class ManualDownloadRequired(DataError):
    """A source must be downloaded by hand; ``instructions`` says how and where to put it."""

    def __init__(self, source_id: str, instructions: str):
        super().__init__(f"source {source_id!r} must be downloaded by hand (see the instructions above)")
        self.source_id = source_id
        self.instructions = instructions


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` further attempts after the first, waiting backoff·2^k seconds (capped)."""

    retries: int = 5
    backoff: float = 2.0
    max_backoff: float = 60.0

    def wait(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))


class _Transient(Exception):
    """A failure worth retrying: 5xx/429/408 answers and cut connections."""


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def looks_like_html(head: bytes) -> bool:
    """True when the first bytes of a "data" file are an HTML page (error, quota or login page)."""
    text = head[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(HTML_MARKERS[:3]) or (text.startswith(b"<!--") and b"<html" in text)


def _html_error(what: str, where: str) -> DataError:
    return DataError(
        f"{what}: the server sent an HTML page instead of the data ({where}). For Google Drive this "
        "is usually the quota page ('Too many users have viewed or downloaded this file recently'): "
        "try again tomorrow, download it in a browser into the drop folder, or use a mirror (--mirror)."
    )


def _file_head(path: Path, size: int = 1024) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)


def http_download(
    url: str,
    dest: str | os.PathLike,
    *,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    retry: RetryPolicy = RetryPolicy(),
    timeout: float | tuple[float, float] = (15.0, 60.0),
    session: Any = None,
    progress: bool = True,
) -> FileRecord:
    """Download ``url`` to ``dest``, resuming a partial file left by an earlier attempt or run.

    The partial file ``.<name>.part`` sits next to ``dest``; a cut connection or a 5xx answer is
    retried with exponential backoff and a ``Range: bytes=<have>-`` request. ``dest`` is
    created only when the size and sha256 agree with the expectations (when given); a
    mismatch deletes the partial file and raises ``DataError``.
    """
    import requests
    from tqdm import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.part")
    if url.startswith("file://"):  # a mirror on a shared file system
        _copy_local(url, partial)
        return _place_verified(url, partial, dest, expected_sha256, expected_size, expects_html=False)
    own_session = session is None
    session = session or requests.Session()
    expects_html = dest.suffix.lower() in (".html", ".htm")
    attempt = 0
    try:
        while True:
            have = partial.stat().st_size if partial.exists() else 0
            headers = {"Accept-Encoding": "identity"}  # byte offsets must mean bytes on disk
            if have:
                headers["Range"] = f"bytes={have}-"
            try:
                with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
                    done = _receive(response, partial, have, url, expects_html, dest.name, progress, tqdm)
                if done:
                    break
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError, _Transient) as exc:
                attempt += 1
                if attempt > retry.retries:
                    raise DataError(
                        f"{url}: gave up after {retry.retries} retries ({_short(exc)}); the partial "
                        f"download {partial} is kept and resumes on the next run"
                    ) from None
                time.sleep(retry.wait(attempt))
            except requests.RequestException as exc:  # malformed URL, too many redirects, ...
                raise DataError(f"{url}: {_short(exc)}") from None
    finally:
        if own_session:
            session.close()
    return _place_verified(url, partial, dest, expected_sha256, expected_size, expects_html)


def _copy_local(url: str, partial: Path) -> None:
    import urllib.request

    source = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    if not source.is_file():
        raise DataError(f"{url}: no such file")
    shutil.copyfile(source, partial)


def _place_verified(url: str, partial: Path, dest: Path, expected_sha256: str | None,
                    expected_size: int | None, expects_html: bool) -> FileRecord:
    size = partial.stat().st_size
    if not expects_html and looks_like_html(_file_head(partial)):
        partial.unlink()
        raise _html_error(url, "detected in the downloaded bytes")
    digest = sha256_file(partial)
    if expected_size is not None and size != expected_size or expected_sha256 and digest != expected_sha256.lower():
        partial.unlink()
        raise DataError(
            f"{url}: checksum mismatch for {dest.name}: got sha256 {digest} ({size} bytes), expected "
            f"{expected_sha256} ({expected_size} bytes); the download was deleted and nothing was kept"
        )
    os.replace(partial, dest)
    return FileRecord(size=size, sha256=digest)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:200] + "…"


def _receive(response, partial: Path, have: int, url: str, expects_html: bool, label: str,
             progress: bool, tqdm) -> bool:
    """Write one response into the partial file; True when the file is complete."""
    status = response.status_code
    if status == 416 and have:
        total = _content_range_total(response.headers.get("Content-Range", ""))
        if total == have:
            return True
        partial.unlink()  # the partial file is longer than the remote one: start over
        raise _Transient(f"HTTP 416 with {have} bytes on disk; restarting")
    if status >= 500 or status in (408, 429):
        raise _Transient(f"HTTP {status} {response.reason}")
    if status >= 400:
        raise DataError(f"{url}: HTTP {status} {response.reason}")
    if "text/html" in response.headers.get("Content-Type", "").lower() and not expects_html:
        partial.unlink(missing_ok=True)
        raise _html_error(url, f"Content-Type {response.headers.get('Content-Type')}")
    if status == 206:
        start, total = _content_range(response.headers.get("Content-Range", ""))
        if start != have:
            partial.unlink(missing_ok=True)
            raise _Transient(f"server resumed at byte {start}, not {have}; restarting")
        mode = "ab"
    else:  # 200: the server ignored the Range header, or this is a fresh start
        have = 0
        mode = "wb"
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
    with open(partial, mode) as fh, tqdm(
        total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
        desc=label, disable=not progress, leave=False,
    ) as bar:
        first = mode == "wb"
        for block in response.iter_content(NET_CHUNK):
            if first and block:
                first = False
                if not expects_html and looks_like_html(block):
                    fh.close()
                    partial.unlink()
                    raise _html_error(url, "detected in the first bytes")
            fh.write(block)
            bar.update(len(block))
    size = partial.stat().st_size
    if total is not None and size < total:
        raise _Transient(f"connection closed after {size} of {total} bytes")
    if total is not None and size > total:
        partial.unlink()
        raise DataError(f"{url}: received {size} bytes, more than the announced {total}")
    return True


def _content_range(value: str) -> tuple[int, int | None]:
    match = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", value.strip())
    if not match:
        raise _Transient(f"malformed Content-Range {value!r}")
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), total


def _content_range_total(value: str) -> int | None:
    match = re.match(r"bytes\s+\*/(\d+)", value.strip())
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------- Google Drive

def gdrive_download(url: str, out_dir: Path, *, folder: bool, filename: str | None = None,
                    retries: int = 5, quiet: bool = False, source_id: str | None = None) -> None:
    """Fetch a Google Drive file or folder into ``out_dir`` through gdown (resuming, retrying).

    gdown must meet the floor of ``pyproject.toml`` (checked first: gdown 5.x lists at most 50
    files of a Drive folder, and the test sets are folders of 98 to 13,711 files; versions
    before 6.3 lack the ``retries`` argument). Every failure becomes a ``DataError`` naming
    the source and what to do: Drive's quota, a network failure (resumed on the next run), or
    a failure inside gdown itself.
    """
    from .. import deps  # importlib.metadata: only for a Drive download

    label = f"source {source_id!r} ({url})" if source_id else url
    deps.require("gdown")
    import gdown
    import requests
    from gdown.exceptions import DownloadError, FileURLRetrievalError

    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        if folder:
            gdown.download_folder(url=url, output=str(out_dir), quiet=quiet, resume=True, retries=retries)
        else:
            output = str(out_dir / filename) if filename else str(out_dir) + os.sep
            gdown.download(url=url, output=output, quiet=quiet, resume=True, retries=retries)
    except FileURLRetrievalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"{label}: Google Drive did not hand out the file ({first}). This is usually the download "
            "quota ('Too many users have viewed or downloaded this file recently'): try again in 24 "
            "hours, download it in a browser into the drop folder, or use a mirror (--mirror). "
            "Completed files are kept and the next run resumes."
        ) from None
    except (DownloadError, requests.RequestException, OSError) as exc:
        raise DataError(f"{label}: Google Drive download failed ({_short(exc)}); the next run resumes") from None
    except Exception as exc:  # noqa: BLE001 - gdown failed in itself: say so, with the fix
        raise DataError(_gdown_failure(label, exc)) from None


def _gdown_failure(label: str, exc: Exception) -> str:
    from importlib.metadata import version

    from .. import deps

    what = f"{type(exc).__name__}: {_short(exc)}"
    if "FolderContentsMaximumLimit" in type(exc).__name__ or "at least 50 files" in str(exc):
        return (f"{label}: gdown {version('gdown')} stops at 50 files per Google Drive folder ({what}); "
                f"gdown 6 lists whole folders: {deps.FIX}, or pip install 'gdown>=6.3'. Completed files are kept.")
    return (f"{label}: gdown {version('gdown')} failed inside the library ({what}). Install the versions this "
            f"project is tested with ({deps.FIX}) and run again (completed files are kept), or download the files "
            "in a browser into the drop folder, or use a mirror (--mirror).")


# --------------------------------------------------------------------------- sources

def source_files(folder: Path) -> list[Path]:
    """Regular files below ``folder``, skipping partial files and hidden bookkeeping."""
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or path.name.endswith(".part"):
            continue
        if path.is_file():
            found.append(path)
    return found


def manual_instructions(source_id: str, source: dict, drop: Path) -> str:
    lines = [
        f"Source {source_id!r} ({source.get('title', source_id)}) cannot be downloaded automatically.",
        f"  1. Open {source['url']}",
    ]
    if source.get("registration"):
        lines.append(f"     {source['registration'].strip()}")
    lines.append(f"  2. Download this and put it, as an archive or unpacked, in {drop}/ :")
    for item in source.get("download", []):
        lines.append(f"       - {item}")
    for note in source.get("notes", []):
        lines.append(f"     note: {note}")
    lines.append("  3. Run the same `mprnet fetch` command again; the files are checked and moved into place.")
    return "\n".join(lines)


def hash_files(folder: Path, label: str, progress: bool = True) -> dict[str, FileRecord]:
    """Size and sha256 of every file of a source folder (:func:`source_files`), by relative path."""
    from tqdm import tqdm

    files = source_files(folder)
    return {path.relative_to(folder).as_posix(): FileRecord(size=path.stat().st_size, sha256=sha256_file(path))
            for path in tqdm(files, desc=f"sha256 {label}", unit="file", leave=False,
                             disable=not progress or len(files) < 20)}


def _verify_files(source_id: str, folder: Path, where: str, *, delete_bad: bool = True,
                  progress: bool = True) -> dict[str, FileRecord]:
    """Check each downloaded file (HTML pages, unreadable archives) and hash it."""
    files = source_files(folder)
    if not files:
        raise DataError(f"source {source_id!r} ({where}): nothing was downloaded into {folder}")
    for path in files:
        rel = path.relative_to(folder).as_posix()
        if path.suffix.lower() not in (".html", ".htm") and looks_like_html(_file_head(path)):
            if delete_bad:  # so that the next run downloads it again instead of resuming it
                path.unlink()
            raise _html_error(f"source {source_id!r} file {rel}", where)
        if is_archive_name(path):
            _check_archive(path)
    return hash_files(folder, source_id, progress)


def _return_to_drop(partial: Path, dropped: Path, rels: list[str]) -> None:
    """Move the files ``rels`` of a manual source from ``partial`` back into its drop folder."""
    for rel in rels:
        source, target = partial / rel, dropped / rel
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(source, target)


def _check_archive(path: Path) -> None:
    try:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as handle:
                handle.infolist()
        else:
            with tarfile.open(path) as handle:
                handle.getmembers()  # reads to the end, so truncation shows up here
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{path}: truncated or corrupt archive ({_short(exc)}); delete it and fetch again") from None


ContentCheck = Callable[[Path], "str | None"]


def fetch_source(
    source_id: str,
    source: dict,
    *,
    downloads: Path,
    drop: Path,
    lock: LockFile,
    trusted: LockFile | None = None,
    content_check: ContentCheck | None = None,
    mirror: str | None = None,
    update_lock: bool = False,
    verify: bool = False,
    retry: RetryPolicy = RetryPolicy(),
    progress: bool = True,
) -> Path:
    """Fetch one source into ``downloads/<source_id>/`` (see the module docstring); return that folder.

    ``lock`` is the pinned lock (``config/datasets.lock.yaml``), ``trusted`` the first-use lock
    (default ``downloads/sources.lock.yaml``); a source held by neither is accepted unrecorded
    (the first successful ``prepare`` records it). ``content_check(folder)`` returns None when
    the files in ``folder`` hold what the converters need, else a message saying what was found
    and what is missing (:func:`mprnet.data.gate.content_gate`); without it any non-empty
    content passes. Raises ``DataError`` (one line naming the source and file) on any failure,
    ``ManualDownloadRequired`` while a manual source's drop folder lacks what is needed.
    """
    locks = SourceLocks(lock, trusted if trusted is not None else trusted_lock(downloads))
    # One fetch per source at a time; a job that waited finds the folder complete.
    with exclusive(downloads / PARTIAL_DIR / f"{source_id}.lock"):
        locks.refresh(source_id)  # a job we waited for may have recorded this source meanwhile
        return _fetch_source(source_id, source, downloads=downloads, drop=drop, locks=locks,
                             content_check=content_check, mirror=mirror, update_lock=update_lock,
                             verify=verify, retry=retry, progress=progress)


def _fetch_source(source_id: str, source: dict, *, downloads: Path, drop: Path, locks: SourceLocks,
                  content_check: ContentCheck | None, mirror: str | None, update_lock: bool, verify: bool,
                  retry: RetryPolicy, progress: bool) -> Path:
    final = downloads / source_id
    if final.is_dir():
        if verify:
            if locks.holder(source_id) is None:
                raise DataError(f"source {source_id!r}: nothing to verify {final} against: neither "
                                f"{locks.pinned.path} nor {locks.trusted.path} records it yet (the first "
                                "successful `mprnet prepare` of a dataset from it does)")
            locks.check(source_id, _verify_files(source_id, final, "local copy", delete_bad=False,
                                                 progress=progress), where=str(final))
        return final
    partial = downloads / PARTIAL_DIR / source_id
    partial.mkdir(parents=True, exist_ok=True)
    kind = source["kind"]
    locked = locks.files(source_id)
    manual = kind == "manual" and not mirror

    if mirror:
        if not locked:
            raise DataError(
                f"source {source_id!r}: a mirror is set but neither {locks.pinned.path} nor {locks.trusted.path} "
                "has files for it; fetch it once from the original source (without --mirror) and prepare a "
                "dataset from it, so that the lock records what to ask the mirror for"
            )
        base = mirror.rstrip("/") + "/" + urllib.parse.quote(source_id) + "/"
        for rel, rec in sorted(locked.items()):
            target = partial / rel
            if target.is_file() and target.stat().st_size == rec.size and sha256_file(target) == rec.sha256:
                continue
            http_download(base + urllib.parse.quote(rel), target, expected_sha256=rec.sha256,
                          expected_size=rec.size, retry=retry, progress=progress)
        where = f"mirror {base}"
    elif kind == "http":
        name = source.get("filename") or Path(urllib.parse.urlparse(source["url"]).path).name
        rec = locked.get(name)
        target = partial / name
        if not target.is_file():
            http_download(source["url"], target, expected_sha256=rec.sha256 if rec and not update_lock else None,
                          expected_size=rec.size if rec and not update_lock else None,
                          retry=retry, progress=progress)
        where = source["url"]
    elif kind in ("gdrive_file", "gdrive_folder"):
        gdrive_download(source["url"], partial, folder=kind == "gdrive_folder", filename=source.get("filename"),
                        retries=retry.retries, quiet=not progress, source_id=source_id)
        where = source["url"]
    elif kind == "manual":
        dropped = drop / source_id
        # Files move out of the drop folder as they arrive; anything refused goes back there.
        for path in source_files(dropped) if dropped.is_dir() else []:
            target = partial / path.relative_to(dropped)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)  # same file system in the usual layout: a rename
        if not source_files(partial):
            dropped.mkdir(parents=True, exist_ok=True)
            raise ManualDownloadRequired(source_id, manual_instructions(source_id, source, dropped)
                                         + f"\n  Nothing is in {dropped} yet.")
        where = f"drop folder {dropped}"
    else:  # the schema rules this out; kept for callers that skip validation
        raise DataError(f"source {source_id!r}: unknown kind {kind!r}")

    def hand_back() -> None:  # the user's files: every one goes back rather than being kept or deleted
        _return_to_drop(partial, drop / source_id, [p.relative_to(partial).as_posix() for p in source_files(partial)])

    try:
        records = _verify_files(source_id, partial, where, delete_bad=not manual, progress=progress)
    except DataError:
        if manual:
            hand_back()
        raise
    # Bytes first (cheap, and a copy that differs from its lock is not even unpacked), then
    # content; --update-lock records the new bytes only once the content is known to be good.
    if not update_lock:
        try:
            locks.check(source_id, records, where=where)
        except DataError as exc:
            # Wrong bytes must not be picked up by the next run's resume logic. A download is
            # deleted; a file the user dropped may be their only copy, so it goes back where it was.
            if manual:
                hand_back()
                raise DataError(f"{exc}\n  Every dropped file is back in {drop / source_id}; nothing was deleted.") from None
            for rel in [rel for rel, rec in records.items() if locked.get(rel) != rec]:
                (partial / rel).unlink(missing_ok=True)
            raise
    refusal = content_check(partial) if content_check is not None else None
    if refusal:
        if manual:
            hand_back()
            raise ManualDownloadRequired(
                source_id, manual_instructions(source_id, source, drop / source_id)
                + f"\n  What was dropped cannot be prepared (every file is back in {drop / source_id}): {refusal}")
        raise DataError(f"source {source_id!r} ({where}) cannot be prepared from what was downloaded: {refusal}. "
                        f"The files so far are in {partial}")
    if update_lock:
        locks.check(source_id, records, where=where, update=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, final)
    return final
