// What weft's strategy code holds and moves on one rank, counted by running it: the real
// strategy (src/strategy/*) for a representative rank on the dry-run backend (backends/dry: a
// shape-only Device metered by MeteredDevice, a kernel that holds the GPU kernel's backward
// delta, a Comm whose operations complete at once). The planner prices these counts with the
// calibration (memory: footprint.ts; elementwise traffic: schedule.ts deviceOpsMs).
//
// Every byte a strategy allocates or moves is a whole number of rows of its shard (q, k, v, out,
// lse and their gradients are [T, …] or [H, T]), so one run at T0 rows per rank gives the count
// at any T by scaling bytes by T / T0 (calls stay). Shards are taken as equal and no block as
// empty under the mask (a full mask): every ring step calls the kernel, the most a layout holds.
// Ranks differ only by their Ulysses member (GQA head plans), so every member is run and the
// largest taken. A ring of n runs n steps; past LONG members the counts are affine in n (every
// step between the first and the last few repeats the same allocations, releases and copies), so
// long rings are run at two lengths and extended, and a third length checks that they are affine.
import { DryComm, DryDevice, DryKernel } from '../backends/dry/index.js';
import { MaskGrid } from '../mask/grid.js';
import { uspMesh, type Placement } from '../mesh/mesh.js';
import { ShardMap } from '../shard/shard.js';
import { allgather, doubleRing, ring, type Strategy, tokenring, ulysses, usp } from '../strategy/index.js';
import { type DeviceTraffic, type ElementwiseOp, MeteredDevice, noTraffic } from '../strategy/accounting.js';
import type { Tensor } from '../tensor/host.js';
import type { PlanStrategy } from './types.js';

/** One rank's layout and head shape: what the counts depend on besides T. */
export interface CountCase {
  strategy: PlanStrategy;
  ulysses: number;
  ring: number;
  /** inner ring size (double ring) */
  inner: number;
  placement: Placement;
  H: number;
  Hkv: number;
  D: number;
  /** bytes per element of the inputs: 2 (bf16) or 4 (f32); the accumulation type is f32 */
  e: 2 | 4;
}

/** A rank's counts: bytes held (peak over the forward; over forward and backward), Device traffic (forward; in all). */
export interface StrategyCounts {
  heldForward: number;
  heldPeak: number;
  trafficForward: DeviceTraffic;
  traffic: DeviceTraffic;
}

export const ELEMENTWISE_OPS: readonly ElementwiseOp[] = ['zeros', 'full', 'copyBox', 'add', 'cast'];
const OPS: readonly (ElementwiseOp | 'total')[] = [...ELEMENTWISE_OPS, 'total'];
/** Rows per rank of the runs (even: zigzag gives each rank two chunks). */
const T0 = 2;
/** Rings up to this many members are run as they are; longer ones at LONG, LONG + 1 (and LONG + 2 to check). */
const LONG = 8;

/** How much work the counting did (tests assert it, never time). */
export const countStats = { runs: 0, steps: 0, cached: 0 };

// the counts as vectors: held forward, held peak, then calls, read and write bytes of each op, forward and in all
function toVec(c: StrategyCounts): number[] {
  const v = [c.heldForward, c.heldPeak];
  for (const t of [c.trafficForward, c.traffic])
    for (const o of OPS) v.push(t[o].calls, t[o].readBytes, t[o].writeBytes);
  return v;
}
function fromVec(v: readonly number[]): StrategyCounts {
  const t = [noTraffic(), noTraffic()];
  let i = 2;
  for (const x of t)
    for (const o of OPS) {
      x[o] = { calls: v[i]!, readBytes: v[i + 1]!, writeBytes: v[i + 2]! };
      i += 3;
    }
  return { heldForward: v[0]!, heldPeak: v[1]!, trafficForward: t[0]!, traffic: t[1]! };
}

function strategyOf(c: CountCase, inner: number): Strategy {
  switch (c.strategy) {
    case 'local':
    case 'ring':
      return ring;
    case 'allgather':
      return allgather;
    case 'tokenring':
      return tokenring;
    case 'ulysses':
      return ulysses;
    case 'usp':
      return usp({ ulysses: c.ulysses, ring: c.ring, placement: c.placement });
    case 'double-ring':
      return doubleRing({ inner });
  }
}

/** The ranks that stand for every Ulysses member (ranks differ only there). */
function memberRanks(c: CountCase, ringN: number): number[] {
  if (c.strategy === 'ulysses') return Array.from({ length: c.ulysses }, (_, m) => m);
  if (c.strategy !== 'usp') return [0];
  const mesh = uspMesh(c.ulysses, ringN, c.placement);
  return Array.from({ length: c.ulysses }, (_, m) => mesh.rankOf({ ulysses: m, ring: 0 }));
}

/**
 * One rank's forward and backward on the dry-run backend, T rows per rank (zigzag shards of a
 * full mask); `kernelTemps`: hold the GPU kernel's backward delta (off to compare with CPU ranks).
 */
export async function dryRank(
  c: CountCase,
  world: number,
  rank: number,
  T = T0,
  kernelTemps = true,
): Promise<StrategyCounts> {
  return runRank(c, strategyOf(c, c.inner), world, rank, T, kernelTemps);
}

