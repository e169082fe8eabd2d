"""Hand a local copy of a manual source to ``mprnet fetch``: link its files into the drop folder.

A source that cannot be downloaded automatically (``kind: manual`` in the registry) is picked
up by ``mprnet fetch`` from ``<data>/drop/<source_id>/``, checked against the lock and moved
into ``<data>/downloads/<source_id>/``. When a copy of the files already sits on the machine
(a lab share, ``../shared/realdata/rain100L``), :func:`stage_drop` puts it there without
touching it: every file is hard-linked (copied where links are impossible, e.g. across file
systems or for files of another user under ``fs.protected_hardlinks``), and the copy itself
is never written, moved or deleted.

The lock that holds the source (the pinned ``config/datasets.lock.yaml``, or the data folder's
trust-on-first-use ``downloads/sources.lock.yaml``) records its files by their path inside the
source folder, e.g. ``rain100L/test/rain/norain-1.png``. The copy may be given as that folder
(``.../rain100L``, whatever its name) or as a folder above it (``.../realdata``): the placement
under which every locked file exists with its locked size is used, and only the locked files
are linked (a README or checksum list next to them stays out). A copy that matches no
placement is refused before anything is linked, with the files that are missing or differ.

Command line (the ``make real-study`` target uses it)::

    python -m mprnet.data.drop NAME DIR [--registry config/datasets.yaml] [--data-dir data]

NAME is a dataset or source id of the registry; the dataset must have one source.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from ..errors import ConfigError, DataError
from .fetch import source_files
from .lock import FileRecord, SourceLocks
from .registry import Registry, load_registry


def source_id_of(registry: Registry, name: str) -> str:
    """The source behind ``name`` (a source id, or a dataset with exactly one source)."""
    if name in registry.sources:
        return name
    ids = registry.source_ids(name)  # ConfigError naming the registry for an unknown dataset
    if len(ids) != 1:
        raise ConfigError(f"{registry.path}: dataset {name!r} has {len(ids)} sources ({', '.join(ids)}); "
                          "stage them one by one by source id")
    return ids[0]


def _placement(src: Path, locked: dict[str, FileRecord], source_id: str, lock_path: Path) -> tuple[str, list[str]]:
    """The prefix under which ``src`` lines up with the locked paths, or raise naming the misfits.

    A prefix of k components means ``src`` stands for ``drop/<source_id>/<prefix>``; k runs
    from 0 (``src`` holds the locked paths as they are) to the depth the paths share.
    """
    paths = sorted(locked)
    parts = [p.split("/") for p in paths]
    shared = 0
    while all(len(p) > shared + 1 and p[shared] == parts[0][shared] for p in parts):
        shared += 1
    reports = []
    for k in range(shared + 1):
        prefix = "/".join(parts[0][:k])
        missing, differ = [], []
        for rel in paths:
            inside = rel[len(prefix) + 1:] if prefix else rel
            candidate = src / inside
            if not candidate.is_file():
                missing.append(inside)
            elif candidate.stat().st_size != locked[rel].size:
                differ.append(f"{inside} ({candidate.stat().st_size} bytes, locked {locked[rel].size})")
        if not missing and not differ:
            return prefix, paths
        found = [f"{len(found)} {what}, e.g. {', '.join(found[:3])}" for found, what in
                 ((missing, "missing"), (differ, "of another size")) if found]
        reports.append(f"read as drop/{source_id}/{prefix + '/' if prefix else ''}: {'; '.join(found)}")
    raise DataError(
        f"{src} is not the copy {lock_path} records for source {source_id!r} ({len(paths)} files); nothing was "
        f"linked. {' | '.join(reports)}. Point at the folder that holds the whole copy"
        f"{f' (the {parts[0][0]}/ folder or the one above it)' if shared else ''}. For another copy of the same "
        f"data (other names, layout or bytes), put it in the drop folder by hand and accept it on purpose with "
        f"`mprnet fetch {source_id} --update-lock`.")


def _link_or_copy(src: Path, dst: Path) -> str:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        if os.path.samefile(src, dst):
            return "kept"
        dst.unlink()
    try:
        os.link(src, dst)
        return "linked"
    except OSError:  # another file system, or protected_hardlinks for files of another user
        shutil.copyfile(src, dst)
        return "copied"


def stage_drop(src: str | os.PathLike, name: str, registry: Registry, *,
               data_dir: str | os.PathLike = "data") -> Path | None:
    """Put the files of the local copy ``src`` into the drop folder of ``name``'s source.

    Returns the drop folder ``<data_dir>/drop/<source_id>/``, or None when the source is
    fetched already (``<data_dir>/downloads/<source_id>/`` exists; nothing is done). Raises
    ``DataError`` when ``src`` is not a folder, when the source is not a manual one, or when
    ``src`` does not hold every file of the lock with its locked size (nothing is linked then).
    Without lock entries for the source, every file below ``src`` is linked under
    ``drop/<source_id>/<src name>/`` and the first successful prepare records them.
    """
    src = Path(src)
    data_dir = Path(data_dir)
    if not src.is_dir():
        raise DataError(f"{src}: not a folder")
    source_id = source_id_of(registry, name)
    source = registry.sources[source_id]
    if source["kind"] != "manual":
        raise DataError(f"source {source_id!r} is {source['kind']}, not manual: `mprnet fetch {name}` downloads it")
    if (data_dir / "downloads" / source_id).is_dir():
        return None
    drop = data_dir / "drop" / source_id
    locks = SourceLocks.for_data(registry.lock_path, data_dir)
    locked = locks.files(source_id)
    if locked:
        prefix, paths = _placement(src, locked, source_id, locks.holder(source_id).path)
        jobs = [(src / (rel[len(prefix) + 1:] if prefix else rel), drop / rel) for rel in paths]
    else:
        jobs = [(path, drop / src.resolve().name / path.relative_to(src)) for path in source_files(src)]
        if not jobs:
            raise DataError(f"{src}: no files")
    done: dict[str, int] = {}
    for origin, target in jobs:
        how = _link_or_copy(origin, target)
        done[how] = done.get(how, 0) + 1
    print(f"{source_id}: {', '.join(f'{n} {how}' for how, n in sorted(done.items()))} from {src} into {drop}"
          + ("" if locked else " (not in a lock yet: the first successful prepare records them)"))
    return drop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mprnet.data.drop",
        description="Link (or copy) a local copy of a manual source into DATA/drop/<source>/ for "
                    "`mprnet fetch`, checked against the lock first; the copy itself is never modified.")
    parser.add_argument("name", metavar="NAME", help="dataset or source id of the registry")
    parser.add_argument("folder", metavar="DIR", type=Path, help="the files as distributed")
    parser.add_argument("--registry", type=Path, default=Path("config/datasets.yaml"))
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    try:
        registry = load_registry(args.registry)
        if stage_drop(args.folder, args.name, registry, data_dir=args.data_dir) is None:
            print(f"{source_id_of(registry, args.name)}: already in {args.data_dir / 'downloads'}; nothing to stage")
    except (DataError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
