#!/usr/bin/env bash
# Inference on one GPU, in one device call: `weft bench prefill` (the prefill target), the GPU
# tests of `weft run --mode … --backend cuda`, and two large checked runs.
# Usage: bash test-gpu/infer/device-run.sh (after `source .device/prelude.sh`); logs and records to $OUT.
set -uo pipefail
out=${OUT:-device-out}
mkdir -p "$out"
export WEFT_CACHE_DIR=${WEFT_CACHE_DIR:-/tmp/weft-cubin} WEFT_NCCL_TIMEOUT=${WEFT_NCCL_TIMEOUT:-60}
weft="node dist/src/cli/main.js"
step() { # name seconds command...
  local name=$1 secs=$2; shift 2
  local t0=$SECONDS
  timeout "$secs" "$@" >"$out/$name.log" 2>&1
  echo "== $name: exit $? in $((SECONDS - t0)) s"
}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw --format=csv,noheader
step prefill ${PREFILL_SECS:-70} $weft bench prefill --contexts 120k --new-tokens 1k,8k --out "$out"
grep -E 'median|records' "$out/prefill.log"
step tests ${TESTS_SECS:-150} node --test --test-concurrency=1 dist/test-gpu/infer/
grep -E '^(not ok|ok) |^# (pass|fail|skip)' "$out/tests.log"
big="--backend cuda --world 1 --heads 32 --kv-heads 8 --dim 128 --check --iters 5 --warmup 2"
step run-prefill ${RUN_SECS:-45} $weft launch -n 1 -- run --mode prefill --context 122880 --new-tokens 8192 $big
sed 's/^\[rank 0\] //' "$out/run-prefill.log" | tail -n 12
step run-decode ${RUN_SECS:-45} $weft launch -n 1 -- run --mode decode --context 131072 --new-tokens 4 --batch 4 $big
sed 's/^\[rank 0\] //' "$out/run-decode.log" | tail -n 12
