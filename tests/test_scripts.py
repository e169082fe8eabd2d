"""The wrapper of the workflow's script jobs: all output in the rule's log, user errors as one
line and status 2, crashes with their traceback and status 1."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from mprnet.errors import DataError
from mprnet.scripts import job_log


def _snakemake(tmp_path):
    return SimpleNamespace(log=[str(tmp_path / "job.log")], rule="report_figures")


def test_printout_of_python_and_of_c_code_goes_to_the_rule_log(tmp_path):
    with job_log(_snakemake(tmp_path)):
        print("wrote figures/a.png")
        subprocess.run([sys.executable, "-c", "import os; os.write(2, b'from fd 2\\n')"], check=True)
    assert (tmp_path / "job.log").read_text() == "wrote figures/a.png\nfrom fd 2\n"
    print("after")  # the process's own output is back afterwards
    assert (tmp_path / "job.log").read_text() == "wrote figures/a.png\nfrom fd 2\n"


def test_a_user_error_is_one_line_in_the_log_and_exit_status_2(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        with job_log(_snakemake(tmp_path)):
            raise DataError("results/x/summary.csv: missing columns psnr")
    assert exit_info.value.code == 2
    assert (tmp_path / "job.log").read_text() == "report_figures: error: results/x/summary.csv: missing columns psnr\n"


def test_a_crash_writes_its_traceback_to_the_log_and_exits_1(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        with job_log(_snakemake(tmp_path)):
            1 / 0
    assert exit_info.value.code == 1
    log = (tmp_path / "job.log").read_text()
    assert log.startswith("Traceback") and "ZeroDivisionError: division by zero" in log
