// The device memory traffic of weft's strategy code outside the attention kernels: the Device's
// elementwise operations one rank runs per iteration (src/strategy/*.ts through the Device seam —
// zero-filled buffers, the fresh lse's −∞ fill, box copies that pack and unpack the all-to-all
// buffers, adds of arriving gradient sums, casts between the input and the accumulation type), as
// bytes read and written and calls, followed in the code like held.ts follows its allocations.
// MeteredDevice counts the same on the CPU ranks (runBatch's `elementwise`); test/plan/
// elementwise.test.ts compares them exactly. On a GPU these run on the compute stream between the
// kernels (src/backends/cuda/runtime/device.ts: memsets, cuMemcpy(2D)Async, the fill/add/convert kernels), so the
// planner prices them as serial HBM work (schedule.ts, implementations with `deviceOps`).
//
// Left out, because they are not on the Device seam: the kernels' own work. CudaKernel
// (src/backends/cuda/kernel/kernel.ts) per backward call launches weft_attn_delta (reads dO and the output,
// writes the f32 delta [H, Tq]: `kernelDeltaBytes`) — inside the calibrated kernel time, since
// `weft bench kernel` times kernel.backward, which launches it (and zero-fills its own dq, dk, dv,
// which the strategies pass in instead); it casts dO only when dO's type differs from q's, which
// no strategy does; its block lists are built once per view and cached. The forward's merge into
// the running state is in the kernel's epilogue; TokenRing's merges of returned partials are
// weft_attn_merge kernels, priced as merges (mergeBytesPerElement).
import { headPlan, type HeldCase } from './held.js';

import type { ElementwiseOp, OpTraffic } from '../strategy/accounting.js';
export type Traffic = Record<ElementwiseOp | 'total', OpTraffic>;

/** One rank's traffic over the forward, and over forward + backward. */
export interface ElementwiseCount { forward: Traffic; total: Traffic }

export const ELEMENTWISE_OPS: readonly ElementwiseOp[] = ['zeros', 'full', 'copyBox', 'add', 'cast'];
const OPS: readonly (ElementwiseOp | 'total')[] = [...ELEMENTWISE_OPS, 'total'];

export function zeroTraffic(): Traffic {
  return Object.fromEntries(OPS.map((o) => [o, { calls: 0, readBytes: 0, writeBytes: 0 }])) as Traffic;
}

function copyTraffic(t: Traffic): Traffic {
  return Object.fromEntries(OPS.map((o) => [o, { ...t[o] }])) as Traffic;
}

class Tally {
  t = zeroTraffic();
  /** `calls` operations of `read` and `write` bytes each (as MeteredDevice: none counted that move nothing) */
  private op(o: ElementwiseOp, read: number, write: number, calls = 1): void {
    if (read + write === 0 || calls === 0) return;
    for (const x of [this.t[o], this.t.total]) { x.calls += calls; x.readBytes += read * calls; x.writeBytes += write * calls; }
  }
  zeros(b: number, calls = 1): void { this.op('zeros', 0, b, calls); }
  full(b: number, calls = 1): void { this.op('full', 0, b, calls); }
  /** a box of b bytes (same dtype both sides) */
  copy(b: number, calls = 1): void { this.op('copyBox', b, b, calls); }
  /** dst += src, b bytes each */
  add(b: number, calls = 1): void { this.op('add', 2 * b, b, calls); }
  cast(from: number, to: number, calls = 1): void { this.op('cast', from, to, calls); }
  /** `calls` operations that read and write `read` and `write` bytes together (their sizes differ; only the sums and the count matter) */
  spread(o: ElementwiseOp, read: number, write: number, calls: number): void {
    if (read + write === 0 || calls === 0) return;
    for (const x of [this.t[o], this.t.total]) { x.calls += calls; x.readBytes += read; x.writeBytes += write; }
  }
  /** `total` bytes copied in `calls` boxes */
  copies(total: number, calls: number): void { this.spread('copyBox', total, total, calls); }
}

interface Dims { rows: number; heads: number; kvHeads: number; D: number; e: number; a: number }

