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
import { runRanks } from '../../src/comm/local/launch.js';
import { uspMesh } from '../../src/mesh/mesh.js';
import { elementwiseTraffic } from '../../src/plan/elementwise.js';
import type { HeldCase } from '../../src/plan/held.js';
import { type Layout, runBatch } from '../../src/run/index.js';
import { resolveLayout } from '../../src/run/layout.js';
import { randn, Rng } from '../../src/tensor/random.js';
import type { HeldTask, TrafficCount } from './held-rank.js';

interface Shape { S: number; H: number; Hkv: number; D: number }
const shapes = (N: number): Shape[] => [
  { S: 8 * N, H: 8, Hkv: 8, D: 4 },
  { S: 12 * N, H: 8, Hkv: 2, D: 2 },
  { S: 4 * N, H: 24, Hkv: 3, D: 2 },
];
const layouts = (N: number): Layout[] => [
  { strategy: 'ring', world: N, shard: 'zigzag' },
  { strategy: 'tokenring', world: N, shard: 'zigzag' },
  { strategy: 'ulysses', world: N, shard: 'zigzag' },
  { strategy: 'allgather', world: N, shard: 'zigzag' },
  ...(N > 1 ? [
    { strategy: 'usp', world: N, ulysses: 2, ring: N / 2, placement: 'head-first', shard: 'zigzag' },
    { strategy: 'double-ring', world: N, inner: 2, shard: 'zigzag' },
  ] as Layout[] : []),
  ...(N === 8 ? [
    { strategy: 'usp', world: N, ulysses: 4, ring: 2, placement: 'context-first', shard: 'zigzag' },
    { strategy: 'double-ring', world: N, inner: 4, shard: 'zigzag' },
  ] as Layout[] : []),
];

const BYTES = { f64: 8, f32: 4, bf16: 2 } as const;
type Dt = keyof typeof BYTES;

function model(l: Layout, s: Shape, dtype: Dt): HeldCase {
  const N = l.world;
  const u = l.strategy === 'ulysses' ? N : l.strategy === 'usp' ? l.ulysses! : 1;
  return {
    strategy: l.strategy, T: s.S / N, H: s.H, Hkv: s.Hkv, D: s.D, ring: N / u, ulysses: u, inner: l.inner ?? N,
    e: BYTES[dtype], a: dtype === 'f64' ? 8 : 4, kernelTemps: false, backward: true,
  };
}

function member(l: Layout, rank: number): number {
  if (l.strategy === 'ulysses') return rank;
  if (l.strategy === 'usp') return uspMesh(l.ulysses!, l.ring!, l.placement!).coord(rank, 'ulysses');
  return 0;
}

const name = (l: Layout, s: Shape, dtype: string): string =>
  `${l.strategy}${l.strategy === 'usp' ? ` ${l.ulysses}x${l.ring} ${l.placement}` : l.strategy === 'double-ring' ? ` inner ${l.inner}` : ''} N=${l.world} S=${s.S} H=${s.H} Hkv=${s.Hkv} D=${s.D} ${dtype}`;

describe('elementwise.ts against the metered CPU ranks', () => {
  for (const N of [1, 2, 4, 8]) {
    it(`world ${N}: every rank's elementwise traffic (bytes read, written, calls per operation) is the count, exactly`, async (t) => {
      const cases = layouts(N).flatMap((l) => shapes(N).flatMap((s) => (['f64', 'f32', 'bf16'] as const).map((dtype) => ({ l, s, dtype }))));
      const viaRun = cases.filter((c) => c.dtype !== 'bf16');
      const rng = new Rng(7);
      const res = await runBatch(viaRun.map(({ l, s, dtype }) => ({
        layout: l,
        problem: {
          q: randn(rng, 'f64', [s.S, s.H, s.D]), k: randn(rng, 'f64', [s.S, s.Hkv, s.D]), v: randn(rng, 'f64', [s.S, s.Hkv, s.D]),
          dout: randn(rng, 'f64', [s.S, s.H, s.D]), mask: { kind: 'causal' as const }, scale: 0.5, dtype: dtype as 'f64' | 'f32',
        },
      })));
      viaRun.forEach(({ l, s, dtype }, i) => {
        const got = res[i]!.stats.perRank.map((p) => p.elementwise);
        const c = model(l, s, dtype);
        assert.deepEqual(got, got.map((_, r) => elementwiseTraffic(c, member(l, r)).total), `runBatch ${name(l, s, dtype)}`);
      });
      const tasks: HeldTask[] = cases.map(({ l, s, dtype }) => ({ layout: resolveLayout(l, s), ...s, dtype, mask: { kind: 'causal' } }));
      const counts = await runRanks<TrafficCount[]>(N, { module: new URL('./held-rank.js', import.meta.url), fn: 'trafficRank' }, () => tasks);
      cases.forEach(({ l, s, dtype }, i) => {
        const got = counts.map((x) => x[i]!), c = model(l, s, dtype);
        const want = got.map((_, r) => elementwiseTraffic(c, member(l, r)));
        if (dtype === 'bf16' && s.Hkv === s.H) {
          const q = c.T * s.H * s.D * c.e, tot = got[0]!.total.total;
          t.diagnostic(`${name(l, s, dtype).padEnd(58)} ${((tot.readBytes + tot.writeBytes) / q).toFixed(1)} × q bytes moved in ${tot.calls} calls (rank 0)`);
        }
        assert.deepEqual(got, want, name(l, s, dtype));
      });
      t.diagnostic(`${viaRun.length} runBatch counts and ${cases.length} × (forward, total) on ${N} ranks each: all exact`);
    });
  }
});
