// The cases test/plan/counts.test.ts runs, and the worker rank it runs them on:
// a strategy's forward and backward on a CPU device metered by MeteredDevice, with inputs of any
// dtype (bf16 too, which runBatch refuses: its casts to and from the f32 accumulation type are
// the GPU's path). Not a test itself.
import type { Comm } from '../../src/comm/comm.js';
import { runRanks } from '../../src/backends/cpu/comm/launch.js';
import { CpuDevice } from '../../src/backends/cpu/device.js';
import { CpuKernel } from '../../src/backends/cpu/kernel.js';
import { MaskGrid } from '../../src/mask/grid.js';
import { uspMesh } from '../../src/mesh/mesh.js';
import { type Layout, runBatch, type RunResult } from '../../src/run/index.js';
import { resolveLayout } from '../../src/run/layout.js';
import { strategyFor } from '../../src/run/strategies.js';
import { ShardMap } from '../../src/shard/shard.js';
import { type DeviceTraffic, MeteredDevice } from '../../src/strategy/accounting.js';
import { randn, Rng } from '../../src/tensor/random.js';

export interface Shape {
  S: number;
  H: number;
  Hkv: number;
  D: number;
}
export const shapes = (N: number): Shape[] => [
  { S: 8 * N, H: 8, Hkv: 8, D: 4 },
  { S: 12 * N, H: 8, Hkv: 2, D: 2 }, // Ulysses 4 and 8: a KV head goes to several members (f32 partial sums)
  { S: 4 * N, H: 24, Hkv: 3, D: 2 }, // Ulysses 2 and 8: members' KV ranges irregular (expanded, reduced) and shared
];

/** Every strategy on N ranks; `more` adds USP 4 × 2 context-first and double ring inner 4 on 8. */
export const layouts = (N: number, more = false): Layout[] => [
  { strategy: 'ring', world: N, shard: 'zigzag' },
  { strategy: 'tokenring', world: N, shard: 'zigzag' },
  { strategy: 'ulysses', world: N, shard: 'zigzag' },
  { strategy: 'allgather', world: N, shard: 'zigzag' },
  ...(N > 1
    ? ([
        { strategy: 'usp', world: N, ulysses: 2, ring: N / 2, placement: 'head-first', shard: 'zigzag' },
        { strategy: 'double-ring', world: N, inner: 2, shard: 'zigzag' },
      ] as Layout[])
    : []),
  ...(more && N === 8
    ? ([
        { strategy: 'usp', world: N, ulysses: 4, ring: 2, placement: 'context-first', shard: 'zigzag' },
        { strategy: 'double-ring', world: N, inner: 4, shard: 'zigzag' },
      ] as Layout[])
    : []),
];

const BYTES = { f64: 8, f32: 4, bf16: 2 } as const;
export type Dt = keyof typeof BYTES;
export interface MeteredCase {
  l: Layout;
  s: Shape;
  dtype: Dt;
}

/** Every layout × shape × dtype on N ranks. */
export const cases = (N: number, more = false): MeteredCase[] =>
  layouts(N, more).flatMap((l) =>
    shapes(N).flatMap((s) => (['f64', 'f32', 'bf16'] as const).map((dtype) => ({ l, s, dtype }))),
  );

/** The Ulysses member a rank is (its group rank; 0 where there is none). */
export function member(l: Layout, rank: number): number {
  if (l.strategy === 'ulysses') return rank;
  if (l.strategy === 'usp') return uspMesh(l.ulysses!, l.ring!, l.placement!).coord(rank, 'ulysses');
  return 0;
}

export const caseName = ({ l, s, dtype }: MeteredCase): string =>
  `${l.strategy}${l.strategy === 'usp' ? ` ${l.ulysses}x${l.ring} ${l.placement}` : l.strategy === 'double-ring' ? ` inner ${l.inner}` : ''} N=${l.world} S=${s.S} H=${s.H} Hkv=${s.Hkv} D=${s.D} ${dtype}`;

/** The f64 and f32 cases through runBatch (causal; its per-rank stats), in order. */
export function viaRunBatch(cs: readonly MeteredCase[], seed: number): Promise<RunResult[]> {
  const rng = new Rng(seed);
  return runBatch(
    cs.map(({ l, s, dtype }) => ({
      layout: l,
      problem: {
        q: randn(rng, 'f64', [s.S, s.H, s.D]),
        k: randn(rng, 'f64', [s.S, s.Hkv, s.D]),
        v: randn(rng, 'f64', [s.S, s.Hkv, s.D]),
        dout: randn(rng, 'f64', [s.S, s.H, s.D]),
        mask: { kind: 'causal' as const },
        scale: 0.5,
        dtype: dtype as 'f64' | 'f32',
      },
    })),
  );
}

/** One rank's meters for a case: bytes held (peak after the forward, peak, when the forward returns, at the end) and the device traffic (after the forward, in all). */
export interface Metered {
  forward: number;
  peak: number;
  kept: number;
  end: number;
  trafficForward: DeviceTraffic;
  traffic: DeviceTraffic;
}

/** Every case on N ranks through meteredRank; per rank, per case. */
export function viaRanks(N: number, cs: readonly MeteredCase[]): Promise<Metered[][]> {
  const tasks = cs.map(({ l, s, dtype }) => ({ layout: resolveLayout(l, s), ...s, dtype }));
  return runRanks<Metered[]>(
    N,
    { module: new URL('./metered-cases.js', import.meta.url), fn: 'meteredRank' },
    () => tasks,
  );
}

export async function meteredRank(
  comm: Comm,
  tasks: readonly (Shape & { layout: ReturnType<typeof resolveLayout>; dtype: Dt })[],
): Promise<Metered[]> {
  const out: Metered[] = [];
  for (const t of tasks) {
    const device = new MeteredDevice(new CpuDevice(true));
    const shard = ShardMap.build(t.layout.shard, t.S, comm.size);
    const T = shard.length(comm.rank),
      rng = new Rng(17 + comm.rank);
    const x = (h: number) => randn(rng, t.dtype, [T, h, t.D], 1, true);
    const q = x(t.H),
      k = x(t.Hkv),
      v = x(t.Hkv),
      dout = x(t.H);
    const ctx = {
      comm,
      kernel: new CpuKernel(),
      device,
      mask: MaskGrid.build({ kind: 'causal' }, t.S),
      shard,
      scale: 0.5,
    };
    const res = await strategyFor(t.layout)(ctx, q, k, v);
    const forward = device.peak,
      kept = device.held,
      trafficForward = structuredClone(device.traffic);
    await res.backward(dout);
    out.push({ forward, peak: device.peak, kept, end: device.held, trafficForward, traffic: device.traffic });
  }
  return out;
}
