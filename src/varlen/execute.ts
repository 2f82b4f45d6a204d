// The executor: attention over any placement of tokens on ranks, moving only what the mask needs.
//
// Schedule (per rank; every rank knows every rank's positions, so the exchange plan is computed
// locally, without communication):
//   forward   start one batched exchange: to each peer the K/V rows its queries see (nothing to
//             peers that see none: ranks sharing no document never talk, so groups of any size run
//             side by side on one world); attend the own K/V block while it runs; wait; attend each
//             received block into the running state (the online-softmax merge of the kernel).
//   backward  gradients of the received blocks first, then one batched exchange returns their dK/dV
//             to the owners while the own block's backward runs; wait; add what came back.
// Received K/V blocks are kept from the forward to the backward (no second fetch): the memory a
// plan needs beyond its own rows is exactly the rows it receives (DispatchPlan.ranks[].peakRows).
import type { Comm, P2POp } from '../comm/comm.js';
import { DONE } from '../comm/comm.js';
import type { Device } from '../device/device.js';
import type { MaskGrid } from '../mask/grid.js';
import { queryRows } from '../mask/view.js';
import type { ShardMap } from '../shard/shard.js';
import { envOf, finish, freshState, isEmpty, type PartialResult, recvRows, releaseAll } from '../strategy/common.js';
import type { Strategy } from '../strategy/types.js';
import { accumType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/host.js';

/** What one rank exchanges with one peer: local row indices it sends, and the peer's positions it receives. */
export interface PeerExchange {
  peer: number;
  sendRows: Int32Array;
  recvPos: Int32Array;
}

/** Sorted, merged key intervals the rows at `positions` see. */
function seenIntervals(grid: MaskGrid, positions: Int32Array): [number, number][] {
  const iv: [number, number][] = [];
  for (const p of positions)
    for (let i = 0; i < grid.m; i++) {
      const lo = grid.lo[p * grid.m + i]!,
        hi = grid.hi[p * grid.m + i]!;
      if (lo < hi) iv.push([lo, hi]);
    }
  iv.sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [a, b] of iv) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** Indices into `positions` of the entries inside the intervals. */
function inside(positions: Int32Array, iv: readonly [number, number][]): Int32Array {
  const out: number[] = [];
  positions.forEach((p, i) => {
    let a = 0,
      b = iv.length; // the last interval starting at or before p
    while (a < b) {
      const m = (a + b) >> 1;
      if (iv[m]![0] <= p) a = m + 1;
      else b = m;
    }
    if (a > 0 && p < iv[a - 1]![1]) out.push(i);
  });
  return Int32Array.from(out);
}

const plans = new WeakMap<MaskGrid, WeakMap<ShardMap, PeerExchange[][]>>();

/** Every rank's exchanges, from the mask and the placement alone (memoized: forward and backward ask again). */
export function exchangePlan(grid: MaskGrid, shard: ShardMap): PeerExchange[][] {
  let byShard = plans.get(grid);
  if (!byShard) {
    byShard = new WeakMap();
    plans.set(grid, byShard);
  }
  let all = byShard.get(shard);
  if (all) return all;
  const N = shard.world;
  const seen = Array.from({ length: N }, (_, r) => seenIntervals(grid, shard.positions(r)));
  const sendIdx: Int32Array[][] = Array.from({ length: N }, (_, owner) =>
    Array.from({ length: N }, (_, to) =>
      to === owner ? new Int32Array(0) : inside(shard.positions(owner), seen[to]!),
    ),
  );
  all = Array.from({ length: N }, (_, me) => {
    const out: PeerExchange[] = [];
    for (let peer = 0; peer < N; peer++) {
      if (peer === me) continue;
      const sendRows = sendIdx[me]![peer]!,
        fromPeer = sendIdx[peer]![me]!;
      const peerPos = shard.positions(peer);
      const recvPos = Int32Array.from(fromPeer, (i) => peerPos[i]!);
      if (sendRows.length || recvPos.length) out.push({ peer, sendRows, recvPos });
    }
    return out;
  });
  byShard.set(shard, all);
  return all;
}

/** Runs [start, length) of consecutive indices. */
function runs(idx: Int32Array): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < idx.length;) {
    let j = i + 1;
    while (j < idx.length && idx[j] === idx[j - 1]! + 1) j++;
    out.push([idx[i]!, j - i]);
    i = j;
  }
  return out;
}

/** The rows `idx` of t, packed into a new tensor. */
function gatherRows(device: Device, t: Tensor, idx: Int32Array): Tensor {
  const out = device.empty(t.dtype, [idx.length, ...t.shape.slice(1)]);
  let at = 0;
  for (const [s, n] of runs(idx)) {
    device.copyBox(t, out, { src: [s, 0], dst: [at, 0], size: [n, t.shape[1] ?? 1] });
    at += n;
  }
  return out;
}

