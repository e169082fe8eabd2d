"""Installed versions of the package's dependencies against the floors of ``pyproject.toml``.

The floors (``gdown>=6.3``, ...) are the lowest versions the code works with; ``pyproject.toml``
is the one place they are written, and the installed package's metadata carries them here.
``constraints.txt`` pins every dependency for ``make venv``, but a user who installs without
it can end up below a floor (pip keeps an older gdown that is already installed), and the
library then fails somewhere deep inside with a message that names neither the data source nor
the fix. :func:`require` turns that into one line before the library is used; :func:`outdated`
lists every dependency below its floor, which ``mprnet`` prints instead of a traceback when a
command fails inside a library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata

from .errors import MPRNetError

PACKAGE = "mprnet-study"
FIX = "pip install -c constraints.txt -e . (from the repository root), or `make venv`"


class DependencyError(MPRNetError):
    """An installed dependency is older than the floor ``pyproject.toml`` gives for it."""


@dataclass(frozen=True)
class Floor:
    dist: str      # distribution name as pyproject.toml writes it, e.g. "gdown"
    minimum: str   # the floor, e.g. "6.3"
    installed: str | None  # installed version, None when not installed

    @property
    def met(self) -> bool:
        return self.installed is not None and release(self.installed) >= release(self.minimum)

    def message(self) -> str:
        have = f"{self.dist} {self.installed} is installed" if self.installed else f"{self.dist} is not installed"
        return f"{have}, but {PACKAGE} needs {self.dist}>={self.minimum}: {FIX}, or pip install '{self.dist}>={self.minimum}'"


def release(version: str) -> tuple[int, ...]:
    """The numeric release part of a version: ``"2.13.0+cpu"`` -> (2, 13, 0); ``"6.3"`` -> (6, 3, 0)."""
    numbers = [int(n) for n in re.findall(r"\d+", re.split(r"[^\d.]", version, maxsplit=1)[0])]
    return tuple(numbers + [0] * (3 - len(numbers)))


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def floors() -> dict[str, Floor]:
    """{normalised name: Floor} for every ``name>=version`` dependency of the installed package.

    Empty when the package's metadata is not installed (a checkout on ``PYTHONPATH``); extras
    (``; extra == "dev"``) are left out.
    """
    try:
        requirements = metadata.requires(PACKAGE) or []
    except metadata.PackageNotFoundError:
        return {}
    found = {}
    for requirement in requirements:
        if ";" in requirement:  # an extra or an environment marker
            continue
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*\(?\s*>=\s*([0-9][0-9A-Za-z.+!-]*)", requirement)
        if not match:
            continue
        dist, minimum = match.group(1), match.group(2)
        try:
            installed = metadata.version(dist)
        except metadata.PackageNotFoundError:
            installed = None
        found[_normal(dist)] = Floor(dist, minimum, installed)
    return found


def require(dist: str) -> None:
    """Raise ``DependencyError`` (naming the installed version, the floor and the fix) when
    ``dist`` is below the floor ``pyproject.toml`` gives; do nothing when it is met or unknown."""
    floor = floors().get(_normal(dist))
    if floor is not None and not floor.met:
        raise DependencyError(floor.message())


def outdated() -> list[Floor]:
    """Every dependency of the package that is missing or below its floor."""
    return [floor for floor in floors().values() if not floor.met]
