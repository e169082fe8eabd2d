"""rule report_visual: the comparison grid of one test set (main models or ablation variants)."""

from mprnet.report.jobs import visual_grid
from mprnet.scripts import job_log

with job_log(snakemake):
    i, p = snakemake.input, snakemake.params
    visual_grid(p.inputs, p.targets, p.methods, snakemake.output.png.removesuffix(".png"),
                input_scores=i.input_scores, n_images=p.n_images, title=p.title)
