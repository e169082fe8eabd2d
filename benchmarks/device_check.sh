#!/usr/bin/env bash
# The GPU record of issue 22, as one script for a lent device (an H200: about 8 minutes; give the
# device tool's run a timeout_s of 600; part 1 needs about 260 s there). From the repository root:
#   git log -1 --format='commit %H' > .devdata/COMMIT   # the device gets no .git
#
#   DEVDATA=.devdata bash benchmarks/device_check.sh
#
# DEVDATA is a git-ignored folder carried to the device (the device gets the working tree, not
# ../shared) holding:
#   official/MPRNet.py          the official swz30/MPRNet model file (Deblurring/MPRNet.py); never
#                               committed. Without it the official fp32 rows are left out.
#   raintrainl/train/           a prepared subset of RainTrainL ({input,target}/<stem>.png, manifest.csv)
#   rain100l_orig/test/         a prepared subset of the Rain100L test set, the same layout
#   whl/*.whl                   wheels of what the device's Python lacks (jsonschema and its needs);
#                               installed into /tmp/site when jsonschema is missing
# It runs, each part under its own time limit, writing everything it prints to $OUT/record.txt:
#   1. benchmarks/train_throughput.py at the paper's batch and patch, all three presets: images/s,
#      peak memory and first loss of fp32, bf16, bf16+channels_last and the official fp32 step
#      (same weights, same batch);
#   2. a short real-image training run: the deraining preset (the paper's 3.64 M-parameter
#      network) on the RainTrainL subset for TRAIN_S seconds' worth of iterations (from part 1's
#      measured rate), then `mprnet restore` + `mprnet score --protocol y_channel` on the test
#      subset, and the rainy input scored the same way;
#   3. benchmarks/restore_precision.py: restoring in fp32 vs bf16, time per image and PSNR;
#   4. the suite's CUDA tests, and `mprnet train` with runtime.processes 2 on the one GPU.
# TINY=1 rehearses it on the CPU with tiny sizes (a few minutes on 2 cores).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/benchmarks/out/device}
DEVDATA=${DEVDATA:-.devdata}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=$PWD/.venv/bin/python
if ! "$PY" -c "import jsonschema" 2>/dev/null && compgen -G "$DEVDATA/whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$DEVDATA"/whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
exec > >(tee -a "$OUT/record.txt") 2>&1
T0=$(date +%s)
part() { echo; echo "== $* (t = $(( $(date +%s) - T0 )) s)"; }
mprnet() { "$PY" -m mprnet.cli "$@"; }
OFFICIAL=$DEVDATA/official/MPRNet.py
TRAIN=$DEVDATA/raintrainl/train
TEST=$DEVDATA/rain100l_orig/test
WORK=${WORK:-/tmp/device_check}
rm -rf "$WORK"; mkdir -p "$WORK"

if [ "${TINY:-0}" = 1 ]; then
  DEVICE=cpu; TP=(--device cpu --batch 1 --patch 32 --steps 1 --warmup 1 --presets deraining)
  TRAIN_S=${TRAIN_S:-10}; BATCH=2; PATCH=32; WORKERS=0; MODEL="{n_feat: 16, scale_unetfeats: 8, scale_orsnetfeats: 8, num_cab: 1}"
  RP=(--limit 2); TESTS=(tests/test_losses.py)
else
  DEVICE=cuda; TP=(--device cuda --steps "${STEPS:-8}" --warmup "${WARMUP:-3}")
  TRAIN_S=${TRAIN_S:-120}; BATCH=16; PATCH=256; WORKERS=12; MODEL="{}"
  RP=(--repeats 2); TESTS=(tests/test_losses.py tests/test_metrics.py tests/test_score_cli.py tests/test_precision.py
                          tests/test_restore.py)
fi

part "0. machine"
date -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
lscpu | grep -E "^Model name|^CPU\(s\)" || true
"$PY" -c "import torch, numpy, cv2, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'available', torch.cuda.is_available(), 'numpy', numpy.__version__, 'opencv', cv2.__version__)"
cat "$DEVDATA/COMMIT" 2>/dev/null || git log -1 --format='commit %H' 2>/dev/null || true

