// A lowered mask: for every global query row, up to `m` disjoint key intervals [lo, hi).
// Almost every mask gives one interval a row (m = 1); unions of slices may give more.
// This is the one form every kernel, strategy, shard balancer and planner reads.
import { type MaskSpec, type Slice, lower, sliceRow } from './spec.js';

export type BlockClass = 'empty' | 'full' | 'partial';

export class MaskGrid {
  /** intervals of row q are lo[q*m + i], hi[q*m + i], i < m; unused ones are [0, 0) */
  constructor(
    readonly S: number,
    readonly m: number,
    readonly lo: Int32Array,
    readonly hi: Int32Array,
    /** what it was built from: the areas over intervals read these (area.ts) */
    readonly slices: readonly Slice[],
  ) {}

  static build(spec: MaskSpec, S: number): MaskGrid {
    return MaskGrid.fromSlices(lower(spec, S), S);
  }

  static fromSlices(slices: readonly Slice[], S: number): MaskGrid {
    const lo1 = new Int32Array(S),
      hi1 = new Int32Array(S);
    let extra: Map<number, [number, number][]> | undefined;
    const has = new Uint8Array(S);
    for (const s of slices) {
      for (let q = s.q[0]; q < s.q[1]; q++) {
        const [lo, hi] = sliceRow(s, q);
        if (lo >= hi) continue;
        if (!has[q]) {
          has[q] = 1;
          lo1[q] = lo;
          hi1[q] = hi;
          continue;
        }
        // overlapping or touching the first interval: widen it; else keep it aside to merge later
        if (lo <= hi1[q]! && hi >= lo1[q]! && !extra?.has(q)) {
          lo1[q] = Math.min(lo1[q]!, lo);
          hi1[q] = Math.max(hi1[q]!, hi);
          continue;
        }
        extra ??= new Map();
        const list = extra.get(q) ?? [[lo1[q]!, hi1[q]!]];
        list.push([lo, hi]);
        extra.set(q, list);
      }
    }
    let m = 1;
    const merged = new Map<number, [number, number][]>();
    for (const [q, list] of extra ?? []) {
      list.sort((a, b) => a[0] - b[0]);
      const out: [number, number][] = [];
      for (const iv of list) {
        const last = out[out.length - 1];
        if (last && iv[0] <= last[1]) last[1] = Math.max(last[1], iv[1]);
        else out.push([iv[0], iv[1]]);
      }
      merged.set(q, out);
      m = Math.max(m, out.length);
    }
    const lo = new Int32Array(S * m),
      hi = new Int32Array(S * m);
    for (let q = 0; q < S; q++) {
      const list = merged.get(q);
      if (list)
        list.forEach(([a, b], i) => {
          lo[q * m + i] = a;
          hi[q * m + i] = b;
        });
      else if (has[q]) {
        lo[q * m] = lo1[q]!;
        hi[q * m] = hi1[q]!;
      }
    }
    return new MaskGrid(S, m, lo, hi, slices);
  }

  allowed(q: number, k: number): boolean {
    const m = this.m,
      b = q * m;
    for (let i = 0; i < m; i++) if (this.lo[b + i]! <= k && k < this.hi[b + i]!) return true;
    return false;
  }

  /** Keys row q sees inside [k0, k1). */
  rowArea(q: number, k0 = 0, k1 = this.S): number {
    const m = this.m,
      b = q * m;
    let n = 0;
    for (let i = 0; i < m; i++) n += Math.max(0, Math.min(k1, this.hi[b + i]!) - Math.max(k0, this.lo[b + i]!));
    return n;
  }

  /** Unmasked (query, key) pairs in the block [q0, q1) × [k0, k1). */
  area(q0 = 0, q1 = this.S, k0 = 0, k1 = this.S): number {
    let n = 0;
    for (let q = q0; q < q1; q++) n += this.rowArea(q, k0, k1);
    return n;
  }

  /** The per-block answer kernels and balancers use: is [q0,q1) × [k0,k1) empty, full or partial? */
  classify(q0: number, q1: number, k0: number, k1: number): BlockClass {
    if (q0 >= q1 || k0 >= k1) return 'empty';
    const a = this.area(q0, q1, k0, k1);
    return a === 0 ? 'empty' : a === (q1 - q0) * (k1 - k0) ? 'full' : 'partial';
  }

  /** Fraction of the S × S square that is unmasked (the FLOP multiplier). */
  density(): number {
    return this.S === 0 ? 0 : this.area() / (this.S * this.S);
  }
}
