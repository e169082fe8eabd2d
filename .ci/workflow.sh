#!/usr/bin/env bash
# Workflow checks for CI (docs/workflow.md): lint and format, the plan tests, and the CI study
# (.test/config/config.yaml: every rule of the demo study, tiny) run twice from scratch: once with
# local execution, then its HTML report (--report) made and checked, and once through a real
# one-node Slurm cluster started here (.ci/slurm/). Each run is bounded with `timeout -s INT`: on
# SIGINT Snakemake cancels its Slurm jobs and exits. On the cluster, a training job is then
# preempted and resubmitted (tests/test_preemption.py -k test_slurm_).
# Needs root and apt-get for the cluster; SKIP_SLURM=1 runs everything else.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$root/.venv/bin:$PATH"
limit=${WORKFLOW_RUN_LIMIT_S:-420}
start=$(date +%s)
step() { echo "== workflow: $* (at $(( $(date +%s) - start )) s)"; }

step "snakemake --lint (paper, demo and CI configs)"
snakemake --lint
snakemake --lint --configfile config/demo.yaml
snakemake --lint --directory .test
step "snakefmt --check"
snakefmt --check workflow/

step "plan tests"
python -m pytest -q -p no:cacheprovider tests/test_workflow.py -m "not slow"  # the slow ones run in `make test`

scratch=$(mktemp -d "${TMPDIR:-/tmp}/mprnet-workflow-ci.XXXXXX")
run_study() {  # $1: label, rest: snakemake arguments. A copy of .test/, as `--directory .test` reads it.
    local label=$1 dir=$scratch/$1
    shift
    mkdir -p "$dir" && cp -r .test/config "$dir/"
    step "CI study, $label"
    (cd "$dir" && timeout -s INT "$limit" snakemake -s "$root/workflow/Snakefile" "$@")
    python - "$dir/results/ci/summary.csv" <<'PY'
import sys
import pandas as pd
summary = pd.read_csv(sys.argv[1])
methods = set(zip(summary["group"], summary["method"]))
expected = {("input", "degraded"), ("main", "full"), ("ablation", "full"), ("ablation", "no_sam"),
            ("ablation", "single_stage"), ("paper", "paper")}
missing = expected - methods
assert not missing, f"summary.csv lacks {sorted(missing)}"
assert summary.loc[summary["group"] != "paper", "psnr"].notna().all()
# train.amp auto: every trained row says the precision this machine resolves auto to.
from mprnet.precision import AMP_PRECISION, resolve_amp
expected_precision = AMP_PRECISION[resolve_amp("auto", "cpu")[0]]
trained = summary[summary["group"].isin(["main", "ablation"])]
assert set(trained["train_precision"]) == {expected_precision}, set(trained["train_precision"])
# The stand-in paper number of demo_blur gets a verdict on the main row (one seed: σ unknown).
from mprnet.study.verdicts import ONE_SEED
main_blur = summary[(summary["group"] == "main") & (summary["dataset"] == "demo_blur")]
assert list(main_blur["verdict"]) == [ONE_SEED], main_blur.to_dict("records")
print(f"{sys.argv[1]}: {len(summary)} rows, methods {sorted(methods)}, trained in {expected_precision}")
# The ruler table: every scored test set under the paper's ruler and its alternatives.
rulers = pd.read_csv(sys.argv[1].replace("summary.csv", "tables/rulers.csv"))
assert set(rulers["dataset"]) == {"demo_rain", "demo_blur", "demo_noise"}, set(rulers["dataset"])
for dataset, rows in rulers.groupby("dataset"):
    paper = rows[rows["ruler"] == "paper"]
    assert len(paper) == 1, f"{dataset}: {len(paper)} rows of the paper's ruler"
    images = rows[rows["kind"] == "image"]  # mean Δ over images = the ruler's mean − the paper's mean
    gap = (images["psnr"] - paper["psnr"].item() - images["d_psnr_mean"]).abs().max()
    assert gap < 1e-6 and len(images) >= 4, (dataset, gap, len(images))
print(f"rulers.csv: {len(rulers)} rows, rulers {sorted(set(rulers['ruler']))}")
# The study's cost: every training attempt recorded, the headline at the top of the results README.
import json
from pathlib import Path
results = Path(sys.argv[1]).parent
cost = json.loads((results / "cost.json").read_text())
assert cost["training_attempts"] >= 6 and not cost["lower_bound"], cost
assert f"**Cost.** {cost['headline']}" in (results / "README.md").read_text(), "README.md lacks the cost headline"
print(f"{results}: {cost['headline']}")
PY
}

run_study local --cores 2

# The HTML report of the local run: it opens on the study's description (workflow/report/workflow.rst),
# which links the headline tables, and holds every table and figure of the study.
step "CI study, HTML report"
(cd "$scratch/local" && snakemake -s "$root/workflow/Snakefile" --report results/ci/report.html)
python - "$scratch/local/results/ci/report.html" <<'PY'
import re
import sys
html = open(sys.argv[1], encoding="utf-8").read()
for needle in ("MPRNet reproduction study", "Where everything is", "main_deblurring.html", "paper_vs_ours.png",
               "ablation_bars.png", "visual_deraining_demo_rain.png", "provenance.html", "rulers.html", "rulers.png",
               "<strong>Cost.</strong> Reproducing these results cost"):
    assert needle in html, f"report.html lacks {needle!r}"
assert not re.search(r"System Message|Unknown target name", html), "the report's description has rst errors"
print(f"{sys.argv[1]}: {len(html) / 1e6:.1f} MB, description and every result present")
PY

if [[ ${SKIP_SLURM:-0} != 1 ]]; then
    step "start the Slurm cluster"
    .ci/slurm/start.sh
    trap '.ci/slurm/stop.sh' EXIT
    run_study slurm --profile "$root/profiles/slurm" --workflow-profile "$root/profiles/ci"
    # A training job given Slurm's preemption notice, then ended as at a time limit: each attempt
    # checkpoints where it stopped, Snakemake resubmits it, the weights equal an uninterrupted run's.
    # Then a training job of 2 processes (runtime.processes: 2, 2 CPUs), preempted once: one
    # checkpoint, resubmitted, the weights of 1 process within float tolerance.
    step "preemption through Slurm, 1 and 2 processes (tests/test_preemption.py)"
    MPRNET_SLURM_TESTS=1 python -m pytest -q -p no:cacheprovider tests/test_preemption.py -k test_slurm_
fi

rm -rf "$scratch"
step "done"
