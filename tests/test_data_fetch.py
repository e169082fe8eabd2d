"""Downloads against a local server on 127.0.0.1: resume, retries, checksums, HTML pages, lock, mirror."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import pytest
import yaml

from http_server import FileServer
from mprnet.data.fetch import (
    ManualDownloadRequired, RetryPolicy, fetch_source, http_download, looks_like_html,
)
from mprnet.data.lock import LockFile
from mprnet.errors import DataError

FAST = RetryPolicy(retries=3, backoff=0.001, max_backoff=0.01)
PAYLOAD = os.urandom(300_000) + b"end"  # several chunks, random so HTML sniffing cannot misfire
QUOTA_PAGE = (b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head>"
              b"<body>Too many users have viewed or downloaded this file recently.</body></html>")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


def test_full_download(server, tmp_path):
    server.add("/a.bin", PAYLOAD)
    dest = tmp_path / "out" / "a.bin"
    record = http_download(server.url("/a.bin"), dest, retry=FAST, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert record.sha256 == sha(PAYLOAD) and record.size == len(PAYLOAD)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.bin"]  # no partial file left


def test_cut_connection_is_resumed_with_range(server, tmp_path):
    server.add("/a.bin", PAYLOAD, cut_after=100_000, cut_times=1)
    dest = tmp_path / "a.bin"
    http_download(server.url("/a.bin"), dest, retry=FAST, progress=False)
    assert dest.read_bytes() == PAYLOAD
    first, second = server.ranges("/a.bin")
    # What was received before the cut is kept (up to the chunk being read when it broke).
    assert first is None and second.startswith("bytes=") and 0 < int(second[6:-1]) <= 100_000


def test_partial_file_from_an_earlier_run_is_resumed(server, tmp_path):
    server.add("/a.bin", PAYLOAD)
    dest = tmp_path / "a.bin"
    (tmp_path / ".a.bin.part").write_bytes(PAYLOAD[:123_456])
    http_download(server.url("/a.bin"), dest, expected_sha256=sha(PAYLOAD), retry=FAST, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges("/a.bin") == ["bytes=123456-"]


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.add("/a.bin", PAYLOAD, ignore_range=True)
    dest = tmp_path / "a.bin"
    (tmp_path / ".a.bin.part").write_bytes(b"garbage that must not stay in front")
    http_download(server.url("/a.bin"), dest, retry=FAST, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    server.add("/a.bin", PAYLOAD)
    dest = tmp_path / "a.bin"
    with pytest.raises(DataError, match="checksum mismatch"):
        http_download(server.url("/a.bin"), dest, expected_sha256="0" * 64, retry=FAST, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_5xx_answers_are_retried(server, tmp_path):
    served = server.add("/a.bin", PAYLOAD, fail_times=2, fail_status=503)
    dest = tmp_path / "a.bin"
    http_download(server.url("/a.bin"), dest, retry=FAST, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert served.hits == 3


def test_retries_run_out_with_a_clear_error(server, tmp_path):
    server.add("/a.bin", PAYLOAD, fail_times=10, fail_status=500)
    dest = tmp_path / "a.bin"
    with pytest.raises(DataError, match=r"gave up after 2 retries \(HTTP 500"):
        http_download(server.url("/a.bin"), dest, retry=RetryPolicy(2, 0.001, 0.01), progress=False)
    assert not dest.exists()


def test_404_is_not_retried(server, tmp_path):
    with pytest.raises(DataError, match="HTTP 404"):
        http_download(server.url("/missing.bin"), tmp_path / "m.bin", retry=FAST, progress=False)
    assert len(server.requests) == 1


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/octet-stream"])
def test_html_page_instead_of_data(server, tmp_path, content_type):
    server.add("/big.zip", QUOTA_PAGE, content_type=content_type)
    dest = tmp_path / "big.zip"
    with pytest.raises(DataError, match="HTML page instead of the data"):
        http_download(server.url("/big.zip"), dest, retry=FAST, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_looks_like_html():
    assert looks_like_html(b"\n  <!doctype HTML><html>")
    assert looks_like_html(b"<html><body>quota</body></html>")
    assert not looks_like_html(b"PK\x03\x04 binary")
    assert not looks_like_html(b"\x89PNG\r\n")


# --------------------------------------------------------------------------- sources and lock

def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        for name, data in files.items():
            handle.writestr(name, data)
    return buffer.getvalue()


def test_http_source_records_then_enforces_the_lock(server, tmp_path):
    archive = _zip_bytes({"set/input/1.png": b"a", "set/target/1.png": b"b"})
    server.add("/set.zip", archive)
    source = {"kind": "http", "url": server.url("/set.zip"), "title": "t"}
    lock = LockFile(tmp_path / "datasets.lock.yaml")
    downloads = tmp_path / "downloads"
    folder = fetch_source("demo", source, downloads=downloads, drop=tmp_path / "drop", lock=lock,
                          retry=FAST, progress=False)
    assert (folder / "set.zip").read_bytes() == archive
    saved = yaml.safe_load((tmp_path / "datasets.lock.yaml").read_text())
    assert saved["sources"]["demo"]["set.zip"] == {"size": len(archive), "sha256": sha(archive)}

    # The remote file changes: the next fresh download is refused and leaves nothing behind.
    import shutil

    shutil.rmtree(folder)
    server.add("/set.zip", _zip_bytes({"set/input/1.png": b"changed"}))
    lock = LockFile(tmp_path / "datasets.lock.yaml")
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch_source("demo", source, downloads=downloads, drop=tmp_path / "drop", lock=lock,
                     retry=FAST, progress=False)
    assert not (downloads / "demo").exists()
    assert yaml.safe_load((tmp_path / "datasets.lock.yaml").read_text()) == saved

    # --update-lock accepts the change on purpose.
    folder = fetch_source("demo", source, downloads=downloads, drop=tmp_path / "drop", lock=lock,
                          update_lock=True, retry=FAST, progress=False)
    assert yaml.safe_load((tmp_path / "datasets.lock.yaml").read_text()) != saved


def test_truncated_archive_is_refused(server, tmp_path):
    archive = _zip_bytes({"a.png": os.urandom(5000)})
    server.add("/set.zip", archive[: len(archive) // 2])
    source = {"kind": "http", "url": server.url("/set.zip"), "title": "t"}
    with pytest.raises(DataError, match="truncated or corrupt archive"):
        fetch_source("demo", source, downloads=tmp_path / "downloads", drop=tmp_path / "drop",
                     lock=LockFile(tmp_path / "lock.yaml"), retry=FAST, progress=False)
    assert not (tmp_path / "downloads" / "demo").exists()
    assert not (tmp_path / "lock.yaml").exists()


@pytest.mark.parametrize("scheme", ["http", "file"])
def test_mirror_serves_every_locked_file(server, tmp_path, scheme):
    files = {"info.mat": b"info", "images_srgb/0001 copy.mat": b"one"}
    for rel, data in files.items():
        server.add(f"/mirror/dnd/{rel.replace(' ', '%20')}", data)
        (tmp_path / "shared" / "dnd" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "shared" / "dnd" / rel).write_bytes(data)
    mirror = server.url("/mirror/") if scheme == "http" else (tmp_path / "shared").as_uri()
    lock_path = tmp_path / "lock.yaml"
    lock_path.write_text(yaml.safe_dump({"sources": {"dnd": {
        rel: {"size": len(d), "sha256": sha(d)} for rel, d in files.items()}}}))
    source = {"kind": "manual", "url": "https://noise.visinf.tu-darmstadt.de/downloads/", "title": "DND",
              "expect": [{"glob": "**/info.mat", "count": 1}]}
    folder = fetch_source("dnd", source, downloads=tmp_path / "downloads", drop=tmp_path / "drop",
                          lock=LockFile(lock_path), mirror=mirror, retry=FAST, progress=False)
    assert {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == files


def test_mirror_without_lock_entries_is_an_error(tmp_path):
    source = {"kind": "gdrive_folder", "url": "https://drive.google.com/drive/folders/x", "title": "t"}
    with pytest.raises(DataError, match="has no files for it"):
        fetch_source("x", source, downloads=tmp_path / "d", drop=tmp_path / "drop",
                     lock=LockFile(tmp_path / "lock.yaml"), mirror="http://127.0.0.1:9/")


def test_manual_source_prints_instructions_then_picks_up_the_drop_folder(tmp_path):
    source = {"kind": "manual", "url": "https://www.eecs.yorku.ca/~kamel/sidd/benchmark.php", "title": "SIDD",
              "registration": "Download the sRGB validation blocks.",
              "expect": [{"glob": ["ValidationGtBlocksSrgb.mat", "**/ValidationGtBlocksSrgb.mat"]}]}
    kwargs = dict(downloads=tmp_path / "downloads", drop=tmp_path / "drop", lock=LockFile(tmp_path / "lock.yaml"))
    with pytest.raises(ManualDownloadRequired) as info:
        fetch_source("sidd_benchmark", source, **kwargs)
    text = info.value.instructions
    assert "https://www.eecs.yorku.ca/~kamel/sidd/benchmark.php" in text
    assert str(tmp_path / "drop" / "sidd_benchmark") in text and "ValidationGtBlocksSrgb.mat" in text
    (tmp_path / "drop" / "sidd_benchmark" / "ValidationGtBlocksSrgb.mat").write_bytes(b"MATLAB 5.0 data")
    folder = fetch_source("sidd_benchmark", source, **kwargs)
    assert (folder / "ValidationGtBlocksSrgb.mat").read_bytes() == b"MATLAB 5.0 data"
    assert not any((tmp_path / "drop" / "sidd_benchmark").iterdir())


@pytest.mark.parametrize("bad", ["wrong bytes", "an HTML page"])
def test_a_dropped_file_that_fails_its_check_is_handed_back_never_deleted(tmp_path, bad):
    """The user's files may be their only copy: a lock mismatch or an HTML page puts them all back."""
    good, other = b"rainy pixels", b"clean pixels"
    lock_path = tmp_path / "lock.yaml"
    lock_path.write_text(yaml.safe_dump({"sources": {"rain": {
        "rain/1.png": {"size": len(good), "sha256": sha(good)},
        "norain/1.png": {"size": len(other), "sha256": sha(other)}}}}))
    source = {"kind": "manual", "url": "https://example.org/rain", "title": "rain",
              "expect": [{"glob": "**/*.png", "count": 2}]}
    drop = tmp_path / "drop" / "rain"
    dropped = {"rain/1.png": b"<!DOCTYPE html><html>sign in</html>" if bad == "an HTML page" else b"other bytes",
               "norain/1.png": other}
    for rel, data in dropped.items():
        (drop / rel).parent.mkdir(parents=True, exist_ok=True)
        (drop / rel).write_bytes(data)
    kwargs = dict(downloads=tmp_path / "downloads", drop=tmp_path / "drop", lock=LockFile(lock_path))
    with pytest.raises(DataError, match="rain/1.png" if bad == "wrong bytes" else "HTML"):
        fetch_source("rain", source, **kwargs)
    assert {p.relative_to(drop).as_posix(): p.read_bytes() for p in drop.rglob("*") if p.is_file()} == dropped
    assert not [p for p in (tmp_path / "downloads").rglob("*.png")]
    (drop / "rain" / "1.png").write_bytes(good)  # the user fixes the one file and runs fetch again
    folder = fetch_source("rain", source, **kwargs)
    assert (folder / "rain" / "1.png").read_bytes() == good and (folder / "norain" / "1.png").read_bytes() == other


