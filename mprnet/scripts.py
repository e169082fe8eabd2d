"""What every ``workflow/scripts/*.py`` of the rules does around its one package call.

Snakemake runs a rule's ``script:`` in a fresh Python process with a ``snakemake`` object holding
the rule's input, output, params and log (Python values: nothing is serialised on a command
line). :func:`job_log` sends everything the step prints to the rule's log file, like the shell
rules' ``> {log} 2>&1``: Python's and C libraries' output alike (file descriptors 1 and 2 are
redirected), and the traceback of a crash. An error of the user's input (:class:`MPRNetError`)
becomes one line in that log and exit status 2, as the ``mprnet`` command does; any other
exception is written with its traceback and exits with status 1.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from typing import Iterator

from .errors import MPRNetError, one_line


@contextlib.contextmanager
def _output_to(path: str) -> Iterator[None]:
    """sys.stdout, sys.stderr and file descriptors 1 and 2 all write to ``path`` (truncated)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "w", buffering=1) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)


@contextlib.contextmanager
def job_log(snakemake) -> Iterator[None]:
    """Run the body with its output in ``snakemake.log[0]``; exit 2 on MPRNetError, 1 on a crash."""
    status = 0
    with _output_to(snakemake.log[0]):
        try:
            yield
        except MPRNetError as exc:
            print(f"{snakemake.rule}: error: {one_line(exc)}", file=sys.stderr)
            status = 2
        except Exception:  # noqa: BLE001 - a bug: its traceback belongs in the job's log
            traceback.print_exc()
            status = 1
    if status:
        print(f"{snakemake.rule}: failed, see {snakemake.log[0]}", file=sys.stderr)
        sys.exit(status)
