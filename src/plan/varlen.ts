// Pricing a dispatch plan (src/varlen) with the calibrated model, round by round as the executor
// runs it (varlen/execute.ts): per rank, the forward posts round 0's transfers and attends its own
// block meanwhile; round t + 1's transfers (a relay's next hop) go while the blocks of round t are
// attended (each merged into the running state); the backward walks the rounds in reverse, returning
// each round's dK/dV (f32) while the previous round's blocks (at last the own block) run their
// backward. Kernel times come from the fitted curves (Rates.attnMs: keys per query row, block
// mask), transfers from the link model (links.ts): a transfer starts when both ends have posted
// its round and ends when the sender's and the receiver's ports are through that round's bytes
// (NVLink inside a node, the network across). The layer ends when the slowest rank does.
import { bytesPerElement } from '../tensor/dtype.js';
import { attentionFlops } from '../kernel/flops.js';
import { UserError } from '../errors.js';
import { type Batch, pairArea as docArea } from '../varlen/batch.js';
import {
  areaCounter,
  dispatch,
  type DispatchOptions,
  type DispatchPlan,
  type HeadChoice,
  withRoutes,
  withVisits,
} from '../varlen/dispatch.js';
import { chunkHop } from '../varlen/routes.js';
import { type LinkClass, type Network, p2pMs } from './links.js';
import type { BlockMask, Rates } from './rates.js';
import type { Calibration } from './calibration/types.js';
import { parseConfig, type PlanConfig } from './config.js';
import { attentionModel } from './model.js';
import { buildContext } from './search.js';

export interface VarlenDims {
  H: number;
  Hkv: number;
  D: number;
  dtype?: 'bf16' | 'f16';
}

export interface VarlenRankPrice {
  rank: number;
  fwdMs: number;
  bwdMs: number;
  /** kernels, merges and the adds of returned gradients */
  computeMs: number;
  /** time spent waiting on transfers (fwdMs + bwdMs − computeMs) */
  commMs: number;
  recvBytes: number;
  sendBytes: number;
}

export interface VarlenPrice {
  /** forward + backward of one attention layer, ms (slowest rank of each pass) */
  stepMs: number;
  fwdMs: number;
  bwdMs: number;
  /** forward + backward FLOPs (4·pairs·D·H forward, 2.5 × that backward) per GPU per second */
  tflopsPerGpu: number;
  /** bytes the forward moves (K/V, visiting queries and their partials), and the backward (dK/dV; the visits' dout, out, lse and dQ) */
  fwdBytes: number;
  bwdBytes: number;
  ranks: VarlenRankPrice[];
}

/** One round's transfers, side by side: sender, receiver, bytes forward, bytes of what goes back the other way in the backward. */
interface RoundTransfers {
  from: number[];
  to: number[];
  fwdBytes: number[];
  bwdBytes: number[];
  /** 1 for a rank that forwards rows it did not own this round (a relay hop): its returns come back into what it received */
  forwards: Uint8Array;
}

/** Transfers of one rank in one direction, by link class: latency once, bytes at the port's rate. */
function portMs(net: Network, byClass: Record<LinkClass, number>): number {
  return Math.max(
    byClass.intra > 0 ? p2pMs(net, byClass.intra, 'intra') : 0,
    byClass.inter > 0 ? p2pMs(net, byClass.inter, 'inter') : 0,
  );
}

