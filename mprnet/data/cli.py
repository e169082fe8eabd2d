"""Data sub-commands: ``datasets``, ``fetch``, ``prepare`` and ``make-demo``.

Paths default to the project layout (run from the repository root): the registry
``config/datasets.yaml``, its lock ``config/datasets.lock.yaml`` and the data folder ``data/``
with ``downloads/`` (verified originals), ``raw/`` (unpacked archives), ``drop/`` (manual
downloads) and one folder per prepared dataset. Each command imports what it runs when it runs
(the registry, fetching, the converters with NumPy and the image readers), so that ``mprnet --help``
and the other commands start without them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError

EXIT_MANUAL = 3  # distinct from errors (2): the user has a download to make by hand


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", type=Path, default=Path("config/datasets.yaml"),
                        help="dataset registry (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=Path("data"),
                        help="data folder (default: %(default)s)")


def register(subparsers) -> None:
    p = subparsers.add_parser("datasets", help="list the datasets of the registry, their state and known defects",
                              description="List every dataset of config/datasets.yaml with its task, role, "
                                          "scoring protocol, stem scheme (an example stem), whether it is "
                                          "fetched and prepared, which lock holds its sources (pinned: "
                                          "config/datasets.lock.yaml; trusted: recorded on the first successful "
                                          "prepare in DATA/downloads/sources.lock.yaml), then its known defects.")
    _common(p)
    p.set_defaults(func=_datasets)

    p = subparsers.add_parser("fetch", help="download a dataset's sources (resumable, verified)",
                              description="Download the sources of NAME into DATA/downloads/<source>/: "
                                          "resumed, retried, accepted by content (what prepare needs must be "
                                          "there, whatever the archive is called), checked against the lock that "
                                          "holds the source (config/datasets.lock.yaml, or DATA/downloads/"
                                          "sources.lock.yaml once a dataset was prepared from it). NAME may also "
                                          "be a source id.")
    _common(p)
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--split", action="append", help="only the sources of this split (repeatable)")
    p.add_argument("--mirror", help="HTTP mirror laid out as <mirror>/<source>/<path> (or MPRNET_DATA_MIRROR)")
    p.add_argument("--retries", type=int, default=5, help="retries per file (default: %(default)s)")
    p.add_argument("--backoff", type=float, default=2.0, help="first wait between retries, doubled each time (s)")
    p.add_argument("--update-lock", action="store_true",
                   help="accept files that differ from the lock that holds the source, and record them there")
    p.add_argument("--verify", action="store_true", help="re-hash already fetched sources against the lock")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_fetch)

    p = subparsers.add_parser("prepare", help="convert a fetched dataset to data/<name>/<split>/{input,target}",
                              description="Convert the fetched sources of NAME to DATA/NAME/<split>/{input,target}/"
                                          "<stem>.png with manifest.csv and provenance.json.")
    _common(p)
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--split", action="append", help="only this split (repeatable)")
    p.add_argument("--force", action="store_true", help="rebuild splits that are already prepared")
    p.add_argument("--allow-count-mismatch", action="store_true",
                   help="accept a number of pairs different from the registry's (with a warning)")
    p.add_argument("--patches", type=int, help="sidd_train: patches per image (registry: 300)")
    p.add_argument("--patch-size", type=int, help="sidd_train: patch side in pixels (registry: 256)")
    p.add_argument("--seed", type=int, help="sidd_train: seed of the patch positions (registry: 0)")
    p.add_argument("--fetch", action="store_true",
                   help="first fetch the sources that are not in DATA/downloads yet (as `mprnet fetch`)")
    p.add_argument("--mirror", help="with --fetch: HTTP mirror (see `mprnet fetch --help`)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_prepare)

    p = subparsers.add_parser("make-demo", help="build the three small synthetic demo datasets (offline)",
                              description="Write DIR/demo_rain, DIR/demo_blur and DIR/demo_noise (train and "
                                          "test splits) from scikit-image's sample images.")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_make_demo)


def _datasets(args) -> int:
    import textwrap

    from .lock import SourceLocks
    from .registry import load_registry
    from .stems import SCHEMES

    registry = load_registry(args.registry)
    locks = SourceLocks.for_data(registry.lock_path, args.data_dir)
    rows = [("name", "task", "role", "protocol", "stem", "sources", "state", "lock")]
    for name, entry in registry.datasets.items():
        sources = registry.source_ids(name)
        fetched = all((args.data_dir / "downloads" / s).is_dir() for s in sources)
        splits = entry["layout"]["splits"]
        if entry["layout"]["converter"] in ("copy_files", "copy_tree"):
            prepared = (args.data_dir / name / ".provenance.json").is_file()
        else:
            prepared = all((args.data_dir / name / s / "manifest.csv").is_file() for s in splits)
        state = "prepared" if prepared else "fetched" if fetched else "-"
        kinds = ",".join(sorted({registry.sources[s]["kind"] for s in sources}))
        held = sorted({locks.state(s) for s in sources})
        scheme = SCHEMES.get(entry["layout"].get("stem", ""))
        stem = "-" if scheme is None else "as distributed" if scheme.name == "name" else scheme.example
        rows.append((name, entry["task"], entry["role"], entry["protocol"] or "-", stem, kinds, state,
                     held[0] if len(held) == 1 else ",".join(held)))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    defects = [(name, text) for name, entry in registry.datasets.items() for text in entry.get("defects", [])]
    if defects:
        print("\nKnown defects (config/datasets.yaml, `defects`):")
        for name, text in defects:
            print(textwrap.fill(text, width=100, initial_indent=f"  {name}: ", subsequent_indent="      "))
    return 0


def _targets(registry, name: str, splits) -> list[str]:
    if name in registry.datasets:
        return registry.source_ids(name, splits)
    if name in registry.sources:
        return [name]
    raise ConfigError(f"{registry.path}: no dataset or source {name!r}; known datasets: "
                      f"{', '.join(sorted(registry.datasets))}")


def _fetch(args) -> int:
    from .fetch import ManualDownloadRequired, RetryPolicy, fetch_source
    from .gate import content_gate
    from .lock import LockFile
    from .registry import load_registry

    registry = load_registry(args.registry)
    lock = LockFile(registry.lock_path)
    mirror = registry.resolve_mirror(args.mirror)
    retry = RetryPolicy(retries=args.retries, backoff=args.backoff)
    manual = []
    for name in args.names:
        for source_id in _targets(registry, name, args.split):
            try:
                folder = fetch_source(
                    source_id, registry.sources[source_id], downloads=args.data_dir / "downloads",
                    drop=args.data_dir / "drop", lock=lock, mirror=mirror, update_lock=args.update_lock,
                    verify=args.verify, retry=retry, progress=not args.quiet,
                    content_check=content_gate(registry, source_id, args.data_dir),
                )
            except ManualDownloadRequired as exc:
                print(exc.instructions, file=sys.stderr)
                manual.append(source_id)
                continue
            print(f"{source_id}: {folder}")
    return _manual_status(manual)


def _manual_status(manual: list[str]) -> int:
    if manual:
        print(f"mprnet fetch: waiting for manual downloads: {', '.join(manual)}", file=sys.stderr)
        return EXIT_MANUAL
    return 0


def _prepare(args) -> int:
    from .prepare import prepare_dataset
    from .registry import load_registry

    registry = load_registry(args.registry)
    options = {"patches": args.patches, "patch_size": args.patch_size, "seed": args.seed}
    if args.fetch:
        fetch_args = argparse.Namespace(
            registry=args.registry, data_dir=args.data_dir, names=args.names, split=args.split,
            mirror=args.mirror, retries=5, backoff=2.0, update_lock=False, verify=False, quiet=args.quiet,
        )
        status = _fetch(fetch_args)
        if status:
            return status
    for name in args.names:
        for folder in prepare_dataset(name, registry, data_dir=args.data_dir, splits=args.split,
                                      force=args.force, allow_count_mismatch=args.allow_count_mismatch,
                                      options=options, progress=not args.quiet):
            print(folder)
    return 0


def _make_demo(args) -> int:
    from .demo import make_demo

    for task, folder in make_demo(args.out, seed=args.seed).items():
        print(f"{task}: {folder}")
    return 0
