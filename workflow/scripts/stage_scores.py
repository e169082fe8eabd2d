"""rule stage_scores: PSNR/SSIM of each stage output of one restored test set."""

from mprnet.report.jobs import stage_scores
from mprnet.scripts import job_log

with job_log(snakemake):
    p = snakemake.params
    stage_scores(snakemake.input.restored, p.targets, p.protocol, snakemake.output[0])
