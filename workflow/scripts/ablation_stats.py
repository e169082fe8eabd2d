"""rule ablation_stats: the ablation's mean ± std over seeds and paired bootstrap CIs, computed once."""

from mprnet.report.jobs import ablation_statistics
from mprnet.scripts import job_log

with job_log(snakemake):
    p = snakemake.params
    ablation_statistics(snakemake.input.runs, snakemake.output[0], reference=p.reference,
                        n_resamples=p.settings.bootstrap_resamples, seed=p.settings.bootstrap_seed)
