"""rule report_cost_table: hours per trained model from the train rules' benchmark files."""

from pathlib import Path

from mprnet.report.jobs import cost_table
from mprnet.report.loaders import manifest_files
from mprnet.scripts import job_log
from mprnet.vocabulary import MANIFEST_TRAIN_BENCHMARKS

with job_log(snakemake):
    cost_table(manifest_files(snakemake.input.manifest, MANIFEST_TRAIN_BENCHMARKS), Path(snakemake.output.md).parent,
               device=snakemake.params.settings.device)
