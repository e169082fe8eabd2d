"""rule report_visual: the comparison grid of one test set (main models or ablation variants)."""

from mprnet.report.jobs import visual_grid, visual_title
from mprnet.scripts import job_log

with job_log(snakemake):
    i, p, w = snakemake.input, snakemake.params, snakemake.wildcards
    visual_grid(p.inputs, p.targets, p.methods, snakemake.output.png.removesuffix(".png"),
                input_scores=i.input_scores, n_images=p.n_images, title=visual_title(w.kind, w.task, w.dataset))
