#!/usr/bin/env bash
# The varlen executor on the GPU machine, in one device call: the GPU tests (test-gpu/varlen), then
# one GPU timed on a long-tail batch (64K tokens, 33 documents, causal, GQA 32:8, D 128): through
# `--strategy varlen` (world 1: every document local) beside the same cu_seqlens through the ring
# strategy at world 1 (the kernel over the whole batch), in one run.
# Usage: bash test-gpu/varlen/device-run.sh (after `source .device/prelude.sh`); logs go to $OUT.
set -uo pipefail
out=${OUT:-device-out}
mkdir -p "$out"
export WEFT_CACHE_DIR=${WEFT_CACHE_DIR:-/tmp/weft-cubin} WEFT_NCCL_TIMEOUT=${WEFT_NCCL_TIMEOUT:-60}
weft="node dist/src/cli/main.js"
step() { # name seconds command...
  local name=$1 secs=$2
  shift 2
  local t0=$SECONDS
  timeout "$secs" "$@" >"$out/$name.log" 2>&1
  echo "== $name: exit $? in $((SECONDS - t0)) s"
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
step tests "${TESTS_SECS:-150}" node --test --test-concurrency=1 dist/test-gpu/varlen/
grep -E '^# (tests|pass|fail|skipped)|not ok' "$out/tests.log" | head -n 20
# `weft run --strategy varlen --seq 65536 --dist longtail --seed 1 --dry-plan --json` gives these documents
cu=0,4803,7655,9699,11171,21078,21774,23566,24372,25227,25595,25930,26348,27527,29407,33661,33727,33821,34290,35615,36746,39258,40195,54065,55401,55777,56174,59215,60089,61191,62186,63047,64451,65536
dims="--seq 65536 --mask document-causal --heads 32 --kv-heads 8 --dim 128 --iters 5 --warmup 2 --json"
step varlen-64k 45 $weft run --strategy varlen --backend cuda --world 1 --dist longtail --seed 1 $dims
step ring-64k 45 $weft launch -n 1 -- run --backend cuda --strategy ring --world 1 --cu-seqlens $cu $dims
for f in varlen-64k ring-64k; do tail -c 700 "$out/$f.log"; echo; done
