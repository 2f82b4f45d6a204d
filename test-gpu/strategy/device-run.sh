#!/usr/bin/env bash
# One call on a 2-GPU machine for context parallelism: a smoke run, the strategy GPU tests,
# `weft bench cp` (causal sweep against PyTorch's context parallel; other masks; 1M tokens).
# Each step has its own time limit so that one failure cannot eat the call. Logs and records go
# to $OUT (or ./device-out). Run from the project root after `source .device/prelude.sh`.
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
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader
step smoke ${SMOKE_SECS:-60} $weft launch -n 2 -- run --backend cuda --strategy ring --world 2 --seq 4096 --heads 8 --kv-heads 2 --dim 128 --mask causal --check --iters 3
tail -n 12 "$out/smoke.log"
step small-d64 45 $weft launch -n 2 -- run --backend cuda --strategy ring --world 2 --seq 1000 --heads 4 --kv-heads 2 --dim 64 --mask causal --check --iters 1 --warmup 0 --json
tail -n 5 "$out/small-d64.log"
step causal 200 $weft launch -n 2 -- bench cp --seqs ${SEQS:-32k,128k,256k} --masks causal --layouts ring,ring:contiguous,ulysses,allgather,tokenring --iters 3 --warmup 1 --out "$out/results"
grep -E 'TFLOP|failed|rror' "$out/causal.log" | sed 's/^\[rank 0\] //' | head -n 40
step masks 70 $weft launch -n 2 -- bench cp --seqs 128k --masks 'full;sliding:8191,0;document-causal:8' --layouts ring,ulysses --no-torch --iters 3 --warmup 1 --out "$out/results"
grep -E 'TFLOP|failed|rror' "$out/masks.log" | sed 's/^\[rank 0\] //' | head -n 20
step million 100 $weft launch -n 2 -- run --backend cuda --strategy ring --world 2 --seq 1048576 --heads 32 --kv-heads 8 --dim 128 --mask causal --iters 1 --warmup 0 --timeline "$out/timeline-1m.json"
tail -n 8 "$out/million.log"
step tests ${TESTS_SECS:-150} node --test --test-concurrency=1 dist/test-gpu/strategy/
grep -E '^(not ok|ok) |^# (pass|fail)' "$out/tests.log"
