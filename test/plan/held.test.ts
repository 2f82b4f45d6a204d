// The planner's count of what a rank of weft's releasing strategy code holds (src/plan/held.ts,
// the `weft` memory profile) against the code itself: every strategy run on CPU ranks whose
// device meters the bytes held (MeteredDevice: allocations minus releases), per rank, for worlds
// of 1, 2, 4 and 8, three shapes (MHA; GQA with KV heads shared by Ulysses members; GQA whose
// Ulysses head ranges are irregular and shared), causal zigzag shards. f64 and f32 (accumulation
// in the input type: no casts) through runBatch, its `peakHeldBytes`; f64, f32 and bf16 (f32
// accumulation: the GPU's casts) through a rank program (held-rank.ts) that also reads the peak
// after the forward and what is held at the end. All must be exact: the count is the code's
// allocations and releases in the code's order. (What it leaves to the GPU alone — the backward
// kernel's f32 delta — is one term, kernelTemps, from src/kernel/cuda/kernel.ts.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runRanks } from '../../src/comm/local/launch.js';
import { uspMesh } from '../../src/mesh/mesh.js';
import { heldBytes, type HeldCase } from '../../src/plan/held.js';
import { type Layout, runBatch } from '../../src/run/index.js';
import { resolveLayout } from '../../src/run/layout.js';
import { randn, Rng } from '../../src/tensor/random.js';
import type { HeldCount, HeldTask } from './held-rank.js';

interface Shape { S: number; H: number; Hkv: number; D: number }
const shapes = (N: number): Shape[] => [
  { S: 8 * N, H: 8, Hkv: 8, D: 4 },
  { S: 12 * N, H: 8, Hkv: 2, D: 2 }, // Ulysses 4 and 8: a KV head goes to several members (f32 partial sums)
  { S: 4 * N, H: 24, Hkv: 3, D: 2 }, // Ulysses 2 and 8: members' KV ranges irregular (expanded, reduced) and shared
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
];

const BYTES = { f64: 8, f32: 4, bf16: 2 } as const;
type Dt = keyof typeof BYTES;

/** The count's case for a layout and shape on CPU ranks (accumulation f64 for f64, else f32; no kernel temporaries). */
function model(l: Layout, s: Shape, dtype: Dt): HeldCase {
  const N = l.world;
  const u = l.strategy === 'ulysses' ? N : l.strategy === 'usp' ? l.ulysses! : 1;
  return {
    strategy: l.strategy, T: s.S / N, H: s.H, Hkv: s.Hkv, D: s.D, ring: N / u, ulysses: u, inner: l.inner ?? N,
    e: BYTES[dtype], a: dtype === 'f64' ? 8 : 4, kernelTemps: false, backward: true,
  };
}

/** The Ulysses member a rank is (its group rank; 0 where there is none). */
function member(l: Layout, rank: number): number {
  if (l.strategy === 'ulysses') return rank;
  if (l.strategy === 'usp') return uspMesh(l.ulysses!, l.ring!, l.placement!).coord(rank, 'ulysses');
  return 0;
}

const name = (l: Layout, s: Shape, dtype: string): string =>
  `${l.strategy}${l.strategy === 'usp' ? ` ${l.ulysses}x${l.ring}` : l.strategy === 'double-ring' ? ` inner ${l.inner}` : ''} N=${l.world} S=${s.S} H=${s.H} Hkv=${s.Hkv} D=${s.D} ${dtype}`;
const distinct = (xs: readonly (number | string)[]): string => [...new Set(xs)].join('/');

describe('held.ts against the metered CPU ranks', () => {
  for (const N of [1, 2, 4, 8]) {
    it(`world ${N}: every rank's peak held is the count, exactly (runBatch f64, f32; and forward peak, peak and end for f64, f32, bf16)`, async (t) => {
      const cases = layouts(N).flatMap((l) => shapes(N).flatMap((s) => (['f64', 'f32', 'bf16'] as const).map((dtype) => ({ l, s, dtype }))));
      const viaRun = cases.filter((c) => c.dtype !== 'bf16');
      const rng = new Rng(5);
      const res = await runBatch(viaRun.map(({ l, s, dtype }) => ({
        layout: l,
        problem: {
          q: randn(rng, 'f64', [s.S, s.H, s.D]), k: randn(rng, 'f64', [s.S, s.Hkv, s.D]), v: randn(rng, 'f64', [s.S, s.Hkv, s.D]),
          dout: randn(rng, 'f64', [s.S, s.H, s.D]), mask: { kind: 'causal' as const }, scale: 0.5, dtype: dtype as 'f64' | 'f32',
        },
      })));
      viaRun.forEach(({ l, s, dtype }, i) => {
        const peaks = res[i]!.stats.perRank.map((p) => p.peakHeldBytes);
        const c = model(l, s, dtype);
        assert.deepEqual(peaks, peaks.map((_, r) => heldBytes(c, member(l, r)).peak), `runBatch ${name(l, s, dtype)}`);
      });
      const tasks: HeldTask[] = cases.map(({ l, s, dtype }) => ({ layout: resolveLayout(l, s), ...s, dtype, mask: { kind: 'causal' } }));
      const counts = await runRanks<HeldCount[]>(N, { module: new URL('./held-rank.js', import.meta.url), fn: 'heldRank' }, () => tasks);
      cases.forEach(({ l, s, dtype }, i) => {
        const got = counts.map((x) => x[i]!), c = model(l, s, dtype);
        const want = got.map((_, r) => heldBytes(c, member(l, r)));
        const unit = c.T * s.H * s.D * c.e; // one rank's q
        if (s.Hkv === s.H) t.diagnostic(`${name(l, s, dtype).padEnd(48)} held ${distinct(got.map((x) => (x.peak / unit).toFixed(2)))} × q at the peak (${distinct(got.map((x) => x.peak))} B), ${distinct(got.map((x) => (x.forward / unit).toFixed(2)))} in the forward`);
        assert.deepEqual(got, want, name(l, s, dtype));
      });
      t.diagnostic(`${viaRun.length} runBatch peaks and ${cases.length} × (forward peak, peak, end) on ${N} ranks each: all exact`);
    });
  }
});

describe('held.ts on a GPU (bf16 inputs, f32 accumulation, the backward kernel\'s delta): the peaks docs/plan.md states', () => {
  const gpu = (c: Partial<HeldCase>): HeldCase => ({
    strategy: 'ring', T: 1 << 20, H: 32, Hkv: 8, D: 128, ring: 2, ulysses: 1, inner: 2, e: 2, a: 4, kernelTemps: true, backward: true, ...c,
  });
  it('rings: state + output cast + dq + three f32 dK,dV pairs (+ the K,V blocks in flight) + delta', () => {
    for (const [r, blocks] of [[2, 0], [3, 1], [4, 2], [8, 2], [64, 2], [1000, 2]] as const) {
      const c = gpu({ ring: r, inner: r, T: 4096 }), q = c.T * c.H * c.D, kv = c.T * c.Hkv * c.D, lse = c.H * c.T * 4;
      const want = q * 4 + lse + q * 2 + q * 4 + 6 * kv * 4 + blocks * 2 * kv * 2 + lse;
      assert.equal(heldBytes(c).peak, want, `ring of ${r}`);
    }
    // the ring of 2 at 2M (T = 1M per rank, Hkv 8): 64.25 GiB beyond the inputs and block lists
    assert.equal(heldBytes(gpu({})).peak / 2 ** 30, 64.25);
  });
});
