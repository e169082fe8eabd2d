"""rule run_config: write a run's `mprnet train` config (params.config, from the study), resolved
once; a run in the run's folder trained under another config is moved to its superseded/ folder
first, and one of this config kept there is moved back (mprnet.study.files.prepare_run_folder)."""

from mprnet.scripts import job_log
from mprnet.study.files import prepare_run_folder

with job_log(snakemake):
    prepare_run_folder(snakemake.params.config, snakemake.params.run_dir, snakemake.output[0])