/** dst[idx] += src (src packed, one row per index), through a zero tensor shaped like dst. */
function scatterAdd(device: Device, dst: Tensor, src: Tensor, idx: Int32Array): void {
  const spread = device.zeros(dst.dtype, dst.shape);
  let at = 0;
  for (const [s, n] of runs(idx)) {
    device.copyBox(src, spread, { src: [at, 0], dst: [s, 0], size: [n, dst.shape[1] ?? 1] });
    at += n;
  }
  device.add(dst, spread);
  device.release(spread);
}

/** The sparse K/V executor as a strategy: it runs on any ShardMap (a dispatcher's placement or a static shard). */
export const sparseKV: Strategy = async (ctx, q, k, v) => {
  const env = envOf(ctx),
    comm: Comm = ctx.comm,
    dev = env.device;
  const [T, H, D] = q.shape as [number, number, number];
  const acc = accumType(q.dtype);
  const me = comm.rank,
    mine = ctx.shard.positions(me);
  const peers = exchangePlan(ctx.mask, ctx.shard)[me]!;
  const qRows = queryRows(ctx.mask, mine);

  const ops: P2POp[] = [],
    outgoing: Tensor[] = [];
  const blocks: { peer: PeerExchange; k: Tensor; v: Tensor }[] = [];
  for (const p of peers) {
    if (p.sendRows.length)
      for (const t of [k, v]) {
        const b = gatherRows(dev, t, p.sendRows);
        outgoing.push(b);
        ops.push({ send: { buf: b, peer: p.peer } });
      }
    if (p.recvPos.length) {
      const kb = recvRows(dev, k, p.recvPos.length),
        vb = recvRows(dev, v, p.recvPos.length);
      ops.push({ recv: { buf: kb, peer: p.peer } }, { recv: { buf: vb, peer: p.peer } });
      blocks.push({ peer: p, k: kb, v: vb });
    }
  }
  env.trace.step('varlen fwd kv');
  const work = ops.length ? comm.sendRecv(ops) : DONE;
  const state = freshState(dev, acc, T, H, D);
  const own = { q: qRows, kPos: mine };
  if (!isEmpty(own)) env.kernel.forward({ q, k, v, view: own, scale: env.scale, state });
  await work.wait();
  releaseAll(dev, outgoing);
  for (const b of blocks) {
    const view = { q: qRows, kPos: b.peer.recvPos };
    if (!isEmpty(view)) env.kernel.forward({ q, k: b.k, v: b.v, view, scale: env.scale, state });
  }

  const partial: PartialResult = {
    state,
    backward: async (dout) => {
      const dq = dev.zeros(acc, q.shape);
      const back: P2POp[] = [],
        sent: Tensor[] = [],
        arriving: { idx: Int32Array; dk: Tensor; dv: Tensor }[] = [];
      for (const b of blocks) {
        const view = { q: qRows, kPos: b.peer.recvPos };
        const into = { dq, dk: dev.zeros(acc, b.k.shape), dv: dev.zeros(acc, b.v.shape) };
        if (!isEmpty(view))
          env.kernel.backward({
            q,
            k: b.k,
            v: b.v,
            out: state.out,
            lse: state.lse,
            dout,
            view,
            scale: env.scale,
            into,
          });
        back.push({ send: { buf: into.dk, peer: b.peer.peer } }, { send: { buf: into.dv, peer: b.peer.peer } });
        sent.push(into.dk, into.dv, b.k, b.v);
      }
      for (const p of peers) {
        if (!p.sendRows.length) continue;
        const dk = recvRows(dev, k, p.sendRows.length, acc),
          dv = recvRows(dev, v, p.sendRows.length, acc);
        back.push({ recv: { buf: dk, peer: p.peer } }, { recv: { buf: dv, peer: p.peer } });
        arriving.push({ idx: p.sendRows, dk, dv });
      }
      env.trace.step('varlen bwd dkv');
      const w = back.length ? comm.sendRecv(back) : DONE;
      const dk = dev.zeros(acc, k.shape),
        dv = dev.zeros(acc, v.shape);
      if (!isEmpty(own))
        env.kernel.backward({
          q,
          k,
          v,
          out: state.out,
          lse: state.lse,
          dout,
          view: own,
          scale: env.scale,
          into: { dq, dk, dv },
        });
      await w.wait();
      releaseAll(dev, sent);
      for (const a of arriving) {
        scatterAdd(dev, dk, a.dk, a.idx);
        scatterAdd(dev, dv, a.dv, a.idx);
        releaseAll(dev, [a.dk, a.dv]);
      }
      return { dq, dk, dv };
    },
  };
  return finish(env, q.dtype, partial);
};
