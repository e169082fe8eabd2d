"""rule report_ablation_table: the ablation table (bootstrap CIs, costs, restore times)."""

from pathlib import Path

from mprnet.report.jobs import ablation_table
from mprnet.scripts import job_log

with job_log(snakemake):
    i, p = snakemake.input, snakemake.params
    ablation_table(i.summary, i.runs, i.costs, zip(p.benchmark_fields, i.benchmarks),
                   Path(snakemake.output.md).parent, reference=p.reference,
                   n_resamples=p.settings.bootstrap_resamples, seed=p.settings.bootstrap_seed)