/** ring.ts ringAttention over n members (ring-pass.ts): the forward's state; returns the backward. */
function ringAttention(t: Tally, d: Dims, n: number, inner = n): () => void {
  const q = d.rows * d.heads * d.D, lse = d.heads * d.rows, kv = d.rows * d.kvHeads * d.D;
  t.zeros(q * d.a); t.full(lse * d.a); // freshState; the forward's blocks arrive in empty buffers
  return () => {
    t.zeros(q * d.a); // dq
    t.zeros(kv * d.a, 2 * n); // each kernel's fresh dK, dV
    // each arriving sum is added into the step's fresh dK, dV: a ring of n adds at n − 1 steps; a
    // double ring's inner passes (outer of them) at inner − 1 steps each, the outer pass at outer − 1
    const outer = n / inner, adds = outer * (inner - 1) + (outer - 1);
    t.add(kv * d.a, 2 * adds);
  };
}

/** common.ts finish: the output cast after the forward; dq, dk, dv cast after the backward. */
function finish(t: Tally, c: HeldCase, forward: () => () => void): ElementwiseCount {
  const casts = c.e !== c.a, Q = c.T * c.H * c.D, K = c.T * c.Hkv * c.D;
  const backward = forward();
  if (casts) t.cast(Q * c.a, Q * c.e);
  const fwd = copyTraffic(t.t);
  if (c.backward) {
    backward();
    if (casts) { t.cast(Q * c.a, Q * c.e); t.cast(K * c.a, K * c.e, 2); }
  }
  return { forward: fwd, total: t.t };
}

/** ulysses.ts ulyssesAttention for member `me` (Ulysses; USP with a ring inside). */
function ulyssesAttention(t: Tally, c: HeldCase, me: number): ElementwiseCount {
  const { T, H, Hkv, D, e, a } = c, u = c.ulysses, casts = e !== a;
  const Hl = H / u, Tg = u * T, Q = T * H * D, L = H * T, K = T * Hkv * D;
  const p = headPlan(H, Hkv, u, me);
  const hk = p.regular ? p.nR : Hl;
  const sent = T * p.moved * D, mine = Tg * p.nR * D; // one of K, V: every member's range as sent; as gathered here
  // forward: pack q, k, v per member (u boxes each), unpack the received parts (u boxes each)
  t.copies(Q * e, u); t.copies(sent * e, u); t.copies(sent * e, u);
  t.copies(Q * e, u); t.copies(mine * e, u); t.copies(mine * e, u);
  if (!p.regular) for (let i = 0; i < 2; i++) { t.zeros(Tg * Hl * D * e); t.copy(Tg * D * e, Hl); } // expand: one box per local head
  // USP's Ulysses group is a SubgroupComm over the world (src/comm/subgroup.ts) whenever a ring
  // is beside it: its all-to-all copies the member's own part with the Device (a plain NCCL
  // all-to-all moves it inside NCCL); one box per all-to-all, of the part this member keeps
  const own = c.strategy === 'usp' && c.ring > 1 ? 1 : 0;
  t.copy(T * Hl * D * e, own); t.copy(T * p.nR * D * e, 2 * own);
  const d: Dims = { rows: Tg, heads: Hl, kvHeads: hk, D, e, a };
  let innerBackward: () => void;
  if (c.strategy === 'ulysses') {
    t.zeros(Q * a); t.full(L * a); // localAttention's state
    innerBackward = () => { t.zeros(Q * a); t.zeros(Tg * hk * D * a, 2); };
  } else innerBackward = ringAttention(t, d, c.ring);
  // the output back: cast, pack (u), lse packed (u); unpack out and lse (u each)
  if (casts) t.cast(Q * a, Q * e);
  t.copies(Q * e, u); t.copies(L * a, u);
  t.copy(T * Hl * D * e, own); t.copy(Hl * T * a, own);
  t.copies(Q * e, u); t.copies(L * a, u);
  const forward = copyTraffic(t.t);
  if (!c.backward) return { forward, total: t.t };
  // dO out and in
  t.copies(Q * e, u); t.copy(T * Hl * D * e, own); t.copies(Q * e, u);
  innerBackward();
  if (!p.regular) {
    // heads.ts reduce, for dk and dv: the sums and a one-head buffer; per local head a box into it and addHeads
    for (let i = 0; i < 2; i++) {
      t.zeros(mine * a); t.zeros(Tg * D * a);
      t.copy(Tg * D * a, Hl);
      t.zeros(Tg * D * a, Hl); t.copy(Tg * D * a, 2 * Hl); t.add(Tg * D * a, Hl);
    }
  }
  // the gradients back: dq cast and packed; dk, dv cast (unless shared: they travel as f32 sums) and packed
  const gdt = p.shared ? a : e;
  if (casts) t.cast(Q * a, Q * e);
  t.copies(Q * e, u);
  for (let i = 0; i < 2; i++) {
    if (!p.shared && casts) t.cast(mine * a, mine * e);
    t.copies(mine * gdt, u);
  }
  t.copy(T * Hl * D * e, own); t.copy(T * p.nR * D * gdt, 2 * own);
  // unpacked: dq's boxes; dk, dv tiled by boxes, or (shared heads) zero-filled and summed into by addHeads
  t.copies(Q * e, u);
  for (let i = 0; i < 2; i++) {
    if (p.shared) {
      // addHeads per member: a zero-filled temporary, the sum's heads copied in, the part added, copied back
      t.zeros(K * gdt);
      t.spread('zeros', 0, sent * gdt, u); t.copies(sent * gdt, u); t.spread('add', 2 * sent * gdt, sent * gdt, u); t.copies(sent * gdt, u);
    } else t.copies(sent * gdt, u);
  }
  if (p.shared && casts) t.cast(K * a, K * e, 2);
  return { forward, total: t.t };
}

