// What one rank of weft's strategy code holds since 90faa7f, which releases (Device.release) what
// it allocates per step once it is used and passed on. The code is followed allocation by
// allocation and release by release, in its order (src/strategy/*.ts, src/strategy/heads.ts), on a
// ledger whose highest point is the peak: the bytes the rank holds at once over one forward and
// backward — what MeteredDevice counts on the CPU (allocations minus releases; runBatch's
// `peakHeldBytes`, test/plan/held.test.ts compares them) and what a GPU's caching allocator
// counts on top of the inputs and the kernel's cached block lists (footprint.ts).
//
// Assumptions: equal shards (T rows per rank) and no block empty under the mask (zigzag causal,
// full: every ring step and TokenRing pair calls the kernel; an empty block allocates no dK,dV
// in the ring backward but a zero sum, so such masks hold at most as much). The input type has
// `e` bytes, the accumulation type `a`; a cast allocates only where they differ (bf16 → f32 on
// GPUs; f64 and f32 on the CPU stay what they are). With `kernelTemps` the GPU kernel's own
// temporary is held while its backward runs: delta, f32 [H, Tq] (src/backends/cuda/kernel/kernel.ts; its
// block-list scratch, under 1 MiB, is left out).

export type HeldStrategy = 'local' | 'ring' | 'double-ring' | 'tokenring' | 'allgather' | 'ulysses' | 'usp';

export interface HeldCase {
  strategy: HeldStrategy;
  /** query (and K/V) rows per rank */
  T: number;
  H: number; Hkv: number; D: number;
  /** ring degree (ring, double ring, TokenRing, all-gather: the world; USP: its ring) */
  ring: number;
  /** Ulysses degree (ulysses, usp) */
  ulysses: number;
  /** inner ring size (double ring) */
  inner: number;
  /** bytes per element: input type, accumulation type */
  e: number; a: number;
  kernelTemps: boolean;
  /** forward and backward (else the forward alone) */
  backward: boolean;
  /**
   * The code up to aa4a388: the accumulation-type output is held to the end of the backward, which
   * reads it (TokenRing's travels in it). Since then the backward reads the output cast to the
   * input type and the accumulation-type one goes at the cast.
   */
  heldAccOut?: boolean;
}

/** Bytes a rank holds: the peak over the forward, the peak over forward and backward, and what it holds at the end. */
export interface Held { forward: number; peak: number; end: number }

class Ledger {
  held = 0;
  peak = 0;
  hold(b: number): void { this.held += b; if (this.held > this.peak) this.peak = this.held; }
  drop(b: number): void { this.held -= b; }
  /** held only while a kernel runs */
  temp(b: number): void { this.hold(b); this.drop(b); }
}

/**
 * The steps of a pass of n whose pattern differs: 0, 1, 2 and the last three. Every step between
 * repeats step 2's holds and releases exactly (it ends where it began), so leaving the repeats
 * out changes no peak and keeps a ring of thousands cheap to count.
 */
function steps(n: number): number[] {
  return [...new Set([0, 1, 2, n - 3, n - 2, n - 1])].filter((s) => s >= 0 && s < n).sort((x, y) => x - y);
}

/**
 * ring-pass.ts ringForward over blocks of `kv` bytes: at each step but the last the next block is
 * received while the held one is visited; a received block goes once visited and passed on. The
 * last one received (member i + 1's) stays held: the caller keeps or releases it.
 */
function ringForward(L: Ledger, n: number, kv: number, visit: () => void): void {
  for (const s of steps(n)) {
    if (s < n - 1) L.hold(kv);
    visit();
    if (s < n - 1 && s > 0) L.drop(kv);
  }
}

/**
 * ring-pass.ts ringBackward, turned back: K,V of `kv` bytes move before steps 1..n−2 (the last
 * block is the own one), the first block kept from the forward or fetched; the sum of `acc` bytes
 * arriving at steps ≥ 1 is added to the visit's fresh gradients and released with the sum passed
 * on and the block visited. `visit` holds the step's gradients (acc bytes), which stay as the
 * carry; the last carry (the own block's total) is left held.
 */
function ringBackward(L: Ledger, n: number, kv: number, acc: number, kept: boolean, visit: () => void): void {
  if (n > 1 && !kept) L.hold(kv);
  for (const s of steps(n)) {
    if (s < n - 2) L.hold(kv); // K,V for the next step
    if (s > 0) L.hold(acc); // the sum arriving for this step's block
    visit();
    if (s > 0) L.drop(acc); // the sum passed on
    if (s <= n - 2) L.drop(kv); // the block visited (not the own one)
    if (s > 0) L.drop(acc); // the arrived sum, added
  }
}

interface Dims { rows: number; heads: number; kvHeads: number; D: number; e: number; a: number; delta: number }

