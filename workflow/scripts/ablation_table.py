"""rule report_ablation_table: the ablation table (bootstrap CIs, costs, restore times)."""

from pathlib import Path

from mprnet.report.jobs import ablation_table
from mprnet.report.loaders import manifest_files
from mprnet.scripts import job_log
from mprnet.vocabulary import MANIFEST_RESTORE_BENCHMARKS

with job_log(snakemake):
    i, p = snakemake.input, snakemake.params
    ablation_table(i.summary, i.stats, i.runs, i.costs, manifest_files(i.manifest, MANIFEST_RESTORE_BENCHMARKS),
                   Path(snakemake.output.md).parent, reference=p.reference,
                   n_resamples=p.settings.bootstrap_resamples)
