// Attention over the sharded KV cache, written against the Comm, AttnKernel and Device seams like
// every strategy. The new tokens' K/V are already in the cache (KvCache.write), so a new token
// sees the cached context and the new tokens up to itself under the batch's mask.
//
// decode (the new queries of the whole batch on every rank, a few rows):
//   1. every rank attends all new queries to its own slots: one kernel call, partial (out, lse)
//   2. one allGather of the partials; every rank merges the N of them in rank order, in the
//      accumulation type, so every rank ends with the same exact result
//
// prefill, pass-KV (each rank's new queries stay home; cache shards travel):
//   the ring of ring-pass.ts over each rank's used slots: N − 1 steps of K and V (≈ (P+T)/N rows
//   each), each step overlapping the next transfer with the kernel on the block in hand
//
// prefill, pass-Q (cache shards stay home; queries travel):
//   1. the same ring carries each rank's new queries (≈ T/N rows) past every rank; each rank
//      computes the visiting block's partial against its own slots
//   2. one allToAll returns every partial (out and lse) to the queries' owner, which merges the
//      N of them in rank order
import type { Comm } from '../comm/comm.js';
import type { Device } from '../device/device.js';
import type { AttnState } from '../kernel/kernel.js';
import { queryRows, type MaskView } from '../mask/view.js';
import { type Env, freshState, isEmpty, isOwn, releaseAll } from '../strategy/common.js';
import { ringForward } from '../strategy/ring-pass.js';
import { accumType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/host.js';
import { type KvCache, type TokenPlacement, runs } from './cache.js';

export type PassKind = 'kv' | 'q';

/** A new tensor of the given rows of `src` (viewed as [rows, B, …]), in that order. */
export function pickRows(device: Device, src: Tensor, rows: Int32Array): Tensor {
  const out = device.empty(src.dtype, [rows.length, ...src.shape.slice(1)]);
  for (const [from, to, n] of runs(
    rows,
    Int32Array.from(rows, (_, i) => i),
  ))
    device.copyBox(src, out, { src: [from, 0], dst: [to, 0], size: [n, src.shape[1] ?? 1] });
  return out;
}

const prefixes = new WeakMap<Int32Array, Int32Array>();

/** The first `e` slot positions of a snapshot, the same array for the same snapshot (kernels memoize on it). */
function usedPrefix(positions: Int32Array, e: number): Int32Array {
  let v = prefixes.get(positions);
  if (!v || v.length !== e) {
    v = positions.slice(0, e);
    prefixes.set(positions, v);
  }
  return v;
}

/** Attend `q` (rows at global positions qPos) to this rank's slots of one layer, into a fresh state. */
function attendLocal(env: Env, cache: KvCache, layer: number, q: Tensor, qPos: Int32Array): AttnState {
  const [T, H, D] = q.shape as [number, number, number];
  const state = freshState(env.device, accumType(q.dtype), T, H, D);
  const view: MaskView = { q: queryRows(env.mask, qPos), kPos: cache.positions };
  if (!isEmpty(view)) env.kernel.forward({ q, k: cache.k[layer]!, v: cache.v[layer]!, view, scale: env.scale, state });
  return state;
}

/** Fold N partials laid out rank-major (out [N·T, H, D], lse [N·H, T]) into one state, in rank order. */
function mergeGathered(env: Env, n: number, outs: Tensor, lses: Tensor, T: number, H: number, D: number): AttnState {
  const acc = outs.dtype as 'f64' | 'f32';
  const state = freshState(env.device, acc, T, H, D);
  for (let j = 0; j < n; j++) {
    const part = { out: env.device.empty(acc, [T, H, D]), lse: env.device.empty(acc, [H, T]) };
    env.device.copyBox(outs, part.out, { src: [j * T, 0], dst: [0, 0], size: [T, H] });
    env.device.copyBox(lses, part.lse, { src: [j * H, 0], dst: [0, 0], size: [H, T] });
    env.kernel.merge(state, part);
    releaseAll(env.device, [part.out, part.lse]);
  }
  return state;
}

/**
 * Decode: q [Tq, H, D] holds the new queries of the whole batch (the same on every rank), at
 * global positions qPos. Returns the exact attention of every new query, the same on every rank.
 */
export async function decode(
  env: Env,
  comm: Comm,
  cache: KvCache,
  layer: number,
  q: Tensor,
  qPos: Int32Array,
): Promise<AttnState> {
  const part = attendLocal(env, cache, layer, q, qPos);
  const n = comm.size;
  if (n === 1) return part;
  const [T, H, D] = q.shape as [number, number, number];
  const outs = env.device.empty(part.out.dtype, [n * T, H, D]),
    lses = env.device.empty(part.lse.dtype, [n * H, T]);
  env.trace.step('decode exchange');
  const wo = comm.allGather(part.out, outs),
    wl = comm.allGather(part.lse, lses);
  await wo.wait();
  await wl.wait();
  releaseAll(env.device, [part.out, part.lse]);
  const state = mergeGathered(env, n, outs, lses, T, H, D);
  releaseAll(env.device, [outs, lses]);
  return state;
}

/**
 * Prefill, pass-KV: q [T_me, H, D] are this rank's new queries (placement p's rows of this rank,
 * in order). The cache shards rotate; returns this rank's rows of the result.
 */
export async function prefillPassKv(
  env: Env,
  comm: Comm,
  cache: KvCache,
  layer: number,
  q: Tensor,
  p: TokenPlacement,
): Promise<AttnState> {
  const me = comm.rank,
    n = comm.size,
    map = cache.map,
    device = env.device;
  const [T, H, D] = q.shape as [number, number, number];
  const state = freshState(device, accumType(q.dtype), T, H, D);
  const qRows = queryRows(env.mask, p.posByRank[me]!);
  // each member sends only its used prefix of slots; its own block is read in place
  const extent = Array.from({ length: n }, (_, j) => map.extent(j));
  const kPos = extent.map((e, j) => (j === me ? cache.positions : usedPrefix(map.positions(j), e)));
  const prefix = (t: Tensor): Tensor => {
    const c = device.empty(t.dtype, [extent[me]!, ...t.shape.slice(1)]);
    if (extent[me]! > 0) device.copyBox(t, c, { src: [0, 0], dst: [0, 0], size: [extent[me]!, t.shape[1]!] });
    return c;
  };
  const own = [cache.k[layer]!, cache.v[layer]!];
  const travel = n === 1 ? own : own.map(prefix);
  const last = await ringForward(
    env,
    comm,
    (j) => extent[j]!,
    travel,
    (held, owner) => {
      const [k, v] = owner === me ? own : held;
      const view: MaskView = { q: qRows, kPos: kPos[owner]! };
      if (!isEmpty(view)) env.kernel.forward({ q, k: k!, v: v!, view, scale: env.scale, state });
    },
    'pass-kv',
  );
  if (!isOwn(last, travel)) releaseAll(device, last); // the block a backward would start from: none here
  if (travel !== own) releaseAll(device, travel);
  return state;
}

/**
 * Prefill, pass-Q: as prefillPassKv, but the queries rotate and the partial results return to
 * their owners in one allToAll.
 */
async function prefillPassQ(
  env: Env,
  comm: Comm,
  cache: KvCache,
  layer: number,
  q: Tensor,
  p: TokenPlacement,
): Promise<AttnState> {
  const n = comm.size,
    device = env.device;
  const [T, H, D] = q.shape as [number, number, number];
  const acc = accumType(q.dtype);
  const rows = (j: number): number => p.byRank[j]!.length;
  const parts: AttnState[] = new Array(n);
  const travel = [q];
  const last = await ringForward(
    env,
    comm,
    rows,
    travel,
    ([qj], owner) => {
      parts[owner] = attendLocal(env, cache, layer, qj!, p.posByRank[owner]!);
    },
    'pass-q',
  );
  if (!isOwn(last, travel)) releaseAll(device, last);
  if (n === 1) return parts[0]!;
  const outs = parts.map(() => device.empty(acc, [T, H, D])),
    lses = parts.map(() => device.empty(acc, [H, T]));
  env.trace.step('pass-q return');
  const wo = comm.allToAll(
      parts.map((s) => s.out),
      outs,
    ),
    wl = comm.allToAll(
      parts.map((s) => s.lse),
      lses,
    );
  await wo.wait();
  await wl.wait();
  releaseAll(
    device,
    parts.flatMap((s) => [s.out, s.lse]),
  );
  const state = freshState(device, acc, T, H, D);
  for (let j = 0; j < n; j++) env.kernel.merge(state, { out: outs[j]!, lse: lses[j]! });
  releaseAll(device, [...outs, ...lses]);
  return state;
}

/** Prefill with either pass. */
export function prefill(
  pass: PassKind,
  env: Env,
  comm: Comm,
  cache: KvCache,
  layer: number,
  q: Tensor,
  p: TokenPlacement,
): Promise<AttnState> {
  return (pass === 'kv' ? prefillPassKv : prefillPassQ)(env, comm, cache, layer, q, p);
}
