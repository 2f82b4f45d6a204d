#!/usr/bin/env bash
# One call on a 2-GPU machine: the runtime's GPU tests, then `weft bench comm` (non-blocking
# communicator, against PyTorch) and the same with a blocking communicator. Logs and records go
# to $OUT (or ./device-out). Run from the project root after `source .device/prelude.sh`.
set -uo pipefail
out=${OUT:-device-out}
mkdir -p "$out/results"
export WEFT_CACHE_DIR=${WEFT_CACHE_DIR:-/tmp/weft-cubin}
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader
nvidia-smi topo -m 2>/dev/null | head -4
python3 -c 'import torch; print("torch", torch.__version__, "gpus", torch.cuda.device_count(), "nccl", torch.cuda.nccl.version())'
node --test --test-concurrency=1 dist/test-gpu/runtime/ >"$out/gpu-tests.log" 2>&1
echo "gpu tests exit $?"
bench() {
  node dist/src/cli/main.js launch -n 2 --no-weft -- node --input-type=module -e \
    "const m = await import(process.cwd() + '/dist/src/bench/comm.js'); await m.benchComm({ outDir: '$out/results', $1 })"
}
bench "" >"$out/bench.log" 2>&1; echo "bench exit $?"
bench "blocking: true, torch: false" >"$out/bench-blocking.log" 2>&1; echo "bench blocking exit $?"
grep -E '^(not ok|ok) |^# (tests|pass|fail) |(compile .* ms|adds of|rank 0 \()' "$out/gpu-tests.log"
grep -A12 '^not ok' "$out/gpu-tests.log" | head -n 40
grep -vE '^\[rank [0-9]\] +(weft|torch) ' "$out/bench.log" | tail -n 20
tail -n 14 "$out/bench-blocking.log"
