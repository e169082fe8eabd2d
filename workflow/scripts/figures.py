"""rule report_figures: the study figures (PNG and PDF)."""

from pathlib import Path

from mprnet.report.jobs import study_figures
from mprnet.report.loaders import manifest_files
from mprnet.scripts import job_log
from mprnet.vocabulary import MANIFEST_STAGE_SCORES, MANIFEST_TRAINING_LOGS

with job_log(snakemake):
    i = snakemake.input
    study_figures(i.summary, i.runs, Path(snakemake.output.paper_vs_ours).parent,
                  ablation_stats=i.ablation_stats[0] if i.ablation_stats else None,
                  training_logs=manifest_files(i.manifest, MANIFEST_TRAINING_LOGS),
                  stage_scores=manifest_files(i.manifest, MANIFEST_STAGE_SCORES), reference=snakemake.params.reference)
