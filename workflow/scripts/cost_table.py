"""rule report_cost_table: the device-hours of every job that computed (every attempt of every
training run, every restore and score job) and cost.json with the study's cost headline."""

from pathlib import Path

from mprnet.report.jobs import cost_table
from mprnet.report.loaders import manifest_files
from mprnet.scripts import job_log
from mprnet.vocabulary import MANIFEST_JOB_COSTS

with job_log(snakemake):
    cost_table(manifest_files(snakemake.input.manifest, MANIFEST_JOB_COSTS), Path(snakemake.output.md).parent,
               snakemake.output.record, device=snakemake.params.settings.device)
