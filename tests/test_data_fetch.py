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
    ManualDownloadRequired, RetryPolicy, fetch_source, hash_files, http_download, looks_like_html,
)
from mprnet.data.lock import LockFile, SourceLocks, trusted_lock
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


def _png(value: int, size: int = 8) -> bytes:
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _http_registry(tmp_path: Path, url: str, count: int | None = None) -> Path:
    """A registry with one http source and one paired_folders dataset ``x`` reading it."""
    split = {"source": "x_http"} if count is None else {"source": "x_http", "count": count}
    registry = tmp_path / "datasets.yaml"
    registry.write_text(yaml.safe_dump({
        "schema_version": 1,
        "sources": {"x_http": {"kind": "http", "url": url, "title": "x"}},
        "datasets": {"x": {"title": "x", "task": "deraining", "role": "test", "protocol": "y_channel",
                           "licence": "test", "layout": {"converter": "paired_folders", "original": "-", "stem": "number",
                                                         "splits": {"test": split}}}},
    }))
    return registry


def test_trust_on_first_successful_prepare_then_every_download_is_compared(server, tmp_path, capsys):
    """The first download is not the truth: the first prepare that succeeds is. It records every
    file of the source beside the data; a later download with other bytes is refused by file."""
    from mprnet.cli import main

    first = _zip_bytes({"set/input/1.png": _png(1), "set/target/1.png": _png(2)})
    server.add("/set.zip", first)
    args = ["--registry", str(_http_registry(tmp_path, server.url("/set.zip"), count=1)),
            "--data-dir", str(tmp_path / "data"), "--quiet"]
    trusted = tmp_path / "data" / "downloads" / "sources.lock.yaml"
    assert main(["fetch", "x", *args]) == 0
    assert not trusted.exists() and not (tmp_path / "datasets.lock.yaml").exists()  # nothing trusted yet
    assert main(["prepare", "x", *args]) == 0
    saved = yaml.safe_load(trusted.read_text())
    assert saved["sources"]["x_http"] == {"set.zip": {"size": len(first), "sha256": sha(first)}}
    assert "known_hosts" in trusted.read_text().splitlines()[0]
    provenance = (tmp_path / "data" / "x" / "test" / "provenance.json").read_text()
    assert '"state": "trusted"' in provenance and '"recorded_by_this_prepare": true' in provenance
    assert not (tmp_path / "datasets.lock.yaml").exists()  # the committed lock is not touched

    # The remote file changes: a fresh download is refused, naming the file, and nothing is kept.
    import shutil

    shutil.rmtree(tmp_path / "data" / "downloads" / "x_http")
    server.add("/set.zip", _zip_bytes({"set/input/1.png": _png(3), "set/target/1.png": _png(2)}))
    assert main(["fetch", "x", *args]) == 2
    assert "checksum mismatch for set.zip" in capsys.readouterr().err
    assert not (tmp_path / "data" / "downloads" / "x_http").exists()
    assert yaml.safe_load(trusted.read_text()) == saved
    # --update-lock accepts the change on purpose, in the lock that holds the source.
    assert main(["fetch", "x", *args, "--update-lock"]) == 0
    assert yaml.safe_load(trusted.read_text())["sources"]["x_http"]["set.zip"]["sha256"] != sha(first)


def test_a_defective_first_copy_is_never_trusted(server, tmp_path, capsys):
    """A first download that prepare refuses (one pair short of the registry's count) records
    nothing, so the complete copy that comes later is accepted, and trusted, as it should be."""
    from mprnet.cli import main

    server.add("/set.zip", _zip_bytes({"set/input/1.png": _png(1), "set/target/1.png": _png(2)}))
    args = ["--registry", str(_http_registry(tmp_path, server.url("/set.zip"), count=2)),
            "--data-dir", str(tmp_path / "data"), "--quiet"]
    trusted = tmp_path / "data" / "downloads" / "sources.lock.yaml"
    assert main(["prepare", "x", "--fetch", *args]) == 2
    assert "1 pairs, but" in capsys.readouterr().err and not trusted.exists()
    # Accepted on purpose with --allow-count-mismatch: written, but still not trusted.
    with pytest.warns(UserWarning, match="expects 2"):
        assert main(["prepare", "x", *args, "--allow-count-mismatch"]) == 0
    assert not trusted.exists()
    assert '"recorded_by_this_prepare": false' in (tmp_path / "data" / "x" / "test" / "provenance.json").read_text()

    import shutil

    shutil.rmtree(tmp_path / "data" / "downloads" / "x_http")
    complete = _zip_bytes({"set/input/1.png": _png(1), "set/target/1.png": _png(2),
                           "set/input/2.png": _png(4), "set/target/2.png": _png(5)})
    server.add("/set.zip", complete)
    assert main(["prepare", "x", "--fetch", "--force", *args]) == 0
    assert yaml.safe_load(trusted.read_text())["sources"]["x_http"]["set.zip"]["sha256"] == sha(complete)