export function priceDispatch(
  plan: DispatchPlan,
  dims: VarlenDims,
  rates: Rates,
  net: Network,
  gpusPerNode: number,
): VarlenPrice {
  const { H, Hkv, D } = dims,
    e = bytesPerElement(dims.dtype ?? 'bf16');
  const N = plan.world,
    kvRow = 2 * Hkv * D * e,
    gradRow = 2 * Hkv * D * 4;
  const flops = (area: number): number => attentionFlops(area, H, D, 'fwd');
  const mask: BlockMask = plan.masks.every((m) => m.kind === 'full') ? 'full' : 'causal';
  const cls = (a: number, b: number): LinkClass =>
    Math.floor(a / gpusPerNode) === Math.floor(b / gpusPerNode) ? 'intra' : 'inter';
  // each round's transfers, the star's chunks read off without listing them (chunkRows)
  const chunks = Math.max(1, plan.chunks);
  const rounds = plan.transfers.reduce(
    (m, t) => Math.max(m, t.direct ? chunks : t.round + 1),
    plan.visits.length ? 1 : 0,
  );
  const byRound: RoundTransfers[] = Array.from({ length: rounds }, () => ({
    from: [],
    to: [],
    fwdBytes: [],
    bwdBytes: [],
    forwards: new Uint8Array(N),
  }));
  const D0 = plan.lengths.length,
    cu = [0];
  for (const L of plan.lengths) cu.push(cu[cu.length - 1]! + L);
  const docAt = (x: number): number => {
    let a = 0,
      b = D0 - 1;
    while (a < b) {
      const m = (a + b + 1) >> 1;
      if (cu[m]! <= x) a = m;
      else b = m - 1;
    }
    return a;
  };
  // per round: the area each rank computes against what it brought, and the documents it belongs to
  const roundArea = Array.from({ length: rounds }, () => new Float64Array(N));
  const roundDocs = Array.from({ length: rounds }, () => new Map<number, Set<number>>());
  const against = chunks > 1 ? areaCounter(plan) : undefined;
  const seen = (t: number, to: number, ranges: readonly (readonly [number, number])[], area: number): void => {
    if (area <= 0) return; // passed on only: no query here sees it
    roundArea[t]![to]! += area;
    const docs = roundDocs[t]!,
      set = docs.get(to) ?? new Set<number>();
    for (const [a, b] of ranges) for (let d = docAt(a); d < D0 && cu[d]! < b; d++) set.add(d);
    docs.set(to, set);
  };
  const add = (t: number, from: number, to: number, rows: number, origin: number): void => {
    const r = byRound[t]!;
    if (from !== origin) r.forwards[from] = 1;
    r.from.push(from);
    r.to.push(to);
    r.fwdBytes.push(rows * kvRow);
    r.bwdBytes.push(rows * gradRow);
  };
  // visits, priced in round 0: the queries out and the partial (out, lse, f32) back; in the
  // backward (the reverse direction) dQ (f32) back and dout, out, lse out. The executor sends the
  // backward's first, beside the last round's blocks: pricing them at round 0 is the late bound.
  const qRow = H * D * e;
  for (const x of plan.visits) {
    const r = byRound[0]!;
    r.from.push(x.from, x.to);
    r.to.push(x.to, x.from);
    r.fwdBytes.push(x.rows * qRow, x.rows * (H * D + H) * 4);
    r.bwdBytes.push(x.rows * H * D * 4, x.rows * (2 * qRow + H * 4));
  }
  for (const x of plan.transfers) {
    if (!x.direct || chunks === 1) {
      add(x.round, x.from, x.to, x.rows, x.origin);
      seen(x.round, x.to, x.ranges, x.area);
      continue;
    }
    for (const c of chunkHop(x, chunks)) {
      add(c.round, c.from, c.to, c.rows, c.origin);
      if (x.area > 0)
        seen(
          c.round,
          c.to,
          c.ranges,
          c.ranges.reduce((s, [a, b]) => s + against!(c.to, a, b), 0),
        );
    }
  }

  const heads = headParts(plan, dims, rates, net, gpusPerNode, mask);
  const headRows = new Float64Array(N);
  for (const p of plan.pieces) if (plan.docs[p.doc]!.heads) headRows[p.rank]! += p.end - p.start;
  // compute: the own block, and each received block (forward with its merge, backward)
  const own = plan.ranks.map((r) => {
    const local = r.localArea - r.headArea,
      rows = r.tokens - headRows[r.rank]!;
    const kbar = rows > 0 ? Math.max(1, local / rows) : 1;
    return {
      fwd: rates.attnMs('fwd', flops(local), kbar, D, mask) + rates.stepOverheadMs(),
      bwd: rates.attnMs('bwd', flops(local), kbar, D, mask) + rates.stepOverheadMs(),
    };
  });
  // the blocks a rank receives in one round are attended in one kernel call (their K/V side by
  // side); the query rows that see them are the rank's rows of the documents they belong to
  const rowsOf = new Map<number, number>(); // rank · documents + document → the rank's rows of it
  for (const p of plan.pieces) {
    const key = p.rank * D0 + p.doc;
    rowsOf.set(key, (rowsOf.get(key) ?? 0) + p.end - p.start);
  }
  const blockFwd = Array.from({ length: rounds }, () => new Float64Array(N)),
    blockBwd = Array.from({ length: rounds }, () => new Float64Array(N));
  for (let t = 0; t < rounds; t++) {
    const area = roundArea[t]!;
    for (const [r, set] of roundDocs[t]!) {
      let rows = 0;
      for (const d of set) rows += rowsOf.get(r * D0 + d) ?? 0;
      const kbar = Math.max(1, area[r]! / Math.max(1, rows));
      blockFwd[t]![r] =
        rates.attnMs('fwd', flops(area[r]!), kbar, D, mask) + rates.mergeMs(rows * H * D) + rates.stepOverheadMs();
      blockBwd[t]![r] = rates.attnMs('bwd', flops(area[r]!), kbar, D, mask) + rates.stepOverheadMs();
    }
  }
  // guests (visiting queries) are attended against the own keys beside the own block; the
  // visitor merges their partials
  const guestKbar = (r: (typeof plan.ranks)[number]): number => Math.max(1, r.guestArea / Math.max(1, r.guestRows));
  const visitedRows = new Float64Array(N);
  for (const x of plan.visits) visitedRows[x.from]! += x.rows;
  for (const r of plan.ranks) {
    if (r.guestArea > 0) {
      own[r.rank]!.fwd += rates.attnMs('fwd', flops(r.guestArea), guestKbar(r), D, mask) + rates.stepOverheadMs();
      own[r.rank]!.bwd += rates.attnMs('bwd', flops(r.guestArea), guestKbar(r), D, mask) + rates.stepOverheadMs();
    }
    if (visitedRows[r.rank]! > 0) own[r.rank]!.fwd += rates.mergeMs(visitedRows[r.rank]! * H * D);
  }
  const computeMs = plan.ranks.map((r) => own[r.rank]!.fwd + own[r.rank]!.bwd + heads.computeMs[r.rank]!);
  for (let t = 0; t < rounds; t++) for (let r = 0; r < N; r++) computeMs[r]! += blockFwd[t]![r]! + blockBwd[t]![r]!;

  /**
   * One pass of rounds: each rank posts round t when its clock says, computes `during(t, r)`
   * meanwhile, and waits for its transfers of that round (each ends when both ends have posted and
   * both ports are through the round's bytes and any earlier round's still on them); `after(t, r)`
   * runs once they are in. A rank for which `defer(t, r)` holds does not wait: it goes on, and
   * waits for every deferred transfer, then runs their `after`, at the end of the pass.
   */
  const pass = (
    order: number[],
    dir: 'fwd' | 'bwd',
    clock: Float64Array,
    during: (t: number, r: number) => number,
    after: (t: number, r: number) => number,
    defer: (t: number, r: number) => boolean = () => false,
  ): void => {
    const outFree = new Float64Array(N),
      inFree = new Float64Array(N),
      pending = new Float64Array(N),
      late = new Float64Array(N);
    for (const t of order) {
      const list = byRound[t]!;
      // forward: from → to; backward: the gradients go back to → from
      const [src, dst] = dir === 'fwd' ? [list.from, list.to] : [list.to, list.from];
      // each rank's bytes out and in this round, by link class: [intra, inter]
      const out = new Float64Array(2 * N),
        inn = new Float64Array(2 * N);
      const bytes = dir === 'fwd' ? list.fwdBytes : list.bwdBytes;
      for (let i = 0; i < bytes.length; i++) {
        const c = cls(src[i]!, dst[i]!) === 'intra' ? 0 : 1;
        out[2 * src[i]! + c]! += bytes[i]!;
        inn[2 * dst[i]! + c]! += bytes[i]!;
      }
      const port = (bytes: Float64Array): Float64Array =>
        Float64Array.from({ length: N }, (_, r) => portMs(net, { intra: bytes[2 * r]!, inter: bytes[2 * r + 1]! }));
      const outMs = port(out),
        inMs = port(inn);
      const posted = Float64Array.from(clock),
        waits = Float64Array.from(posted);
      for (let r = 0; r < N; r++) clock[r] = posted[r]! + during(t, r);
      const ends = new Float64Array(bytes.length);
      for (let i = 0; i < bytes.length; i++) {
        const s = src[i]!,
          d = dst[i]!;
        ends[i] = Math.max(posted[s]!, posted[d]!, outFree[s]!, inFree[d]!) + Math.max(outMs[s]!, inMs[d]!);
        waits[s] = Math.max(waits[s]!, ends[i]!);
        waits[d] = Math.max(waits[d]!, ends[i]!);
      }
      for (let i = 0; i < bytes.length; i++) {
        outFree[src[i]!] = Math.max(outFree[src[i]!]!, ends[i]!);
        inFree[dst[i]!] = Math.max(inFree[dst[i]!]!, ends[i]!);
      }
      for (let r = 0; r < N; r++) {
        if (defer(t, r)) {
          pending[r] = Math.max(pending[r]!, waits[r]!);
          late[r]! += after(t, r);
        } else clock[r] = Math.max(clock[r]!, waits[r]!) + after(t, r);
      }
    }
    for (let r = 0; r < N; r++) clock[r] = Math.max(clock[r]!, pending[r]!) + late[r]!;
  };
  // forward: the head-parallel documents first (heads.ts), then round 0 beside the own block,
  // round t + 1 beside the blocks of round t
  const fwdClock = new Float64Array(N);
  heads.run(fwdClock, 'fwd');
  pass(
    Array.from({ length: rounds }, (_, t) => t),
    'fwd',
    fwdClock,
    (t, r) => (t === 0 ? own[r]!.fwd : blockFwd[t - 1]![r]!),
    () => 0,
  );
  for (let r = 0; r < N; r++) fwdClock[r]! += rounds ? blockFwd[rounds - 1]![r]! : own[r]!.fwd;
  // backward: the last round's blocks first; round t's returns start beside the blocks of round
  // t − 1 (round 0's beside the own block) and, where the rank forwarded nothing that round, may run
  // on under the rest of the backward; returned rows are spread, read and added (3 passes over them)
  const returned = Array.from({ length: rounds }, () => new Float64Array(N));
  for (let t = 0; t < rounds; t++) {
    const list = byRound[t]!;
    for (let i = 0; i < list.bwdBytes.length; i++) returned[t]![list.from[i]!]! += list.bwdBytes[i]!;
  }
  const bwdClock = new Float64Array(N);
  for (let r = 0; r < N; r++) bwdClock[r] = rounds ? blockBwd[rounds - 1]![r]! : own[r]!.bwd;
  pass(
    Array.from({ length: rounds }, (_, i) => rounds - 1 - i),
    'bwd',
    bwdClock,
    (t, r) => (t === 0 ? own[r]!.bwd : blockBwd[t - 1]![r]!),
    (t, r) => rates.hbmMs(3 * returned[t]![r]!),
    // a rank that forwarded nothing in round t gets back gradients of its own rows only: it goes on
    // with the backward and adds them at the end (the executor's deferred returns)
    (t, r) => !byRound[t]!.forwards[r],
  );
  for (let r = 0; r < N; r++) computeMs[r]! += returned.reduce((s, x) => s + rates.hbmMs(3 * x[r]!), 0);
  heads.run(bwdClock, 'bwd');

  const sent = new Float64Array(N),
    got = new Float64Array(N);
  for (const x of plan.transfers) {
    sent[x.from]! += x.rows * kvRow;
    got[x.to]! += x.rows * kvRow;
  }
  const ranks: VarlenRankPrice[] = plan.ranks.map((r) => ({
    rank: r.rank,
    fwdMs: fwdClock[r.rank]!,
    bwdMs: bwdClock[r.rank]!,
    computeMs: computeMs[r.rank]!,
    commMs: Math.max(0, fwdClock[r.rank]! + bwdClock[r.rank]! - computeMs[r.rank]!),
    recvBytes: got[r.rank]!,
    sendBytes: sent[r.rank]!,
  }));
  const fwdMs = Math.max(...fwdClock),
    bwdMs = Math.max(...bwdClock),
    stepMs = fwdMs + bwdMs;
  const totalFlops = attentionFlops(
    plan.ranks.reduce((s, r) => s + r.area, 0),
    H,
    D,
    'fwd+bwd',
  );
  const rowsMoved = plan.transfers.reduce((s, t) => s + t.rows, 0),
    visited = plan.visits.reduce((s, x) => s + x.rows, 0);
  return {
    stepMs,
    fwdMs,
    bwdMs,
    tflopsPerGpu: totalFlops / (stepMs * 1e-3) / N / 1e12,
    fwdBytes: rowsMoved * kvRow + visited * (qRow + (H * D + H) * 4),
    bwdBytes: rowsMoved * gradRow + visited * (2 * qRow + H * 4 + H * D * 4),
    ranks,
  };
}

