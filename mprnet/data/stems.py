"""One name per test image, whatever copy of a dataset it was prepared from.

Scores, the authors' released result images and comparisons between labs all pair images by
*stem* (the file name without extension). Copies of the same benchmark name the same image
differently: the official RealBlur lists call a pair ``scene230/blur/blur_7.png`` while
MPRNet's copy (and so the released results) call it ``scene230-7.png``; MPRNet's Rain100L is
``7.png``, the JORDER release ``norain-7.png``. Each dataset of the registry therefore names a
*stem scheme* (``layout.stem``), and every converter's pairs are renamed to the scheme's
canonical form before anything is written. A stem that fits none of the forms a scheme reads
is an error naming the file, so a stray copy (``926_10(1).jpg``) cannot slip in under a new
name.

The canonical forms are those of the authors' released results (MPRNet's test copies), so a
study can score those results against any copy of the test set. ``docs/data.md`` lists them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError

Pair = tuple[str, Path, Path]


@dataclass(frozen=True)
class StemScheme:
    """How a dataset names its images.

    ``canonical``: the form every prepared stem has (a regular expression, matched in full);
    ``readers``: other forms found in circulating copies, each a pattern and the replacement
    that gives the canonical stem (``re.Match.expand`` syntax). ``example`` and ``meaning`` are
    for messages and documentation.
    """

    name: str
    canonical: str
    example: str
    meaning: str
    readers: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def is_canonical(self, stem: str) -> bool:
        return re.fullmatch(self.canonical, stem) is not None

    def canonical_stem(self, raw: str) -> str | None:
        """The canonical stem of ``raw``, or None when ``raw`` fits none of the known forms."""
        if self.is_canonical(raw):
            return raw
        for pattern, replacement in self.readers:
            match = re.fullmatch(pattern, raw)
            if match:
                stem = match.expand(replacement)
                return stem if self.is_canonical(stem) else None
        return None


SCHEMES: dict[str, StemScheme] = {scheme.name: scheme for scheme in (
    StemScheme(
        "number", r"[1-9][0-9]*", "7",
        "the image's number N, without leading zeros (MPRNet's N.png; JORDER's norain-N.png and "
        "rain-N.png and MSPFN's N.png are read as N)",
        readers=((r"0+([1-9][0-9]*)", r"\1"),),
    ),
    StemScheme(
        "scene_frame", r"scene[0-9]{3}-[1-9][0-9]*", "scene230-7",
        "RealBlur: scene<NNN>-<k>, the form of MPRNet's copy and of the released results "
        "(the official lists' scene230/blur/blur_7.png is read as scene230-7)",
        readers=((r"(scene[0-9]{3})[-_]0*([1-9][0-9]*)", r"\1-\2"),),
    ),
    StemScheme(
        "gopro", r"GOPR[0-9]{4}_[0-9]{2}_[0-9]{2}-[0-9]{6}", "GOPR0884_11_00-000285",
        "GoPro: <sequence>-<frame> (MPRNet's flattened copy; GOPRO_Large's "
        "<sequence>/blur/<frame>.png is read as the same)",
    ),
    StemScheme(
        "image_k", r"[1-9][0-9]*_[1-9][0-9]*", "926_10",
        "Rain14000 (Test2800): <image>_<k>, k = 1..14 rain versions of one clean image",
    ),
    StemScheme(
        "block", r"[0-9]{4}_[0-9]{2}", "0001_01",
        "<image:04d>_<block:02d>, both 1-based (SIDD validation blocks as in test_SIDD.py, DND "
        "boxes as in test_DND.py)",
    ),
    StemScheme(
        "name", r"[^./\\\x00-\x1f][^/\\\x00-\x1f]*", "100fromGOPR1040.MP4",
        "the file name as distributed (the copies agree on it), without extension",
    ),
)}


def scheme_of(entry: dict) -> StemScheme:
    """The stem scheme a registry dataset entry names (``layout.stem``)."""
    return SCHEMES[entry["layout"]["stem"]]


def canonical_pairs(pairs: list[Pair], scheme: StemScheme, where: str) -> list[Pair]:
    """``pairs`` with every stem in the canonical form of ``scheme``, in their order.

    Raises ``DataError`` listing every input whose stem fits no form the scheme reads, and
    every canonical stem that two inputs would share (``scene230-7`` and ``scene230_7`` in one
    copy); ``where`` names the copy in the message.
    """
    renamed: dict[str, Pair] = {}
    problems = []
    for stem, inp, tgt in pairs:
        canonical = scheme.canonical_stem(stem)
        if canonical is None:
            problems.append(f"{inp}: stem {stem!r} is not a {scheme.name} stem "
                            f"(expected like {scheme.example!r}: {scheme.meaning})")
        elif canonical in renamed:
            problems.append(f"{inp}: stem {stem!r} names the same image as {renamed[canonical][1]} "
                            f"({canonical!r})")
        else:
            renamed[canonical] = (canonical, inp, tgt)
    if problems:
        shown = "; ".join(problems[:20]) + (f"; ... ({len(problems)} in all)" if len(problems) > 20 else "")
        raise DataError(f"{where}: {len(problems)} image name(s) do not fit the dataset's stem scheme: {shown}")
    return list(renamed.values())


def check_canonical(stems: list[str], scheme: StemScheme, where: str) -> None:
    """Raise ``DataError`` naming every stem of a written split that is not canonical."""
    bad = [s for s in stems if not scheme.is_canonical(s)]
    if bad:
        raise DataError(f"{where}: {len(bad)} stem(s) not in the {scheme.name} form {scheme.example!r}: "
                        + ", ".join(bad[:20]))
