"""The ``mprnet`` command: one sub-command per step of the study.

Each area of the package registers its own sub-commands through ``register(subparsers)``;
errors caused by the user's input (``MPRNetError``) and of the file system (``OSError``: no space
left, no permission, named by the writer where it knows the file) print one bounded line
(``errors.one_line``) and exit with status 2, and so does a failure inside a library older than
the floor ``pyproject.toml`` gives it (the line names the library and the fix, :mod:`mprnet.deps`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import MPRNetError, one_line

COMMAND_MODULES = (
    "mprnet.data.cli",
    "mprnet.metrics.cli",
    "mprnet.training.cli",
    "mprnet.restore",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mprnet", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MPRNetError as exc:
        print(f"mprnet {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"mprnet {args.command}: error: {one_line(where + (exc.strerror or str(exc)))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mprnet {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # A failure inside a library older than the floor pyproject.toml gives it is a set-up
        # problem: say which library and how to fix it. Anything else is a bug: its traceback.
        from . import deps  # importlib.metadata: only after a failure

        old = deps.outdated()
        if not old:
            raise
        why = f"{type(exc).__name__}: {exc}; probably because " + "; ".join(floor.message() for floor in old)
        print(f"mprnet {args.command}: error: {one_line(why)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
