"""rule run_config: write a run's `mprnet train` config (params.config, from the study); a run
in the run's folder trained under another config is moved to its superseded/ folder first, and
one of this config kept there is moved back (mprnet.study.files.keep_superseded_run)."""

from mprnet.scripts import job_log
from mprnet.study.files import keep_superseded_run, write_run_config

with job_log(snakemake):
    keep_superseded_run(snakemake.params.run_dir, snakemake.params.config)
    write_run_config(snakemake.params.config, snakemake.output[0])