/**
 * A visiting query row's traffic over a K/V row's, forward and backward (the weight chooseVisits
 * takes): the query out, its partial (out, lse in f32) back, then dout, out and lse out and dQ (f32)
 * back — against K and V out and their f32 gradients back.
 */
function visitWeight(dims: VarlenDims): number {
  const { H, Hkv, D } = dims,
    e = bytesPerElement(dims.dtype ?? 'bf16');
  return (H * D * (3 * e + 8) + 2 * H * 4) / (2 * Hkv * D * (e + 4));
}

/**
 * The head-parallel documents (heads.ts) priced: per member, the Ulysses all-to-alls (forward:
 * q, k, v in, out and lse back; backward: dout in, dq, dk, dv back, the KV gradients in f32), each
 * member sending (u − 1)/u of its rows' bytes; the ring steps across groups (forward K/V, backward
 * K/V and dK/dV in f32, of the group's rows for Hkv/u heads) under the kernels, one call a step; the
 * kernels at the group's keys per row. `run` advances a pass's clocks: every member of a group
 * starts when the last is ready (a collective) and ends when the slowest is through.
 */
function headParts(
  plan: DispatchPlan,
  dims: VarlenDims,
  rates: Rates,
  net: Network,
  gpusPerNode: number,
  mask: BlockMask,
): { computeMs: Float64Array; run: (clock: Float64Array, dir: 'fwd' | 'bwd') => void } {
  const { H, Hkv, D } = dims,
    e = bytesPerElement(dims.dtype ?? 'bf16'),
    N = plan.world;
  const computeMs = new Float64Array(N);
  const groups: { members: number[]; fwd: number[]; bwd: number[] }[] = [];
  const rowsOf = new Map<number, number>();
  for (const p of plan.pieces)
    rowsOf.set(
      p.rank * plan.lengths.length + p.doc,
      (rowsOf.get(p.rank * plan.lengths.length + p.doc) ?? 0) + p.end - p.start,
    );
  for (const d of plan.docs) {
    if (!d.heads) continue;
    const { ulysses: u, ring: r, members } = d.heads;
    const rows = members.map((m) => rowsOf.get(m * plan.lengths.length + d.doc) ?? 0);
    const groupRows = (i: number): number =>
      rows.slice(Math.floor(i / u) * u, (Math.floor(i / u) + 1) * u).reduce((a, b) => a + b, 0);
    const node = (m: number): number => Math.floor(m / gpusPerNode);
    // a Ulysses group's all-to-all: on NVLink when its members share a node
    const a2a = (i: number, perRow: number): number => {
      const g0 = Math.floor(i / u) * u;
      return u > 1
        ? p2pMs(
            net,
            (rows[i]! * (u - 1) * perRow) / u,
            node(members[g0]!) === node(members[g0 + u - 1]!) ? 'intra' : 'inter',
          )
        : 0;
    };
    const fwd: number[] = [],
      bwd: number[] = [];
    members.forEach((m, i) => {
      const gr = groupRows(i),
        area = plan.ranks[m]!.headArea,
        kbar = Math.max(1, area / Math.max(1, gr)),
        kvHeads = Math.max(1, Hkv / u);
      const ringCls: LinkClass = node(m) === node(members[(i + u) % members.length]!) ? 'intra' : 'inter';
      const step = (perRow: number): number => (r > 1 ? p2pMs(net, gr * perRow, ringCls) : 0);
      const kf =
          rates.attnMs('fwd', attentionFlops(area, H, D, 'fwd'), kbar, D, mask) +
          r * rates.stepOverheadMs() +
          (r > 1 ? rates.mergeMs(gr * (H / u) * D * (r - 1)) : 0),
        kb = rates.attnMs('bwd', attentionFlops(area, H, D, 'fwd'), kbar, D, mask) + r * rates.stepOverheadMs();
      computeMs[m]! += kf + kb;
      // the ring's r − 1 steps run under the kernels: the slower of the two, a step at a time
      const ringF = (r - 1) * Math.max(kf / r, step(2 * kvHeads * D * e)),
        ringB = (r - 1) * Math.max(kb / r, step(2 * kvHeads * D * (e + 4)));
      fwd.push(a2a(i, (H + 2 * Hkv) * D * e) + kf / r + ringF + a2a(i, H * D * e + H * 4));
      bwd.push(a2a(i, H * D * e) + kb / r + ringB + a2a(i, H * D * e + 2 * Hkv * D * 4));
    });
    groups.push({ members, fwd, bwd });
  }
  return {
    computeMs,
    run: (clock, dir) => {
      for (const g of groups) {
        const start = Math.max(...g.members.map((m) => clock[m]!)),
          end = start + Math.max(...(dir === 'fwd' ? g.fwd : g.bwd));
        for (const m of g.members) clock[m] = end;
      }
    },
  };
}

