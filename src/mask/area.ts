// Unmasked (query, key) pairs between sets of positions given as intervals, computed from the mask
// language's slices in closed form: O(slices touching each rectangle), never O(S). The one area
// code of the tree: the planner prices S = 1M tokens with it without building a MaskGrid, and the
// kernels' views (viewArea, so the dry-run kernel and the metered one) count their calls with it.
// The tests check it against MaskGrid.area.
import { MaskGrid } from './grid.js';
import { lower, type MaskSpec, type Slice } from './spec.js';

/** Positions [lo, hi). */
export type Interval = readonly [number, number];

/** Pairs a query set sees in a key set: `rows` counts whole query intervals that see any key. */
export interface BlockArea {
  area: number;
  rows: number;
  /** every (query interval × key interval) rectangle with work is wholly unmasked */
  full: boolean;
}

/** Σ_{q=x0}^{x1-1} max(0, c + m·q) for a slope m ∈ {−1, 0, 1}, exactly. */
function sumPositiveLinear(x0: number, x1: number, c: number, m: number): number {
  if (x1 <= x0) return 0;
  if (m === 0) return c > 0 ? c * (x1 - x0) : 0;
  // restrict to the q where c + m·q > 0
  if (m > 0) x0 = Math.max(x0, -c + 1);
  else x1 = Math.min(x1, c);
  if (x1 <= x0) return 0;
  const n = x1 - x0;
  const first = c + m * x0,
    last = c + m * (x1 - 1);
  return ((first + last) * n) / 2;
}

/**
 * Pairs of slice `s` inside [q0,q1) × [k0,k1). Row q of the slice sees keys
 * [max(K0, q + b), min(K1, q + a)) where the diagonal offset and band give a and b; the count
 * min(A, q+a) − max(B, q+b) is piecewise linear in q with breakpoints at A−a and B−b.
 */
function sliceArea(s: Slice, q0: number, q1: number, k0: number, k1: number): number {
  const lo = Math.max(q0, s.q[0]),
    hi = Math.min(q1, s.q[1]);
  if (hi <= lo) return 0;
  const A = Math.min(k1, s.k[1]),
    B = Math.max(k0, s.k[0]);
  if (A <= B) return 0;
  // diagonal key of row q: q − q0s + k0s + (klen − qlen)
  const d = -s.q[0] + s.k[0] + (s.k[1] - s.k[0]) - (s.q[1] - s.q[0]);
  const finiteA = s.right !== Infinity,
    finiteB = s.left !== Infinity;
  const a = finiteA ? d + s.right + 1 : 0; // upper key bound q + a
  const b = finiteB ? d - s.left : 0; // lower key bound q + b
  // breakpoints where min/max switch branch, clamped into [lo, hi] and sorted
  let c1 = finiteA ? Math.min(hi, Math.max(lo, A - a)) : hi;
  let c2 = finiteB ? Math.min(hi, Math.max(lo, B - b)) : hi;
  if (c2 < c1) {
    const t = c1;
    c1 = c2;
    c2 = t;
  }
  return (
    segment(lo, c1, A, a, B, b, finiteA, finiteB) +
    segment(c1, c2, A, a, B, b, finiteA, finiteB) +
    segment(c2, hi, A, a, B, b, finiteA, finiteB)
  );
}

/** The count on [x0, x1), where each of min/max keeps one branch. */
function segment(
  x0: number,
  x1: number,
  A: number,
  a: number,
  B: number,
  b: number,
  finiteA: boolean,
  finiteB: boolean,
): number {
  if (x1 <= x0) return 0;
  // at a breakpoint both branches agree; beyond it the row bound (q + a, q + b) takes over below
  // and the rectangle bound (A) above, hence the one strict inequality
  const upperIsA = !finiteA || A <= x0 + a;
  const lowerIsB = !finiteB || B > x0 + b;
  // count(q) = (upperIsA ? A : q + a) − (lowerIsB ? B : q + b)
  const c = (upperIsA ? A : a) - (lowerIsB ? B : b);
  const m = (upperIsA ? 0 : 1) - (lowerIsB ? 0 : 1);
  return sumPositiveLinear(x0, x1, c, m);
}

