"""Where a set of results came from: code version, packages, devices and the exact config.

The config hash is SHA-256 of the config serialised as canonical JSON (sorted keys), so
the same settings give the same hash whatever YAML formatting or key order produced them.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

PACKAGES = (
    "mprnet-study", "torch", "numpy", "scipy", "scikit-image", "pandas", "opencv-python-headless", "numba",
    "pillow", "matplotlib", "seaborn", "snakemake", "snakemake-executor-plugin-slurm", "dvc", "pyyaml",
)


def config_hash(config: Mapping[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def git_state(repo: str | os.PathLike = ".") -> dict[str, Any]:
    """Commit and whether tracked files differ from it; ``None`` values outside a git checkout."""
    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else ``platform.processor()`` or the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def devices() -> dict[str, Any]:
    info: dict[str, Any] = {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "gpus": []}
    try:
        import torch

        info["cuda_available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            info["cuda"] = torch.version.cuda
    except ImportError:
        info["cuda_available"] = False
    return info


def collect(
    config: Mapping[str, Any] | None = None,
    *,
    repo: str | os.PathLike = ".",
    training_devices: Iterable[str] = (),
) -> dict[str, Any]:
    """Everything a reader needs to tie these results to code, software, hardware and settings.

    ``devices`` describes the machine that rendered the report; ``training_devices`` lists
    the devices the training jobs recorded (they may have run elsewhere, e.g. Slurm GPU nodes).
    """
    record: dict[str, Any] = {
        "generated_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git": git_state(repo),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "devices": devices(),
    }
    training = sorted(set(d for d in training_devices if d))
    if training:
        record["training_devices"] = training
    if config is not None:
        record["config_sha256"] = config_hash(config)
    return record


def to_markdown(record: Mapping[str, Any]) -> str:
    git = record.get("git", {})
    commit = git.get("commit") or "unknown (not a git checkout)"
    if git.get("dirty"):
        commit += " (with uncommitted changes)"
    dev = record.get("devices", {})
    lines = [
        "| item | value |", "|:---|:---|",
        f"| generated (UTC) | {record.get('generated_utc', '')} |",
        f"| git commit | `{commit}` |",
        f"| config SHA-256 | `{record.get('config_sha256', 'n/a')}` |",
        f"| Python | {record.get('python', '')} on {record.get('platform', '')} |",
        f"| CPU | {dev.get('cpu', '')} ({dev.get('cpu_count', '?')} logical cores) |",
        f"| GPUs (report machine) | {', '.join(dev.get('gpus') or []) or 'none'} |",
    ]
    if record.get("training_devices"):
        lines.append(f"| training devices | {', '.join(record['training_devices'])} |")
    for name, version in record.get("packages", {}).items():
        lines.append(f"| {name} | {version or 'not installed'} |")
    return "\n".join(lines) + "\n"


def to_html(record: Mapping[str, Any]) -> str:
    """The Markdown table as a standalone HTML page, for the Snakemake report."""
    import html

    rows = []
    for line in to_markdown(record).splitlines()[2:]:
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Provenance</title><style>'
            "body{font-family:sans-serif}td{padding:.2em .8em;border-bottom:1px solid #ddd}"
            "td:first-child{font-weight:bold}</style></head><body>\n<h3>Provenance</h3>\n<table>\n"
            + "\n".join(rows) + "\n</table>\n</body></html>\n")