/** Rounds a star transfer may be cut into: more hide more of the transfer, each costs a kernel call and a merge. */
const CHUNK_CHOICES = [1, 2, 4, 6];

/**
 * The routes of a dispatch plan chosen by priced cost: first the rounds the direct transfers are
 * cut into, then which groups relay — those of at least k ranks, for each group size k the plan
 * has (large groups gain most from a relay) — then whether the star pairs chooseVisits picks send
 * their queries instead (key splitting). Keeps the cheapest; the placement is unchanged. `given`:
 * the plan as it came, priced.
 */
export function chooseRoutes(
  plan: DispatchPlan,
  dims: VarlenDims,
  rates: Rates,
  net: Network,
  gpusPerNode: number,
): { plan: DispatchPlan; price: VarlenPrice; given: VarlenPrice } {
  const price = (p: DispatchPlan): VarlenPrice => priceDispatch(p, dims, rates, net, gpusPerNode);
  const given = price(plan);
  let best = { plan, price: given };
  const consider = (p: DispatchPlan): void => {
    const x = price(p);
    if (x.stepMs < best.price.stepMs) best = { plan: p, price: x };
  };
  const groups = plan.docs.filter((d) => d.mode === 'group');
  for (const chunks of CHUNK_CHOICES) if (chunks !== plan.chunks) consider({ ...plan, chunks });
  const sizes = [...new Set(groups.map((d) => d.ranks.length))].sort((a, b) => b - a).filter((k) => k >= 3);
  const base = best.plan;
  for (const k of sizes.slice(0, 4))
    consider(
      withRoutes(
        base,
        groups.filter((d) => d.ranks.length >= k).map((d) => d.doc),
        base.chunks,
      ),
    );
  // key splitting: the star pairs whose queries are cheaper to move than their keys visit
  consider(withVisits(best.plan, visitWeight(dims)));
  return { ...best, given };
}

