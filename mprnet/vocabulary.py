"""The words of the study, spelled once: groups and methods, variant labels and colours, task and
test-set order, table and figure formats, the columns of the aggregated files.

``summary.csv`` has one row per (task, test set, method) within a *group*:

* ``input``: the degraded test inputs scored as they are (method ``degraded``, the paper's "Input");
* ``main``: the model trained per task (method ``full``, the variant name of the paper's network);
* ``ablation``: the variants of the study's ``ablations:`` (``full`` again, on the ablation budget);
* ``model_best``: the main model's best-validation checkpoint (``model_best.pt``, method
  ``model_best``), for the runs that validate: how much selecting a checkpoint on the validation
  set (in the paper's recipe, a test set) moves the numbers of ``main``'s final model;
* ``official_weights``: the authors' released weights, restored and scored here;
* ``released_results``: the authors' released result images, scored here;
* ``paper``: the numbers the paper publishes.

``main`` and ``ablation`` are the groups of training runs; a run's results path holds its group,
task, variant and seed (:mod:`mprnet.study.layout`). This module imports nothing of the package, so
``mprnet.study`` (the workflow's planning) and ``mprnet.report`` (the rendering) share it freely.
"""

from __future__ import annotations

# ----------------------------------------------------------------------------- groups

MAIN = "main"
ABLATION = "ablation"
INPUT = "input"
OFFICIAL_WEIGHTS = "official_weights"
RELEASED_RESULTS = "released_results"
MODEL_BEST = "model_best"
PAPER = "paper"

RUN_GROUPS = (MAIN, ABLATION)  # groups of training runs: the first part of a run's source key
GROUP_ORDER = (PAPER, INPUT, OFFICIAL_WEIGHTS, RELEASED_RESULTS, MAIN, MODEL_BEST, ABLATION)  # rows of summary.csv

# ----------------------------------------------------------------------------- methods

FULL = "full"  # the paper's network: the main model of every task and the ablation's usual reference
DEGRADED = "degraded"  # the method name of the inputs (group ``input``)

# The methods of a task's main table and of the paper-vs-ours figure, in their order.
MAIN_METHODS = (DEGRADED, PAPER, FULL, MODEL_BEST, OFFICIAL_WEIGHTS, RELEASED_RESULTS)
# Methods that are no model we trained: they never enter an ablation.
NOT_TRAINED = (DEGRADED, PAPER, OFFICIAL_WEIGHTS, RELEASED_RESULTS)

METHOD_LABELS = {
    DEGRADED: "Input (degraded)",
    PAPER: "Paper",
    FULL: "Ours",
    MODEL_BEST: "Ours, model_best",
    OFFICIAL_WEIGHTS: "Official weights",
    RELEASED_RESULTS: "Released results",
}
# The ablation variants of config/config.yaml by their config names; others show their name.
VARIANT_LABELS = {
    FULL: "MPRNet (full)",
    "no_sam": "w/o SAM",
    "no_csff": "w/o CSFF",
    "single_stage": "1 stage",
    "two_stage": "2 stages",
}
# Axis labels where space is short (per-image and training-curve figures).
SHORT_LABELS = {DEGRADED: "Input", FULL: "Full", MODEL_BEST: "Best", OFFICIAL_WEIGHTS: "Official",
                RELEASED_RESULTS: "Released"}

# One colour per method in every figure: indices into seaborn's 10-colour "colorblind" palette
# (Wong, Nature Methods 8:441, 2011); other variants take the spare colours of the figures.
METHOD_COLOURS = {
    FULL: 0, PAPER: 1, OFFICIAL_WEIGHTS: 2, RELEASED_RESULTS: 4, DEGRADED: 7,
    "no_sam": 3, "no_csff": 5, "single_stage": 6, "two_stage": 9, MODEL_BEST: 8,
}
METHOD_MARKERS = {DEGRADED: "X", PAPER: "s", FULL: "o", MODEL_BEST: "v", OFFICIAL_WEIGHTS: "D",
                  RELEASED_RESULTS: "^"}


def method_label(method: str) -> str:
    """The row label of ``method`` in a table: ``Ours``, ``Paper``, ``w/o SAM``, ... or the name itself."""
    return METHOD_LABELS.get(method, VARIANT_LABELS.get(method, method))


def variant_label(method: str) -> str:
    """The label of an ablation variant (``MPRNet (full)``, ``w/o SAM``, ...) or the name itself."""
    return VARIANT_LABELS.get(method, method)


def short_label(method: str) -> str:
    return SHORT_LABELS.get(method, variant_label(method))


# ----------------------------------------------------------------------------- tasks and test sets