/** ring.ts ringAttention over `n` members: the running state, the forward; returns the backward (dq and the ring's, leaving dq, dk, dv held). */
function ringAttention(L: Ledger, d: Dims, n: number): () => void {
  const q = d.rows * d.heads * d.D, lse = d.heads * d.rows, kv = 2 * d.rows * d.kvHeads * d.D;
  L.hold((q + lse) * d.a); // freshState
  ringForward(L, n, kv * d.e, () => {});
  return () => {
    L.hold(q * d.a); // dq
    ringBackward(L, n, kv * d.e, kv * d.a, true, () => { L.hold(kv * d.a); L.temp(d.delta); });
  };
}

/**
 * common.ts finish: the output cast after the forward, the accumulation-type output released then
 * (`heldAccOut`: after the backward); dq, dk, dv cast one by one, each released after its cast.
 */
function finish(L: Ledger, c: HeldCase, forward: () => () => void): { fwd: number } {
  const casts = c.e !== c.a, Q = c.T * c.H * c.D, K = c.T * c.Hkv * c.D;
  const backward = forward();
  if (casts) { L.hold(Q * c.e); if (!c.heldAccOut) L.drop(Q * c.a); }
  const fwd = L.peak;
  if (!c.backward) return { fwd };
  backward();
  if (casts) {
    if (c.heldAccOut) L.drop(Q * c.a);
    for (const x of [Q, K, K]) { L.hold(x * c.e); L.drop(x * c.a); }
  }
  return { fwd };
}

/** heads.ts HeadPlan for member c of u: its KV heads, all members' together, and whether they are regular / shared. */
export function headPlan(H: number, Hkv: number, u: number, c: number): { nR: number; moved: number; kvOf: number[]; regular: boolean; shared: boolean } {
  const Hl = H / u, G = H / Hkv;
  const kv = (m: number): [number, number] => [Math.floor((m * Hl) / G), Math.floor(((m + 1) * Hl - 1) / G) + 1];
  const [g0, g1] = kv(c), nR = g1 - g0;
  const kvOf = Array.from({ length: u }, (_, m) => kv(m)[1] - kv(m)[0]);
  let regular = Hl % nR === 0;
  if (regular) for (let hl = 0; hl < Hl; hl++) if (Math.floor(hl / (Hl / nR)) !== Math.floor((c * Hl + hl) / G) - g0) regular = false;
  let shared = false;
  for (let m = 1; m < u; m++) if (kv(m)[0] < kv(m - 1)[1]) shared = true;
  return { nR, moved: kvOf.reduce((x, y) => x + y, 0), kvOf, regular, shared };
}

/** ulysses.ts ulyssesAttention for member `me`: the all-to-alls around a local block (ulysses) or a ring over the groups (usp). */
function ulyssesAttention(L: Ledger, c: HeldCase, me: number): { fwd: number } {
  const { T, H, Hkv, D, e, a } = c, u = c.ulysses, casts = e !== a;
  const Hl = H / u, Tg = u * T, Q = T * H * D, lse = H * T, K = T * Hkv * D;
  const p = headPlan(H, Hkv, u, me);
  const hk = p.regular ? p.nR : Hl; // KV heads the attention sees (irregular ranges expanded per query head)
  const sent = T * p.moved * D, mine = Tg * p.nR * D; // one of K, V: as sent (every member's range), as received
  // forward: q, k, v out (send copies) and in (receive buffers), concatenated, the copies released
  L.hold(2 * Q * e);
  L.hold((sent + mine) * e); L.hold((sent + mine) * e);
  L.hold(Q * e); L.hold(2 * mine * e);
  L.drop(2 * Q * e + 2 * (sent + mine) * e);
  if (!p.regular) { L.hold(2 * Tg * Hl * D * e); L.drop(2 * mine * e); }
  const d: Dims = { rows: Tg, heads: Hl, kvHeads: hk, D, e, a, delta: c.kernelTemps ? Hl * Tg * 4 : 0 };
  let innerBackward: () => void;
  if (c.strategy === 'ulysses') {
    L.hold(Q * a + lse * a); // localAttention's state
    innerBackward = () => { L.hold(Q * a + 2 * Tg * hk * D * a); L.temp(d.delta); };
  } else innerBackward = ringAttention(L, d, c.ring);
  // the output back: the cast (kept for the backward, the accumulation-type one released; with
  // `heldAccOut` the cast copy goes once packed), its send and receive buffers, lse's, the result
  const legacy = c.heldAccOut === true;
  if (casts) { L.hold(Q * e); if (!legacy) L.drop(Q * a); }
  L.hold(2 * Q * e);
  if (casts && legacy) L.drop(Q * e);
  L.hold(2 * lse * a);
  L.hold(Q * e + lse * a);
  L.drop(2 * Q * e + 2 * lse * a);
  const fwd = L.peak;
  if (!c.backward) return { fwd };
  // dO out and in, concatenated; the inner backward; dO's concatenation and the inner output go
  L.hold(2 * Q * e); L.hold(Q * e); L.drop(2 * Q * e);
  innerBackward();
  L.drop(Q * e + Q * (legacy ? a : e));
  if (!p.regular) {
    // reduce: the sums, its one-head copy (released at the end) and addHeads' temporary per local head (released at once)
    for (let i = 0; i < 2; i++) { L.hold(mine * a + Tg * D * a); L.temp(Tg * D * a); L.drop(Tg * D * a); }
    L.drop(2 * Tg * Hl * D * a);
  }
  // the gradients back: each cast (if its type changes) and split, the cast copy and the original released
  const gdt = p.shared ? a : e, castK = !p.shared && casts;
  if (casts) L.hold(Q * e);
  L.hold(2 * Q * e);
  if (casts) L.drop(Q * e);
  L.drop(Q * a);
  for (let i = 0; i < 2; i++) {
    if (castK) L.hold(mine * e);
    L.hold((mine + sent) * gdt);
    if (castK) L.drop(mine * e);
    L.drop(mine * a);
  }
  L.hold(Q * e + 2 * K * gdt); // dq, dk, dv
  if (p.shared) L.temp(T * Math.max(...p.kvOf) * D * gdt); // addHeads' temporary, one member's part at a time
  L.drop(2 * Q * e + 2 * (mine + sent) * gdt);
  if (p.shared && casts) for (let i = 0; i < 2; i++) { L.hold(K * e); L.drop(K * a); } // dk, dv cast, each f32 sum released
  return { fwd };
}