/**
 * The bound a dispatch can approach: every document attended whole on one GPU at the kernel's rate
 * for its keys per row, the work spread perfectly evenly, nothing moved — forward + backward ms per
 * GPU. Where a plan's step sits between this and its slowest rank's compute, and between that
 * compute and the step, says what is lost to cutting documents, to imbalance, and to exposed transfers.
 */
export function wholeDocumentsMs(plan: DispatchPlan, dims: VarlenDims, rates: Rates): number {
  const { H, D } = dims;
  let ms = 0;
  plan.lengths.forEach((L, d) => {
    const m = plan.masks[d]!,
      area = docArea(m, L, 0, L, 0, L),
      f = attentionFlops(area, H, D, 'fwd'),
      mask: BlockMask = m.kind === 'full' ? 'full' : 'causal';
    ms +=
      rates.attnMs('fwd', f, Math.max(1, area / L), D, mask) + rates.attnMs('bwd', f, Math.max(1, area / L), D, mask);
  });
  return ms / plan.world;
}

/**
 * The documents that may go head-parallel, heaviest first: those of more than two ranks' mean area
 * (a star would spread their rows thin and send each rank most of their keys), each in the shape
 * headShape gives it where the world holds that shape.
 */
export function headCandidates(
  batch: Batch,
  world: number,
  H: number,
  gpusPerNode: number,
  maxTokens: number,
): HeadChoice[] {
  const areas = docAreas(batch);
  const mean = areas.reduce((a, b) => a + b, 0) / world;
  const out: (HeadChoice & { area: number })[] = [];
  areas.forEach((a, d) => {
    if (a <= 2 * mean) return;
    const c = shapeOf(d, a, batch.lengths[d]!, mean, world, H, gpusPerNode, maxTokens);
    if (c.ulysses * c.ring! <= world) out.push({ ...c, area: a });
  });
  return out.sort((x, y) => y.area - x.area || x.doc - y.doc).map(({ doc, ulysses, ring }) => ({ doc, ulysses, ring }));
}

