// The executor: attention over any placement of tokens on ranks, moving only what the mask needs.
//
// Schedule (per rank; every rank knows every rank's positions, so the routes (routes.ts) are
// computed locally, without communication). A route is a list of hops in rounds: a star sends
// everything in round 0; a relay forwards a block one hop a round.
//   forward   round 0: start one batched exchange (to each peer the K/V rows its queries see, or
//             the first hop of a relay; ranks sharing no document never talk, so groups of any size
//             run side by side on one world); attend the own K/V block while it runs; wait.
//             Round t ≥ 1: start the exchange forwarding what came in round t − 1; attend the
//             blocks of round t − 1 meanwhile (online-softmax merge into the running state); wait.
//             Then the blocks of the last round.
//   backward  the same rounds in reverse: the gradients of the last round's blocks first; round t
//             returns the dK/dV of the blocks received in round t (their own part plus what came
//             back from further hops) while the blocks of round t − 1 (at round 0: the own block)
//             run their backward; what comes back is added at the rows it belongs to.
// Received K/V blocks are kept from the forward to the backward (no second fetch): the memory a
// plan needs beyond its own rows is exactly the rows it receives (DispatchPlan.ranks[].peakRows).
import type { Comm, P2POp, Work } from '../comm/comm.js';
import { DONE } from '../comm/comm.js';
import type { Device } from '../device/device.js';
import type { AttnState } from '../kernel/kernel.js';
import type { MaskGrid } from '../mask/grid.js';
import { queryRows } from '../mask/view.js';
import type { ShardMap } from '../shard/shard.js';
import {
  type Env,
  envOf,
  finish,
  freshState,
  isEmpty,
  type PartialResult,
  recvRows,
  releaseAll,
} from '../strategy/common.js';
import type { Strategy, StrategyCtx, StrategyResult } from '../strategy/types.js';
import { accumType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/host.js';
import { attendHeads, type HeadGroup, rowSlice, rowsIn } from './heads.js';
import {
  chunkHops,
  type Hop,
  intersect,
  mergeRanges,
  type Ranges,
  routeHops,
  type Run,
  subtract,
  takeVisits,
  type Visit,
} from './routes.js';

/** Sorted, merged key intervals the rows at `positions` see. */
function seenIntervals(grid: MaskGrid, positions: Int32Array): [number, number][] {
  const iv: [number, number][] = [];
  for (const p of positions)
    for (let i = 0; i < grid.m; i++) {
      const lo = grid.lo[p * grid.m + i]!,
        hi = grid.hi[p * grid.m + i]!;
      if (lo < hi) iv.push([lo, hi]);
    }
  return mergeRanges(iv);
}

/** Runs of consecutive positions of every rank, sorted by start. */
function heldRuns(shard: ShardMap): Run[] {
  const out: Run[] = [];
  for (let rank = 0; rank < shard.world; rank++) {
    const pos = shard.positions(rank);
    for (let i = 0; i < pos.length;) {
      let j = i + 1;
      while (j < pos.length && pos[j] === pos[j - 1]! + 1) j++;
      out.push({ start: pos[i]!, end: pos[j - 1]! + 1, rank });
      i = j;
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

/** The positions among `positions` whose rows see any key in `keys` (sorted ranges), as ranges. */
function rowsSeeing(grid: MaskGrid, positions: Int32Array, keys: Ranges): [number, number][] {
  const out: [number, number][] = [];
  for (const p of positions) {
    let sees = false;
    for (let i = 0; i < grid.m && !sees; i++) {
      const lo = grid.lo[p * grid.m + i]!,
        hi = grid.hi[p * grid.m + i]!;
      sees = lo < hi && intersect([[lo, hi]], keys).length > 0;
    }
    if (!sees) continue;
    const last = out[out.length - 1];
    if (last && last[1] === p) last[1] = p + 1;
    else out.push([p, p + 1]);
  }
  return out;
}

/** A step's routes: the K/V hops in their rounds, and the visiting queries. */
export interface Exchange {
  hops: Hop[];
  visits: Visit[];
}

const plans = new WeakMap<MaskGrid, WeakMap<ShardMap, Map<string, Exchange>>>();

/**
 * Every hop and visit of the step, from the mask, the placement, the relay spans, the visiting
 * pairs ([query rank, key owner]) and the spans attended head-parallel (`hidden`) alone (memoized: forward and backward ask again).
 */
function exchangeHops(
  grid: MaskGrid,
  shard: ShardMap,
  relay: Ranges = [],
  chunks = 1,
  visits: readonly (readonly [number, number])[] = [],
  hidden: Ranges = [],
): Exchange {
  let byShard = plans.get(grid);
  if (!byShard) plans.set(grid, (byShard = new WeakMap()));
  let byRelay = byShard.get(shard);
  if (!byRelay) byShard.set(shard, (byRelay = new Map()));
  const spans = (r: Ranges): string => r.map(([a, b]) => `${a}-${b}`).join(',');
  const key = `${chunks}:${spans(relay)}:${visits.map(([q, o]) => `${q}>${o}`).join(',')}:${spans(hidden)}`;
  let ex = byRelay.get(key);
  if (!ex) {
    const N = shard.world;
    // the head-parallel documents' keys travel in their sub-groups' all-to-alls, not here
    const need = Array.from({ length: N }, (_, r) => subtract(seenIntervals(grid, shard.positions(r)), hidden));
    const taken = takeVisits(
      routeHops(heldRuns(shard), need, relay),
      new Set(visits.map(([q, o]) => q * N + o)),
      N,
      (from, keys) => rowsSeeing(grid, shard.positions(from), keys),
    );
    byRelay.set(key, (ex = { hops: chunkHops(taken.hops, chunks), visits: taken.visits }));
  }
  return ex;
}

/** The positions of sorted ranges, ascending. */
function positionsOf(ranges: Ranges): Int32Array {
  const out = new Int32Array(ranges.reduce((s, [a, b]) => s + b - a, 0));
  let at = 0;
  for (const [a, b] of ranges) for (let p = a; p < b; p++) out[at++] = p;
  return out;
}

/** Index of p in sorted positions, or −1. */
function indexOf(pos: Int32Array, p: number): number {
  let a = 0,
    b = pos.length;
  while (a < b) {
    const m = (a + b) >> 1;
    if (pos[m]! < p) a = m + 1;
    else b = m;
  }
  return a < pos.length && pos[a] === p ? a : -1;
}

/** Rows held at sorted positions: the own shard, or a received block. */
interface Held {
  pos: Int32Array;
  k: Tensor;
  v: Tensor;
}

/** Where each wanted position lies: runs of (source, first row, length), in the order of `want`. */
function locate(sources: readonly Held[], want: Int32Array): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (const p of want) {
    let s = -1,
      i = -1;
    for (let x = 0; x < sources.length && i < 0; x++) if ((i = indexOf(sources[x]!.pos, p)) >= 0) s = x;
    if (i < 0) throw new Error(`varlen: row ${p} is to be sent but is not held`);
    const last = out[out.length - 1];
    if (last && last[0] === s && last[1] + last[2] === i) last[2]++;
    else out.push([s, i, 1]);
  }
  return out;
}

/** The located rows of one tensor per source, packed into a new tensor. */
function gather(
  device: Device,
  from: readonly Tensor[],
  at: readonly [number, number, number][],
  rows: number,
): Tensor {
  const t0 = from[0]!;
  const out = device.empty(t0.dtype, [rows, ...t0.shape.slice(1)]);
  let o = 0;
  for (const [s, i, n] of at) {
    device.copyBox(from[s]!, out, { src: [i, 0], dst: [o, 0], size: [n, t0.shape[1] ?? 1] });
    o += n;
  }
  return out;
}

/** into[s][i…] += packed rows of src at the located places, through a zero tensor shaped like each target touched. */
function scatterAdd(
  device: Device,
  into: readonly Tensor[],
  src: Tensor,
  at: readonly [number, number, number][],
): void {
  const spread = new Map<number, Tensor>();
  let o = 0;
  for (const [s, i, n] of at) {
    let z = spread.get(s);
    if (!z) spread.set(s, (z = device.zeros(into[s]!.dtype, into[s]!.shape)));
    device.copyBox(src, z, { src: [o, 0], dst: [i, 0], size: [n, src.shape[1] ?? 1] });
    o += n;
  }
  for (const [s, z] of spread) device.add(into[s]!, z);
  releaseAll(device, [...spread.values()]);
}

/** The blocks one round brought, side by side in position order: one kernel call attends them all. */
function joinRound(device: Device, parts: readonly Held[]): Held {
  if (parts.length === 1) return parts[0]!;
  const segs: [number, number, number][] = []; // [first position, part, first row] of each run
  parts.forEach((b, i) => {
    for (let r = 0; r < b.pos.length;) {
      let e = r + 1;
      while (e < b.pos.length && b.pos[e] === b.pos[e - 1]! + 1) e++;
      segs.push([b.pos[r]!, i, r]);
      r = e;
    }
  });
  segs.sort((x, y) => x[0] - y[0]);
  const rows = parts.reduce((s, b) => s + b.pos.length, 0);
  const pos = new Int32Array(rows);
  const at: [number, number, number][] = [];
  let o = 0;
  for (const [, i, r] of segs) {
    const b = parts[i]!.pos;
    let e = r + 1;
    while (e < b.length && b[e] === b[e - 1]! + 1) e++;
    pos.set(b.subarray(r, e), o);
    at.push([i, r, e - r]);
    o += e - r;
  }
  const held = {
    pos,
    k: gather(
      device,
      parts.map((b) => b.k),
      at,
      rows,
    ),
    v: gather(
      device,
      parts.map((b) => b.v),
      at,
      rows,
    ),
  };
  releaseAll(
    device,
    parts.flatMap((b) => [b.k, b.v]),
  );
  return held;
}

/** Columns of lse-shaped tensors ([H, T]) at the located rows, packed into a new [H, rows] tensor. */
function gatherCols(device: Device, from: Tensor, at: readonly [number, number, number][], rows: number): Tensor {
  const H = from.shape[0]!,
    out = device.empty(from.dtype, [H, rows]);
  let o = 0;
  for (const [, i, n] of at) {
    device.copyBox(from, out, { src: [0, i], dst: [0, o], size: [H, n] });
    o += n;
  }
  return out;
}

/**
 * The queries visiting this rank (key splitting, routes.ts Visit): their rows, kept from the
 * forward to the backward, and the keys of the own block they are attended against (the others −1).
 */
interface Guest {
  visit: Visit;
  pos: Int32Array;
  q: Tensor;
  kPos: Int32Array;
  state?: AttnState;
}

/** The own positions with those outside `keys` masked out (−1: seen by nothing), or `mine` itself when all are in. */
function keysAmong(mine: Int32Array, keys: Ranges): Int32Array {
  const held = mergeRanges(Array.from(mine, (p): [number, number] => [p, p + 1]));
  if (intersect(held, keys).reduce((s, [a, b]) => s + b - a, 0) === mine.length) return mine;
  return Int32Array.from(mine, (p) => (intersect([[p, p + 1]], keys).length ? p : -1));
}

/** One batch of sends and receives ([buffer, peer] each), or nothing when there are none. */
function exchange(
  comm: Comm,
  sends: readonly (readonly [Tensor, number])[],
  recvs: readonly (readonly [Tensor, number])[],
): Work {
  const ops: P2POp[] = [
    ...sends.map(([buf, peer]) => ({ send: { buf, peer } })),
    ...recvs.map(([buf, peer]) => ({ recv: { buf, peer } })),
  ];
  return ops.length ? comm.sendRecv(ops) : DONE;
}

/**
 * The executor of a plan's routes (Routes): the relay spans, the rounds each direct transfer is
 * cut into, the pairs whose queries visit the keys instead (routes.ts), and the documents attended
 * head-parallel on sub-groups (heads.ts) — those first, then the sparse K/V exchange on every other
 * row. It runs on any ShardMap.
 *
 * Visits: the queries go out beside round 0 (before it, in their own batch); the owner attends
 * them against its own keys once they are in and sends the partial (out, lse) back while the
 * rounds go on; the visitor merges it at the end of the forward. The backward sends the visited
 * rows' dout, out and lse first, while the last round's blocks run their backward; the owner adds
 * their dK/dV into its own block's and returns dQ, which is added at the end.
 */
export function routedKV(routes: Routes = {}): Strategy {
  const { relay = [], chunks = 1, visits: visitPairs = [], heads = [] } = routes;
  const hidden: Ranges = heads.map((g) => [g.start, g.end] as const).sort((x, y) => x[0] - y[0]);
  return async (ctx, q, k, v) => {
    const env = envOf(ctx),
      me = ctx.comm.rank,
      mine = ctx.shard.positions(me);
    // the head-parallel documents this rank is a member of first, each in its sub-group (every
    // rank in document order, so transfers between two ranks are posted in the same order)
    const mineHeads = heads
      .filter((g) => g.members.includes(me))
      .map((g) => ({ g, rows: rowsIn(mine, g.start, g.end) }));
    const headResults: StrategyResult[] = [];
    for (const { g, rows } of mineHeads) {
      const [i0, n] = rows,
        part = [q, k, v].map((t) => rowSlice(env.device, t, i0, n));
      headResults.push(await attendHeads(env, ctx.comm, ctx.shard, g, part[0]!, part[1]!, part[2]!));
      releaseAll(env.device, part);
    }
    const routed = await routedRows(ctx, q, k, v, hidden, relay, chunks, visitPairs);
    if (!mineHeads.length) return routed;
    return withHeads(env, routed, mineHeads, headResults);
  };
}

/** What routedKV takes: the relay spans, the rounds of a star transfer, the visiting pairs, the head-parallel documents. */
export interface Routes {
  /** sorted, disjoint global position ranges whose rows travel by relay */
  relay?: Ranges;
  chunks?: number;
  /** [query rank, key owner] */
  visits?: readonly (readonly [number, number])[];
  heads?: readonly HeadGroup[];
}

/**
 * The head-parallel documents' rows put into a routed result (where they were padding: nothing
 * seen, nothing seeing them): out and lse copied in, and in the backward their dout goes to the
 * sub-group and the gradients come back into the rank's.
 */
function withHeads(
  env: Env,
  routed: StrategyResult,
  mineHeads: readonly { rows: [number, number] }[],
  results: readonly StrategyResult[],
): StrategyResult {
  const dev = env.device,
    H = routed.out.shape[1]!;
  mineHeads.forEach(({ rows: [i0, n] }, j) => {
    const r = results[j]!;
    dev.copyBox(r.out, routed.out, { src: [0, 0], dst: [i0, 0], size: [n, H] });
    dev.copyBox(r.lse, routed.lse, { src: [0, 0], dst: [0, i0], size: [H, n] });
    releaseAll(dev, [r.out]);
  });
  return {
    out: routed.out,
    lse: routed.lse,
    backward: async (dout) => {
      const g = await routed.backward(dout);
      for (let j = 0; j < mineHeads.length; j++) {
        const [i0, n] = mineHeads[j]!.rows,
          d = rowSlice(dev, dout, i0, n);
        const h = await results[j]!.backward(d);
        for (const [from, into] of [
          [h.dq, g.dq],
          [h.dk, g.dk],
          [h.dv, g.dv],
        ] as const)
          dev.copyBox(from, into, { src: [0, 0], dst: [i0, 0], size: [n, into.shape[1]!] });
        releaseAll(dev, [d, h.dq, h.dk, h.dv]);
      }
      return g;
    },
  };
}

/** The sparse K/V executor's part: every row outside the `hidden` spans (those are padding here). */
async function routedRows(
  ctx: StrategyCtx,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  hidden: Ranges,
  relay: Ranges,
  chunks: number,
  visitPairs: readonly (readonly [number, number])[],
): Promise<StrategyResult> {
  {
    const env = envOf(ctx),
      comm: Comm = ctx.comm,
      dev = env.device;
    const [T, H, D] = q.shape as [number, number, number];
    const acc = accumType(q.dtype);
    const me = comm.rank,
      mine = ctx.shard.positions(me);
    const { hops, visits } = exchangeHops(ctx.mask, ctx.shard, relay, chunks, visitPairs, hidden);
    const away = visits.filter((x) => x.from === me),
      guests: Guest[] = visits
        .filter((x) => x.to === me)
        .map((x) => ({
          visit: x,
          pos: positionsOf(x.queries),
          q: recvRows(dev, q, x.rows),
          kPos: keysAmong(mine, x.keys),
        }));
    const rounds = hops.length ? hops[hops.length - 1]!.round + 1 : 0;
    const outOf = Array.from({ length: rounds }, (_, t) => hops.filter((h) => h.round === t && h.from === me));
    const inOf = Array.from({ length: rounds }, (_, t) => hops.filter((h) => h.round === t && h.to === me));
    // the own block as the kernel sees it: the head-parallel rows as padding
    const ownKPos = hidden.length
      ? Int32Array.from(mine, (p) => (intersect([[p, p + 1]], hidden).length ? -1 : p))
      : mine;
    const qRows = queryRows(ctx.mask, ownKPos);
    const own: Held = { pos: mine, k, v };
    /** what each round brought, joined; kept to the backward */
    const got: Held[] = [];
    /** where the rows a hop sends lie here: the own shard, or what came in earlier rounds */
    const sourcesOf = (h: Hop): Held[] => (h.from === h.origin ? [own] : got.slice(0, h.round));
    const viewOf = (b: Held) => ({ q: qRows, kPos: b === own ? ownKPos : b.pos });

    const state = freshState(dev, acc, T, H, D);
    const attend = (b: Held): void => {
      if (b.pos.length && !isEmpty(viewOf(b)))
        env.kernel.forward({ q, k: b.k, v: b.v, view: viewOf(b), scale: env.scale, state });
    };
    /** this rank's rows among its own positions */
    const rowsAt = (ranges: Ranges): [number, number, number][] => locate([own], positionsOf(ranges));
    // the visiting queries go out first, in their own batch; their partials come back in another
    const leaving = away.map((x) => gather(dev, [q], rowsAt(x.queries), x.rows));
    env.trace.step('varlen fwd q');
    const qWork = exchange(
      comm,
      away.map((x, i) => [leaving[i]!, x.to]),
      guests.map((g) => [g.q, g.visit.from]),
    );
    let partials: { work: Work; out: Tensor[]; lse: Tensor[] } | undefined;
    /** attend the guests against the own keys and send their partials back (the visitors' receives beside) */
    const attendGuests = async (): Promise<void> => {
      await qWork.wait();
      releaseAll(dev, leaving);
      for (const g of guests) {
        g.state = freshState(dev, acc, g.visit.rows, H, D);
        const view = { q: queryRows(ctx.mask, g.pos), kPos: g.kPos };
        if (!isEmpty(view)) env.kernel.forward({ q: g.q, k, v, view, scale: env.scale, state: g.state });
      }
      const out = away.map((x) => recvRows(dev, q, x.rows, acc)),
        lse = away.map((x) => dev.empty(acc, [H, x.rows]));
      env.trace.step('varlen fwd partial');
      const work = exchange(
        comm,
        guests.flatMap((g) => [[g.state!.out, g.visit.from] as const, [g.state!.lse, g.visit.from] as const]),
        away.flatMap((x, i) => [[out[i]!, x.to] as const, [lse[i]!, x.to] as const]),
      );
      partials = { work, out, lse };
    };
    for (let t = -1; t < rounds; t++) {
      // exchange round t + 1 while attending what round t brought (t = −1: the own block)
      const ops: P2POp[] = [],
        outgoing: Tensor[] = [],
        parts: Held[] = [];
      if (t + 1 < rounds) {
        for (const h of outOf[t + 1]!) {
          const src = sourcesOf(h),
            at = locate(src, positionsOf(h.ranges));
          for (const b of [
            gather(
              dev,
              src.map((x) => x.k),
              at,
              h.rows,
            ),
            gather(
              dev,
              src.map((x) => x.v),
              at,
              h.rows,
            ),
          ]) {
            outgoing.push(b);
            ops.push({ send: { buf: b, peer: h.to } });
          }
        }
        for (const h of inOf[t + 1]!) {
          const kb = recvRows(dev, k, h.rows),
            vb = recvRows(dev, v, h.rows);
          ops.push({ recv: { buf: kb, peer: h.from } }, { recv: { buf: vb, peer: h.from } });
          parts.push({ pos: positionsOf(h.ranges), k: kb, v: vb });
        }
      }
      env.trace.step('varlen fwd kv');
      const work = ops.length ? comm.sendRecv(ops) : DONE;
      attend(t < 0 ? own : got[t]!);
      await work.wait();
      releaseAll(dev, outgoing);
      if (t < 0) await attendGuests();
      if (t + 1 < rounds)
        got.push(
          parts.length
            ? joinRound(dev, parts)
            : { pos: new Int32Array(0), k: recvRows(dev, k, 0), v: recvRows(dev, v, 0) },
        );
    }

    // the visits' partials, merged into the running state (exact: the online-softmax merge)
    if (partials) {
      await partials.work.wait();
      away.forEach((x, i) => {
        const part = freshState(dev, acc, T, H, D);
        let o = 0;
        for (const [, r, n] of rowsAt(x.queries)) {
          dev.copyBox(partials!.out[i]!, part.out, { src: [o, 0], dst: [r, 0], size: [n, H] });
          dev.copyBox(partials!.lse[i]!, part.lse, { src: [0, o], dst: [0, r], size: [H, n] });
          o += n;
        }
        env.kernel.merge(state, part);
        releaseAll(dev, [part.out, part.lse, partials!.out[i]!, partials!.lse[i]!]);
      });
    }
    for (const g of guests) releaseAll(dev, [g.state!.out]);

    const partial: PartialResult = {
      state,
      backward: async (dout) => {
        const dq = dev.zeros(acc, q.shape);
        const grads = new Map<Held, { dk: Tensor; dv: Tensor }>();
        for (const b of [own, ...got]) grads.set(b, { dk: dev.zeros(acc, b.k.shape), dv: dev.zeros(acc, b.v.shape) });
        const back = (b: Held): void => {
          if (!b.pos.length || isEmpty(viewOf(b))) return;
          env.kernel.backward({
            q,
            k: b.k,
            v: b.v,
            out: state.out,
            lse: state.lse,
            dout,
            view: viewOf(b),
            scale: env.scale,
            into: { dq, ...grads.get(b)! },
          });
        };
        /** what came back for rows of the own block, added once it is in (the returns run on under the backward) */
        const deferred: { work: Work; done: () => void }[] = [];
        // the visited rows' dout, out and lse go to the keys' owners while the last blocks run their backward
        const sentV = away.flatMap((x) => {
          const at = rowsAt(x.queries);
          return [
            gather(dev, [dout], at, x.rows),
            gather(dev, [state.out], at, x.rows),
            gatherCols(dev, state.lse, at, x.rows),
          ];
        });
        const gIn = guests.map((g) => ({
          dout: recvRows(dev, dout, g.visit.rows),
          out: recvRows(dev, state.out, g.visit.rows),
          lse: dev.empty(state.lse.dtype, [H, g.visit.rows]),
        }));
        env.trace.step('varlen bwd q');
        const vWork = exchange(
          comm,
          away.flatMap((x, i) => [0, 1, 2].map((j) => [sentV[3 * i + j]!, x.to] as const)),
          guests.flatMap((g, i) => [gIn[i]!.dout, gIn[i]!.out, gIn[i]!.lse].map((b) => [b, g.visit.from] as const)),
        );
        if (rounds) back(got[rounds - 1]!);
        await vWork.wait();
        releaseAll(dev, sentV);
        // the guests' dK/dV go into the own block's, their dQ back to the visitors (added at the end)
        const dqOut = guests.map((g, i) => {
          const dqG = dev.zeros(acc, g.q.shape),
            view = { q: queryRows(ctx.mask, g.pos), kPos: g.kPos },
            { out, lse, dout: dO } = gIn[i]!;
          if (!isEmpty(view))
            env.kernel.backward({
              q: g.q,
              k,
              v,
              out,
              lse,
              dout: dO,
              view,
              scale: env.scale,
              into: { ...grads.get(own)!, dq: dqG },
            });
          releaseAll(dev, [out, lse, dO, g.q, g.state!.lse]);
          return dqG;
        });
        const dqBack = away.map((x) => recvRows(dev, q, x.rows, acc));
        env.trace.step('varlen bwd dq');
        const dqWork = exchange(
          comm,
          guests.map((g, i) => [dqOut[i]!, g.visit.from]),
          away.map((x, i) => [dqBack[i]!, x.to]),
        );
        deferred.push({
          work: dqWork,
          done: () => {
            releaseAll(dev, dqOut);
            away.forEach((x, i) => scatterAdd(dev, [dq], dqBack[i]!, rowsAt(x.queries)));
            releaseAll(dev, dqBack);
          },
        });
        // round t returns the gradients of what it brought while the blocks of round t − 1 (at
        // round 0: the own block) run their backward
        for (let t = rounds - 1; t >= 0; t--) {
          const ops: P2POp[] = [],
            sent: Tensor[] = [];
          const g = grads.get(got[t]!)!;
          for (const h of inOf[t]!) {
            const at = locate([got[t]!], positionsOf(h.ranges));
            for (const b of [gather(dev, [g.dk], at, h.rows), gather(dev, [g.dv], at, h.rows)]) {
              sent.push(b);
              ops.push({ send: { buf: b, peer: h.from } });
            }
          }
          const arriving = outOf[t]!.map((h) => {
            const r = { hop: h, dk: recvRows(dev, k, h.rows, acc), dv: recvRows(dev, v, h.rows, acc) };
            ops.push({ recv: { buf: r.dk, peer: h.to } }, { recv: { buf: r.dv, peer: h.to } });
            return r;
          });
          env.trace.step('varlen bwd dkv');
          const w = ops.length ? comm.sendRecv(ops) : DONE;
          back(t > 0 ? got[t - 1]! : own);
          const added = (): void => {
            releaseAll(dev, [...sent, g.dk, g.dv, got[t]!.k, got[t]!.v]);
            addReturned(arriving);
          };
          // what comes back this round is added into the own block's gradients alone unless this
          // rank forwarded rows of earlier rounds (a relay), whose gradients go back in those
          // rounds: then wait now, else let the transfer run on under the rest of the backward
          if (outOf[t]!.every((h) => h.from === h.origin)) deferred.push({ work: w, done: added });
          else {
            await w.wait();
            added();
          }
        }
        for (const x of deferred) {
          await x.work.wait();
          x.done();
        }
        if (!rounds) back(own);
        const { dk, dv } = grads.get(own)!;
        return { dq, dk, dv };

        function addReturned(arriving: { hop: Hop; dk: Tensor; dv: Tensor }[]): void {
          for (const a of arriving) {
            const src = sourcesOf(a.hop),
              at = locate(src, positionsOf(a.hop.ranges));
            scatterAdd(
              dev,
              src.map((x) => grads.get(x)!.dk),
              a.dk,
              at,
            );
            scatterAdd(
              dev,
              src.map((x) => grads.get(x)!.dv),
              a.dv,
              at,
            );
            releaseAll(dev, [a.dk, a.dv]);
          }
        }
      },
    };
    return finish(env, q.dtype, partial);
  }
}

/** The executor with every row sent straight from its owner in one round (no relay). */
export const sparseKV: Strategy = routedKV();
