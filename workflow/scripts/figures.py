"""rule report_figures: the study figures (PNG and PDF)."""

from pathlib import Path

from mprnet.report.jobs import study_figures
from mprnet.scripts import job_log

with job_log(snakemake):
    i, p = snakemake.input, snakemake.params
    study_figures(i.summary, i.runs, Path(snakemake.output.paper_vs_ours).parent,
                  training_logs=p.training_logs, stage_scores=zip(p.stage_fields, i.stages),
                  reference=p.reference, n_resamples=p.settings.bootstrap_resamples,
                  seed=p.settings.bootstrap_seed)
