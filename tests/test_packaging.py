"""The set-up files agree with each other, so the CPU venv and the cluster's conda env are the same study."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.strip()
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[_name(name)] = version.split("+")[0]
    return pins


def test_conda_environment_pins_match_constraints():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = _pins(pip_section)
    constraints = _pins((ROOT / "constraints.txt").read_text().splitlines())
    assert conda_pins["torch"] == "2.13.0"
    mismatched = {n: (v, constraints.get(n)) for n, v in conda_pins.items() if constraints.get(n) != v}
    assert not mismatched, f"environment.yml and constraints.txt disagree: {mismatched}"


def test_every_runtime_dependency_is_pinned_for_the_cluster():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = _pins(pip_section)
    missing = [_name(r) for r in project["dependencies"] if _name(r) not in conda_pins]
    assert not missing, f"pyproject dependencies not pinned in environment.yml: {missing}"


def test_make_pins_torch():
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in makefile


def test_console_command_lists_its_subcommands():
    out = subprocess.run(
        [sys.executable, "-m", "mprnet.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("score", "fetch", "prepare", "make-demo", "train", "restore"):
        assert command in out, f"`mprnet --help` does not list {command!r}"
