// Who computes what: the unmasked area of every (query shard × key shard) block of a ring, from
// the intervals the ShardMap gives each rank and the mask's areas over them (src/mask/area.ts,
// the code the kernels' views count with). Per-rank balance and per-step work of every strategy
// follow from these blocks.
import type { BlockArea, MaskAreas } from '../mask/area.js';
import type { ShardMap } from '../shard/shard.js';

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
  readonly r: number;
  // tokens dealt round robin (striped, doc-zigzag's short documents) are priced as spread evenly:
  // every block gets 1/r² of each dealt range's area with itself (a range sees only itself under
  // the document masks doc-zigzag is for; striped deals one range, the whole sequence)
  private readonly dealtArea: number;
  private readonly dealtFull: boolean;
  readonly rankSample: number[];
  /** a sampled rank's index in rankSample, or −1 */
  private readonly sampleIndex: Int32Array;
  /** blocks met by a sampled rank, computed once: its queries against every rank's keys, every rank's queries against its keys */
  private rowTable?: BlockTable;
  private colTable?: BlockTable;

  constructor(
    readonly areas: MaskAreas,
    readonly shard: ShardMap,
  ) {
    const r = (this.r = shard.world);
    const dealt = shard.dealt();
    this.dealtArea = dealt.reduce((n, [a, b]) => n + areas.area(a, b, a, b), 0);
    // a block holds tokens of every dealt range: wholly unmasked only if there is one, unmasked with itself
    this.dealtFull =
      this.dealtArea === 0 || (dealt.length === 1 && this.dealtArea === (dealt[0]![1] - dealt[0]![0]) ** 2);
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

  /** Rank i's dealt tokens. */
  private dealtTokens(i: number): number {
    let n = this.shard.length(i);
    for (const [a, b] of this.shard.runs(i)) n -= b - a;
    return n;
  }

  /** Every ring pass prices the blocks of its sampled positions, so those are kept (a ring's passes share them). */
  block(i: number, j: number): BlockArea {
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

  private compute(i: number, j: number): BlockArea {
    const b = this.areas.block(this.shard.runs(i), this.shard.runs(j));
    if (this.dealtArea === 0) return b;
    const dealt = this.dealtArea / (this.r * this.r);
    return { area: dealt + b.area, rows: this.dealtTokens(i) + b.rows, full: b.full && this.dealtFull };
  }

  /** Rank i's queries against every key: its whole share of the work. */
  rowTotal(i: number): BlockArea {
    const b = this.areas.block(this.shard.runs(i), [[0, this.areas.S]]);
    return { area: this.dealtArea / this.r + b.area, rows: this.dealtTokens(i) + b.rows, full: this.areas.isFull() };
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
  get(k: number, compute: () => BlockArea): BlockArea {
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
