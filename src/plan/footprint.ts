// What weft's own code holds on a GPU for one attention layer (attention modes), counted from the
// strategy code (src/strategy/*, src/backends/cuda/kernel/kernel.ts, src/run/gpu.ts) rather than assumed.
// Two generations of that code (Implementation.footprint):
//
// 'weft-gc' — up to a57aad4 weft freed a device tensor only when the garbage collector finalized
// it (src/backends/cuda/runtime/tensor.ts), which the runs force between iterations (src/backends/cuda/runtime/reclaim.ts), not
// inside one: so everything an iteration allocates — received blocks, per-step gradient blocks,
// sums already passed on, all-to-all send and receive copies, the final casts — is live at its
// end, and the peak is their sum. Checked against the allocator peaks of every a57aad4 and
// 7c54dd9d record and the 1M–2.75M ring runs (test/plan/weft-h200.test.ts).
//
// 'weft' — since 90faa7f the strategies release what they allocate per step once it is used and
// passed on (Device.release): the peak is the highest point of allocations minus releases,
// followed through the code by held.ts and checked against the CPU ranks' metered peaks
// (test/plan/held.test.ts).
//
// To either come the inputs (q, k, v and dO of the local rows) and the kernel's block lists,
// cached per mask view across iterations: per view an f32 entry per (128-row query tile, 128-key
// tile) for the forward and per (128-key tile, 64-row query tile) for the backward, i.e.
// 3·Tq·Tk/4096 bytes — quadratic in the block, 1.5 GiB per rank for a ring of 2 at S = 2M.
import { elemBytes, type PlanConfig } from './config.js';
import type { Layout } from './layout.js';
import type { Implementation } from './calibration/types.js';
import { seqsAtOnce } from './schedule.js';
import { heldPeak } from './held.js';

const FWD_QTILE = 128, KTILE = 128, BWD_QTILE = 64; // src/backends/cuda/kernel/source.ts
const cdiv = (a: number, b: number): number => Math.ceil(a / b);

/** Bytes of the kernel's block lists for one mask view of tq query rows and tk keys (f32 entries and per-row counts). */
export function blockListBytes(tq: number, tk: number, backward: boolean): number {
  const nq = cdiv(tq, FWD_QTILE), nk = cdiv(tk, KTILE);
  const fwd = 4 * (nq * nk + nq);
  return backward ? fwd + 4 * (nk * cdiv(tq, BWD_QTILE) + nk) : fwd;
}

/**
 * One weft iteration's memory per GPU, bytes: inputs, forward, backward, block lists. 'weft-gc':
 * what the forward and the backward allocate (all of it live at the end). 'weft': the highest
 * the forward holds, and how much higher the backward goes; the peak is the sum of the four.
 */
export interface Footprint { inputs: number; forward: number; backward: number; blockLists: number }

/** A footprint's peak: its four parts together. */
export function footprintBytes(f: Footprint): number {
  return f.inputs + f.forward + f.backward + f.blockLists;
}

/**
 * The allocations of a ring pass (ring-pass.ts) of n members over blocks of `kv` bytes (K and V
 * together, input type) whose gradient sums are `kvAcc` bytes (f32): forward, the n − 1 received
 * blocks; backward, its own transfers and the arriving sums. Turned back (since 84c36db): the
 * first block is fetched unless kept from the forward, K,V move before steps 1..n−2, n − 1 sums
 * arrive. Home hop (before): K,V before steps 1..n−1, n − 1 sums arrive and one comes home.
 */
function passFwd(n: number, kv: number): number { return (n - 1) * kv; }
function passBwd(n: number, kv: number, kvAcc: number, turned: boolean, kept: boolean): number {
  if (n <= 1) return 0;
  return turned ? (kept ? 0 : kv) + Math.max(0, n - 2) * kv + (n - 1) * kvAcc : (n - 1) * kv + n * kvAcc;
}

/**
 * Attention over `rows` local query rows of `hq` heads against rotating K/V of `hkv` heads: the
 * running state (f32 out, lse), the ring passes (a plain ring of `r`, or a double ring of inner
 * rings of `inner`), and in the backward dq (f32) and every visited block's dk, dv (f32).
 * Returns the forward and backward bytes, without the final casts (the caller's).
 */
