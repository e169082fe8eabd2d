"""The results layout of a study: every path the workflow writes, spelled here once.

The rules use these patterns as their outputs (Snakemake fills the ``{fields}`` from the
wildcards) and :class:`mprnet.study.study.Study` formats them for its targets, so a path is
changed in one place. Fields: ``study``; a training run's ``group`` (``main`` or ``ablation``),
``task``, ``variant`` and ``seed``; ``source``, what produced the images scored: a run key
``<group>/<task>/<variant>/seed<seed>``, ``official_weights/<task>`` (the authors' weights),
``input/<task>`` (the degraded inputs themselves, the paper's "Input" row) or
``released_results/<task>`` (the authors' released result images); ``dataset``, a test set.
"""

from __future__ import annotations

RESULTS = "results/{study}"
RUN = RESULTS + "/runs/{group}/{task}/{variant}/seed{seed}"

RUN_CONFIG = RUN + "/run.yaml"  # what the study asks of the run (mprnet train --config)
MODEL = RUN + "/model_final.pt"  # the finished model; checkpoint.pt, metrics.csv, train.log beside it
TRAINING_LOG = RUN + "/metrics.csv"  # not a declared output: it must survive the retries
TRAIN_BENCHMARK = RESULTS + "/benchmarks/train/{group}/{task}/{variant}/seed{seed}.tsv"

RESTORED = RESULTS + "/restored/{source}/{dataset}"
RESTORE_BENCHMARK = RESULTS + "/benchmarks/restore/{source}/{dataset}.tsv"
SCORES = RESULTS + "/scores/{source}/{dataset}.csv"
STAGE_SCORES = RESULTS + "/stage_scores/{source}/{dataset}.csv"
SUBMISSION = RESULTS + "/submissions/{source}/{dataset}"  # DND's online-benchmark bundle

STUDY_MANIFEST = RESULTS + "/study.yaml"
SUMMARY = RESULTS + "/summary.csv"
RUNS = RESULTS + "/runs.csv"
METRICS = RESULTS + "/metrics.json"

MODEL_COSTS = RESULTS + "/tables/model_costs.csv"
TABLE = RESULTS + "/tables/{name}.{ext}"
FIGURE = RESULTS + "/figures/{name}.{ext}"
VISUAL = RESULTS + "/figures/{kind}_{task}_{dataset}.{ext}"  # a comparison grid of one test set
PROVENANCE = RESULTS + "/provenance.{ext}"
INDEX = RESULTS + "/README.md"

TABLE_FORMATS = ("md", "tex", "csv", "html")
FIGURE_FORMATS = ("png", "pdf")
# The study figures of `report_figures` (mprnet.report.jobs.study_figures draws them).
FIGURES = ("paper_vs_ours", "ablation_bars", "per_image_psnr", "training_curves", "stage_progression")
# The comparison grids: one per (task, scored test set) of the main models, one per ablation set.
VISUAL_KINDS = {"visual": "main", "ablation_visual": "ablation"}

# The groups of training runs (the first path component of a run's source key).
RUN_GROUPS = ("main", "ablation")
# Sources that are not training runs, by their first path component.
OFFICIAL_WEIGHTS = "official_weights"
INPUT = "input"
RELEASED_RESULTS = "released_results"