part "1. one training step at the paper's sizes: ours (fp32, bf16, bf16+channels_last) vs the official fp32 step"
off=(); [ -f "$OFFICIAL" ] && off=(--official "$OFFICIAL") || echo "no $OFFICIAL: no official rows"
timeout "${T1:-270}" "$PY" benchmarks/train_throughput.py "${TP[@]}" "${off[@]}" --json "$OUT/train_throughput.json"
echo "exit $?"

part "2. the deraining preset trained on real rain (RainTrainL subset: $(ls "$TRAIN/input" | wc -l) pairs)"
# iterations: TRAIN_S seconds at the fastest bf16 rate part 1 measured for deraining (300 without one)
read -r ITERS CL < <("$PY" - "$OUT/train_throughput.json" "$TRAIN_S" "$BATCH" <<'EOF'
import json, sys
try:
    rows = [r for r in json.load(open(sys.argv[1])) if r["preset"] == "deraining" and r["mode"].startswith("bf16")]
except (OSError, ValueError):
    rows = []
best = max(rows, key=lambda r: r["images_per_s"], default=None)
iters = int(float(sys.argv[2]) * best["images_per_s"] / int(sys.argv[3])) if best else 300
print(max(20, min(iters, 20000)), "true" if best and "channels_last" in best["mode"] else "false")
EOF
)
cat > "$WORK/run.yaml" <<EOF
task: deraining
seed: 0
model: {overrides: $MODEL}
data: {train: $TRAIN, patch_size: $PATCH, batch_size: $BATCH}
optim: {lr: 5.0e-4}
schedule: {unit: iteration, length: $ITERS, warmup: $(( ITERS / 20 + 1 )), t_max: null}
loss: {eps: 0.1}
train: {amp: auto, channels_last: $CL, val_every_epochs: null}
runtime: {device: $DEVICE, num_workers: $WORKERS, checkpoint_every: 100000, log_every: $(( ITERS / 10 + 1 )), progress: false}
EOF
cat "$WORK/run.yaml"
start=$(date +%s)
timeout -s TERM "$(( TRAIN_S + 90 ))" "$PY" -m mprnet.cli train --config "$WORK/run.yaml" --out "$WORK/run"
echo "exit $?; wall $(( $(date +%s) - start )) s for $ITERS iterations of $BATCH patches of ${PATCH}px"
grep -E "amp|channels_last" "$WORK/run/config.yaml" || true
MODELFILE=$WORK/run/model_final.pt
[ -f "$MODELFILE" ] || MODELFILE=$WORK/run/checkpoint.pt
start=$(date +%s)
mprnet restore --checkpoint "$MODELFILE" --input "$TEST/input" --output "$WORK/restored" --device "$DEVICE" --no-progress
echo "exit $?; restore wall $(( $(date +%s) - start )) s for $(ls "$TEST/input" | wc -l) images (process start included)"
echo "restored vs clean:"; mprnet score --protocol y_channel --pred "$WORK/restored" --target "$TEST/target" --no-progress
echo "rainy input vs clean:"; mprnet score --protocol y_channel --pred "$TEST/input" --target "$TEST/target" --no-progress
cp "$WORK/run/metrics.csv" "$OUT/train_metrics.csv" 2>/dev/null

part "3. restoring in fp32 vs bf16 (benchmarks/restore_precision.py)"
timeout 120 "$PY" benchmarks/restore_precision.py --checkpoint "$MODELFILE" --data "$TEST" --device "$DEVICE" "${RP[@]}"
echo "exit $?"

part "4a. the suite's CUDA tests"
timeout 90 "$PY" -m pytest -q -rs -p no:cacheprovider -o addopts="" "${TESTS[@]}" 2>&1 | tail -25

part "4b. mprnet train with runtime.processes 2 on this machine"
timeout 60 "$PY" -m mprnet.cli train --config "$WORK/run.yaml" --out "$WORK/run2" --set runtime.processes=2 \
  --set schedule.length=20 --set schedule.warmup=2 2>&1 | tail -30
echo "exit ${PIPESTATUS[0]}"
part "done"
sleep 1  # let tee finish writing record.txt
