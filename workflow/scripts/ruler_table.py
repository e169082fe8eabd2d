"""rule report_rulers: the ruler table and figure from the ruler_scores jobs' per-image files."""

from pathlib import Path

from mprnet.report.jobs import ruler_report
from mprnet.report.loaders import manifest_files
from mprnet.scripts import job_log
from mprnet.vocabulary import MANIFEST_RULER_SCORES

with job_log(snakemake):
    ruler_report(manifest_files(snakemake.input.manifest, MANIFEST_RULER_SCORES), Path(snakemake.output.md).parent,
                 Path(snakemake.output.figure).with_suffix(""))
