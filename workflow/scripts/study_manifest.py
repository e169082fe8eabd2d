"""rule study_manifest: every file the study produces and what each is about (params.manifest)."""

from mprnet.scripts import job_log
from mprnet.study.files import write_study_manifest

with job_log(snakemake):
    write_study_manifest(snakemake.params.manifest, snakemake.output[0])
