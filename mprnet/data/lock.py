"""The committed record of which bytes every download produced.

``config/datasets.lock.yaml`` maps each source to its files (path inside the source folder,
size, sha256). The first verified download of a source records it; every later download,
from the original host or a mirror, must reproduce it byte for byte. A remote file that has
changed, appeared or disappeared is an error, not a silent new baseline: tables computed on
other bytes would not be comparable. ``mprnet fetch --update-lock`` accepts the change on
purpose.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..atomic import atomic_write_text
from ..errors import ConfigError, DataError
from .filelock import exclusive

HEADER = (
    "# Written by `mprnet fetch` on the first verified download of each source; commit it.\n"
    "# Later downloads (original host or mirror) must match these sizes and sha256 sums.\n"
)


@dataclass(frozen=True)
class FileRecord:
    size: int
    sha256: str


class LockFile:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.sources: dict[str, dict[str, FileRecord]] = {}
        self._updated: set[str] = set()
        if self.path.exists():
            self.sources = self._read()

    @property
    def changed(self) -> bool:
        return bool(self._updated)

    def _read(self) -> dict[str, dict[str, FileRecord]]:
        try:
            raw = yaml.safe_load(self.path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{self.path}: not valid YAML ({exc})") from None
        sources = raw.get("sources") or {}
        if not isinstance(sources, dict):
            raise ConfigError(f"{self.path}: 'sources' must be a mapping")
        result: dict[str, dict[str, FileRecord]] = {}
        for source_id, files in sources.items():
            if not isinstance(files, dict):
                raise ConfigError(f"{self.path}: sources.{source_id} must map file paths to records")
            entries: dict[str, FileRecord] = {}
            for rel, rec in files.items():
                try:
                    entries[str(rel)] = FileRecord(size=int(rec["size"]), sha256=str(rec["sha256"]).lower())
                except (TypeError, KeyError, ValueError):
                    raise ConfigError(
                        f"{self.path}: sources.{source_id}.{rel} needs 'size' and 'sha256'"
                    ) from None
            result[str(source_id)] = entries
        return result

    def refresh(self, source_id: str) -> None:
        """Re-read one source's entries from disk (another job may have recorded it)."""
        if source_id not in self._updated and self.path.exists():
            on_disk = self._read().get(source_id)
            if on_disk is None:
                self.sources.pop(source_id, None)
            else:
                self.sources[source_id] = on_disk

    def files(self, source_id: str) -> dict[str, FileRecord]:
        return dict(self.sources.get(source_id, {}))

    def check(self, source_id: str, found: dict[str, FileRecord], *, where: str, update: bool = False) -> None:
        """Compare the files of a fresh download with the lock; record them if the source is new.

        ``found`` maps paths inside the source folder to what was downloaded. Raises
        ``DataError`` listing every changed, new and missing file unless ``update`` is set.
        """
        locked = self.sources.get(source_id)
        if not locked or update:
            if locked != found:
                self.sources[source_id] = dict(found)
                self._updated.add(source_id)
            return
        problems = []
        for rel in sorted(set(locked) | set(found)):
            if rel not in found:
                problems.append(f"{rel}: in the lock but not downloaded")
            elif rel not in locked:
                problems.append(f"{rel}: downloaded but not in the lock")
            elif locked[rel] != found[rel]:
                problems.append(
                    f"{rel}: sha256 {found[rel].sha256[:16]}… size {found[rel].size}, "
                    f"lock says {locked[rel].sha256[:16]}… size {locked[rel].size}"
                )
        if problems:
            shown = "; ".join(problems[:10]) + (f"; ... ({len(problems)} in all)" if len(problems) > 10 else "")
            raise DataError(
                f"source {source_id!r} ({where}) does not match {self.path}: {shown}. The remote files "
                "changed or the copy is wrong (mismatching downloads are deleted). Use --update-lock only if the "
                "change is intended."
            )

    def save(self) -> None:
        """Write the sources this object recorded, merged into the file as it is now on disk.

        Parallel fetches of different sources each add their own entries; the folder lock
        makes the read-merge-write one step.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with exclusive(self.path.parent):
            merged = self._read() if self.path.exists() else {}
            for source_id in self._updated:
                merged[source_id] = self.sources[source_id]
            data = {
                "sources": {
                    sid: {rel: {"size": rec.size, "sha256": rec.sha256} for rel, rec in sorted(files.items())}
                    for sid, files in sorted(merged.items())
                }
            }
            atomic_write_text(self.path, HEADER + yaml.safe_dump(data, sort_keys=False, width=120))
        self.sources = merged
        self._updated.clear()