/**
 * The head-parallel shape of document `doc`: Ulysses over the largest divisor of the heads within
 * a node; rings of such groups enough that a member's share is at most a rank's mean area and its
 * tokens fit under `maxTokens`.
 */
export function headShape(
  batch: Batch,
  doc: number,
  world: number,
  H: number,
  gpusPerNode: number,
  maxTokens: number,
): HeadChoice {
  const areas = docAreas(batch);
  const mean = areas.reduce((a, b) => a + b, 0) / world;
  return shapeOf(doc, areas[doc]!, batch.lengths[doc]!, mean, world, H, gpusPerNode, maxTokens);
}

const docAreas = (batch: Batch): number[] => batch.lengths.map((L, d) => docArea(batch.masks[d]!, L, 0, L, 0, L));

function shapeOf(
  doc: number,
  area: number,
  L: number,
  mean: number,
  world: number,
  H: number,
  gpusPerNode: number,
  maxTokens: number,
): HeadChoice {
  let u = Math.min(gpusPerNode, world);
  while (H % u !== 0) u--;
  return { doc, ulysses: u, ring: Math.max(1, Math.ceil(area / (u * mean)), Math.ceil(L / (u * maxTokens))) };
}

/** One dispatch the choice by priced time weighed. */
export interface WeighedDispatch {
  /** its head-parallel documents */
  heads: HeadChoice[];
  /** routes chosen by price (chooseRoutes), or plain: the star in one round, no visits */
  routesPriced: boolean;
  /** its routes: rounds a star transfer is cut into, groups that relay, star pairs that visit */
  chunks?: number;
  relayGroups?: number;
  visits?: number;
  /** one layer, forward + backward, ms; absent where the ranks could not hold it */
  stepMs?: number;
  areaBalance?: number;
  /** why it was not taken though priced faster (the area balance target), or could not be placed */
  note?: string;
}

