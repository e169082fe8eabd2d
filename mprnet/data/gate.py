"""Acceptance by content: whether a download or a manual drop holds what ``prepare`` needs.

``mprnet fetch`` hands :func:`content_gate` to :func:`mprnet.data.fetch.fetch_source`: every
dataset split that reads the source is located (:func:`mprnet.data.converters.locate`: names and
small index files only) in the folder, archives unpacked safely first; a folder that fails is
refused with what was found and what is missing, whatever its archive's name.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from ..errors import DataError
from .converters import PrepareContext, locate
from .extract import unpack_archives
from .finding import describe_content
from .registry import Registry


def uses_of(registry: Registry, source_id: str) -> list[tuple[str, str]]:
    """(dataset, split) of every split of the registry that reads ``source_id``."""
    return [(name, split) for name, entry in registry.datasets.items()
            for split, spec in entry["layout"]["splits"].items() if spec["source"] == source_id]


def content_problems(registry: Registry, source_id: str, folder: Path, data_dir: Path) -> list[str]:
    """Why the files in ``folder`` cannot stand for ``source_id``: one line per dataset split that
    reads the source and cannot be located in them (its converter's own message), [] when every
    one can. Archives below ``folder`` are unpacked (safely) into ``data_dir/raw/<source_id>/``
    first, where ``prepare`` finds them later; whatever was unpacked there before is discarded.
    """
    raw = data_dir / "raw" / source_id
    if raw.exists():
        shutil.rmtree(raw)
    try:
        unpack_archives(folder, raw, quiet=True)
    except DataError as exc:
        return [str(exc)]
    roots = [p for p in (folder, raw) if p.is_dir()]
    problems = []
    for name, split in uses_of(registry, source_id):
        entry = registry.datasets[name]
        ctx = PrepareContext(name, entry, registry, data_dir, {"_allow_count_mismatch": True}, progress=False,
                             source_roots={source_id: roots})
        try:
            locate(ctx, split, entry["layout"]["splits"][split])
        except DataError as exc:
            problems.append(f"{name}/{split}: {exc}")
    return problems


def content_gate(registry: Registry, source_id: str, data_dir: Path) -> Callable[[Path], str | None]:
    """The ``content_check`` of :func:`mprnet.data.fetch.fetch_source` for ``source_id``: None when
    a folder (archives unpacked) holds what every dataset split of the source needs, else
    ``"found ...; missing: ..."`` (and the unpacked copy is removed again)."""
    def check(folder: Path) -> str | None:
        problems = content_problems(registry, source_id, folder, data_dir)
        if not problems:
            return None
        raw = data_dir / "raw" / source_id
        found = describe_content([p for p in (folder, raw) if p.is_dir()])
        shutil.rmtree(raw, ignore_errors=True)
        return f"found {found}; missing: " + "; ".join(problems)
    return check
