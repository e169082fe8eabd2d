"""Finding a source's files below the folders it was fetched and unpacked into.

Patterns match at any depth (``find_paths``); hidden files and macOS's ``__MACOSX`` folders are
never seen. ``find_one`` insists on exactly one match and names every candidate otherwise;
``describe_content`` lists what a folder holds for the messages that refuse it.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError

IGNORED_PARTS = ("__MACOSX",)


def visible(root: Path, path: Path) -> bool:
    parts = path.relative_to(root).parts
    return not any(p.startswith(".") or p in IGNORED_PARTS for p in parts)


def find_paths(roots: list[Path], pattern: str, *, dirs: bool) -> list[Path]:
    """Paths matching ``pattern`` at any depth below the roots (hidden and __MACOSX skipped)."""
    found: set[Path] = set()
    for root in roots:
        for candidate in list(root.glob(pattern)) + list(root.glob("**/" + pattern)):
            if (candidate.is_dir() if dirs else candidate.is_file()) and visible(root, candidate):
                found.add(candidate)
    return sorted(found)


def find_one(roots: list[Path], pattern: str | list[str], *, dirs: bool, what: str) -> Path:
    """The one path matching ``pattern`` (or any one of a list of patterns) below the roots."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    found = sorted({p for one in patterns for p in find_paths(roots, one, dirs=dirs)})
    if len(found) == 1:
        return found[0]
    where = ", ".join(str(r) for r in roots)
    shown_patterns = " or ".join(map(repr, patterns))
    if not found:
        raise DataError(f"no {what} matching {shown_patterns} under {where}")
    shown = ", ".join(str(p) for p in found[:6]) + (" ..." if len(found) > 6 else "")
    raise DataError(f"{len(found)} {what}s match {shown_patterns} under {where} ({shown}); "
                    "name it more precisely in config/datasets.yaml")


def visible_entries(folder: Path) -> list[Path]:
    """The entries directly in ``folder``, hidden ones and ``__MACOSX`` left out, by name."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.name not in IGNORED_PARTS)


def describe_content(roots: list[Path], limit: int = 12) -> str:
    """A short listing of what lies in ``roots``: files and folders two levels deep, with the
    number of files below each folder, e.g. ``RealBlur.zip, RealBlur/ (3 files)``."""
    entries = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if len(rel.parts) > 2 or not visible(root, path) or path.name.endswith(".part"):
                continue
            if path.is_dir():
                count = sum(1 for p in path.rglob("*") if p.is_file() and visible(root, p))
                entries.append(f"{rel.as_posix()}/ ({count} file{'s' if count != 1 else ''})")
            else:
                entries.append(rel.as_posix())
    if not entries:
        return "nothing"
    shown = ", ".join(entries[:limit])
    return shown + (f", ... ({len(entries)} entries in all)" if len(entries) > limit else "")
