// What a kernel sees of the mask for one (query block × key block): the key intervals of each
// local query row and the global position of each local key row. Positions are global, so a
// block may hold any set of tokens (zigzag chunks, stripes, documents, gathered shards). A row
// at position −1 is padding: it sees nothing and nothing sees it.
import { areasOf, runsOf } from './area.js';
import type { BlockClass, MaskGrid } from './grid.js';

export interface QueryRows {
  readonly m: number;
  readonly lo: Int32Array; // [rows * m]
  readonly hi: Int32Array;
  /** the mask and the rows' global positions they were read from */
  readonly grid: MaskGrid;
  readonly positions: Int32Array;
}

export interface MaskView {
  readonly q: QueryRows;
  readonly kPos: Int32Array;
}

const rowsCache = new WeakMap<MaskGrid, WeakMap<Int32Array, QueryRows>>();

/**
 * The intervals of the rows at the given global positions (−1 = padding). Memoized per (grid,
 * positions array): grids and position arrays are never changed once made, and the same object
 * coming back lets kernels reuse what they prepared for it (device copies, block lists).
 */
export function queryRows(grid: MaskGrid, positions: Int32Array): QueryRows {
  let byPos = rowsCache.get(grid);
  if (!byPos) {
    byPos = new WeakMap();
    rowsCache.set(grid, byPos);
  }
  let rows = byPos.get(positions);
  if (!rows) {
    rows = computeRows(grid, positions);
    byPos.set(positions, rows);
  }
  return rows;
}

function computeRows(grid: MaskGrid, positions: Int32Array): QueryRows {
  const m = grid.m,
    n = positions.length;
  const lo = new Int32Array(n * m),
    hi = new Int32Array(n * m);
  for (let r = 0; r < n; r++) {
    const p = positions[r]!;
    if (p < 0) continue;
    if (p >= grid.S) throw new Error(`position ${p} outside the sequence of ${grid.S}`);
    for (let i = 0; i < m; i++) {
      lo[r * m + i] = grid.lo[p * m + i]!;
      hi[r * m + i] = grid.hi[p * m + i]!;
    }
  }
  return { m, lo, hi, grid, positions };
}

/** How a key-position array was made from an earlier one: `rows` set to `values` (a KV cache's step). */
export interface PositionEdit {
  /** the earlier array (held weakly: a chain of edits keeps no old snapshot alive) */
  readonly base: WeakRef<Int32Array>;
  readonly rows: Int32Array;
  readonly values: Int32Array;
}

const edits = new WeakMap<Int32Array, PositionEdit>();

/**
 * A new positions array: `base` with `rows[i]` set to `values[i]`. Position arrays are never
 * changed once made; this one remembers the edit, so a kernel that holds `base` on its device
 * updates those rows there instead of copying the whole array again.
 */
export function editPositions(base: Int32Array, rows: Int32Array, values: Int32Array): Int32Array {
  const out = base.slice();
  rows.forEach((r, i) => (out[r] = values[i]!));
  edits.set(out, { base: new WeakRef(base), rows, values });
  return out;
}

/** The edit that made `kPos`, when editPositions made it. */
export function positionEdit(kPos: Int32Array): PositionEdit | undefined {
  return edits.get(kPos);
}

export function maskView(grid: MaskGrid, qPos: Int32Array, kPos: Int32Array): MaskView {
  return { q: queryRows(grid, qPos), kPos };
}

/** Does query row r see key position p? */
export function sees(q: QueryRows, r: number, p: number): boolean {
  if (p < 0) return false;
  const m = q.m,
    b = r * m;
  for (let i = 0; i < m; i++) if (q.lo[b + i]! <= p && p < q.hi[b + i]!) return true;
  return false;
}

/**
 * Classify the tile rows [r0, r1) × key columns [c0, c1) conservatively: 'full' and 'empty'
 * are exact claims, 'partial' means "evaluate per element".
 */
export function classifyTile(view: MaskView, r0: number, r1: number, c0: number, c1: number): BlockClass {
  let kmin = Infinity,
    kmax = -Infinity,
    pad = false;
  for (let c = c0; c < c1; c++) {
    const p = view.kPos[c]!;
    if (p < 0) {
      pad = true;
      continue;
    }
    if (p < kmin) kmin = p;
    if (p > kmax) kmax = p;
  }
  if (kmin > kmax) return 'empty';
  const { m, lo, hi } = view.q;
  let anyHit = false,
    allCover = !pad;
  for (let r = r0; r < r1; r++) {
    let cover = false;
    for (let i = 0; i < m; i++) {
      const a = lo[r * m + i]!,
        b = hi[r * m + i]!;
      if (a >= b) continue;
      if (a <= kmax && kmin < b) anyHit = true;
      if (a <= kmin && kmax < b) cover = true;
    }
    if (!cover) allCover = false;
  }
  return allCover ? 'full' : anyHit ? 'partial' : 'empty';
}

/**
 * Unmasked pairs in the whole view (for work accounting and load balance): the mask's areas over
 * the intervals the query and key positions form (area.ts), the one area code the planner also
 * prices with. Views of few intervals (contiguous, zigzag, document shards, gathered blocks) cost
 * O(intervals²); a striped view, an interval per token, is counted row by row instead.
 */
export function viewArea(view: MaskView): number {
  const qs = runsOf(view.q.positions),
    ks = runsOf(view.kPos);
  if (qs.length * ks.length <= view.q.positions.length + view.kPos.length)
    return areasOf(view.q.grid).block(qs, ks).area;
  return rowByRowArea(view);
}

function rowByRowArea(view: MaskView): number {
  const keys = Int32Array.from(view.kPos)
    .filter((p) => p >= 0)
    .sort();
  const below = (x: number): number => {
    // keys < x
    let a = 0,
      b = keys.length;
    while (a < b) {
      const mid = (a + b) >> 1;
      if (keys[mid]! < x) a = mid + 1;
      else b = mid;
    }
    return a;
  };
  const { m, lo, hi } = view.q;
  let n = 0;
  for (let r = 0; r < lo.length / m; r++) {
    for (let i = 0; i < m; i++) {
      const a = lo[r * m + i]!,
        b = hi[r * m + i]!;
      if (a < b) n += below(b) - below(a);
    }
  }
  return n;
}
