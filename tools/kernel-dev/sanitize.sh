#!/usr/bin/env bash
# compute-sanitizer (memcheck, then racecheck) over one small forward + backward
# (smoke.py: causal 1537 rows and a zigzag shard view) of the D = 128 bf16 build. Logs to $OUT.
set -uo pipefail
out=${OUT:-device-out}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python3 -c "import sys; sys.path.insert(0, '$here'); import cudrv; c, _ = cudrv.compile_source(cudrv.read_source(), cudrv.variant_options(stages=3)); open('/tmp/weft-san.cubin', 'wb').write(c)"
for tool in memcheck racecheck; do
  timeout 100 compute-sanitizer --tool $tool python3 "$here/smoke.py" /tmp/weft-san.cubin weft_bwd 128 3 >"$out/sanitizer-$tool.log" 2>&1
  echo "compute-sanitizer $tool exit $?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|smoke' "$out/sanitizer-$tool.log" | tr '\n' ' ')"
done
