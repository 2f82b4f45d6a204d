// The planner's count of what a rank of weft's releasing strategy code holds (src/plan/held.ts,
// the `weft` memory profile) against the code itself: every strategy run on CPU ranks whose
// device meters the bytes held (MeteredDevice: allocations minus releases), per rank, for worlds
// of 1, 2, 4 and 8, three shapes (MHA; GQA with KV heads shared by Ulysses members; GQA whose
// Ulysses head ranges are irregular and shared), causal zigzag shards. f64 and f32 (accumulation
// in the input type: no casts) through runBatch, its `peakHeldBytes`; f64, f32 and bf16 (f32
// accumulation: the GPU's casts) through a rank program (held-rank.ts) that also reads the peak
// after the forward and what is held at the end. All must be exact: the count is the code's
// allocations and releases in the code's order. (What it leaves to the GPU alone — the backward
// kernel's f32 delta — is one term, kernelTemps, from src/backends/cuda/kernel/kernel.ts.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { heldBytes, type HeldCase } from '../../src/plan/held.js';
import { caseName, cases, member, model, viaRanks, viaRunBatch } from './held-rank.js';

const distinct = (xs: readonly (number | string)[]): string => [...new Set(xs)].join('/');

describe('held.ts against the metered CPU ranks', () => {
  for (const N of [1, 2, 4, 8]) {
    it(`world ${N}: every rank's peak held is the count, exactly (runBatch f64, f32; and forward peak, peak and end for f64, f32, bf16)`, async (t) => {
      const all = cases(N), viaRun = all.filter((c) => c.dtype !== 'bf16');
      const res = await viaRunBatch(viaRun, 5);
      viaRun.forEach((k, i) => {
        const peaks = res[i]!.stats.perRank.map((p) => p.peakHeldBytes);
        assert.deepEqual(peaks, peaks.map((_, r) => heldBytes(model(k), member(k.l, r)).peak), `runBatch ${caseName(k)}`);
      });
      const counts = await viaRanks(N, all);
      all.forEach((k, i) => {
        const got = counts.map((x) => { const m = x[i]!; return { forward: m.forward, peak: m.peak, end: m.end }; }), c = model(k);
        const want = got.map((_, r) => heldBytes(c, member(k.l, r)));
        const unit = c.T * k.s.H * k.s.D * c.e; // one rank's q
        if (k.s.Hkv === k.s.H) t.diagnostic(`${caseName(k).padEnd(48)} held ${distinct(got.map((x) => (x.peak / unit).toFixed(2)))} × q at the peak (${distinct(got.map((x) => x.peak))} B), ${distinct(got.map((x) => (x.forward / unit).toFixed(2)))} in the forward`);
        assert.deepEqual(got, want, caseName(k));
      });
      t.diagnostic(`${viaRun.length} runBatch peaks and ${all.length} × (forward peak, peak, end) on ${N} ranks each: all exact`);
    });
  }
});

describe('held.ts on a GPU (bf16 inputs, f32 accumulation, the backward kernel\'s delta): the peaks docs/plan.md states', () => {
  const gpu = (c: Partial<HeldCase>): HeldCase => ({
    strategy: 'ring', T: 1 << 20, H: 32, Hkv: 8, D: 128, ring: 2, ulysses: 1, inner: 2, e: 2, a: 4, kernelTemps: true, backward: true, ...c,
  });
  it('rings: lse + the bf16 output + dq + three f32 dK,dV pairs (+ the K,V blocks in flight) + delta; up to aa4a388 the f32 output too', () => {
    for (const [r, blocks] of [[2, 0], [3, 1], [4, 2], [8, 2], [64, 2], [1000, 2]] as const) {
      const c = gpu({ ring: r, inner: r, T: 4096 }), q = c.T * c.H * c.D, kv = c.T * c.Hkv * c.D, lse = c.H * c.T * 4;
      const want = lse + q * 2 + q * 4 + 6 * kv * 4 + blocks * 2 * kv * 2 + lse;
      assert.equal(heldBytes(c).peak, want, `ring of ${r}`);
      assert.equal(heldBytes({ ...c, heldAccOut: true }).peak, want + q * 4, `ring of ${r}, f32 output held`);
    }
    // the ring of 2 at 2M (T = 1M per rank, Hkv 8): 48.25 GiB beyond the inputs and block lists (64.25 with the f32 output)
    assert.equal(heldBytes(gpu({})).peak / 2 ** 30, 48.25);
    assert.equal(heldBytes(gpu({ heldAccOut: true })).peak / 2 ** 30, 64.25);
  });
});