TASK_ORDER = ("deraining", "deblurring", "denoising")  # the paper's order of tasks
# Column order of the paper's tables (by the names of config/paper_results.yaml); others follow
# in alphabetical order.
DATASET_ORDER = (
    "Test100", "Rain100H", "Rain100L", "Test2800", "Test1200",
    "GoPro", "HIDE", "RealBlur-R", "RealBlur-J",
    "SIDD", "DND",
)
AVERAGE = "Average"  # the paper's deraining column: the mean of the dataset means

METRICS = ("psnr", "ssim")
METRIC_LABELS = {"psnr": "PSNR", "ssim": "SSIM"}
DIGITS = {"psnr": 2, "ssim": 3}  # decimals of the paper's tables


def order_tasks(tasks) -> list[str]:
    """The distinct ``tasks`` in the paper's order; others after them, in the order given."""
    unique = list(dict.fromkeys(tasks))
    return sorted(unique, key=lambda t: (TASK_ORDER.index(t) if t in TASK_ORDER else len(TASK_ORDER), unique.index(t)))


def order_datasets(datasets) -> list[str]:
    """The distinct ``datasets`` in the paper's column order; others after them, alphabetically."""
    rank = {name: i for i, name in enumerate(DATASET_ORDER)}
    unique = list(dict.fromkeys(datasets))
    return sorted(unique, key=lambda d: (rank.get(d, len(rank)), d))


# ----------------------------------------------------------------------------- files

TABLE_FORMATS = ("md", "tex", "csv", "html")
FIGURE_FORMATS = ("png", "pdf")
MAIN_TABLE = "main_{task}"  # one per task
ABLATION_TABLE = "ablation"
COST_TABLE = "cost"
RULER_TABLE = "rulers"  # Δ of the rulers people use against the paper's, per test set (and its figure)
TILES_TABLE = "tiles"  # tiled vs whole-image restoration on a sample (mprnet.report.tiles)
# The study figures (mprnet.report.jobs.study_figures draws them), and the comparison grids:
# one per (task, scored test set) of the main models, one per test set of the ablation runs.
FIGURES = ("paper_vs_ours", "ablation_bars", "per_image_psnr", "training_curves", "stage_progression")
VISUAL_KINDS = {"visual": MAIN, "ablation_visual": ABLATION}

# summary.csv (mprnet.study.aggregate): the first six columns are those every reader requires.
# The last six compare a row with the paper (mprnet.study.verdicts.with_verdicts): the paper's
# numbers, ours − paper, the tolerance in dB and the verdict.
SUMMARY_VERDICT_COLUMNS = ("paper_psnr", "paper_ssim", "d_psnr", "d_ssim", "tolerance_db", "verdict")
SUMMARY_COLUMNS = ("task", "dataset", "method", "psnr", "ssim", "n_images", "group", "n_seeds",
                   "psnr_std", "ssim_std", "precision", "train_precision") + SUMMARY_VERDICT_COLUMNS
SUMMARY_REQUIRED = SUMMARY_COLUMNS[:6]
# runs.csv: one row per scored run (seed); ``scores`` is its per-image score file.
RUNS_COLUMNS = ("task", "dataset", "method", "group", "seed", "psnr", "ssim", "n_images", "precision",
                "train_precision", "scores")
RUNS_REQUIRED = ("task", "dataset", "method", "group", "seed", "scores")
SCORE_COLUMNS = ("image", "psnr", "ssim")  # a per-image score file
# A tile check's per-image file (mprnet.report.tiles): Δ = tiled − whole; ``study`` says which of the
# two the study's own scores are (``tiled`` or ``whole``), ``tile``/``overlap`` the tiling compared.
TILE_CHECK_COLUMNS = ("image", "tiled_psnr", "tiled_ssim", "whole_psnr", "whole_ssim", "delta_psnr", "delta_ssim",
                      "tile", "overlap", "study", "split")

# The study manifest (results/<study>/study.yaml, mprnet.study.targets): its lists of the files the
# study produces, each entry the fields of what the file is about and its ``path``. The aggregation
# reads the score files; the report jobs the others.
MANIFEST_SCORES = "scores"
MANIFEST_TRAINING_LOGS = "training_logs"
MANIFEST_JOB_COSTS = "job_costs"  # every job that computes (train, restore, score) and its records
# the cost's jobs, in order; "audit": the ruler scores and the tiles-vs-whole checks
COST_PHASES = {"train": "training", "restore": "restoring", "score": "scoring", "audit": "auditing"}
MANIFEST_RESTORE_BENCHMARKS = "restore_benchmarks"
MANIFEST_STAGE_SCORES = "stage_scores"
MANIFEST_RULER_SCORES = "ruler_scores"
MANIFEST_TILE_CHECKS = "tile_checks"