/** What one rank of weft's strategy code moves through the Device's elementwise operations in an iteration (member: its Ulysses member). */
export function elementwiseTraffic(c: HeldCase, member = 0): ElementwiseCount {
  const t = new Tally();
  const { T, H, Hkv, D, e, a } = c, n = c.ring;
  const Q = T * H * D, L = H * T, K = T * Hkv * D;
  const d: Dims = { rows: T, heads: H, kvHeads: Hkv, D, e, a };
  switch (c.strategy) {
    case 'local': case 'ring':
      return finish(t, c, () => ringAttention(t, d, c.strategy === 'local' ? 1 : n));
    case 'double-ring':
      return finish(t, c, () => ringAttention(t, d, n, c.inner));
    case 'allgather':
      return finish(t, c, () => {
        t.zeros(n * K * e, 2); // gathered K, V
        t.zeros(K * e, 2); t.copy(K * e, 2); // own K, V padded to the longest shard
        t.zeros(Q * a); t.full(L * a); // state
        return () => {
          t.zeros(Q * a); t.zeros(n * K * a, 2); // dq, gathered dK, dV
          t.zeros(K * a, 2); t.zeros(K * a, 2); // the reduce-scatter's share; the own block's dk, dv
          t.zeros(K * a, 2); t.copy(K * a, 2); t.add(K * a, 2); // the share's rows added into dk, dv
        };
      });
    case 'tokenring':
      return finish(t, c, () => {
        t.zeros(Q * a); t.full(L * a);
        // q travels (zero-filled receive buffers, n − 1); a fresh partial per visit (n − 1) and per arrival (n − 1), merged by the kernel
        t.zeros(Q * e, n - 1); t.zeros(Q * a, 2 * (n - 1)); t.full(L * a, 2 * (n - 1));
        return () => {
          t.zeros(Q * a); t.zeros(K * a, 2);
          // q, dO, out (input type; f32 with heldAccOut), lse (f32) travel; dq partials per visit and arrival; arrivals added into dq
          t.zeros(Q * e, 2 * (n - 1)); t.zeros(Q * (c.heldAccOut ? a : e), n - 1); t.zeros(L * a, n - 1);
          t.zeros(Q * a, 2 * (n - 1)); t.add(Q * a, n - 1);
        };
      });
    case 'ulysses': case 'usp':
      return ulyssesAttention(t, c, member);
  }
}

/** The largest total bytes over the Ulysses members (members alike elsewhere). */
export function elementwisePeakMember(c: HeldCase): ElementwiseCount {
  const members = c.strategy === 'ulysses' || c.strategy === 'usp' ? c.ulysses : 1;
  let best: ElementwiseCount | undefined;
  for (let m = 0; m < members; m++) {
    const x = elementwiseTraffic(c, m);
    const b = (y: ElementwiseCount): number => y.total.total.readBytes + y.total.total.writeBytes;
    if (!best || b(x) > b(best)) best = x;
  }
  return best!;
}

/** The backward kernel's delta (src/backends/cuda/kernel/kernel.ts weft_attn_delta): reads dO (input type) and the output (f32), writes f32 [H, Tq]; per call, inside the calibrated kernel time. */
export function kernelDeltaBytes(rows: number, heads: number, D: number, e: number, outBytes: number): number {
  return rows * heads * D * (e + outBytes) + rows * heads * 4;
}
