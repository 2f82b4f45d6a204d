// Who computes what: the unmasked area of every (query shard × key shard) block of a ring, from
// the shard kind (the same kinds src/shard builds) and the mask's closed-form areas. Per-rank
// balance and per-step work of every strategy follow from these blocks.
import type { ShardKind } from '../shard/shard.js';
import type { MaskAreas } from './area.js';

type Interval = readonly [number, number];

/** Integer boundaries of an even split of n into k parts (the first n mod k parts one longer). */
function split(start: number, n: number, k: number): number[] {
  const b = [start];
  const q = Math.floor(n / k),
    rem = n % k;
  for (let i = 0; i < k; i++) b.push(b[i]! + q + (i < rem ? 1 : 0));
  return b;
}

/**
 * The position intervals each of r ranks holds (striped is handled apart: it is not intervals).
 * doc-zigzag deals documents shorter than 2r token by token round robin (as src/shard does);
 * those are returned as `spread`: every rank holds 1/r of each, so they add the same share of
 * their area to every block instead of one interval per token.
 */
function chunks(
  kind: Exclude<ShardKind, 'striped'>,
  S: number,
  r: number,
  cu: readonly number[],
): { parts: Interval[][]; spread: Interval[] } {
  const parts: Interval[][] = Array.from({ length: r }, () => []);
  const spread: Interval[] = [];
  const zig = (s0: number, len: number): void => {
    const b = split(s0, len, 2 * r);
    for (let i = 0; i < r; i++) {
      parts[i]!.push([b[i]!, b[i + 1]!]);
      parts[i]!.push([b[2 * r - 1 - i]!, b[2 * r - i]!]);
    }
  };
  if (kind === 'contiguous') {
    const b = split(0, S, r);
    for (let i = 0; i < r; i++) parts[i]!.push([b[i]!, b[i + 1]!]);
  } else if (kind === 'zigzag') {
    zig(0, S);
  } else {
    for (let d = 0; d + 1 < cu.length; d++) {
      const s0 = cu[d]!,
        len = cu[d + 1]! - s0;
      if (len >= 2 * r) zig(s0, len);
      else spread.push([s0, s0 + len]);
    }
  }
  return { parts, spread };
}

/** `full`: every (query chunk × key chunk) rectangle with work is wholly unmasked (no partial tiles). */
export interface Block {
  area: number;
  rows: number;
  full: boolean;
}

/** Rings up to this size are priced on every rank; larger ones on an even sample (ends included). */
const EXACT_RING_LIMIT = 256;

function sampleSize(r: number): number {
  return r <= EXACT_RING_LIMIT ? r : r <= 2048 ? 64 : 32;
}

/**
 * Blocks of a ring of r ranks over S tokens. block(i, j) is rank i's queries against rank j's
 * keys: `area` unmasked pairs, `rows` the query rows that see at least one key (the rows a
 * kernel call and a merge touch).
 */
export class RingWork {
  private readonly parts?: Interval[][];
  // documents dealt round robin: their total area and tokens, shared evenly by all blocks
  private spreadArea = 0;
  private spreadTokens = 0;
  readonly rankSample: number[];
  /** a sampled rank's index in rankSample, or −1 */
  private readonly sampleIndex: Int32Array;
  /** blocks met by a sampled rank, computed once: its queries against every rank's keys, every rank's queries against its keys */
  private rowTable?: BlockTable;
  private colTable?: BlockTable;

  constructor(
    readonly areas: MaskAreas,
    readonly kind: ShardKind,
    readonly r: number,
    cuSeqlens?: readonly number[],
  ) {
    const S = areas.S;
    if (kind !== 'striped') {
      const c = chunks(kind, S, r, cuSeqlens ?? [0, S]);
      this.parts = c.parts;
      for (const [a, b] of c.spread) {
        this.spreadArea += areas.area(a, b, a, b);
        this.spreadTokens += b - a;
      }
    }
    const n = sampleSize(r);
    if (n === r) this.rankSample = Array.from({ length: r }, (_, i) => i);
    else {
      const set = new Set<number>([0, r - 1]);
      for (let k = 0; k < n; k++) set.add(Math.floor((k * r) / n));
      this.rankSample = [...set].sort((a, b) => a - b);
    }
    this.sampleIndex = new Int32Array(r).fill(-1);
    this.rankSample.forEach((i, j) => (this.sampleIndex[i] = j));
  }

