"""Turn each dataset's original layout into the study's one layout.

Every prepared split is ``data/<name>/<split>/{input,target}/<stem>.png`` with a
``manifest.csv`` (stem, height, width, input_sha256, target_sha256) and a ``provenance.json``
(registry entry, converter settings, the locked sha256 of the source files). A split is built
in a hidden temporary folder and renamed into place only after its pairs are validated:
every image it keeps was decoded (a truncated or corrupt file is refused, named), every input
has a target of the same size, every stem is in the dataset's canonical form (``layout.stem``,
:mod:`mprnet.data.stems`), the number of pairs is the one the registry expects, or a
``DataError`` lists the offenders and nothing is left behind. The converters
for each original layout live in ``mprnet.data.converters``.

Trust on first use: the first split that is built from a source without complaint records
the sha256 of every file of the source in ``data/downloads/sources.lock.yaml`` (unless the
committed ``config/datasets.lock.yaml`` pins it); later downloads and mirrors of the source
must reproduce them (:mod:`mprnet.data.lock`). A split accepted with
``allow_count_mismatch`` records nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .. import __version__
from ..atomic import atomic_write_text
from ..errors import DataError
from .converters import WHOLE_FOLDER_CONVERTERS, PrepareContext, convert
from .fetch import hash_files
from .lock import SourceLocks
from .pairs import read_manifest, validate_pairs, write_manifest
from .registry import Registry, select_splits
from .stems import check_canonical

__all__ = ["prepare_dataset", "read_manifest", "validate_pairs", "write_manifest"]


def _trust_source(ctx: PrepareContext, source_id: str, clean: bool) -> dict[str, Any]:
    """Record the source's files in the trusted lock if no lock holds them yet and the split was
    built ``clean`` (no count mismatch accepted); return what provenance.json says about it."""
    locks = SourceLocks.for_data(ctx.registry.lock_path, ctx.data_dir)
    recorded = False
    if clean and locks.holder(source_id) is None:
        recorded = locks.trust(source_id, hash_files(ctx.downloads / source_id, source_id, ctx.progress))
    holder = locks.holder(source_id)
    return {"state": locks.state(source_id), "lock": str(holder.path) if holder else None,
            "recorded_by_this_prepare": recorded, "files": locks.files(source_id)}


def _provenance(ctx: PrepareContext, split: str | None, spec: dict, count: int | None, trust: dict) -> str:
    records = trust["files"]
    return json.dumps({
        "dataset": ctx.name,
        "split": split,
        "title": ctx.entry["title"],
        "task": ctx.entry["task"],
        "protocol": ctx.entry["protocol"],
        "converter": ctx.entry["layout"]["converter"],
        "settings": {k: v for k, v in spec.items()},
        "options": {k: v for k, v in ctx.options.items() if not k.startswith("_") and v is not None},
        "source": spec["source"],
        "source_url": ctx.registry.sources[spec["source"]]["url"],
        "source_lock": {key: value for key, value in trust.items() if key != "files"},
        "source_files_sha256": {rel: rec.sha256 for rel, rec in sorted(records.items())},
        "count": count,
        "notes": ctx.entry.get("notes", []) + ctx.notes,
        "mprnet_version": __version__,
    }, indent=2) + "\n"


def _replace_dir(tmp: Path, final: Path) -> None:
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def prepare_dataset(
    name: str,
    registry: Registry,
    *,
    data_dir: str | os.PathLike = "data",
    splits: list[str] | None = None,
    force: bool = False,
    allow_count_mismatch: bool = False,
    options: dict[str, Any] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Build ``data/<name>/<split>/`` for each split (see the module docstring); return the folders."""
    entry = registry.dataset(name)
    layout = entry["layout"]
    data_dir = Path(data_dir)
    chosen = select_splits(registry.path, name, layout["splits"], splits)
    whole = layout["converter"] in WHOLE_FOLDER_CONVERTERS
    built = []
    for split in chosen:
        spec = layout["splits"][split]
        final = data_dir / name if whole else data_dir / name / split
        # Prepared means "has its manifest" (written last): a folder without one is an
        # incomplete leftover, or was created by a workflow manager (Snakemake makes the
        # folders of a job's outputs, and deletes stale outputs, before running it).
        marker = final / (".provenance.json" if whole else "manifest.csv")
        if marker.exists() and not force:
            raise DataError(f"{final}: already prepared; pass --force to rebuild it")
        parent_existed = final.parent.exists()
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.prepare-", dir=final.parent))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the data set is not
        ctx = PrepareContext(name, entry, registry, data_dir, dict(options or {}), progress)
        # Converters that can name the missing pairs check the count before writing anything.
        ctx.options.setdefault("_allow_count_mismatch", allow_count_mismatch)
        try:
            convert(ctx, split, spec, tmp)
            count = None
            if not whole:
                rows = write_manifest(tmp)
                check_canonical([row["stem"] for row in rows], ctx.scheme, f"{final}")
                count = len(rows)
                expected = ctx.options.get("_expected_count", spec.get("count"))
                if expected is not None and count != expected:
                    message = (f"{final}: {count} pairs, but {registry.path} expects {expected} for "
                               f"{name}/{split} (the remote files may have changed)")
                    if not allow_count_mismatch:
                        raise DataError(message + "; nothing was written (--allow-count-mismatch accepts it)")
                    import warnings

                    warnings.warn(message, stacklevel=2)
                    ctx.notes.append(message)
                    ctx.count_mismatch = True
            trust = _trust_source(ctx, spec["source"], clean=not ctx.count_mismatch)
            atomic_write_text(tmp / ("provenance.json" if not whole else ".provenance.json"),
                              _provenance(ctx, None if whole else split, spec, count, trust))
            _replace_dir(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if not parent_existed and not any(final.parent.iterdir()):
                final.parent.rmdir()
            raise
        built.append(final)
    return built
