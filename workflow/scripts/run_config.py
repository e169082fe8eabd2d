"""rule run_config: write a run's `mprnet train` config (params.config, from the study); a
checkpoint in the run's folder trained under another config is moved aside first."""

from mprnet.scripts import job_log
from mprnet.study.files import set_aside_stale_checkpoint, write_run_config

with job_log(snakemake):
    set_aside_stale_checkpoint(snakemake.params.run_dir, snakemake.params.config)
    write_run_config(snakemake.params.config, snakemake.output[0])