/**
 * A mask lowered once for a sequence of S tokens, answering rectangle areas. Slices are kept in
 * order of their first query row; when their query ranges do not overlap (full, causal, sliding,
 * documents) a rectangle only visits the slices it touches, in closed form. Overlapping slices
 * (prefix masks, hand-made unions) would be counted twice, so those fall back to the MaskGrid
 * and sum rows: exact, O(rows) per rectangle.
 */
export class MaskAreas {
  readonly slices: Slice[];
  private readonly disjoint: boolean;
  private readonly starts: number[];
  private readonly grid?: MaskGrid;
  readonly total: number;

  /** `grid`: the mask's grid where one is built already (the fallback for overlapping slices) */
  constructor(
    readonly spec: MaskSpec,
    readonly S: number,
    grid?: MaskGrid,
  ) {
    this.slices = lower(spec, S).sort((x, y) => x.q[0] - y.q[0]);
    this.disjoint = this.slices.every((s, i) => i === 0 || s.q[0] >= this.slices[i - 1]!.q[1]);
    this.starts = this.slices.map((s) => s.q[1]);
    if (!this.disjoint) this.grid = grid ?? MaskGrid.fromSlices(this.slices, S);
    this.total = this.area(0, S, 0, S);
  }

  area(q0: number, q1: number, k0: number, k1: number): number {
    if (q1 <= q0 || k1 <= k0) return 0;
    let n = 0;
    if (this.disjoint) {
      // first slice whose query range ends after q0
      let lo = 0,
        hi = this.slices.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.starts[mid]! <= q0) lo = mid + 1;
        else hi = mid;
      }
      for (let i = lo; i < this.slices.length && this.slices[i]!.q[0] < q1; i++)
        n += sliceArea(this.slices[i]!, q0, q1, k0, k1);
      return n;
    }
    for (let q = q0; q < q1; q++) n += this.grid!.rowArea(q, k0, k1);
    return n;
  }

  /** Every query interval against every key interval: O(|qs| · |ks|) rectangles. */
  block(qs: readonly Interval[], ks: readonly Interval[]): BlockArea {
    let area = 0,
      rows = 0,
      full = true;
    for (const [q0, q1] of qs) {
      let a = 0;
      for (const [k0, k1] of ks) {
        const c = this.area(q0, q1, k0, k1);
        if (c > 0 && c < (q1 - q0) * (k1 - k0)) full = false;
        a += c;
      }
      if (a > 0) rows += q1 - q0;
      area += a;
    }
    return { area, rows, full };
  }

  /** No masked pair at all. */
  isFull(): boolean {
    return this.total === this.S * this.S;
  }

  /** Fraction of the S × S square that is unmasked: the FLOP multiplier ("causal counts half"). */
  density(): number {
    return this.S === 0 ? 0 : this.total / (this.S * this.S);
  }
}

const gridAreas = new WeakMap<MaskGrid, MaskAreas>();

/** The areas of a grid's mask (memoised: grids are never changed once made). */
export function areasOf(grid: MaskGrid): MaskAreas {
  let a = gridAreas.get(grid);
  if (!a) gridAreas.set(grid, (a = new MaskAreas({ kind: 'slices', slices: grid.slices }, grid.S, grid)));
  return a;
}

/** The runs of consecutive positions, in the order given, padding (−1) left out: the same set (a multiset) as intervals. */
export function runsOf(positions: Int32Array): Interval[] {
  const out: [number, number][] = [];
  for (const p of positions) {
    if (p < 0) continue;
    const last = out[out.length - 1];
    if (last && last[1] === p) last[1]++;
    else out.push([p, p + 1]);
  }
  return out;
}