function ringLike(rows: number, hq: number, hkv: number, D: number, e: number, r: number, inner: number, turned: boolean): { fwd: number; bwd: number } {
  const kv = 2 * rows * hkv * D * e, kvAcc = 2 * rows * hkv * D * 4;
  const state = rows * hq * D * 4 + hq * rows * 4, dq = rows * hq * D * 4;
  const outer = r / inner;
  if (inner >= r) return { fwd: state + passFwd(r, kv), bwd: dq + passBwd(r, kv, kvAcc, turned, true) + r * kvAcc };
  // double ring: the outer pass's block is kept from the forward (turned back); each round's inner pass fetches its first
  return {
    fwd: state + passFwd(outer, kv) + outer * passFwd(inner, kv),
    bwd: dq + passBwd(outer, kv, kvAcc, turned, true) + outer * passBwd(inner, kv, kvAcc, turned, false) + r * kvAcc,
  };
}

/** KV heads Ulysses member c receives (heads.ts HeadPlan.kv), and whether some are shared or irregular. */
function ulyssesHeads(H: number, Hkv: number, u: number): { nR: number; moved: number; shared: boolean; regular: boolean } {
  const Hl = H / u, G = H / Hkv;
  const range = (c: number): [number, number] => [Math.floor((c * Hl) / G), Math.floor(((c + 1) * Hl - 1) / G) + 1];
  let nR = 0, moved = 0, shared = false, regular = true;
  for (let c = 0; c < u; c++) {
    const [g0, g1] = range(c), n = g1 - g0;
    nR = Math.max(nR, n);
    moved += n;
    if (c > 0 && g0 < range(c - 1)[1]) shared = true;
    if (Hl % n !== 0) regular = false;
    else for (let hl = 0; hl < Hl; hl++) if (Math.floor(hl / (Hl / n)) !== Math.floor((c * Hl + hl) / G) - g0) regular = false;
  }
  return { nR, moved, shared, regular };
}

/** weft's memory per GPU for one attention layer of `l` (attention modes; tp 1), for the implementation's code. */
export function weftFootprint(cfg: PlanConfig, l: Layout, impl: Implementation): Footprint {
  return impl.footprint === 'weft-gc' ? gcFootprint(cfg, l, impl) : releasedFootprint(cfg, l, impl.heldAccOut === true);
}

/** The kernel's block lists of one rank (forward and, in attention mode, backward). */
function blockLists(l: Pick<Layout, 'strategy' | 'ring' | 'ulysses'>, T: number, bwd: boolean): number {
  const r = l.ring;
  switch (l.strategy) {
    case 'allgather': return blockListBytes(T, T, bwd) + blockListBytes(T, r * T, bwd);
    case 'ulysses': return blockListBytes(l.ulysses * T, l.ulysses * T, bwd);
    case 'usp': return r * blockListBytes(l.ulysses * T, l.ulysses * T, bwd);
    default: return r * blockListBytes(T, T, bwd);
  }
}

/**
 * weft since 90faa7f (strategies release per step): the inputs, the peak the strategy holds
 * (held.ts; bf16 or fp32 inputs, f32 accumulation, the backward kernel's f32 delta), the block lists.
 */
function releasedFootprint(cfg: PlanConfig, l: Layout, heldAccOut: boolean): Footprint {
  const m = cfg.model, B = seqsAtOnce(cfg, l);
  const f = attentionFootprint({ ...l, S: cfg.seqLen, H: m.heads, Hkv: m.kvHeads, D: m.headDim, e: elemBytes(cfg), backward: cfg.mode === 'attention', heldAccOut });
  return { inputs: B * f.inputs, forward: B * f.forward, backward: B * f.backward, blockLists: B * f.blockLists };
}

/** What one rank of weft's current code holds for one attention layer of S tokens (equal shards): `weft run`'s memory check and the planner's. */
export function attentionFootprint(x: {
  strategy: Layout['strategy']; S: number; H: number; Hkv: number; D: number; e: number;
  ulysses: number; ring: number; inner?: number; backward: boolean;
  /** the code up to aa4a388 (held.ts HeldCase.heldAccOut); the current code by default */
  heldAccOut?: boolean;
}): Footprint {
  const { H, Hkv, D, e, backward: bwd } = x, u = x.ulysses, r = x.ring, T = x.S / (u * r);
  const h = heldPeak({ strategy: x.strategy, T, H, Hkv, D, ring: r, ulysses: u, inner: x.inner ?? r, e, a: 4, kernelTemps: true, backward: bwd, heldAccOut: x.heldAccOut });
  const inputs = bwd ? 2 * T * H * D * e + 2 * T * Hkv * D * e : T * H * D * e + 2 * T * Hkv * D * e;
  return { inputs, forward: h.forward, backward: bwd ? h.peak - h.forward : 0, blockLists: blockLists(x, T, bwd) };
}