async function runRank(
  c: CountCase,
  strategy: Strategy,
  world: number,
  rank: number,
  T = T0,
  kernelTemps = true,
): Promise<StrategyCounts> {
  const dry = new DryDevice(),
    device = new MeteredDevice(dry);
  const kernel = new DryKernel(device, { kernelTemps });
  const S = T * world,
    dtype = c.e === 2 ? 'bf16' : 'f32';
  const input = (h: number): Tensor => dry.empty(dtype, [T, h, c.D]);
  const q = input(c.H),
    k = input(c.Hkv),
    v = input(c.Hkv),
    dout = input(c.H);
  const ctx = {
    comm: new DryComm(rank, world),
    kernel,
    device,
    mask: MaskGrid.build({ kind: 'full' }, S),
    shard: ShardMap.build('zigzag', S, world),
    scale: 1,
    trace: {
      step: (l: string) => {
        countStats.steps++;
        kernel.step(l);
      },
    },
  };
  countStats.runs++;
  const res = await strategy(ctx, q, k, v);
  const heldForward = device.peak,
    trafficForward = structuredClone(device.traffic);
  await res.backward(dout);
  return { heldForward, heldPeak: device.peak, trafficForward, traffic: device.traffic };
}

/** The rank's counts at T0 rows for a ring of `n` (double ring: `inner` × n / inner): the largest over the members. */
async function runAt(c: CountCase, n: number, inner: number): Promise<number[]> {
  const u = c.strategy === 'ulysses' || c.strategy === 'usp' ? c.ulysses : 1;
  const world = c.strategy === 'ulysses' ? u : c.strategy === 'local' ? 1 : u * n;
  const s = strategyOf({ ...c, ring: n }, inner);
  let peak: StrategyCounts | undefined, traffic: StrategyCounts | undefined;
  const bytes = (x: StrategyCounts): number => x.traffic.total.readBytes + x.traffic.total.writeBytes;
  for (const rank of memberRanks(c, n)) {
    const x = await runRank(c, s, world, rank);
    if (!peak || x.heldPeak > peak.heldPeak) peak = x;
    if (!traffic || bytes(x) > bytes(traffic)) traffic = x;
  }
  const v = toVec(traffic!);
  v[0] = peak!.heldForward;
  v[1] = peak!.heldPeak;
  return v;
}

/** f at `x` from f at a and a + 1, f affine past LONG; `check` is f at a + 2, which must agree. */
function extend(
  fa: readonly number[],
  fb: readonly number[],
  fc: readonly number[],
  a: number,
  x: number,
  what: string,
): number[] {
  const out = fa.map((y, i) => y + (x - a) * (fb[i]! - y));
  fc.forEach((y, i) => {
    if (Math.abs(fa[i]! + 2 * (fb[i]! - fa[i]!) - y) > 1e-9 * Math.max(1, Math.abs(y)))
      throw new Error(`counts: ${what} are not affine in the ring length past ${LONG} (entry ${i})`);
  });
  return out;
}

const cache = new Map<string, Promise<number[]>>();
const settled = new Map<string, number[]>();

/** The counts at T0 rows, ring lengths extended where long. */
function countsAtT0(c: CountCase): Promise<number[]> {
  const key = JSON.stringify(c);
  const hit = cache.get(key);
  if (hit) {
    countStats.cached++;
    return hit;
  }
  const p = (async (): Promise<number[]> => {
    if (c.strategy === 'local' || c.strategy === 'ulysses') return runAt(c, 1, 1);
    const what = `${c.strategy} counts`;
    if (c.strategy !== 'double-ring') {
      if (c.ring <= LONG + 2) return runAt(c, c.ring, c.ring);
      const [fa, fb, fc] = [
        await runAt(c, LONG, LONG),
        await runAt(c, LONG + 1, LONG + 1),
        await runAt(c, LONG + 2, LONG + 2),
      ];
      return extend(fa, fb, fc, LONG, c.ring, what);
    }
    // double ring: affine in the inner length for a fixed outer one, and in the outer for a fixed inner
    const i = c.inner,
      o = c.ring / c.inner;
    const at = (x: number, y: number): Promise<number[]> => runAt(c, x * y, x);
    const alongOuter = async (x: number): Promise<number[]> => {
      if (o <= LONG + 2) return at(x, o);
      return extend(await at(x, LONG), await at(x, LONG + 1), await at(x, LONG + 2), LONG, o, what);
    };
    if (i <= LONG + 2) return alongOuter(i);
    return extend(await alongOuter(LONG), await alongOuter(LONG + 1), await alongOuter(LONG + 2), LONG, i, what);
  })();
  cache.set(
    key,
    p.then((v) => {
      settled.set(key, v);
      return v;
    }),
  );
  return cache.get(key)!;
}

/** Counts at T0 rows → at T rows. */
function scaled(v: readonly number[], T: number): StrategyCounts {
  const f = T / T0;
  return fromVec(v.map((x, i) => (i >= 2 && (i - 2) % 3 === 0 ? x : x * f)));
}

/** One rank's counts at T rows per rank (T may be fractional: the mean of uneven shards). */
export async function strategyCounts(c: CountCase, T: number): Promise<StrategyCounts> {
  return scaled(await countsAtT0(c), T);
}

/** Counts for every case, run ahead (the planner's pricing is synchronous): the key → counts at T0 rows. */
export async function prepareCounts(cases: Iterable<CountCase>): Promise<void> {
  for (const c of cases) await countsAtT0(c);
}

/** The counts of a case prepared before (prepareCounts), at T rows; throws if it was not. */
export function preparedCounts(c: CountCase, T: number): StrategyCounts {
  const key = JSON.stringify(c);
  const v = settled.get(key);
  if (!v) throw new Error(`counts: ${key} was not prepared`);
  return scaled(v, T);
}
