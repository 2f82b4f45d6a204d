#!/usr/bin/env bash
# One call on the GPU machine for the decode kernel: its GPU tests (against the CPU kernel and
# PyTorch SDPA's error), `weft bench decode` (weft, SDPA FlashAttention-2 and cuDNN, FlexAttention,
# and the copy rate, in one run), optionally `weft bench ops` (WEFT_OPS=1), compute-sanitizer on
# small cases (WEFT_SANITIZE, default "memcheck racecheck"), and optionally the launch-settings
# sweep (WEFT_SWEEP=1). Logs and records go to $OUT. Run from the project root after
# `source .device/prelude.sh`; needs dist/ (npx tsc -p .).
set -uo pipefail
out=${OUT:-device-out}
mkdir -p "$out/results"
export WEFT_CACHE_DIR=${WEFT_CACHE_DIR:-/tmp/weft-cubin} PYTHONUNBUFFERED=1
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
if [[ ${WEFT_SKIP_TESTS:-0} != 1 ]]; then
  timeout 150 node --test --test-concurrency=1 dist/test-gpu/kernel/decode.test.js >"$out/decode-tests.log" 2>&1
  echo "decode tests exit $?"
  grep -E '^not ok|^# (tests|pass|fail) |^# .*decode step' "$out/decode-tests.log" | cut -c1-170
  grep -A12 '^not ok' "$out/decode-tests.log" | head -n 40
  grep -q '^# fail 0' "$out/decode-tests.log" || { echo "decode tests failed: no benchmark"; exit 1; }
fi
timeout ${WEFT_BENCH_TIMEOUT:-330} node dist/src/cli/main.js bench decode --out "$out/results" ${WEFT_BENCH_ARGS:-} >"$out/bench.log" 2>&1
echo "bench exit $?"
grep -v '^  weft\|^  sdpa\|^  flex' "$out/bench.log" | tail -n 40
grep 'cannot run' "$out/bench.log" | cut -c1-200 | head -n 12
if [[ ${WEFT_OPS:-0} == 1 ]]; then
  timeout 120 node dist/src/cli/main.js bench ops --out "$out/results" >/tmp/weft-ops.log 2>&1
  echo "bench ops exit $?"; tail -n 12 /tmp/weft-ops.log
fi
for tool in ${WEFT_SANITIZE:-memcheck racecheck}; do
  timeout 60 compute-sanitizer --tool $tool node tools/kernel-dev/decode-dev.mjs smoke >"$out/sanitizer-$tool.log" 2>&1
  echo "compute-sanitizer $tool exit $?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer-$tool.log" | tr '\n' ' ')"
done
if [[ ${WEFT_SWEEP:-0} == 1 ]]; then
  timeout 120 node tools/kernel-dev/decode-dev.mjs sweep >"$out/sweep.log" 2>&1
  echo "sweep exit $?"; tail -n 18 "$out/sweep.log"
fi
