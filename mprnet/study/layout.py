"""The layout of a study's files: every path the workflow reads from its data or writes, spelled here once.

The rules use these patterns as their outputs (Snakemake fills the ``{fields}`` from the
wildcards) and :class:`mprnet.study.targets.Targets` formats them for its targets, so a path is
changed in one place. Fields: ``root``, the data folder, and ``dataset``/``split`` of a prepared
set; ``study``; a training run's ``group`` (``main`` or ``ablation``), ``task``, ``variant`` and
``seed``; ``source``, what produced the images scored (:class:`mprnet.study.spec.Source`'s key): a
run key ``<group>/<task>/<variant>/seed<seed>`` (``model_best/...``: a main run's best-validation
checkpoint), ``official_weights/<task>`` (the authors' weights),
``input/<task>`` (the degraded inputs themselves, the paper's "Input" row) or
``released_results/<task>`` (the authors' released result images); ``dataset``, a test set.
"""

from __future__ import annotations

from ..training.attempts import ATTEMPTS

DATA_DIR = "{root}/{dataset}/{split}"  # {input,target}/<stem>.png, as mprnet prepare writes them
DATA_MANIFEST = DATA_DIR + "/manifest.csv"  # written last by mprnet prepare / make-demo

RESULTS = "results/{study}"
RUN = RESULTS + "/runs/{group}/{task}/{variant}/seed{seed}"

RUN_CONFIG = RUN + "/run.yaml"  # what the study asks of the run (mprnet train --config)
MODEL = RUN + "/model_final.pt"  # the finished model; checkpoint.pt, metrics.csv, train.log beside it
BEST_MODEL = RUN + "/model_best.pt"  # best validation PSNR, when the run validates: no declared output
TRAINING_LOG = RUN + "/metrics.csv"  # not a declared output: it must survive the retries
TRAINING_ATTEMPTS = RUN + "/" + ATTEMPTS  # every attempt of the run (the trainer's record); survives the retries too
TRAIN_BENCHMARK = RESULTS + "/benchmarks/train/{group}/{task}/{variant}/seed{seed}.tsv"  # the last attempt only

RESTORED = RESULTS + "/restored/{source}/{dataset}"
RESTORE_BENCHMARK = RESULTS + "/benchmarks/restore/{source}/{dataset}.tsv"
SCORES = RESULTS + "/scores/{source}/{dataset}.csv"
RULER_SCORES = RESULTS + "/rulers/{source}/{dataset}.csv"  # per image, the paper's and the other rulers
RULER_BENCHMARK = RESULTS + "/benchmarks/rulers/{source}/{dataset}.tsv"
SCORE_BENCHMARK = RESULTS + "/benchmarks/score/{source}/{dataset}.tsv"
STAGE_SCORES = RESULTS + "/stage_scores/{source}/{dataset}.csv"
TILE_CHECK = RESULTS + "/tile_checks/{source}/{dataset}.csv"  # tiles vs whole images, per image of a sample
TILE_CHECK_BENCHMARK = RESULTS + "/benchmarks/tile_check/{source}/{dataset}.tsv"
SUBMISSION = RESULTS + "/submissions/{source}/{dataset}"  # DND's online-benchmark bundle

STUDY_MANIFEST = RESULTS + "/study.yaml"  # every file the study produces (mprnet.study.targets)
SUMMARY = RESULTS + "/summary.csv"
RUNS = RESULTS + "/runs.csv"
METRICS = RESULTS + "/metrics.json"
STUDY_COST = RESULTS + "/cost.json"  # the device-hours of the study and its headline (mprnet.report.hours)

MODEL_COSTS = RESULTS + "/tables/model_costs.csv"
ABLATION_STATS = RESULTS + "/tables/ablation_stats.csv"  # read by the ablation table and figure
TABLE = RESULTS + "/tables/{name}.{ext}"  # ext: vocabulary.TABLE_FORMATS
FIGURE = RESULTS + "/figures/{name}.{ext}"  # ext: vocabulary.FIGURE_FORMATS
VISUAL = RESULTS + "/figures/{kind}_{task}_{dataset}.{ext}"  # a comparison grid of one test set
PROVENANCE = RESULTS + "/provenance.{ext}"
INDEX = RESULTS + "/README.md"
