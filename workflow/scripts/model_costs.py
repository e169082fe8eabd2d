"""rule model_costs: parameters and GFLOPs of every model of the study (params.specs)."""

from mprnet.report.jobs import model_costs
from mprnet.scripts import job_log

with job_log(snakemake):
    model_costs(snakemake.params.specs, snakemake.output[0])