export interface PricedDispatch {
  plan: DispatchPlan;
  price: VarlenPrice;
  /** what was weighed, the plain dispatch first; `chosen` indexes the plan taken */
  considered: WeighedDispatch[];
  chosen: number;
}

function weighed(plan: DispatchPlan, price: VarlenPrice, routesPriced: boolean): WeighedDispatch {
  return {
    heads: plan.docs
      .filter((d) => d.heads)
      .map((d) => ({ doc: d.doc, ulysses: d.heads!.ulysses, ring: d.heads!.ring })),
    routesPriced,
    chunks: plan.chunks,
    relayGroups: plan.docs.filter((d) => d.relay).length,
    visits: plan.visits.length,
    stepMs: price.stepMs,
    areaBalance: plan.balance.area,
  };
}

/**
 * The dispatch by priced time: the plain dispatch with its routes chosen (chooseRoutes), against the
 * dispatches with the 1, 2, 4, … heaviest candidates (headCandidates) head-parallel, each with its
 * routes chosen. Keeps the cheapest within the area balance target (1.05); a candidate set the
 * ranks cannot hold ends the search. Documents named in `o.heads` are head-parallel whatever the
 * price (no search; their routes are still chosen). `plain`: no choice, the dispatch as asked,
 * priced. Deterministic: the same batch, options and rates give the same plan.
 */
