#!/usr/bin/env bash
# Context parallelism on the GPU machine, in groups that each fit one device call:
#   check   smoke run with --check, the strategy GPU tests (2 GPUs; 4-GPU cases when there are 4)
#   causal  `weft bench cp` causal sweep on 2 GPUs beside PyTorch's context parallel
#   masks   full, sliding-window and document masks on 2 GPUs
#   length  1M tokens on 2 GPUs (H=32, Hkv=8) with a timeline (MILLION=0 skips it); LENGTHS adds longer runs
#   ops     `weft bench ops`: the Device's memsets, copies, adds and casts on one GPU (planner's deviceOps)
#   diag    the NCCL split replay test, then one small run of each mesh strategy, short NCCL timeouts
#   four    the 4-GPU sweep (issue 8's 4-GPU step) beside PyTorch
#   four-1m 1M tokens on 4 GPUs, one iteration per layout: peaks against the planner's memory predictions
#   eight   the 8-GPU sweep (issue 8): 8K and 32K tokens per GPU, then 1M, then documents
# Usage: bash test-gpu/strategy/device-run.sh GROUP... (after `source .device/prelude.sh`).
# Each step has its own time limit so that one failure cannot eat the call. Logs and records go
# to $OUT (or ./device-out).
set -uo pipefail
out=${OUT:-device-out}
mkdir -p "$out/results"
export WEFT_CACHE_DIR=${WEFT_CACHE_DIR:-/tmp/weft-cubin} WEFT_NCCL_TIMEOUT=${WEFT_NCCL_TIMEOUT:-180}
weft="node dist/src/cli/main.js"
step() { # name seconds command...
  local name=$1 secs=$2; shift 2
  local t0=$SECONDS
  timeout "$secs" "$@" >"$out/$name.log" 2>&1
  echo "== $name: exit $? in $((SECONDS - t0)) s"
}
show() { grep -E 'TFLOP|failed|rror|peak|^ +[0-9]+ ' "$out/$1.log" | sed 's/^\[rank 0\] //' | head -n "${2:-40}"; }
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader
# clocks, power and throttle reasons every 3 s: a slow GPU shows up here, not only in the times
nvidia-smi --query-gpu=timestamp,index,clocks.sm,power.draw,temperature.gpu,clocks_event_reasons.active,utilization.gpu --format=csv,noheader -l 3 >"$out/smi-$(date +%H%M%S).csv" 2>&1 &
smi=$!
trap 'kill $smi 2>/dev/null' EXIT

for group in "$@"; do case $group in
check)
  step smoke ${SMOKE_SECS:-60} $weft launch -n 2 -- run --backend cuda --strategy ring --world 2 --seq 4096 --heads 8 --kv-heads 2 --dim 128 --mask causal --check --iters 3
  tail -n 12 "$out/smoke.log"
  step tests ${TESTS_SECS:-420} node --test --test-concurrency=1 dist/test-gpu/strategy/
  grep -E '^(not ok|ok) |^# (pass|fail)|^ *(not ok|ok) [0-9]+ - ' "$out/tests.log" ;;
causal)
  step causal ${CAUSAL_SECS:-330} $weft launch -n 2 -- bench cp --seqs ${SEQS:-32k,128k,256k} --masks causal --layouts ring,ring:contiguous,ulysses,allgather,tokenring ${TORCH_FLAG:-} --iters 3 --warmup 1 --out "$out/results"
  show causal ;;
masks)
  step masks 90 $weft launch -n 2 -- bench cp --seqs 128k --masks 'full;sliding:8191,0;document-causal:8' --layouts ring,ring:contiguous,ulysses --no-torch --iters 3 --warmup 1 --out "$out/results"
  show masks ;;
ops)
  step ops 120 $weft bench ops --out "$out/results"
  tail -n 50 "$out/ops.log" ;;
length)
  [ "${MILLION:-1}" = 0 ] || step million 120 $weft launch -n 2 -- run --backend cuda --strategy ring --world 2 --seq 1048576 --heads 32 --kv-heads 8 --dim 128 --mask causal --iters 1 --warmup 0 --timeline "$out/timeline-1m.json"
  [ "${MILLION:-1}" = 0 ] || tail -n 8 "$out/million.log"
  for S in ${LENGTHS:-}; do
    step "length-$S" ${LENGTH_SECS:-400} $weft launch -n 2 -- run --backend cuda --strategy ring --world 2 --seq "$S" --heads 32 --kv-heads 8 --dim 128 --mask causal --iters 1 --warmup 0
    tail -n 8 "$out/length-$S.log"
  done ;;
