"""rule aggregate: summary.csv, runs.csv and metrics.json from the study manifest's score files."""

from mprnet.scripts import job_log
from mprnet.study.aggregate import aggregate

with job_log(snakemake):
    out = snakemake.output
    rows = aggregate(snakemake.input.manifest, out.summary, out.runs, out.metrics)
    print(f"{out.summary}: {len(rows)} rows")
