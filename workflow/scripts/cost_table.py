"""rule report_cost_table: hours per trained model from the train rules' benchmark files."""

from pathlib import Path

from mprnet.report.jobs import cost_table
from mprnet.scripts import job_log

with job_log(snakemake):
    p = snakemake.params
    cost_table(zip(p.benchmark_fields, snakemake.input.benchmarks), Path(snakemake.output.md).parent,
               device=p.settings.device)