/** What a rank holds; `member` is its Ulysses member (ranks differ only there, and only with GQA head plans that are irregular or shared). */
export function heldBytes(c: HeldCase, member = 0): Held {
  const L = new Ledger();
  const { T, H, Hkv, D, e, a } = c, n = c.ring;
  const Q = T * H * D, lse = H * T, K = T * Hkv * D, kv = 2 * K;
  const delta = c.kernelTemps ? H * T * 4 : 0;
  const d: Dims = { rows: T, heads: H, kvHeads: Hkv, D, e, a, delta };
  let fwd: number;
  switch (c.strategy) {
    case 'local': case 'ring':
      ({ fwd } = finish(L, c, () => ringAttention(L, d, c.strategy === 'local' ? 1 : n)));
      break;
    case 'double-ring': {
      const i = c.inner, o = n / i;
      ({ fwd } = finish(L, c, () => {
        L.hold((Q + lse) * a);
        // the outer pass's last block is kept; each inner pass's last block is released
        ringForward(L, o, kv * e, () => { ringForward(L, i, kv * e, () => {}); if (i > 1) L.drop(kv * e); });
        return () => {
          L.hold(Q * a);
          ringBackward(L, o, kv * e, kv * a, true, () => ringBackward(L, i, kv * e, kv * a, false, () => { L.hold(kv * a); L.temp(delta); }));
        };
      }));
      break;
    }
    case 'allgather':
      ({ fwd } = finish(L, c, () => {
        L.hold(n * kv * e); // gathered K, V
        L.hold(kv * e); // padded own K, V (sent)
        L.hold((Q + lse) * a);
        L.drop(kv * e);
        return () => {
          L.hold(Q * a + n * kv * a); // dq, gathered dK, dV
          if (n > 1) L.temp(delta);
          L.hold(kv * a + kv * a); // own share of the reduce-scatter; own block's dk, dv
          L.temp(delta);
          L.drop(n * kv * a + n * kv * e);
          for (let j = 0; j < 2; j++) { L.hold(K * a); L.drop(K * a); L.drop(K * a); } // the copied rows, then the share
        };
      }));
      break;
    case 'tokenring': {
      /** tokenring.ts queryPass: blocks of `b` bytes travel, partials of `part` bytes come back */
      const pass = (b: number, part: number, t: number): void => {
        for (const s of steps(n)) {
          if (s < n - 1) L.hold(b); // the next visiting block
          if (s >= 2) L.hold(part); // the partial arriving for the own queries
          if (s > 0) L.hold(part); // this step's partial (sent at the next)
          L.temp(t);
          if (s >= 2) { L.drop(part); L.drop(part); } // arrived (merged), sent
          if (s > 0) L.drop(b); // visited, passed on
        }
        if (n > 1) { L.hold(part); L.drop(part); L.drop(part); }
      };
      ({ fwd } = finish(L, c, () => {
        L.hold((Q + lse) * a);
        pass(Q * e, (Q + lse) * a, 0);
        return () => {
          L.hold(Q * a + kv * a);
          pass(2 * Q * e + Q * (c.heldAccOut ? a : e) + lse * a, Q * a, delta); // q, dO, out, lse travel; dq partials
        };
      }));
      break;
    }
    case 'ulysses': case 'usp':
      ({ fwd } = ulyssesAttention(L, c, member));
      break;
  }
  return { forward: fwd, peak: L.peak, end: L.held };
}

/** The largest over the Ulysses members (every member alike elsewhere). */
export function heldPeak(c: HeldCase): Held {
  const members = c.strategy === 'ulysses' || c.strategy === 'usp' ? c.ulysses : 1;
  let best: Held = { forward: 0, peak: 0, end: 0 };
  for (let m = 0; m < members; m++) {
    const h = heldBytes(c, m);
    if (h.peak > best.peak) best = h;
  }
  return best;
}
