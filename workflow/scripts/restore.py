"""rule restore: one test set restored with a run's model or the official weights (params.settings:
mprnet.study.spec.RestoreSettings)."""

from mprnet.restore import restore_checkpoint
from mprnet.scripts import job_log

with job_log(snakemake):
    s = snakemake.params.settings
    restore_checkpoint(snakemake.input.checkpoint, snakemake.params.inputs, snakemake.output[0], tile=s.tile,
                       overlap=s.overlap, precision=s.precision, save_float=s.save_float,
                       save_stages=s.save_stages)