export function dispatchPriced(
  batch: Batch,
  o: DispatchOptions,
  dims: VarlenDims,
  rates: Rates,
  net: Network,
  gpusPerNode: number,
  plain = false,
): PricedDispatch {
  const route = (p: DispatchPlan): ReturnType<typeof chooseRoutes> => chooseRoutes(p, dims, rates, net, gpusPerNode);
  if (plain) {
    const plan = dispatch(batch, o),
      price = priceDispatch(plan, dims, rates, net, gpusPerNode);
    return { plan, price, considered: [weighed(plan, price, false)], chosen: 0 };
  }
  const bare = dispatch(batch, { ...o, heads: [] }),
    first = route(bare);
  const considered = [weighed(bare, first.given, false), weighed(first.plan, first.price, true)];
  if (o.heads?.length) {
    const x = route(dispatch(batch, o));
    return { ...x, considered: [...considered, weighed(x.plan, x.price, true)], chosen: 2 };
  }
  let best = { ...first, chosen: 1 };
  const cands = headCandidates(batch, o.world, dims.H, gpusPerNode, first.plan.maxTokens);
  for (let j = 1; j <= cands.length; j = j * 2 > cands.length && j < cands.length ? cands.length : j * 2) {
    const heads = cands.slice(0, j);
    let placed: DispatchPlan;
    try {
      placed = dispatch(batch, { ...o, heads });
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      considered.push({ heads, routesPriced: true, note: e.message });
      break;
    }
    const x = route(placed),
      w = weighed(x.plan, x.price, true);
    // the area balance target holds: a cheaper plan that breaks it is not taken
    const over = x.plan.balance.area > AREA_BALANCE_TARGET;
    considered.push(over ? { ...w, note: `area balance over the target ${AREA_BALANCE_TARGET}` } : w);
    if (x.price.stepMs < best.price.stepMs && !over) best = { ...x, chosen: considered.length - 1 };
  }
  return { plan: best.plan, price: best.price, considered, chosen: best.chosen };
}

/** The dispatch's area balance target (max / mean): head-parallel plans beyond it are not chosen. */
const AREA_BALANCE_TARGET = 1.05;

/** Across nodes: one 400 Gb/s NIC per GPU (50 GB/s a direction), an assumption of a typical H200 cluster. */
export const VARLEN_INTER_NODE = { GBps: 50, latencyUs: 10 } as const;

/**
 * The planner's config for attention of `dims` on `world` H200s, `perNode` a node (NVLink) and
 * VARLEN_INTER_NODE across nodes: the cluster varlen plans are priced on (weft bench varlen, weft
 * run --strategy varlen).
 */
export function varlenConfig(
  world: number,
  S: number,
  dims: VarlenDims,
  mask = 'causal',
  cuSeqlens?: number[],
  implementation = 'weft',
  perNode = 8,
): PlanConfig {
  const nodes = Math.max(1, Math.ceil(world / perNode)),
    gpusPerNode = Math.min(world, perNode);
  return parseConfig({
    model: attentionModel(dims.H, dims.Hkv, dims.D),
    mode: 'attention',
    seqLen: S,
    mask,
    ...(cuSeqlens ? { cuSeqlens } : {}),
    implementation,
    cluster: { nodes, gpusPerNode, gpu: 'h200', ...(nodes > 1 ? { interNode: VARLEN_INTER_NODE } : {}) },
  });
}

/** What priceDispatch takes of a cluster: the calibrated rates, the links, GPUs per node. */
export interface VarlenPricing {
  rates: Rates;
  net: Network;
  gpusPerNode: number;
}

/** Pricing on varlenConfig's cluster, with `calibration` in place of the shipped figures where given. */
export function varlenPricing(world: number, S: number, dims: VarlenDims, calibration?: Calibration): VarlenPricing {
  const cfg = varlenConfig(world, S, dims);
  const { rates, net } = buildContext(cfg, calibration);
  return { rates, net, gpusPerNode: cfg.cluster.gpusPerNode };
}
