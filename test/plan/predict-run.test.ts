// predictRun (what `weft bench cp` prints beside each measured row) prices a row exactly as the
// planner prices the same layout; test/plan/golden.json holds its figures.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMask } from '../../src/mask/spec.js';
import { parseConfig } from '../../src/plan/config.js';
import { completeLayout } from '../../src/plan/layout.js';
import { predictRun } from '../../src/plan/predict-run.js';
import { buildContext, evaluate } from '../../src/plan/search.js';

test('predictRun agrees with the planner on a weft layout', async () => {
  const shape = { S: 131072, H: 32, Hkv: 8, D: 128, mask: parseMask('causal'), world: 2 };
  const got = await predictRun(shape, { strategy: 'ring', ulysses: 1, ring: 2, shard: 'zigzag' }, 'NVIDIA H200');
  assert.ok('ms' in got);
  const cfg = parseConfig({
    model: {
      name: 'attention H32 D128',
      layers: 1,
      hidden: 4096,
      heads: 32,
      kvHeads: 8,
      headDim: 128,
      ffnHidden: 16384,
      vocab: 32000,
    },
    mode: 'attention',
    seqLen: 131072,
    mask: 'causal',
    cluster: { nodes: 1, gpusPerNode: 2, gpu: 'h200' },
  });
  const want = (await evaluate(buildContext(cfg), completeLayout({ ring: 2, shard: 'zigzag' }, cfg))).prediction!
    .stepMs;
  assert.equal(got.ms, want);
});

test('predictRun says why it has no prediction', async () => {
  const shape = { S: 4096, H: 8, Hkv: 8, D: 128, mask: parseMask('causal'), world: 2 };
  assert.deepEqual(await predictRun(shape, 'one-gpu', 'NVIDIA A10'), { none: 'no calibration for NVIDIA A10' });
  const p = await predictRun(shape, { strategy: 'ring', ulysses: 1, ring: 2, shard: 'zigzag' }, 'NVIDIA H200');
  assert.ok('ms' in p && p.ms > 0 && p.peakGiB! > 0);
});
