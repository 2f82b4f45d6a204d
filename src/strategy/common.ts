// Pieces every strategy shares: the environment a schedule runs in, the emptiness test that
// lets a schedule skip a block without a kernel call, fresh running states, the single-block
// attention, and the final casts (running results stay in the accumulation type until the end).
import type { Device } from '../device/device.js';
import type { AttnGrads, AttnKernel, AttnState } from '../kernel/kernel.js';
import type { MaskGrid } from '../mask/grid.js';
import { classifyTile, type MaskView, type QueryRows, viewArea } from '../mask/view.js';
import { accumType, type DType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/host.js';
import { NO_TRACE, type StrategyCtx, type StrategyResult, type Trace } from './types.js';

export interface Env {
  kernel: AttnKernel;
  device: Device;
  mask: MaskGrid;
  scale: number;
  trace: Trace;
}

export function envOf(ctx: StrategyCtx): Env {
  return { kernel: ctx.kernel, device: ctx.device, mask: ctx.mask, scale: ctx.scale, trace: ctx.trace ?? NO_TRACE };
}

export function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

interface ConcatNode {
  next: WeakMap<Int32Array, ConcatNode>;
  value?: Int32Array;
}
const concatRoots = new Map<number, ConcatNode>();

/** A part that contributes only padding (−1) to concatPositions. */
export const NO_POSITIONS = new Int32Array(0);

/**
 * The positions of several ranks' rows laid end to end — packed, or each part at j·stride with −1
 * padding — as one array that is the same object whenever the same parts come back (a trie of
 * WeakMaps on the parts), so that kernels reuse what they prepared for it across calls.
 */
export function concatPositions(parts: readonly Int32Array[], stride = 0): Int32Array {
  let node: ConcatNode | undefined = concatRoots.get(stride);
  if (!node) {
    node = { next: new WeakMap() };
    concatRoots.set(stride, node);
  }
  for (const p of parts) {
    let child: ConcatNode | undefined = node.next.get(p);
    if (!child) {
      child = { next: new WeakMap() };
      node.next.set(p, child);
    }
    node = child;
  }
  if (!node.value) {
    const total = stride ? stride * parts.length : parts.reduce((a, p) => a + p.length, 0);
    const out = new Int32Array(total).fill(-1);
    let at = 0;
    parts.forEach((p, j) => {
      out.set(p, stride ? j * stride : at);
      at += p.length;
    });
    node.value = out;
  }
  return node.value;
}

const emptyCache = new WeakMap<QueryRows, WeakMap<Int32Array, boolean>>();

/**
 * True when no query row of the view sees any of its keys (exact; positions only). Memoized per
 * (rows, positions): every ring step of every call asks again.
 */
export function isEmpty(view: MaskView): boolean {
  let byKeys = emptyCache.get(view.q);
  if (!byKeys) {
    byKeys = new WeakMap();
    emptyCache.set(view.q, byKeys);
  }
  let empty = byKeys.get(view.kPos);
  if (empty === undefined) {
    const c =
      view.kPos.length === 0 || view.q.lo.length === 0
        ? 'empty'
        : classifyTile(view, 0, view.q.lo.length / view.q.m, 0, view.kPos.length);
    empty = c === 'empty' || (c === 'partial' && viewArea(view) === 0);
    byKeys.set(view.kPos, empty);
  }
  return empty;
}

/** out = 0, lse = −∞ in the accumulation type: the state before any key block. */
export function freshState(device: Device, acc: DType, T: number, H: number, D: number): AttnState {
  return { out: device.zeros(acc, [T, H, D]), lse: device.full(acc, [H, T], -Infinity) };
}

/**
 * A ring backward's visit: the held key block's dK/dV contributions into fresh tensors of dq's
 * (accumulation) type, which travel on to the block's owner, and dQ into `g.dq` in place; null
 * when the mask leaves the block empty, so no kernel call and no zeros are sent.
 */
export function keyBlockGrads(
  env: Env,
  g: { q: Tensor; state: AttnState; dout: Tensor; dq: Tensor },
  k: Tensor,
  v: Tensor,
  view: MaskView,
): [Tensor, Tensor] | null {
  if (isEmpty(view)) return null;
  const into = { dq: g.dq, dk: env.device.zeros(g.dq.dtype, k.shape), dv: env.device.zeros(g.dq.dtype, v.shape) };
  const { q, state, dout } = g;
  env.kernel.backward({ q, k, v, out: state.out, lse: state.lse, dout, view, scale: env.scale, into });
  return [into.dk, into.dv];
}

/** A result over local queries before the final cast: running state and gradients in the accumulation type. */
export interface PartialResult {
  /** the running state; `finish` (and Ulysses) replace its out by the cast output, which the backward reads */
  state: AttnState;
  /** dout in the input dtype; gradients of this rank's q, k, v in the accumulation type */
  backward(dout: Tensor): Promise<AttnGrads>;
}

/** Attention of local queries against one local key block (no communication). */
export function localAttention(
  env: Env,
  qRows: QueryRows,
  kPos: Int32Array,
  q: Tensor,
  k: Tensor,
  v: Tensor,
): PartialResult {
  const [T, H, D] = q.shape as [number, number, number];
  const acc = accumType(q.dtype);
  const view: MaskView = { q: qRows, kPos };
  const empty = isEmpty(view);
  const state = freshState(env.device, acc, T, H, D);
  if (!empty) env.kernel.forward({ q, k, v, view, scale: env.scale, state });
  return {
    state,
    backward: async (dout) => {
      const into = {
        dq: env.device.zeros(acc, q.shape),
        dk: env.device.zeros(acc, k.shape),
        dv: env.device.zeros(acc, v.shape),
      };
      if (!empty) env.kernel.backward({ q, k, v, out: state.out, lse: state.lse, dout, view, scale: env.scale, into });
      return into;
    },
  };
}

/**
 * Cast a partial's output and gradients to the input dtype; lse stays in the accumulation type.
 * The backward reads the cast output (its delta = rowsum(dO ∘ O), as FlashAttention computes it
 * from the output it returned), so the accumulation-type output goes at once: for bf16 inputs it
 * was a quarter of what a ring of 2 holds beyond its inputs. The backward runs once per forward; its
 * accumulation-type gradients are released each after its cast.
 */
export function finish(env: Env, dtype: DType, p: PartialResult): StrategyResult {
  const out = castTo(env.device, p.state.out, dtype);
  if (out !== p.state.out) {
    env.device.release(p.state.out);
    p.state.out = out;
  }
  let done = false;
  return {
    out,
    lse: p.state.lse,
    backward: async (dout) => {
      if (done) throw new Error('backward called twice on one forward result');
      done = true;
      const g = await p.backward(dout);
      const cast = (t: Tensor): Tensor => castReleasing(env.device, t, dtype);
      return { dq: cast(g.dq), dk: cast(g.dk), dv: cast(g.dv) };
    },
  };
}

/** Whether a block in hand is the caller's own tensors, not a received copy (compared by tensor: callers pass fresh arrays). */
export function isOwn(held: readonly Tensor[], travel: readonly Tensor[]): boolean {
  return held.every((t, i) => t === travel[i]);
}

/** Give tensors this code allocated back to the device (Device.release): each is not used again. */
export function releaseAll(device: Device, ts: Iterable<Tensor>): void {
  for (const t of ts) device.release(t);
}

export function castTo(device: Device, t: Tensor, dtype: DType): Tensor {
  return t.dtype === dtype ? t : device.cast(t, dtype);
}

/** castTo for a tensor not used again: where a copy is made, the source is released at once. */
export function castReleasing(device: Device, t: Tensor, dtype: DType): Tensor {
  const c = castTo(device, t, dtype);
  if (c !== t) device.release(t);
  return c;
}

/** Same dtype, leading dimension replaced; zero-filled. */
export function rowsLike(device: Device, t: Tensor, rows: number, dtype: DType = t.dtype): Tensor {
  return device.zeros(dtype, [rows, ...t.shape.slice(1)]);
}

/** A receive buffer like rowsLike, not filled: the transfer writes all of it. */
export function recvRows(device: Device, t: Tensor, rows: number, dtype: DType = t.dtype): Tensor {
  return device.empty(dtype, [rows, ...t.shape.slice(1)]);
}
