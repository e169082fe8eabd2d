"""rule run_config: write a run's `mprnet train` config (params.config, from the study)."""

from mprnet.scripts import job_log
from mprnet.study.files import write_run_config

with job_log(snakemake):
    write_run_config(snakemake.params.config, snakemake.output[0], snakemake.params.run_dir)