diag)
  step diag-runtime 90 node --test --test-concurrency=1 dist/test-gpu/runtime/nccl.test.js
  grep -E '^(not ok|ok) |split|cudaDev|weft:' "$out/diag-runtime.log" | head -n 30
  one="run --backend cuda --world 2 --seq 1000 --heads 4 --kv-heads 2 --dim 64 --mask causal --check --iters 1 --warmup 0"
  # INIT lines name each communicator's cudaDev and busId
  WEFT_NCCL_TIMEOUT=20 NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT step diag-usp21 45 $weft launch -n 2 -- $one --strategy usp --ulysses 2 --ring 1
  grep -E 'weft:|Init COMPLETE|cudaDev|rror|check' "$out/diag-usp21.log" | head -n 30
  WEFT_NCCL_TIMEOUT=20 step diag-dring 45 $weft launch -n 2 -- $one --strategy double-ring --inner 1
  tail -n 6 "$out/diag-dring.log"
  WEFT_NCCL_TIMEOUT=20 step diag-tokenring 45 $weft launch -n 2 -- $one --strategy tokenring
  tail -n 4 "$out/diag-tokenring.log" ;;
four)
  step four-causal ${FOUR_SECS:-300} $weft launch -n 4 -- bench cp --seqs ${FOUR_SEQS:-32k,128k,256k} --masks causal --layouts ${FOUR_LAYOUTS:-ring,ulysses,usp:2x2,double-ring:2,tokenring} ${TORCH_FLAG:-} --iters 3 --warmup 1 --out "$out/results"
  show four-causal 60
  [ "${FOUR_DOCS:-1}" = 0 ] && continue
  step four-docs ${FOUR_DOCS_SECS:-120} $weft launch -n 4 -- bench cp --seqs 128k --masks 'document-causal:8' --layouts ${FOUR_DOC_LAYOUTS:-ring:doc-zigzag,ulysses,usp:2x2,tokenring} --no-torch --iters 3 --warmup 1 --out "$out/results"
  show four-docs ;;
four-1m)
  step four-1m-kv8 ${FOUR_1M_SECS:-240} $weft launch -n 4 -- bench cp --seqs 1m --masks causal --kv-heads 8 --layouts ring,ulysses,usp:2x2 --no-single --no-torch --iters 1 --warmup 0 --out "$out/results"
  show four-1m-kv8
  step four-1m-kv32 ${FOUR_1M_SECS:-240} $weft launch -n 4 -- bench cp --seqs 1m --masks causal --layouts ring,double-ring:2,tokenring --no-single --no-torch --iters 1 --warmup 0 --out "$out/results"
  show four-1m-kv32 ;;
eight)
  step eight-causal ${EIGHT_SECS:-240} $weft launch -n 8 -- bench cp --seqs ${EIGHT_SEQS:-64k,256k} --masks causal --layouts ${EIGHT_LAYOUTS:-ring,ulysses,usp:2x4,usp:4x2,double-ring:4,double-ring:2,tokenring} --iters 3 --warmup 1 --out "$out/results"
  show eight-causal 60
  # one GPU at 1M would take ~5 min: no baseline, efficiency from the planner's one-GPU rate
  step eight-1m ${EIGHT_1M_SECS:-240} $weft launch -n 8 -- bench cp --seqs 1m --masks causal --layouts ring,ulysses,usp:2x4 --no-single --iters 2 --warmup 1 --out "$out/results"
  show eight-1m
  step eight-docs ${EIGHT_DOCS_SECS:-120} $weft launch -n 8 -- bench cp --seqs 256k --masks 'document-causal:8' --layouts ring:doc-zigzag,ulysses,usp:2x4,tokenring --no-torch --iters 3 --warmup 1 --out "$out/results"
  show eight-docs ;;
*) echo "unknown group $group"; exit 2 ;;
esac; done
