#!/usr/bin/env bash
# One-shot GPU figures for issue 15 (item 4), for a lead with a lent device (about 5 minutes on
# an H200; keep the device tool's timeout_s at 600). Run from the repository root:
#
#   OFFICIAL=path/to/MPRNet.py bash benchmarks/device_check.sh
#
# OFFICIAL: the official swz30/MPRNet model file (Deblurring/MPRNet.py). It is not part of this
# repository and must not be committed: keep it in a git-ignored path and pass that path in the
# device tool's `carry`. Without it the official fp32 row is left out (and said so).
# COMPILE=1 adds the torch.compile modes (longer: compilation happens in the warm-up steps).
# EXTRA: more train_throughput.py arguments, e.g. for a CPU smoke test of this script:
#   EXTRA="--batch 1 --patch 32 --presets deraining" STEPS=1 WARMUP=1 bash benchmarks/device_check.sh
# The printout goes to stdout and, when $OUT is set, to $OUT/device_check.txt with the rows in
# $OUT/train_throughput.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
[ -x .venv/bin/python ] && PY=.venv/bin/python
log=/dev/null
if [ -n "${OUT:-}" ]; then mkdir -p "$OUT"; log="$OUT/device_check.txt"; fi
args=(--steps "${STEPS:-20}" --warmup "${WARMUP:-3}")
if [ -n "${OFFICIAL:-}" ]; then
  args+=(--official "$OFFICIAL")
else
  echo "OFFICIAL is not set: no official fp32 row (set OFFICIAL=path/to/MPRNet.py)" | tee -a "$log"
fi
[ "${COMPILE:-0}" = 1 ] && args+=(--compile)
# shellcheck disable=SC2206  # EXTRA is split into words on purpose
args+=(${EXTRA:-})
[ -n "${OUT:-}" ] && args+=(--json "$OUT/train_throughput.json")
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
  PYTHONPATH=$PWD "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
  # paper sizes (recipes.json: batch 16, patch 256; denoising 128), all presets
  PYTHONPATH=$PWD timeout 540 "$PY" benchmarks/train_throughput.py --device cuda "${args[@]}"
} 2>&1 | tee -a "$log"
