"""The JORDER deraining sets (Rain100L/H and their training sets RainTrainL/H) as they circulate.

They come in several layouts, all of which number the pairs 1..N and say by folder or file prefix
which image is rainy (:data:`RAIN_LAYOUTS`). Pairs are matched by that number N, never by list
position or full file name; ``find_rain_folder`` finds the one folder holding a known layout,
``rain_layout_pairs`` pairs it. The ``rain_norain`` converter (:mod:`.converters`) uses both.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DataError
from ..images import list_images
from .finding import find_paths, visible_entries
from .pairs import Pair

# layout name -> (rainy side, clean side), as shown in error messages
RAIN_LAYOUTS = {
    "rain_norain_folders": ("rain/<x>-N.png", "norain/<x>-N.png"),  # RCDNet: both named norain-N
    "rainy_folder": ("rainy/rain-N.png", "norain-N.png"),           # PReNet's Rain100L/Rain100H
    "side_by_side": ("rain-N.png", "norain-N.png"),                 # PReNet's RainTrainL/RainTrainH
    "mspfn_crops": ("inputcrop/N.png", "cleancrop/N.png"),          # MSPFN's R100L/R100H test data
}
_NUMBERED = re.compile(r"^(?P<prefix>[A-Za-z]*)[-_]?(?P<n>\d+)$")


def describe_rain_layouts() -> str:
    return "; ".join(f"{rain} + {clean}" for rain, clean in RAIN_LAYOUTS.values())


def _prefixed(images: list[Path], prefix: str) -> list[Path]:
    return [p for p in images if (m := _NUMBERED.match(p.stem)) and m["prefix"].lower() == prefix]


def detect_rain_layouts(folder: Path) -> list[str]:
    """The layouts of :data:`RAIN_LAYOUTS` found directly in ``folder`` (normally one)."""
    images = list_images(folder)
    found = []
    if (folder / "rain").is_dir() and (folder / "norain").is_dir():
        found.append("rain_norain_folders")
    if (folder / "rainy").is_dir() and _prefixed(images, "norain"):
        found.append("rainy_folder")
    if _prefixed(images, "rain") and _prefixed(images, "norain"):
        found.append("side_by_side")
    if (folder / "inputcrop").is_dir() and (folder / "cleancrop").is_dir():
        found.append("mspfn_crops")
    return found


def _numbered(images: list[Path], prefixes: tuple[str, ...] | None, side: str,
              problems: list[str]) -> dict[int, Path]:
    """N -> file for one side of a layout; ``prefixes`` None accepts any word before N."""
    by_number: dict[int, Path] = {}
    for path in images:
        match = _NUMBERED.match(path.stem)
        if not match or (prefixes is not None and match["prefix"].lower() not in prefixes):
            problems.append(f"{path}: not a {side} image of this layout (expected a name like "
                            f"{'/'.join(f'{p}-N' for p in prefixes) if prefixes else '<x>-N or N'}.png)")
            continue
        number = int(match["n"])
        if number in by_number:
            problems.append(f"{path}: N={number} twice, also {by_number[number]}")
            continue
        by_number[number] = path
    return by_number


def rain_layout_pairs(folder: Path, layout: str) -> list[Pair]:
    """The pairs of ``folder`` in ``layout``, matched by N; stems are N (``7``: ``007`` and ``7`` are one N).

    Raises ``DataError`` listing every file whose name does not fit the layout, every N that
    occurs twice on one side, and every N that has a rainy image but no clean one or the
    reverse (naming the file that has no partner).
    """
    problems: list[str] = []
    if layout == "rain_norain_folders":
        rainy = _numbered(list_images(folder / "rain"), None, "rainy", problems)
        clean = _numbered(list_images(folder / "norain"), None, "clean", problems)
    elif layout == "rainy_folder":
        rainy = _numbered(list_images(folder / "rainy"), ("rain", "rainy"), "rainy", problems)
        clean = _numbered(list_images(folder), ("norain",), "clean", problems)
    elif layout == "side_by_side":
        images = list_images(folder)
        rainy = _numbered(_prefixed(images, "rain"), ("rain",), "rainy", problems)
        clean = _numbered([p for p in images if p not in set(_prefixed(images, "rain"))], ("norain",),
                          "clean", problems)
    elif layout == "mspfn_crops":
        rainy = _numbered(list_images(folder / "inputcrop"), ("",), "rainy", problems)
        clean = _numbered(list_images(folder / "cleancrop"), ("",), "clean", problems)
    else:
        raise ValueError(f"unknown rain layout {layout!r}")
    for number in sorted(set(rainy) - set(clean)):
        problems.append(f"N={number}: rainy {rainy[number]} has no clean image")
    for number in sorted(set(clean) - set(rainy)):
        problems.append(f"N={number}: clean {clean[number]} has no rainy image")
    if problems:
        shown = "; ".join(problems[:20]) + (f"; ... ({len(problems)} in all)" if len(problems) > 20 else "")
        raise DataError(f"{folder} ({RAIN_LAYOUTS[layout][0]} + {RAIN_LAYOUTS[layout][1]}): "
                        f"{len(problems)} problem(s): {shown}")
    if not rainy:
        raise DataError(f"{folder}: no images in the {RAIN_LAYOUTS[layout][0]} + {RAIN_LAYOUTS[layout][1]} layout")
    return [(str(n), rainy[n], clean[n]) for n in sorted(rainy)]


def _rain_layout_home(folder: Path) -> tuple[Path, list[str]]:
    """Where a layout sits: ``folder`` itself or, failing that, its only sub-folder (RCDNet's
    ``small/``, a wrapper folder from unpacking); returns that folder and the layouts found."""
    layouts = detect_rain_layouts(folder)
    if layouts:
        return folder, layouts
    subfolders = [p for p in visible_entries(folder) if p.is_dir()]
    if len(subfolders) == 1:
        inner = detect_rain_layouts(subfolders[0])
        if inner:
            return subfolders[0], inner
    return folder, []


def find_rain_folder(roots: list[Path], patterns: list[str]) -> tuple[Path, str]:
    """The one folder below ``roots`` that matches one of ``patterns`` and holds a known layout.

    Folders matching a pattern but holding no known layout are passed over; when no folder
    matches any pattern, the roots themselves are tried (a source that holds one split as is).
    Raises ``DataError`` when none or several qualify, or when a folder holds two layouts at once.
    """
    candidates = [p for pattern in patterns for p in find_paths(roots, pattern, dirs=True)]
    tried = candidates or list(roots)
    homes: dict[Path, list[str]] = {}
    for candidate in tried:
        home, layouts = _rain_layout_home(candidate)
        if layouts:
            homes[home] = layouts
    where = ", ".join(map(str, roots))
    if not homes:
        looked = "; ".join(
            f"{c} holds {', '.join(p.name + ('/' if p.is_dir() else '') for p in visible_entries(c)[:8]) or 'nothing'}"
            for c in tried[:6])
        matched = f"folders matching {' or '.join(map(repr, patterns))}" if candidates else \
            f"no folder matches {' or '.join(map(repr, patterns))}, so the source folders themselves"
        raise DataError(f"no rainy/clean pairs in a known layout under {where}: {matched} were searched "
                        f"({looked}). Known layouts: {describe_rain_layouts()}")
    if len(homes) > 1:
        raise DataError(f"{len(homes)} folders under {where} hold rainy/clean pairs for {' or '.join(patterns)}: "
                        f"{', '.join(map(str, homes))}; name one precisely (`folder:` in config/datasets.yaml)")
    (home, layouts), = homes.items()
    if len(layouts) > 1:
        raise DataError(f"{home} holds several layouts at once ({', '.join(layouts)}); it is not a copy as "
                        f"distributed. Known layouts: {describe_rain_layouts()}")
    return home, layouts[0]