  /** Tokens rank i holds. */
  tokens(i: number): number {
    if (!this.parts) return Math.floor(this.areas.S / this.r) + (i < this.areas.S % this.r ? 1 : 0);
    let n = this.spreadTokens / this.r;
    for (const [a, b] of this.parts[i]!) n += b - a;
    return n;
  }

  /** Every ring pass prices the blocks of its sampled positions, so those are kept (a ring's passes share them). */
  block(i: number, j: number): Block {
    const si = this.sampleIndex[i]!;
    if (si >= 0)
      return (this.rowTable ??= new BlockTable(this.rankSample.length * this.r)).get(si * this.r + j, () =>
        this.compute(i, j),
      );
    const sj = this.sampleIndex[j]!;
    if (sj >= 0)
      return (this.colTable ??= new BlockTable(this.rankSample.length * this.r)).get(sj * this.r + i, () =>
        this.compute(i, j),
      );
    return this.compute(i, j);
  }

  private compute(i: number, j: number): Block {
    if (!this.parts) {
      // striped: every rank holds every r-th token, so each block sees the mask's average
      // density; the ±1/n difference between blocks on and off the diagonal is ignored
      const n = this.tokens(i);
      const area = this.areas.total / (this.r * this.r);
      return { area, rows: area > 0 ? n : 0, full: this.areas.isFull() };
    }
    let area = this.spreadArea / (this.r * this.r),
      rows = area > 0 ? this.spreadTokens / this.r : 0;
    let full = this.spreadArea === 0;
    const ks = this.parts[j]!,
      qs = this.parts[i]!;
    for (let x = 0; x < qs.length; x++) {
      const q0 = qs[x]![0],
        q1 = qs[x]![1];
      let a = 0;
      for (let y = 0; y < ks.length; y++) {
        const k0 = ks[y]![0],
          k1 = ks[y]![1];
        const c = this.areas.area(q0, q1, k0, k1);
        if (c > 0 && c < (q1 - q0) * (k1 - k0)) full = false;
        a += c;
      }
      if (a > 0) rows += q1 - q0;
      area += a;
    }
    return { area, rows, full };
  }

  /** Rank i's queries against every key: its whole share of the work. */
  rowTotal(i: number): Block {
    const full = this.areas.isFull();
    if (!this.parts) return { area: this.areas.total / this.r, rows: this.tokens(i), full };
    let area = this.spreadArea / this.r,
      rows = this.spreadTokens / this.r;
    for (const [q0, q1] of this.parts[i]!) {
      const a = this.areas.area(q0, q1, 0, this.areas.S);
      if (a > 0) rows += q1 - q0;
      area += a;
    }
    return { area, rows, full };
  }

  /** max / mean of the per-rank work (1 = perfectly balanced). */
  imbalance(): number {
    let max = 0,
      sum = 0;
    for (const i of this.rankSample) {
      const a = this.rowTotal(i).area;
      max = Math.max(max, a);
      sum += a;
    }
    return sum === 0 ? 1 : max / (sum / this.rankSample.length);
  }
}

/** Blocks by index, each computed on first use. */
class BlockTable {
  private readonly area: Float64Array;
  private readonly rows: Float64Array;
  private readonly full: Uint8Array;
  constructor(n: number) {
    this.area = new Float64Array(n).fill(NaN);
    this.rows = new Float64Array(n);
    this.full = new Uint8Array(n);
  }
  get(k: number, compute: () => Block): Block {
    if (Number.isNaN(this.area[k]!)) {
      const b = compute();
      this.area[k] = b.area;
      this.rows[k] = b.rows;
      this.full[k] = b.full ? 1 : 0;
      return b;
    }
    return { area: this.area[k]!, rows: this.rows[k]!, full: this.full[k] === 1 };
  }
}
