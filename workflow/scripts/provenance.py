"""rule provenance: git commit, package versions, devices and the study config's hash."""

from mprnet.report.jobs import provenance
from mprnet.scripts import job_log

with job_log(snakemake):
    out = snakemake.output
    provenance(snakemake.params.config, out.json, markdown=out.md, html=out.html)
