"""What every ``workflow/scripts/*.py`` of the rules does around its one package call.

Snakemake runs a rule's ``script:`` in a fresh Python process with a ``snakemake`` object holding
the rule's input, output, params and log (Python values: nothing is serialised on a command
line). :func:`job_log` sends the step's printout to the rule's log file, like the shell rules'
``> {log} 2>&1``, and turns an error of the user's input (:class:`MPRNetError`) into one line in
that log and exit status 2, as the ``mprnet`` command does.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator

from .errors import MPRNetError


@contextlib.contextmanager
def job_log(snakemake) -> Iterator[None]:
    """Run the body with stdout and stderr appended to ``snakemake.log[0]``; exit 2 on MPRNetError."""
    with open(snakemake.log[0], "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            yield
        except MPRNetError as exc:
            print(f"{snakemake.rule}: error: {exc}", file=log)
            log.flush()
            sys.exit(2)
