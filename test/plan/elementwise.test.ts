// The planner's count of the device traffic of weft's strategy code outside the kernels
// (src/plan/elementwise.ts: bytes read and written and calls of the Device's zeros, full,
// copyBox, add and cast per iteration) against the code itself: every strategy on CPU ranks whose
// MeteredDevice counts that traffic, per rank, for worlds of 1, 2, 4 and 8, three shapes (MHA; GQA
// with KV heads shared by Ulysses members; GQA with irregular, shared Ulysses head ranges), causal
// zigzag shards. f64 and f32 (no casts) through runBatch's per-rank `elementwise`; f64, f32 and
// bf16 (f32 accumulation: the GPU's casts) through a rank program that also reads the forward's
// traffic. All exact: the count follows the code's operations.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { elementwiseTraffic } from '../../src/plan/elementwise.js';
import { caseName, cases, member, model, viaRanks, viaRunBatch } from './held-rank.js';

describe('elementwise.ts against the metered CPU ranks', () => {
  for (const N of [1, 2, 4, 8]) {
    it(`world ${N}: every rank's elementwise traffic (bytes read, written, calls per operation) is the count, exactly`, async (t) => {
      const all = cases(N, true), viaRun = all.filter((c) => c.dtype !== 'bf16');
      const res = await viaRunBatch(viaRun, 7);
      viaRun.forEach((k, i) => {
        const got = res[i]!.stats.perRank.map((p) => p.elementwise);
        assert.deepEqual(got, got.map((_, r) => elementwiseTraffic(model(k), member(k.l, r)).total), `runBatch ${caseName(k)}`);
      });
      const counts = await viaRanks(N, all);
      all.forEach((k, i) => {
        const got = counts.map((x) => ({ forward: x[i]!.trafficForward, total: x[i]!.traffic })), c = model(k);
        const want = got.map((_, r) => elementwiseTraffic(c, member(k.l, r)));
        if (k.dtype === 'bf16' && k.s.Hkv === k.s.H) {
          const q = c.T * k.s.H * k.s.D * c.e, tot = got[0]!.total.total;
          t.diagnostic(`${caseName(k).padEnd(58)} ${((tot.readBytes + tot.writeBytes) / q).toFixed(1)} × q bytes moved in ${tot.calls} calls (rank 0)`);
        }
        assert.deepEqual(got, want, caseName(k));
      });
      t.diagnostic(`${viaRun.length} runBatch counts and ${all.length} × (forward, total) on ${N} ranks each: all exact`);
    });
  }
});
