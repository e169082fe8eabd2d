"""rule report_index: results/<study>/README.md indexing every table, figure and record, the
study's cost headline at its top."""

from pathlib import Path

from mprnet.report.jobs import results_index
from mprnet.scripts import job_log

with job_log(snakemake):
    out = snakemake.output[0]
    results_index(snakemake.wildcards.study, Path(out).parent, out, provenance_json=snakemake.input.provenance,
                  cost=snakemake.input.cost)