/**
 * weft up to a57aad4 (nothing released inside an iteration): its allocations per GPU, for the
 * implementation's ring backward. Shards are taken as equal (S / (ulysses · ring) rows each).
 */
function gcFootprint(cfg: PlanConfig, l: Layout, impl: Implementation): Footprint {
  const m = cfg.model, D = m.headDim, H = m.heads, Hkv = m.kvHeads, e = elemBytes(cfg), a = 4;
  const bwd = cfg.mode === 'attention';
  const B = seqsAtOnce(cfg, l), u = l.ulysses, r = l.ring, T = cfg.seqLen / (u * r);
  const turned = impl.ringBackward === 'turn-back';
  const qE = T * H * D * e, qA = T * H * D * a, lse = T * H * a, kvE = T * Hkv * D * e, kvA = T * Hkv * D * a;
  const inputs = bwd ? 2 * qE + 2 * kvE : qE + 2 * kvE;
  // the final casts of a strategy that returns its partial through finish(): out; dq, dk, dv
  const castOut = qE, castGrads = qE + 2 * kvE;
  let fwd = 0, back = 0, lists = 0;
  const inner = l.strategy === 'double-ring' ? l.inner ?? r : r;
  switch (l.strategy) {
    case 'local': case 'ring': case 'double-ring': {
      const x = ringLike(T, H, Hkv, D, e, r, inner, turned);
      fwd = x.fwd + castOut;
      back = x.bwd + castGrads;
      lists = r * blockListBytes(T, T, bwd);
      break;
    }
    case 'allgather': {
      fwd = 2 * kvE + 2 * r * kvE + qA + lse + castOut; // padded own K,V, gathered K,V, state, out
      back = qA + 2 * r * kvA + 2 * kvA + 2 * kvA + 2 * kvA + castGrads; // dq, gathered dK,dV, own share, own block's, the copied rows
      lists = blockListBytes(T, T, bwd) + blockListBytes(T, r * T, bwd);
      break;
    }
    case 'tokenring': {
      const part = qA + lse; // a partial (f32 out, lse) for one visiting query block
      fwd = (r - 1) * qE + 2 * (r - 1) * part + part + castOut; // visiting q, partials computed and arrived, state, out
      back = qA + 2 * kvA + (r - 1) * (2 * qE + qA + lse) + 2 * (r - 1) * qA + castGrads; // dq,dk,dv; visiting q,dO,out,lse; dq partials
      lists = r * blockListBytes(T, T, bwd);
      break;
    }
    case 'ulysses': case 'usp': {
      const h = ulyssesHeads(H, Hkv, u), Hl = H / u, Tg = u * T;
      const kvMoved = T * h.moved * D * e; // one of K, V as sent (and as received: Tg rows of nR heads)
      const hk = h.regular ? h.nR : Hl; // KV heads the kernel sees (irregular ranges are expanded per query head)
      // the all-to-all of q, k, v (send and receive copies) and the concatenated inputs; the output
      // and lse back (cast, send, receive, reassembled)
      fwd = 3 * qE + 6 * kvMoved + (h.regular ? 0 : 2 * Tg * Hl * D * e) + 4 * qE + 3 * lse;
      // dO out and gathered; dq cast, sent, received, reassembled; dk, dv likewise (f32 where shared)
      const g = h.shared ? a : e, kvG = T * h.moved * D * g;
      back = 3 * qE + 4 * qE + (h.shared ? 0 : 2 * kvMoved) + 4 * kvG + 2 * T * Hkv * D * g + (h.shared ? 2 * kvG + 2 * kvE : 0);
      if (!h.regular) back += 2 * Tg * h.nR * D * a + 2 * Tg * D * a + Hl * 2 * Tg * D * a; // reduce's sums, its one-head copies and addHeads' temporaries
      if (l.strategy === 'ulysses') {
        fwd += Tg * Hl * D * a + Hl * Tg * a; // local attention's state
        back += Tg * Hl * D * a + 2 * Tg * hk * D * a;
        lists = blockListBytes(Tg, Tg, bwd);
      } else {
        const x = ringLike(Tg, Hl, hk, D, e, r, r, turned);
        fwd += x.fwd;
        back += x.bwd;
        lists = r * blockListBytes(Tg, Tg, bwd);
      }
      break;
    }
  }
  return { inputs: B * inputs, forward: B * fwd, backward: bwd ? B * back : 0, blockLists: B * lists };
}
