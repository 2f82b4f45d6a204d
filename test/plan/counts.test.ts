// The planner's counts come from running the strategy code on the dry-run backend (counts.ts).
// Here the dry run is held to the same code on real CPU ranks: every strategy on worlds of 1, 2,
// 4 and 8, three head shapes (MHA; GQA with KV heads shared by Ulysses members; GQA with irregular
// and shared Ulysses head ranges), f32 and bf16 inputs (f32 accumulation: the GPU's casts). Each
// CPU rank's MeteredDevice (bytes held after the forward and at the peak; every elementwise
// operation's calls and bytes, forward and in all) must equal the dry run of that rank, exactly.
// (Bytes held when the forward returns too: what a training layer keeps for its backward.)
// And the extension of long rings (three lengths, affine past them) equals running them out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  countStats,
  traceRank,
  prepareCounts,
  preparedExchanges,
  preparedRing,
  strategyCounts,
  type CountCase,
} from '../../src/plan/counts.js';
import { caseName, cases, viaRanks } from './metered-cases.js';

/** One rank's counts from its dry run: T rows per rank of a full mask over zigzag shards. */
const dryRank = async (c: CountCase, world: number, rank: number, T: number, kernelTemps = true) =>
  (await traceRank(c, world, rank, { T, kernelTemps })).counts;

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
            {
              forward: got.heldForward,
              peak: got.heldPeak,
              kept: got.heldKept,
              trafficForward: got.trafficForward,
              traffic: got.traffic,
            },
            {
              forward: want.forward,
              peak: want.peak,
              kept: want.kept,
              trafficForward: want.trafficForward,
              traffic: want.traffic,
            },
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
        whole = { ...(whole ?? x), heldForward: x.heldForward, heldPeak: x.heldPeak, heldKept: x.heldKept };
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

it("Ulysses all-to-alls as the code sends them: the output with its f32 lse, f32 partial dK,dV where members share KV heads, the members' KV ranges", async () => {
  const x = (H: number, Hkv: number, u: number, e: 2 | 4): CountCase => ({
    strategy: 'ulysses',
    ulysses: u,
    ring: 1,
    inner: 1,
    placement: 'head-first',
    H,
    Hkv,
    D: 128,
    e,
  });
  // bytes per token of a rank's shard, every send buffer (its own included)
  for (const [c, want] of [
    // MHA-like GQA, degree ≤ KV heads: q, k, v in bf16; out + lse; dO; dq, dk, dv in bf16
    [x(32, 8, 4, 2), { fwdIn: 48 * 256, fwdOut: 32 * (256 + 4), bwdIn: 32 * 256, bwdOut: 48 * 256 }],
    // degree 16 > 8 KV heads: each member gets one KV head, the two sharing it send f32 sums
    [x(32, 8, 16, 2), { fwdIn: 64 * 256, fwdOut: 32 * (256 + 4), bwdIn: 32 * 256, bwdOut: 32 * 256 + 32 * 512 }],
    // irregular: 3 query heads a member over KV heads of 4; ranges of 1 or 2 heads (12 in all)
    // forward, each member sends its rows of every range; backward all rows of its own range (2 at most)
    [x(24, 6, 8, 2), { fwdIn: 48 * 256, fwdOut: 24 * (256 + 4), bwdIn: 24 * 256, bwdOut: 24 * 256 + 32 * 512 }],
    // f32 inputs: the sums are in the input type
    [x(32, 8, 16, 4), { fwdIn: 64 * 512, fwdOut: 32 * (512 + 4), bwdIn: 32 * 512, bwdOut: 64 * 512 }],
  ] as const) {
    await prepareCounts([c]);
    assert.deepEqual(preparedExchanges(c), want, JSON.stringify(c));
  }
});

it('TokenRing sends a partial result from its second foreign step on (the first is its own queries), the last after the last step: r − 1 in all', async () => {
  for (const ring of [2, 3, 4, 8, 12]) {
    const c: CountCase = {
      strategy: 'tokenring',
      ulysses: 1,
      ring,
      inner: ring,
      placement: 'head-first',
      H: 4,
      Hkv: 2,
      D: 8,
      e: 2,
    };
    await prepareCounts([c]);
    const r = preparedRing(c);
    assert.equal(r.fwd.partialsFrom, 2, `ring ${ring} forward`);
    assert.equal(r.bwd.partialsFrom, 2, `ring ${ring} backward`);
  }
});

it('one Ulysses member of each kind (KV range size, regular or not) stands for all: the counts equal the largest over every member', async () => {
  for (const [H, Hkv, u] of [
    [24, 6, 8],
    [32, 8, 16],
    [8, 1, 4],
    [12, 4, 6],
  ] as const) {
    for (const strategy of ['ulysses', 'usp'] as const) {
      const ring = strategy === 'usp' ? 2 : 1;
      const c: CountCase = { strategy, ulysses: u, ring, inner: ring, placement: 'head-first', H, Hkv, D: 8, e: 2 };
      const got = await strategyCounts(c, 64);
      let peak = -1,
        traffic = -1,
        held = { heldForward: 0, heldPeak: 0, heldKept: 0 },
        moved = { trafficForward: got.trafficForward, traffic: got.traffic };
      for (let m = 0; m < u; m++) {
        // the USP mesh puts Ulysses members on consecutive ranks (head-first)
        const x = await dryRank(c, u * ring, m, 64);
        if (x.heldPeak > peak)
          [peak, held] = [x.heldPeak, { heldForward: x.heldForward, heldPeak: x.heldPeak, heldKept: x.heldKept }];
        const b = x.traffic.total.readBytes + x.traffic.total.writeBytes;
        if (b > traffic) [traffic, moved] = [b, { trafficForward: x.trafficForward, traffic: x.traffic }];
      }
      assert.deepEqual(got, { ...held, ...moved }, `${strategy} H${H} Hkv${Hkv} u${u}`);
    }
  }
});
