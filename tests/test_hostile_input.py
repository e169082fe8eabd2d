"""Hostile or broken input gives one line naming the file and the cause, exit 2, bounded in size
(issue 20, item 3), through the commands as the workflow runs them (a separate process, its
whole stderr read): decompression bombs of every image format and .npy arrays, YAML alias bombs
in run and study configs, a full disk during a checkpoint. (``prepare`` decoding what it accepts:
``test_data_prepare.py``.)
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mprnet.images import write_png
from train_worker import make_pairs, tiny_config, tiny_model_file, write_config

ROOT = Path(__file__).resolve().parents[1]


def _mprnet(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "mprnet.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)


def _one_line(proc: subprocess.CompletedProcess, limit: int = 2100) -> str:
    """The command failed with status 2 and printed exactly one line of at most ``limit`` characters."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) <= limit, (len(lines), [line[:300] for line in lines[:5]])
    return lines[0]


# --------------------------------------------------------------------------- decompression bombs


def _png_bomb() -> bytes:
    """A valid PNG stream of a few dozen bytes whose header claims 20000 x 10000 pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 10000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b""))


def _small(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 24, 3), 100, np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def _jpeg_bomb() -> bytes:
    data = bytearray(_small("JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)  # height, width of the frame header
    return bytes(data)


def _bmp_bomb() -> bytes:
    data = bytearray(_small("BMP"))
    data[18:26] = struct.pack("<ii", 20000, 10000)
    return bytes(data)


def _tiff_bomb() -> bytes:
    data = bytearray(_small("TIFF"))
    for tag, value in ((256, 20000), (257, 10000)):  # ImageWidth, ImageLength (Pillow: LONG, one value)
        entry = data.index(struct.pack("<HHI", tag, 4, 1))
        data[entry + 8:entry + 12] = struct.pack("<I", value)
    return bytes(data)


BOMBS = {"png": _png_bomb, "jpg": _jpeg_bomb, "bmp": _bmp_bomb, "tif": _tiff_bomb}


@pytest.mark.parametrize("ext", sorted(BOMBS))
def test_decompression_bombs_are_one_line_naming_the_file_in_score_and_restore(tmp_path, ext):
    """Before: exit 1 and a 30-46 line traceback ending in Pillow's DecompressionBombError,
    never naming the file."""
    bomb = BOMBS[ext]()
    assert len(bomb) < 2000
    for folder in ("pred", "target", "inputs"):
        write_png(tmp_path / folder / "b.png", np.full((16, 24, 3), 90, np.uint8))
    (tmp_path / "target" / f"a.{ext}").write_bytes(bomb)
    write_png(tmp_path / "pred" / "a.png", np.full((16, 24, 3), 90, np.uint8))
    score = _one_line(_mprnet("score", "--protocol", "rgb", "--pred", str(tmp_path / "pred"),
                              "--target", str(tmp_path / "target"), "--no-progress"))
    assert f"{tmp_path / 'target' / f'a.{ext}'}: its header claims" in score and "decompression bomb" in score

    (tmp_path / "inputs" / f"a.{ext}").write_bytes(bomb)
    restore = _one_line(_mprnet("restore", "--checkpoint", str(tiny_model_file(tmp_path / "m.pt")),
                                "--input", str(tmp_path / "inputs"), "--output", str(tmp_path / "out"),
                                "--no-progress"))
    assert f"{tmp_path / 'inputs' / f'a.{ext}'}: its header claims" in restore
    assert not (tmp_path / "out").exists()


def test_a_float_array_whose_header_claims_more_than_the_file_holds_is_refused(tmp_path):
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1, 3), np.float32))
    header["shape"] = (20000, 10000, 3)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "0001_01.npy").write_bytes(buffer.getvalue() + b"\0" * 512)
    line = _one_line(_mprnet("restore", "--checkpoint", str(tiny_model_file(tmp_path / "m.pt")),
                             "--input", str(tmp_path / "inputs"), "--output", str(tmp_path / "out"), "--no-progress"))
    assert f"{tmp_path / 'inputs' / '0001_01.npy'}: its .npy header claims a larger array" in line


# --------------------------------------------------------------------------- YAML alias bombs


def _alias_bomb(levels: int = 8) -> str:
    """A few hundred bytes of nested YAML aliases: 9**levels values once written out."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("hostile") / "train", 2, seed=0)