# --------------------------------------------------------------------------- Google Drive (mocked gdown)

def test_gdrive_folder_goes_through_gdown(monkeypatch, tmp_path):
    import gdown

    calls = []

    def fake_download_folder(*, url, output, quiet, resume, retries):
        calls.append({"url": url, "resume": resume, "retries": retries})
        Path(output, "test", "input").mkdir(parents=True)
        Path(output, "test", "input", "1.png").write_bytes(b"\x89PNG fake")
        return [str(Path(output, "test", "input", "1.png"))]

    monkeypatch.setattr(gdown, "download_folder", fake_download_folder)
    url = "https://drive.google.com/drive/folders/1a2qKfXWpNuTGOm2-Jex8kfNSzYJLbqkf?usp=sharing"
    source = {"kind": "gdrive_folder", "url": url, "title": "GoPro test"}
    folder = fetch_source("gopro_test_gdrive", source, downloads=tmp_path / "d", drop=tmp_path / "drop",
                          lock=LockFile(tmp_path / "lock.yaml"), retry=RetryPolicy(retries=4), progress=False)
    assert calls == [{"url": url, "resume": True, "retries": 4}]
    assert (folder / "test" / "input" / "1.png").is_file()
    assert "test/input/1.png" in (tmp_path / "lock.yaml").read_text()


