#!/usr/bin/env bash
# One call on the GPU machine for the attention kernels: the Python harness (NVRTC build, checks
# against the f64 reference beside PyTorch's SDPA error, timing with backward ablations), the
# TypeScript GPU tests of CudaKernel, and `weft bench kernel` (weft vs SDPA FlashAttention-2 and
# cuDNN). Logs and records go to $OUT. Run from the project root after
# `source .device/prelude.sh`; needs dist/ (npx tsc -p .).
set -uo pipefail
out=${OUT:-device-out}
mkdir -p "$out/results"
export WEFT_CACHE_DIR=${WEFT_CACHE_DIR:-/tmp/weft-cubin} PYTHONUNBUFFERED=1
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
sizes=${WEFT_BENCH_SIZES:-8192,32768,131072}
if [[ ${WEFT_SKIP_HARNESS:-0} != 1 ]]; then
  python3 tools/kernel-dev/harness.py --out "$out" --sizes "${WEFT_HARNESS_SIZES:-8192,32768}" >/dev/null 2>&1
  echo "harness exit $?"
fi
[[ ${WEFT_SANITIZE:-0} == 1 ]] && bash tools/kernel-dev/sanitize.sh
node --test --test-concurrency=1 dist/test-gpu/kernel/ >"$out/gpu-tests.log" 2>&1
echo "gpu tests exit $?"
# D = 128 causal and full at every size; D = 64 at 32K; the masks FlexAttention is the peer for, at 32K
node --input-type=module -e "const m = await import(process.cwd() + '/dist/src/bench/kernel.js'); \
  await m.benchKernel({ sizes: [$sizes], outDir: '$out/results' })" >"$out/bench.log" 2>&1
node dist/src/cli/main.js bench kernel --seqs 32k --dim 64 --out "$out/results" >>"$out/bench.log" 2>&1
node dist/src/cli/main.js bench kernel --seqs 32k --masks 'sliding:4095,0;document-causal:8;causal' --out "$out/results" >>"$out/bench.log" 2>&1
echo "bench exit $?"
if [[ -f $out/harness.log ]]; then
  grep -E '^  (PASS|FAIL|ERROR)|checks:|^!!' "$out/harness.log" | cut -c1-150
  sed -n '/^== summary/,$p' "$out/harness.log"
fi
grep -E '^(not ok|ok) |^# (tests|pass|fail) |^# [a-z].*: out ' "$out/gpu-tests.log" | cut -c1-160
grep -A15 '^not ok' "$out/gpu-tests.log" | head -n 40
grep -E "^ +[0-9]+  |not run|no PyTorch" "$out/bench.log" | tail -n 40
