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
import { DryComm, DryDevice, DryKernel, RunTrace, TraceComm, type TraceEvent } from '../backends/dry/index.js';
import { MaskGrid } from '../mask/grid.js';
import type { MaskSpec } from '../mask/spec.js';
import { queryRows } from '../mask/view.js';
import { uspMesh, type Placement } from '../mesh/mesh.js';
import { type ShardKind, ShardMap } from '../shard/shard.js';
import { allgather, doubleRing, ring, type Strategy, tokenring, ulysses, usp } from '../strategy/index.js';
import { HeadPlan } from '../strategy/heads.js';
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

/**
 * A rank's counts: bytes held (peak over the forward; over forward and backward; when the forward
 * returns: what it keeps for the backward), Device traffic (forward; in all).
 */
interface StrategyCounts {
  heldForward: number;
  heldPeak: number;
  heldKept: number;
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

// the counts as vectors: the HELD bytes held, then calls, read and write bytes of each op, forward and in all
const HELD = 3;
function toVec(c: StrategyCounts): number[] {
  const v = [c.heldForward, c.heldPeak, c.heldKept];
  for (const t of [c.trafficForward, c.traffic])
    for (const o of OPS) v.push(t[o].calls, t[o].readBytes, t[o].writeBytes);
  return v;
}
function fromVec(v: readonly number[]): StrategyCounts {
  const t = [noTraffic(), noTraffic()];
  let i = HELD;
  for (const x of t)
    for (const o of OPS) {
      x[o] = { calls: v[i]!, readBytes: v[i + 1]!, writeBytes: v[i + 2]! };
      i += 3;
    }
  return { heldForward: v[0]!, heldPeak: v[1]!, heldKept: v[2]!, trafficForward: t[0]!, traffic: t[1]! };
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

/**
 * The ranks that stand for every Ulysses member. Ranks differ only there, and members only by
 * their KV head range (strategy/heads.ts): its size and whether its query heads form regular
 * groups. One member of each kind is run.
 */
function memberRanks(c: CountCase, ringN: number): number[] {
  if (c.strategy !== 'ulysses' && c.strategy !== 'usp') return [0];
  const plan = new HeadPlan(c.ulysses, c.H, c.Hkv),
    kinds = new Map<string, number>();
  for (let m = 0; m < c.ulysses; m++) {
    const [g0, g1] = plan.kv(m),
      kind = `${g1 - g0}/${plan.regular(m)}`;
    if (!kinds.has(kind)) kinds.set(kind, m);
  }
  const members = [...kinds.values()];
  if (c.strategy === 'ulysses') return members;
  const mesh = uspMesh(c.ulysses, ringN, c.placement);
  return members.map((m) => mesh.rankOf({ ulysses: m, ring: 0 }));
}

/** How a rank is run: rows per rank (or the sequence length), the mask and shard (a full mask over zigzag shards by default). */
export interface CountOptions {
  T?: number;
  S?: number;
  /** hold the GPU kernel's backward delta (off to compare with CPU ranks) */
  kernelTemps?: boolean;
  mask?: MaskSpec;
  shard?: ShardKind;
  /** count each kernel call's unmasked area (mask/area.ts over the view's intervals) */
  countArea?: boolean;
  /** record the run (default); off where only the counts matter */
  trace?: boolean;
}

/** One rank's forward and backward on the dry-run backend: its counts, and the trace of what it did. */
export async function traceRank(
  c: CountCase,
  world: number,
  rank: number,
  o: CountOptions = {},
): Promise<{ counts: StrategyCounts; trace: RunTrace; backwardAt: number; mask: MaskGrid; shard: ShardMap }> {
  return runRank(c, strategyOf(c, c.inner), world, rank, o);
}

async function runRank(
  c: CountCase,
  strategy: Strategy,
  world: number,
  rank: number,
  o: CountOptions = {},
): Promise<{ counts: StrategyCounts; trace: RunTrace; backwardAt: number; mask: MaskGrid; shard: ShardMap }> {
  const T = o.T ?? T0;
  const trace = new RunTrace(o.countArea ?? false);
  const traced = (o.trace ?? true) ? trace : undefined;
  const dry = new DryDevice(traced),
    device = new MeteredDevice(dry);
  const kernel = new DryKernel(device, { trace: traced, kernelTemps: o.kernelTemps ?? true });
  const S = o.S ?? T * world,
    dtype = c.e === 2 ? 'bf16' : 'f32';
  const shard = ShardMap.build(o.shard ?? 'zigzag', S, world),
    mask = MaskGrid.build(o.mask ?? { kind: 'full' }, S);
  const input = (h: number): Tensor => dry.empty(dtype, [shard.length(rank), h, c.D]);
  const q = input(c.H),
    k = input(c.Hkv),
    v = input(c.Hkv),
    dout = input(c.H);
  const ctx = {
    comm: traced ? new TraceComm(new DryComm(rank, world), traced) : new DryComm(rank, world),
    kernel,
    device,
    mask,
    shard,
    scale: 1,
    trace: {
      step: (l: string) => {
        countStats.steps++;
        trace.step(l);
      },
    },
  };
  countStats.runs++;
  const res = await strategy(ctx, q, k, v);
  const heldForward = device.peak,
    heldKept = device.held,
    trafficForward = structuredClone(device.traffic),
    backwardAt = trace.events.length;
  await res.backward(dout);
  return {
    counts: { heldForward, heldPeak: device.peak, heldKept, trafficForward, traffic: device.traffic },
    trace,
    backwardAt,
    mask,
    shard,
  };
}

/**
 * The steps of a ring of n = outer × inner positions: position i = g·inner + p computes at step
 * s = o·inner + t with the block of position ((g + outer[0] + outer[1]·o) mod n/inner)·inner +
 * (p + inner[0] + inner[1]·t) mod inner (a plain ring: inner = n).
 */
export interface Walk {
  outer: readonly [number, number];
  inner: readonly [number, number];
}

const mod = (a: number, n: number): number => ((a % n) + n) % n;

export function walkAt(w: Walk, n: number, inner: number, s: number, i: number): number {
  const o = Math.floor(s / inner),
    t = s % inner,
    g = Math.floor(i / inner),
    p = i % inner;
  return mod(g + w.outer[0] + w.outer[1] * o, n / inner) * inner + mod(p + w.inner[0] + w.inner[1] * t, inner);
}

/**
 * One pass of a ring as the strategy code ran it: whose queries (q) meet whose keys (k) at each
 * step, and what moves, in bytes per sequence and per token of a ring position's block.
 */
interface RingPass {
  q: Walk;
  k: Walk;
  /** the travelling block (K,V; or the queries and what travels with them), each time it moves */
  block: number;
  /**
   * A backward turned back: the block and its sums move to the previous position, and the sums
   * complete at their owner on the last step (no hop after it)
   */
  back: boolean;
  /** every inner pass first fetches its block and waits for it (nothing to overlap) */
  fetchFirst: boolean;
  /** the sums that follow the blocks (dK,dV), each step */
  sums: number;
  /** partial results sent straight to their owners, each step */
  partials: number;
  /**
   * The first step during which a partial result travels (the steps before hold the rank's own
   * queries, or wait for the first foreign ones); the last one travels after the last step
   */
  partialsFrom: number;
  /** elements per token folded into the result after the last step: merged by the kernel, added by the Device */
  tail: { merge: number; add: number };
}

interface RingSchedule {
  fwd: RingPass;
  bwd: RingPass;
}

/** The value every step agrees on (0 where none moved); the strategy code moving blocks of several sizes is not priced. */
function common(xs: readonly number[], what: string): number {
  const v = xs.filter((x) => x > 0);
  if (v.some((x) => x !== v[0])) throw new Error(`counts: a ring moves ${what} of different sizes (${v.join(', ')})`);
  return v[0] ?? 0;
}

/** Signed, nearest to 0: how a walk's offsets are compared across ring lengths. */
const signed = (a: number, n: number): number => {
  const m = mod(a, n);
  return m > n / 2 ? m - n : m;
};

/** The walk through ring positions [g, p] a position at [g0, p0] takes, one per step; throws if it is none. */
function fitWalk(
  pos: readonly (readonly [number, number])[],
  g0: number,
  p0: number,
  outer: number,
  inner: number,
): Walk {
  const dg = (s: number): number => pos[s]![0] - g0,
    dp = (s: number): number => pos[s]![1] - p0;
  const w: Walk = {
    outer: [signed(dg(0), outer), outer > 1 ? signed(dg(inner) - dg(0), outer) : 0],
    inner: [signed(dp(0), inner), inner > 1 ? signed(dp(1) - dp(0), inner) : 0],
  };
  pos.forEach(([g, p], s) => {
    if (walkAt(w, outer * inner, inner, s, g0 * inner + p0) !== g * inner + p)
      throw new Error(`counts: the ring's step ${s} is not a walk around the ring`);
  });
  return w;
}

/** Bytes a pass sends per step (index: the calls made before), for hops inside the inner ring [0] and to another [1]. */
interface StepBytes {
  block: Float64Array[];
  /** blocks waited for before the next call: nothing overlaps them */
  fetch: Float64Array[];
  sums: Float64Array[];
  partials: Float64Array[];
  /** directions around the inner ring of the blocks and sums (+1 next, −1 previous) */
  dirs: Set<number>;
}

/**
 * A pass's sends by the step they overlap (started after call s − 1, before call s). A tensor a
 * kernel reads is a block; else one sent to the owner of the queries last computed with is a
 * partial result (they travel: `queriesOf`), else a sum.
 */
function stepBytes(
  events: readonly TraceEvent[],
  operands: ReadonlySet<unknown>,
  posOf: (rank: number) => readonly [number, number],
  me: number,
  inner: number,
  queriesOf?: (call: number) => number,
): StepBytes {
  const n = events.filter((e) => e.kind === 'call').length;
  const sized = (): Float64Array[] => [new Float64Array(n + 1), new Float64Array(n + 1)];
  const out: StepBytes = { block: sized(), fetch: sized(), sums: sized(), partials: sized(), dirs: new Set() };
  const waited = new Map<number, number>(); // batch → calls made before its wait
  let c = 0;
  for (const e of events) {
    if (e.kind === 'call') c++;
    else if (e.kind === 'wait' && !waited.has(e.batch)) waited.set(e.batch, c);
  }
  const [g0, p0] = posOf(me);
  c = 0;
  for (const e of events) {
    if (e.kind === 'call') c++;
    if (e.kind !== 'transfer' || e.op !== 'send') continue;
    const [g, p] = posOf(e.peer);
    if (g === g0 && p === p0) continue; // not around the ring (USP's Ulysses exchanges)
    const hop = g === g0 ? 0 : 1;
    const kind = operands.has(e.tensor)
      ? waited.get(e.batch) === c
        ? out.fetch
        : out.block
      : c > 0 && queriesOf && e.peer === queriesOf(c - 1)
        ? out.partials
        : out.sums;
    kind[hop]![c]! += e.bytes;
    if (hop === 0 && kind !== out.partials) out.dirs.add(signed(p - p0, inner));
  }
  return out;
}

/**
 * The ring passes of one traced rank: `posOf` gives a world rank's ring position [outer group g,
 * inner position p]; `rows` the rows of a position's block.
 */
function ringPasses(
  run: { trace: RunTrace; backwardAt: number; mask: MaskGrid; shard: ShardMap },
  me: number,
  posOf: (rank: number) => readonly [number, number],
  outer: number,
  inner: number,
  rows: number,
): RingSchedule {
  const { trace, shard, mask } = run;
  const owner = new Int32Array(shard.S);
  for (let w = 0; w < shard.world; w++) for (const p of shard.positions(w)) owner[p] = w;
  // whose queries a call holds, where they travel (TokenRing): the rank whose rows they are, by
  // identity (queryRows is memoised per positions)
  let qOwner: Map<object, number> | undefined;
  const queriesOf = (e: TraceEvent & { kind: 'call' }): number => {
    if (!qOwner) {
      qOwner = new Map();
      for (let w = 0; w < shard.world; w++) qOwner.set(queryRows(mask, shard.positions(w)), w);
    }
    const w = qOwner.get(e.view.q);
    if (w === undefined) throw new Error("counts: a ring's kernel calls hold queries of no rank");
    return w;
  };
  const pass = (events: readonly TraceEvent[]): RingPass => {
    const calls = events.filter((e) => e.kind === 'call'),
      n = calls.length;
    if (n !== outer * inner) throw new Error(`counts: a ring pass of ${outer * inner} made ${n} kernel calls`);
    const [g0, p0] = posOf(me);
    const moving = calls.some((e) => e.view.q !== calls[0]!.view.q);
    const q = calls.map((e) => posOf(moving ? queriesOf(e) : me)),
      k = calls.map((e) => posOf(owner[e.view.kPos.find((p) => p >= 0)!]!));
    const b = stepBytes(events, trace.operands, posOf, me, inner, moving ? (i) => queriesOf(calls[i]!) : undefined);
    if (b.dirs.size > 1) throw new Error('counts: a ring pass moves blocks both ways');
    // what is folded in once the last transfers are waited for
    let last = -1;
    events.forEach((e, i) => {
      if (e.kind === 'wait') last = i;
    });
    const tail = { merge: 0, add: 0 };
    for (const e of events.slice(last + 1)) if (e.kind === 'fold') tail[e.how] += e.elems / rows;
    const per = (xs: Float64Array[], what: string): number =>
      common(
        xs.flatMap((x) => [...x]),
        what,
      ) / rows;
    const any = (xs: Float64Array[]): boolean => xs.some((x) => x.some((y) => y > 0));
    return {
      q: fitWalk(q, g0, p0, outer, inner),
      k: fitWalk(k, g0, p0, outer, inner),
      block: common([per(b.block, 'blocks'), per(b.fetch, 'blocks')], 'blocks'),
      // the sums complete at home (none leaves after the last step), moving against the forward
      // (on a ring of 2 the two directions are one)
      back: any(b.sums) && b.sums.every((x) => x[n] === 0) && (inner <= 2 || !b.dirs.has(1)),
      fetchFirst: any(b.fetch),
      sums: per(b.sums, 'sums'),
      partials: per(b.partials, 'partial results'),
      partialsFrom: Math.max(
        0,
        b.partials[0]!.findIndex((x, c) => x + b.partials[1]![c]! > 0),
      ),
      tail: any(b.partials) ? tail : { merge: 0, add: 0 },
    };
  };
  return { fwd: pass(trace.events.slice(0, run.backwardAt)), bwd: pass(trace.events.slice(run.backwardAt)) };
}

/**
 * What a rank's Ulysses all-to-alls send, bytes per token of its shard (every send buffer, its
 * own included): before the kernel and after it, forward and backward.
 */
export interface Exchanges {
  fwdIn: number;
  fwdOut: number;
  bwdIn: number;
  bwdOut: number;
}

/** A pass's all-to-all bytes before its first kernel call and after its last. */
function exchangeBytes(events: readonly TraceEvent[]): [number, number] {
  let calls = 0,
    before = 0,
    after = 0;
  const total = events.filter((e) => e.kind === 'call').length;
  for (const e of events) {
    if (e.kind === 'call') calls++;
    else if (e.kind === 'transfer' && e.op === 'all-to-all') {
      if (calls === 0) before += e.bytes;
      else if (calls === total) after += e.bytes;
      else throw new Error('counts: an all-to-all between kernel calls');
    }
  }
  return [before, after];
}

/** What one length's runs give: the counts as a vector (toVec), the ring's schedule, the all-to-alls (Ulysses). */
interface Counted {
  vec: number[];
  ring: RingSchedule | null;
  exchanges: Exchanges | null;
}

const runs = new Map<string, Promise<Counted>>();

/**
 * The rank's counts at T0 rows for a ring of `n` (double ring: `inner` × n / inner): the largest
 * over the members. Memoised: long rings of every length run the same few lengths.
 */
function runAt(c: CountCase, n: number, inner: number): Promise<Counted> {
  const key = JSON.stringify({ ...c, ring: n, inner });
  let p = runs.get(key);
  if (!p) {
    p = runMembers(c, n, inner);
    runs.set(key, p);
  }
  return p;
}

async function runMembers(c: CountCase, n: number, inner: number): Promise<Counted> {
  const u = c.strategy === 'ulysses' || c.strategy === 'usp' ? c.ulysses : 1;
  const world = c.strategy === 'ulysses' ? u : c.strategy === 'local' ? 1 : u * n;
  const s = strategyOf({ ...c, ring: n }, inner);
  const rings =
    c.strategy === 'ring' || c.strategy === 'usp' || c.strategy === 'double-ring' || c.strategy === 'tokenring';
  const mesh = c.strategy === 'usp' ? uspMesh(c.ulysses, n, c.placement) : undefined;
  const posOf = (w: number): readonly [number, number] =>
    mesh ? [0, mesh.coord(w, 'ring')] : [Math.floor(w / inner), w % inner];
  let peak: StrategyCounts | undefined,
    traffic: StrategyCounts | undefined,
    ring: RingSchedule | null = null,
    exchanges: Exchanges | null = null;
  const bytes = (x: StrategyCounts): number => x.traffic.total.readBytes + x.traffic.total.writeBytes;
  const exchanging = c.strategy === 'ulysses' && u > 1;
  for (const rank of memberRanks(c, n)) {
    const run = await runRank(c, s, world, rank, { trace: (rings && n > 1) || exchanging });
    const x = run.counts;
    if (!peak || x.heldPeak > peak.heldPeak) peak = x;
    if (!traffic || bytes(x) > bytes(traffic)) traffic = x;
    if (rings && n > 1) ring = widest(ring, ringPasses(run, rank, posOf, n / inner, inner, T0 * u));
    if (exchanging) {
      const ev = run.trace.events;
      const [fwdIn, fwdOut] = exchangeBytes(ev.slice(0, run.backwardAt)),
        [bwdIn, bwdOut] = exchangeBytes(ev.slice(run.backwardAt));
      const e: Exchanges = { fwdIn: fwdIn / T0, fwdOut: fwdOut / T0, bwdIn: bwdIn / T0, bwdOut: bwdOut / T0 };
      if (exchanges) for (const k of Object.keys(e) as (keyof Exchanges)[]) e[k] = Math.max(e[k], exchanges[k]);
      exchanges = e;
    }
  }
  const v = toVec(traffic!);
  v[0] = peak!.heldForward;
  v[1] = peak!.heldPeak;
  v[2] = peak!.heldKept;
  return { vec: v, ring, exchanges };
}

/** Two members' schedules: the same walks and flags (else throws), the larger transfers. */
function widest(a: RingSchedule | null, b: RingSchedule): RingSchedule {
  if (!a) return b;
  const one = (x: RingPass, y: RingPass): RingPass => {
    const shape = (p: RingPass): string => JSON.stringify([p.q, p.k, p.back, p.fetchFirst]);
    if (shape(x) !== shape(y)) throw new Error('counts: Ulysses members run different ring schedules');
    return {
      ...x,
      block: Math.max(x.block, y.block),
      sums: Math.max(x.sums, y.sums),
      partials: Math.max(x.partials, y.partials),
      tail: { merge: Math.max(x.tail.merge, y.tail.merge), add: Math.max(x.tail.add, y.tail.add) },
    };
  };
  return { fwd: one(a.fwd, b.fwd), bwd: one(a.bwd, b.bwd) };
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

const cache = new Map<string, Promise<Counted>>();
const settled = new Map<string, Counted>();

/** Counts at lengths a, a + 1, a + 2 → at x; the schedules must agree. */
function extendAll(fa: Counted, fb: Counted, fc: Counted, a: number, x: number, what: string): Counted {
  const same = (p: RingSchedule | null): string => JSON.stringify(p);
  if (same(fa.ring) !== same(fb.ring) || same(fa.ring) !== same(fc.ring))
    throw new Error(`counts: ${what}: the ring schedule changes with the ring length past ${LONG}`);
  return { vec: extend(fa.vec, fb.vec, fc.vec, a, x, what), ring: fa.ring, exchanges: null };
}

/** The counts at T0 rows, ring lengths extended where long. */
function countsAtT0(c: CountCase): Promise<Counted> {
  const key = JSON.stringify(c);
  const hit = cache.get(key);
  if (hit) {
    countStats.cached++;
    return hit;
  }
  const p = (async (): Promise<Counted> => {
    if (c.strategy === 'local' || c.strategy === 'ulysses') return runAt(c, 1, 1);
    const what = `${c.strategy} counts`;
    if (c.strategy !== 'double-ring') {
      if (c.ring <= LONG + 2) return runAt(c, c.ring, c.ring);
      const [fa, fb, fc] = [
        await runAt(c, LONG, LONG),
        await runAt(c, LONG + 1, LONG + 1),
        await runAt(c, LONG + 2, LONG + 2),
      ];
      return extendAll(fa, fb, fc, LONG, c.ring, what);
    }
    // double ring: affine in the inner length for a fixed outer one, and in the outer for a fixed inner
    const i = c.inner,
      o = c.ring / c.inner;
    const at = (x: number, y: number): Promise<Counted> => runAt(c, x * y, x);
    const alongOuter = async (x: number): Promise<Counted> => {
      if (o <= LONG + 2) return at(x, o);
      return extendAll(await at(x, LONG), await at(x, LONG + 1), await at(x, LONG + 2), LONG, o, what);
    };
    if (i <= LONG + 2) return alongOuter(i);
    return extendAll(await alongOuter(LONG), await alongOuter(LONG + 1), await alongOuter(LONG + 2), LONG, i, what);
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
  return fromVec(v.map((x, i) => (i >= HELD && (i - HELD) % 3 === 0 ? x : x * f)));
}

/** One rank's counts at T rows per rank (T may be fractional: the mean of uneven shards). */
export async function strategyCounts(c: CountCase, T: number): Promise<StrategyCounts> {
  return scaled((await countsAtT0(c)).vec, T);
}

/** Counts for every case, run ahead (the planner's pricing is synchronous): the key → counts at T0 rows. */
export async function prepareCounts(cases: Iterable<CountCase>): Promise<void> {
  for (const c of cases) await countsAtT0(c);
}

/** The counts of a case prepared before (prepareCounts), at T rows; throws if it was not. */
export function preparedCounts(c: CountCase, T: number): StrategyCounts {
  return scaled(prepared(c).vec, T);
}

/** The ring schedule of a case prepared before (prepareCounts): transfers per token of a ring position's block. */
export function preparedRing(c: CountCase): RingSchedule {
  const r = prepared(c).ring;
  if (!r) throw new Error(`counts: ${JSON.stringify(c)} runs no ring`);
  return r;
}

/** The all-to-alls of a Ulysses case prepared before (prepareCounts): bytes per token of a rank's shard. */
export function preparedExchanges(c: CountCase): Exchanges {
  const x = prepared(c).exchanges;
  if (!x) throw new Error(`counts: ${JSON.stringify(c)} runs no all-to-all`);
  return x;
}

function prepared(c: CountCase): Counted {
  const key = JSON.stringify(c);
  const v = settled.get(key);
  if (!v) throw new Error(`counts: ${key} was not prepared`);
  return v;
}