def test_gdrive_file_uses_the_registry_filename(monkeypatch, tmp_path):
    import gdown

    seen = {}

    def fake_download(*, url, output, quiet, resume, retries):
        seen.update(url=url, output=output)
        Path(output).write_bytes(b"weights")
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    url = "https://drive.google.com/file/d/1QwQUVbk6YVOJViCsOKYNykCsdJSVGRtb/view?usp=sharing"
    source = {"kind": "gdrive_file", "url": url, "title": "w", "filename": "model_deblurring.pth"}
    folder = fetch_source("w", source, downloads=tmp_path / "d", drop=tmp_path / "drop",
                          lock=LockFile(tmp_path / "lock.yaml"), progress=False)
    assert seen["url"] == url and Path(seen["output"]).name == "model_deblurring.pth"
    assert (folder / "model_deblurring.pth").read_bytes() == b"weights"


def test_gdrive_quota_error_is_explained(monkeypatch, tmp_path):
    import gdown
    from gdown.exceptions import FileURLRetrievalError

    def refuse(**kwargs):
        raise FileURLRetrievalError("Too many users have viewed or downloaded this file recently.")

    monkeypatch.setattr(gdown, "download", refuse)
    source = {"kind": "gdrive_file", "url": "https://drive.google.com/file/d/abc/view", "title": "w"}
    with pytest.raises(DataError, match="quota"):
        fetch_source("w", source, downloads=tmp_path / "d", drop=tmp_path / "drop",
                     lock=LockFile(tmp_path / "lock.yaml"), progress=False)
    assert not (tmp_path / "d" / "w").exists()


