"""The wrapper of the workflow's script jobs: printout to the rule's log, user errors as one line + status 2."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mprnet.errors import DataError
from mprnet.scripts import job_log


def _snakemake(tmp_path):
    return SimpleNamespace(log=[str(tmp_path / "job.log")], rule="report_figures")


def test_printout_goes_to_the_rule_log(tmp_path):
    with job_log(_snakemake(tmp_path)):
        print("wrote figures/a.png")
    assert (tmp_path / "job.log").read_text() == "wrote figures/a.png\n"


def test_a_user_error_is_one_line_in_the_log_and_exit_status_2(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        with job_log(_snakemake(tmp_path)):
            raise DataError("results/x/summary.csv: missing columns psnr")
    assert exit_info.value.code == 2
    assert (tmp_path / "job.log").read_text() == "report_figures: error: results/x/summary.csv: missing columns psnr\n"


def test_a_bug_keeps_its_traceback(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with job_log(_snakemake(tmp_path)):
            1 / 0
