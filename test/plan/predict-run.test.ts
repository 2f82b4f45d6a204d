// predictRun (what `weft bench cp` prints beside each measured row) prices a row exactly as the
// validation does: checked on every row of the a57aad4 records with the profile of that code.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMask } from '../../src/mask/spec.js';
import { completeLayout } from '../../src/plan/layout.js';
import { predictRun, type RunLayout } from '../../src/plan/predict-run.js';
import { buildContext, evaluateLayout } from '../../src/plan/search.js';
import { benchDocuments, cpRecords, recordLayout, torchCpConfig, WEFT_CP_A57AAD4_RECORDS, weftCpConfig } from './validation.js';

test('predictRun agrees with the validation on every a57aad4 row (weft layouts, one GPU, PyTorch)', () => {
  let rows = 0;
  for (const file of WEFT_CP_A57AAD4_RECORDS) {
    for (const r of cpRecords(file)) {
      const { seq: S, kvHeads: Hkv, mask, world } = r.config;
      const spec = parseMask(mask, mask.startsWith('document') ? benchDocuments(S, 8) : undefined);
      const shape = { S, H: 32, Hkv, D: 128, mask: spec, world };
      const torch = r.name.startsWith('torch-cp');
      const l = r.extra?.layout;
      const layout: RunLayout = torch ? 'pytorch' : l ? { ...recordLayout(r), ulysses: l.ulysses, ring: l.ring, shard: l.shard } as RunLayout : 'one-gpu';
      const got = predictRun(shape, layout, 'NVIDIA H200', 'weft-a57aad4');
      assert.ok('ms' in got, `${r.name}: ${JSON.stringify(got)}`);
      const cfg = torch ? torchCpConfig(S / 1024, world) : weftCpConfig(S, mask, l ? world : 1, Hkv, l ? 'weft-a57aad4' : 'weft');
      const want = evaluateLayout(buildContext(cfg), completeLayout(torch ? { ring: world, shard: 'zigzag' } : l ? recordLayout(r) : {}, cfg)).prediction!.stepMs;
      assert.ok(Math.abs(got.ms - want) <= 1e-9 * want, `${file} ${r.name} S=${S} ${mask}: ${got.ms} vs ${want}`);
      rows++;
    }
  }
  assert.ok(rows >= 60, `${rows} rows`);
});

test('predictRun says why it has no prediction', () => {
  const shape = { S: 4096, H: 8, Hkv: 8, D: 128, mask: parseMask('causal'), world: 2 };
  assert.deepEqual(predictRun(shape, 'one-gpu', 'NVIDIA A10'), { none: 'no calibration for NVIDIA A10' });
  const p = predictRun(shape, { strategy: 'ring', ulysses: 1, ring: 2, shard: 'zigzag' }, 'NVIDIA H200');
  assert.ok('ms' in p && p.ms > 0 && p.peakGiB! > 0);
});