def test_gdrive_saving_an_html_page_is_refused(monkeypatch, tmp_path):
    import gdown

    def save_quota_page(*, url, output, **kwargs):
        Path(output).write_bytes(QUOTA_PAGE)
        return output

    monkeypatch.setattr(gdown, "download", save_quota_page)
    source = {"kind": "gdrive_file", "url": "https://drive.google.com/file/d/abc/view", "title": "w",
              "filename": "GoPro.zip"}
    with pytest.raises(DataError, match="HTML page"):
        fetch_source("w", source, downloads=tmp_path / "d", drop=tmp_path / "drop",
                     lock=LockFile(tmp_path / "lock.yaml"), progress=False)
    assert not (tmp_path / "d" / "w").exists()
    assert not (tmp_path / "d" / ".partial" / "w" / "GoPro.zip").exists()  # the next run downloads again


# --------------------------------------------------------------------------- command line

def _png(value: int) -> bytes:
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_fetch_command_end_to_end(server, tmp_path, capsys):
    from mprnet.cli import main

    archive = _zip_bytes({"x/input/1.png": _png(1), "x/target/1.png": _png(2)})
    server.add("/x.zip", archive)
    registry = tmp_path / "datasets.yaml"
    registry.write_text(yaml.safe_dump({
        "schema_version": 1,
        "sources": {"x_http": {"kind": "http", "url": server.url("/x.zip"), "title": "x"}},
        "datasets": {"x": {"title": "x", "task": "deraining", "role": "test", "protocol": "y_channel",
                           "licence": "test", "layout": {"converter": "paired_folders", "original": "-",
                                                         "splits": {"test": {"source": "x_http"}}}}},
    }))
    args = ["--registry", str(registry), "--data-dir", str(tmp_path / "data")]
    assert main(["fetch", "x", *args, "--quiet"]) == 0
    assert (tmp_path / "data" / "downloads" / "x_http" / "x.zip").read_bytes() == archive
    assert (tmp_path / "datasets.lock.yaml").is_file()
    assert main(["datasets", *args]) == 0
    assert "fetched" in capsys.readouterr().out
    # prepare --fetch: fetching again is a no-op, then the zip is unpacked and laid out.
    assert main(["prepare", "x", *args, "--fetch", "--quiet"]) == 0
    assert (tmp_path / "data" / "x" / "test" / "target" / "1.png").read_bytes() == _png(2)
    assert len(server.ranges("/x.zip")) == 1


# --------------------------------------------------------------------------- parallel jobs

def test_parallel_lock_writers_merge_their_sources(tmp_path):
    from mprnet.data.lock import FileRecord

    path = tmp_path / "datasets.lock.yaml"
    first, second = LockFile(path), LockFile(path)  # two jobs that started together
    first.check("a", {"a.zip": FileRecord(1, "a" * 64)}, where="test")
    second.check("b", {"b.zip": FileRecord(2, "b" * 64)}, where="test")
    first.save()
    second.save()
    assert set(LockFile(path).sources) == {"a", "b"}


def test_parallel_fetches_of_one_source_download_it_once(server, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    served = server.add("/set.zip", _zip_bytes({"a.txt": b"a"}))
    source = {"kind": "http", "url": server.url("/set.zip"), "title": "t"}

    def job(_):
        return fetch_source("s", source, downloads=tmp_path / "d", drop=tmp_path / "drop",
                            lock=LockFile(tmp_path / "lock.yaml"), retry=FAST, progress=False)

    with ThreadPoolExecutor(3) as pool:
        folders = list(pool.map(job, range(3)))
    assert len(set(folders)) == 1 and (folders[0] / "set.zip").is_file()
    assert served.hits == 1


def test_verify_rehashes_a_fetched_source(server, tmp_path):
    server.add("/set.zip", _zip_bytes({"a.txt": b"a"}))
    source = {"kind": "http", "url": server.url("/set.zip"), "title": "t"}
    kwargs = dict(downloads=tmp_path / "d", drop=tmp_path / "drop", retry=FAST, progress=False)
    folder = fetch_source("s", source, lock=LockFile(tmp_path / "lock.yaml"), **kwargs)
    fetch_source("s", source, lock=LockFile(tmp_path / "lock.yaml"), verify=True, **kwargs)
    (folder / "set.zip").write_bytes(_zip_bytes({"a.txt": b"tampered"}))
    with pytest.raises(DataError, match=r"set\.zip: sha256 .* lock says"):
        fetch_source("s", source, lock=LockFile(tmp_path / "lock.yaml"), verify=True, **kwargs)