def test_a_pinned_source_is_never_recorded_again(server, tmp_path):
    """A source the committed lock pins is compared with it, and the trusted lock stays empty."""
    from mprnet.cli import main

    archive = _zip_bytes({"set/input/1.png": _png(1), "set/target/1.png": _png(2)})
    server.add("/set.zip", archive)
    registry = _http_registry(tmp_path, server.url("/set.zip"))
    (tmp_path / "datasets.lock.yaml").write_text(yaml.safe_dump(
        {"sources": {"x_http": {"set.zip": {"size": len(archive), "sha256": sha(archive)}}}}))
    args = ["--registry", str(registry), "--data-dir", str(tmp_path / "data"), "--quiet"]
    assert main(["prepare", "x", "--fetch", *args]) == 0
    assert not (tmp_path / "data" / "downloads" / "sources.lock.yaml").exists()
    assert '"state": "pinned"' in (tmp_path / "data" / "x" / "test" / "provenance.json").read_text()


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
              "download": ["info.mat and images_srgb/"]}
    folder = fetch_source("dnd", source, downloads=tmp_path / "downloads", drop=tmp_path / "drop",
                          lock=LockFile(lock_path), mirror=mirror, retry=FAST, progress=False)
    assert {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == files


def test_mirror_without_lock_entries_is_an_error(tmp_path):
    source = {"kind": "gdrive_folder", "url": "https://drive.google.com/drive/folders/x", "title": "t"}
    with pytest.raises(DataError, match=r"neither .*lock.yaml nor .*sources.lock.yaml has files for it"):
        fetch_source("x", source, downloads=tmp_path / "d", drop=tmp_path / "drop",
                     lock=LockFile(tmp_path / "lock.yaml"), mirror="http://127.0.0.1:9/")


def test_manual_source_prints_instructions_then_picks_up_the_drop_folder(tmp_path):
    source = {"kind": "manual", "url": "https://www.eecs.yorku.ca/~kamel/sidd/benchmark.php", "title": "SIDD",
              "registration": "Download the sRGB validation blocks.",
              "download": ["ValidationGtBlocksSrgb.mat"]}
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
              "download": ["rain/ and norain/"]}
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
    assert not (tmp_path / "lock.yaml").exists()  # recorded by the first successful prepare, not here


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
                                                         "stem": "number", "splits": {"test": {"source": "x_http"}}}}},
    }))
    args = ["--registry", str(registry), "--data-dir", str(tmp_path / "data")]
    assert main(["fetch", "x", *args, "--quiet"]) == 0
    assert (tmp_path / "data" / "downloads" / "x_http" / "x.zip").read_bytes() == archive
    assert not (tmp_path / "datasets.lock.yaml").is_file()
    assert main(["datasets", *args]) == 0
    assert "fetched" in capsys.readouterr().out
    # prepare --fetch: fetching again is a no-op, then the zip is unpacked and laid out.
    assert main(["prepare", "x", *args, "--fetch", "--quiet"]) == 0
    assert (tmp_path / "data" / "x" / "test" / "target" / "1.png").read_bytes() == _png(2)
    assert len(server.ranges("/x.zip")) == 1
    assert "x_http" in (tmp_path / "data" / "downloads" / "sources.lock.yaml").read_text()


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
    with pytest.raises(DataError, match="nothing to verify .* against"):  # not trusted yet
        fetch_source("s", source, lock=LockFile(tmp_path / "lock.yaml"), verify=True, **kwargs)
    SourceLocks(LockFile(tmp_path / "lock.yaml"), trusted_lock(tmp_path / "d")).trust("s", hash_files(folder, "s"))
    fetch_source("s", source, lock=LockFile(tmp_path / "lock.yaml"), verify=True, **kwargs)
    (folder / "set.zip").write_bytes(_zip_bytes({"a.txt": b"tampered"}))
    with pytest.raises(DataError, match=r"set\.zip: sha256 .* lock says"):
        fetch_source("s", source, lock=LockFile(tmp_path / "lock.yaml"), verify=True, **kwargs)
