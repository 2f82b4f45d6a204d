// The planner's counts come from running the strategy code on the dry-run backend (counts.ts).
// Here the dry run is held to the same code on real CPU ranks: every strategy on worlds of 1, 2,
// 4 and 8, three head shapes (MHA; GQA with KV heads shared by Ulysses members; GQA with irregular
// and shared Ulysses head ranges), f32 and bf16 inputs (f32 accumulation: the GPU's casts). Each
// CPU rank's MeteredDevice (bytes held after the forward and at the peak; every elementwise
// operation's calls and bytes, forward and in all) must equal the dry run of that rank, exactly.
// And the extension of long rings (three lengths, affine past them) equals running them out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countStats, dryRank, strategyCounts, type CountCase } from '../../src/plan/counts.js';
import { caseName, cases, viaRanks } from './metered-cases.js';

describe('dry-run counts against the metered CPU ranks', () => {
  for (const N of [1, 2, 4, 8]) {
    it(`world ${N}: every rank's held bytes and elementwise traffic equal the dry run's, exactly`, async (t) => {
      const all = cases(N, true).filter((c) => c.dtype !== 'f64');
      const metered = await viaRanks(N, all);
      for (const [i, k] of all.entries()) {
        const u = k.l.strategy === 'ulysses' ? N : k.l.strategy === 'usp' ? k.l.ulysses! : 1;
        const c: CountCase = {
          strategy: k.l.strategy,
          ulysses: u,
          ring: N / u,
          inner: k.l.inner ?? N / u,
          placement: k.l.placement ?? 'head-first',
          H: k.s.H,
          Hkv: k.s.Hkv,
          D: k.s.D,
          e: k.dtype === 'bf16' ? 2 : 4,
        };
        for (let r = 0; r < N; r++) {
          const got = await dryRank(c, N, r, k.s.S / N, false),
            want = metered[r]![i]!;
          assert.deepEqual(
            { forward: got.heldForward, peak: got.heldPeak, trafficForward: got.trafficForward, traffic: got.traffic },
            { forward: want.forward, peak: want.peak, trafficForward: want.trafficForward, traffic: want.traffic },
            `${caseName(k)} rank ${r}`,
          );
        }
      }
      t.diagnostic(`${all.length} cases × ${N} ranks: all exact`);
    });
  }
});

it('long rings: the counts extended from three lengths equal the counts of the whole ring', async () => {
  const base = { ulysses: 1, placement: 'head-first' as const, H: 24, Hkv: 6, D: 8, e: 2 as const };
  for (const c of [
    { ...base, strategy: 'ring' as const, ring: 24, inner: 24 },
    { ...base, strategy: 'tokenring' as const, ring: 13, inner: 13 },
    { ...base, strategy: 'allgather' as const, ring: 17, inner: 17 },
    { ...base, strategy: 'usp' as const, ulysses: 2, ring: 12, inner: 12 },
    { ...base, strategy: 'double-ring' as const, ring: 12 * 11, inner: 12 },
  ]) {
    const before = countStats.runs;
    const extended = await strategyCounts(c, 64);
    const runs = countStats.runs - before;
    const members = c.strategy === 'usp' ? 2 : 1;
    assert.ok(runs <= (c.strategy === 'double-ring' ? 9 : 3) * members, `${c.strategy}: ${runs} runs`);
    // the whole ring, every member, the largest taken as counts.ts takes it
    let peak = -1,
      traffic = -1,
      whole;
    for (let m = 0; m < members; m++) {
      const x = await dryRank(c, c.ulysses * c.ring, m, 64);
      if (x.heldPeak > peak) {
        peak = x.heldPeak;
        whole = { ...(whole ?? x), heldForward: x.heldForward, heldPeak: x.heldPeak };
      }
      const b = x.traffic.total.readBytes + x.traffic.total.writeBytes;
      if (b > traffic) {
        traffic = b;
        whole = { ...(whole ?? x), trafficForward: x.trafficForward, traffic: x.traffic };
      }
    }
    assert.deepEqual(extended, whole, c.strategy);
  }
});
