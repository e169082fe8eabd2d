"""The set-up files agree with each other, so the CPU venv and the cluster's conda env are the same study."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


PIN_SCRIPT = ROOT / ".ci" / "pins.py"
CONDA_FILES = ("environment.yml", "workflow/envs/mprnet.yaml")


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")


def _pins(lines) -> dict[str, str]:
    """{normalised name: version without a local label} of NAME==VERSION lines."""
    pins = {}
    for line in lines:
        line = line.strip()
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[_name(name)] = version.split("+")[0]
    return pins


def _conda(rel: str) -> tuple[dict, dict[str, str]]:
    env = yaml.safe_load((ROOT / rel).read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert len(pip_sections) == 1, f"{rel}: expected one pip section"
    return env, _pins(pip_sections[0])


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_three_pin_lists_pin_every_dependency_at_one_version():
    """constraints.txt (make venv), environment.yml (people's conda env) and the workflow's conda env
    pin every runtime dependency at the same version; environment.yml the dev tools too."""
    constraints = _pins((ROOT / "constraints.txt").read_text().splitlines())
    runtime = [_name(r) for r in _project()["dependencies"]]
    dev = [_name(r) for r in _project()["optional-dependencies"]["dev"]]
    wanted = {"constraints.txt": runtime + dev, "environment.yml": runtime + dev, "workflow/envs/mprnet.yaml": runtime}
    found = {"constraints.txt": constraints, **{rel: _conda(rel)[1] for rel in CONDA_FILES}}
    for rel, names in wanted.items():
        missing = [n for n in names if n not in found[rel]]
        assert not missing, f"{rel}: pyproject dependencies not pinned: {missing}"
        differ = {n: (found[rel][n], constraints[n]) for n in names if found[rel][n] != constraints[n]}
        assert not differ, f"{rel} and constraints.txt disagree: {differ}"
    assert "numba" in found["workflow/envs/mprnet.yaml"]  # CPU scoring imports it
    assert {found[rel]["torch"] for rel in found} == {"2.13.0"}
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^TORCH_PIN := torch==2\.13\.0$", makefile, re.M), "the Makefile pins another torch"
    assert re.search(r"^torch==2\.13\.0\+cpu$", (ROOT / "constraints.txt").read_text(), re.M)  # the CPU venv
    pythons = {rel: [d for d in _conda(rel)[0]["dependencies"] if isinstance(d, str) and d.startswith("python")]
               for rel in CONDA_FILES}
    assert all(p == ["python=3.11"] for p in pythons.values()), pythons
    assert "-e ." in yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"][-1]["pip"]


def test_generated_environment_files_are_up_to_date():
    proc = subprocess.run([sys.executable, str(PIN_SCRIPT), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _copy_pin_sources(tmp_path: Path) -> Path:
    for rel in ("constraints.txt", "pyproject.toml", *CONDA_FILES):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, tmp_path / rel)
    return tmp_path


def test_pin_script_finds_drift_and_regenerates(tmp_path):
    root = _copy_pin_sources(tmp_path)
    env = root / "workflow/envs/mprnet.yaml"
    env.write_text(env.read_text().replace("      - numba==0.68.1\n", ""))  # how the workflow env once drifted
    check = [sys.executable, str(PIN_SCRIPT), "--check", "--root", str(root)]
    proc = subprocess.run(check, capture_output=True, text=True)
    assert proc.returncode == 1 and "workflow/envs/mprnet.yaml" in proc.stderr, proc.stderr
    assert "environment.yml" not in proc.stderr
    constraints = root / "constraints.txt"
    constraints.write_text(constraints.read_text().replace("numba==0.68.1", "numba==0.68.2"))
    assert subprocess.run([sys.executable, str(PIN_SCRIPT), "--root", str(root)], capture_output=True).returncode == 0
    assert subprocess.run(check, capture_output=True).returncode == 0
    for rel in CONDA_FILES:
        assert "      - numba==0.68.2\n" in (root / rel).read_text()


@pytest.mark.parametrize("edit,message", [
    (("numba==0.68.1\n", ""), "numba (a dependency in pyproject.toml) is not pinned"),
    (("numba==0.68.1", "numba==0.50.0"), "numba==0.50.0 does not satisfy pyproject.toml's numba>=0.60"),
    (("# python=3.11\n", ""), "no '# python=X.Y' line"),
])
def test_pin_script_refuses_an_incomplete_or_contradicting_pin_list(tmp_path, edit, message):
    root = _copy_pin_sources(tmp_path)
    constraints = root / "constraints.txt"
    assert edit[0] in constraints.read_text()
    constraints.write_text(constraints.read_text().replace(*edit))
    proc = subprocess.run([sys.executable, str(PIN_SCRIPT), "--root", str(root)], capture_output=True, text=True)
    assert proc.returncode == 2 and "constraints.txt" in proc.stderr and message in proc.stderr, proc.stderr


def test_every_third_party_module_the_package_imports_is_a_dependency():
    """A module imported by mprnet but only present as someone else's dependency (as pillow was)
    would be missing from the generated environments."""
    import ast
    from importlib.metadata import packages_distributions

    declared = {_name(r) for r in _project()["dependencies"]}
    providers = packages_distributions()
    undeclared = {}
    for path in sorted((ROOT / "mprnet").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top == "mprnet":
                    continue
                dists = {_name(d) for d in providers.get(top, [])}
                if not dists & declared:
                    undeclared.setdefault(top, path.relative_to(ROOT).as_posix())
    assert not undeclared, f"imported but not in pyproject's dependencies: {undeclared}"


def test_console_command_lists_its_subcommands():
    out = subprocess.run(
        [sys.executable, "-m", "mprnet.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("score", "fetch", "prepare", "make-demo", "train", "restore"):
        assert command in out, f"`mprnet --help` does not list {command!r}"


def test_the_command_line_starts_without_the_heavy_libraries():
    """`mprnet --help` (and every command before it runs) loads none of torch, pandas, matplotlib,
    Numba, SciPy or OpenCV: each command imports what it runs when it runs."""
    code = ("import sys; from mprnet.cli import build_parser; build_parser(); "
            "print(' '.join(sorted(m for m in ('torch', 'pandas', 'matplotlib', 'numba', 'scipy', 'cv2', 'skimage') "
            "if m in sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == [], f"mprnet --help imports {loaded}"


def test_the_vocabulary_imports_nothing_of_the_package():
    """mprnet.vocabulary is shared by the study and the report; it depends on neither."""
    import ast

    tree = ast.parse((ROOT / "mprnet" / "vocabulary.py").read_text())
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert all(isinstance(node, ast.ImportFrom) and node.module == "__future__" for node in imports)