def test_a_run_config_of_nested_aliases_is_one_short_line(tmp_path, pairs):
    """Before: a 419-byte run config made `mprnet train` print a 34.7 MB error line (the schema
    error repeated the expanded value)."""
    config = tmp_path / "bomb.yaml"
    config.write_text(_alias_bomb() + f"task: denoising\ndata: {{train: {pairs}}}\noptim:\n  lr: *l7\n")
    assert config.stat().st_size < 600
    start = time.monotonic()
    line = _one_line(_mprnet("train", "--config", str(config), "--out", str(tmp_path / "run")), limit=400)
    assert f"{config}: more than 100,000 values once its YAML aliases are expanded" in line
    assert time.monotonic() - start < 60 and not (tmp_path / "run").exists()
    # Aliases themselves are fine (CI's study shares one recipe so): only the expanded size counts.
    shared = tmp_path / "shared.yaml"
    shared.write_text(f"task: denoising\ndata: &d {{train: {pairs}, patch_size: 32, batch_size: 2}}\n"
                      "schedule: {unit: iteration, length: 1}\nmodel: {overrides: {n_feat: 8, scale_unetfeats: 4, "
                      "scale_orsnetfeats: 4, num_cab: 1}}\nruntime: {progress: false}\nnotes: [*d, *d]\n")
    assert "notes" in _one_line(_mprnet("train", "--config", str(shared), "--out", str(tmp_path / "r2")))


def test_a_long_wrong_value_gives_a_bounded_error(tmp_path, pairs):
    config = write_config(tmp_path / "run.yaml", tiny_config(pairs, optim={"lr": list(range(50_000))}))
    line = _one_line(_mprnet("train", "--config", str(config), "--out", str(tmp_path / "run")), limit=600)
    assert "optim.lr:" in line and "is not of type 'number'" in line


def test_a_study_config_of_nested_aliases_stops_planning_in_one_line(tmp_path):
    """The study config reaches the package through Snakemake's own YAML reader: the same bound."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    bomb = tmp_path / "config" / "bomb.yaml"
    bomb.write_text(_alias_bomb() + "study: demo\ndemo:\n  description: *l7\n")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "workflow" / "Snakefile"), "-n",
                           "--configfile", str(bomb)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert f"invalid config: {bomb}: more than 100,000 values" in proc.stdout + proc.stderr
    assert len(proc.stdout + proc.stderr) < 5000, len(proc.stdout + proc.stderr)


# --------------------------------------------------------------------------- a full disk


def _can_mount_tmpfs() -> str | None:
    if not shutil.which("unshare"):
        return "no unshare command"
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            "mount -t tmpfs -o size=64k tmpfs /mnt 2>/dev/null || mount -t tmpfs -o size=64k tmpfs /tmp"],
                           capture_output=True, text=True)
    return None if probe.returncode == 0 else f"no tmpfs in a user namespace: {probe.stderr.strip()[:200]}"


@pytest.mark.slow
@pytest.mark.skipif(_can_mount_tmpfs() is not None, reason=str(_can_mount_tmpfs()))
def test_a_full_disk_during_a_checkpoint_is_one_line_naming_the_file_and_keeps_the_last_one(tmp_path, pairs):
    """A 2.2 MB file system (tmpfs in a private mount namespace) holds one 1.4 MB checkpoint, not
    the second beside it. Before: 12 tracebacks, none saying "no space" or naming the file."""
    config = write_config(tmp_path / "run.yaml", tiny_config(pairs, length=6, runtime={"checkpoint_every": 2}))
    disk = tmp_path / "disk"
    disk.mkdir()
    check = ("import sys, torch; s = torch.load(sys.argv[1], weights_only=True); "
             "print('checkpoint iteration', s['iteration'], all(bool(v.isfinite().all()) for v in s['model'].values()))")
    script = (f'mount -t tmpfs -o size=2200k tmpfs "$1" || exit 99; '
              f'"$2" -m mprnet.cli train --config "$3" --out "$1/run" 2>"$1.err"; echo "status $?"; '
              f'"$2" -c "$4" "$1/run/checkpoint.pt"; ls -A "$1/run"')
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", str(disk),
                           sys.executable, str(config), check], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert "status 2" in proc.stdout, (proc.stdout, proc.stderr[-2000:])
    errors = (tmp_path / "disk.err").read_text().strip().splitlines()
    assert len(errors) == 1, errors[:20]
    assert f"{disk / 'run' / 'checkpoint.pt'}: not written (No space left on device" in errors[0]
    assert "checkpoint iteration 2 True" in proc.stdout  # the one before the full disk, intact
    assert not [name for name in proc.stdout.split() if name.startswith(".checkpoint.pt.")]  # no temporary left
