"""The records of which bytes every source is made of, and the comparison of downloads with them.

A lock maps each source to its files (path inside the source folder, size, sha256). Two locks
hold them (:class:`SourceLocks`):

* the *pinned* lock ``config/datasets.lock.yaml``, committed with the project: bytes the
  project vouches for (the Rain100L distribution of the real-data study);
* the *trusted* lock ``<data>/downloads/sources.lock.yaml``, beside the data: trust on first
  use, like SSH's ``known_hosts``. A source that is not pinned is recorded there by the first
  ``mprnet prepare`` that builds a dataset from it without complaint (pairs, sizes, the
  registry's count), not by the first download: a defective first copy (a half-listed Drive
  folder, a copy with a duplicate) is refused by ``prepare`` and so never becomes the truth.

Every later download of a source, from the original host or a mirror, is compared with the
lock that holds it; a file that changed, appeared or disappeared is an error naming each such
file, not a silent new baseline: tables computed on other bytes would not be comparable.
``mprnet fetch --update-lock`` accepts a change on purpose.
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
    "# The pinned lock: sources whose bytes the project vouches for; commit it.\n"
    "# Later downloads (original host or mirror) must match these sizes and sha256 sums.\n"
)
TRUSTED_LOCK = "sources.lock.yaml"  # in <data>/downloads/
TRUSTED_HEADER = (
    "# Trust on first use (like SSH's known_hosts): written by `mprnet prepare` for each source the\n"
    "# first time a dataset is prepared from it without complaint. Later downloads and mirrors of a\n"
    "# source must match these sizes and sha256 sums; `mprnet fetch NAME --update-lock` accepts a change.\n"
)


@dataclass(frozen=True)
class FileRecord:
    size: int
    sha256: str


class LockFile:
    """One lock file: ``{source_id: {path: FileRecord}}``, read at construction, merged on save."""

    def __init__(self, path: str | os.PathLike, *, header: str = HEADER):
        self.path = Path(path)
        self.header = header
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
            atomic_write_text(self.path, self.header + yaml.safe_dump(data, sort_keys=False, width=120))
        self.sources = merged
        self._updated.clear()


def trusted_lock(downloads: str | os.PathLike) -> LockFile:
    """The trust-on-first-use lock of a data folder's ``downloads/``."""
    return LockFile(Path(downloads) / TRUSTED_LOCK, header=TRUSTED_HEADER)


class SourceLocks:
    """The pinned lock and the trusted (first-use) lock, consulted in that order.

    A source is held by at most one of them: the pinned lock wins, and the trusted lock never
    records a pinned source.
    """

    def __init__(self, pinned: LockFile, trusted: LockFile):
        self.pinned = pinned
        self.trusted = trusted

    @classmethod
    def for_data(cls, pinned_path: str | os.PathLike, data_dir: str | os.PathLike) -> SourceLocks:
        """The registry's lock (``config/datasets.lock.yaml``) and ``<data_dir>/downloads/sources.lock.yaml``."""
        return cls(LockFile(pinned_path), trusted_lock(Path(data_dir) / "downloads"))

    def refresh(self, source_id: str) -> None:
        self.pinned.refresh(source_id)
        self.trusted.refresh(source_id)

    def holder(self, source_id: str) -> LockFile | None:
        """The lock that records ``source_id``, or None before its first successful prepare."""
        for lock in (self.pinned, self.trusted):
            if lock.sources.get(source_id):
                return lock
        return None

    def files(self, source_id: str) -> dict[str, FileRecord]:
        holder = self.holder(source_id)
        return holder.files(source_id) if holder else {}

    def state(self, source_id: str) -> str:
        """``pinned``, ``trusted`` or ``-`` (not recorded yet)."""
        holder = self.holder(source_id)
        return "-" if holder is None else "pinned" if holder is self.pinned else "trusted"

    def check(self, source_id: str, found: dict[str, FileRecord], *, where: str, update: bool = False) -> None:
        """Compare a download with the lock that holds the source (``LockFile.check``).

        A source that no lock holds is accepted as it is: it is recorded by the first prepare
        that succeeds (:meth:`trust`). With ``update`` the holding lock takes the new files.
        """
        holder = self.holder(source_id)
        if holder is None:
            return
        holder.check(source_id, found, where=where, update=update)
        if holder.changed:
            holder.save()

    def trust(self, source_id: str, found: dict[str, FileRecord]) -> bool:
        """Record ``found`` in the trusted lock unless some lock holds the source; True if recorded."""
        self.refresh(source_id)
        if self.holder(source_id) is not None:
            return False
        self.trusted.check(source_id, found, where="first use", update=True)
        self.trusted.save()
        return True
