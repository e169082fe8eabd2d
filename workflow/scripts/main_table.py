"""rule report_main_table: the paper-layout table of one task."""

from pathlib import Path

from mprnet.report.jobs import main_table
from mprnet.scripts import job_log

with job_log(snakemake):
    p = snakemake.params
    main_table(snakemake.input.summary, snakemake.wildcards.task, Path(snakemake.output.md).parent,
               with_average=p.with_average, selection=p.selection)
