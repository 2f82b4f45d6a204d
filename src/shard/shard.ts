// How global token positions map to ranks. A ShardMap is plain host metadata (the same on every
// rank, rebuilt from its kind, S, world and document boundaries), so strategies can ask which
// positions any rank holds without communicating, and the planner which intervals. Shards may be
// uneven; every rank holds at least one token when S ≥ world. Local rows are in increasing
// position order.
import { fmtShape, type HostTensor, hostZeros, numel } from '../tensor/host.js';
import { type Interval, runsOf } from '../mask/area.js';
import { evenSplit } from './split.js';

export type ShardKind = 'contiguous' | 'zigzag' | 'striped' | 'doc-zigzag';
export const SHARD_KINDS: readonly ShardKind[] = ['contiguous', 'zigzag', 'striped', 'doc-zigzag'];

export function isShardKind(s: string): s is ShardKind {
  return (SHARD_KINDS as readonly string[]).includes(s);
}

/** Positions [range[0], range[1]) dealt token by token round robin: position range[0] + k goes to rank (cursor + k) mod world. */
interface Dealt {
  range: Interval;
  cursor: number;
}

/**
 * Each rank's positions as the shard kinds make them: whole intervals (contiguous, zigzag chunks,
 * long documents) and ranges dealt token by token (striped; doc-zigzag's short documents). The
 * planner reads those at any size; position arrays are made only for the ranks asked for.
 */
export class ShardMap {
  private readonly pos: (Int32Array | undefined)[];
  private lengths?: Int32Array;

  private constructor(
    readonly kind: ShardKind | 'dispatched',
    readonly S: number,
    readonly world: number,
    private readonly runList: readonly Interval[][],
    private readonly dealtList: readonly Dealt[],
    pos?: readonly Int32Array[],
  ) {
    this.pos = pos ? [...pos] : new Array<Int32Array | undefined>(world);
  }

  /**
   * `cuSeqlens` (document boundaries) only matters for doc-zigzag; without it the whole sequence
   * is one document and doc-zigzag equals zigzag.
   */
  static build(kind: ShardKind, S: number, world: number, cuSeqlens?: readonly number[]): ShardMap {
    if (!Number.isInteger(world) || world < 1) throw new Error(`shard: world size ${world} must be a positive integer`);
    if (!Number.isInteger(S) || S < world) throw new Error(`shard: ${S} tokens cannot give each of ${world} ranks one`);
    const runs: Interval[][] = Array.from({ length: world }, () => []);
    const dealt: Dealt[] = [];
    switch (kind) {
      case 'contiguous': {
        const b = evenSplit(S, world);
        for (let r = 0; r < world; r++) runs[r]!.push([b[r]!, b[r + 1]!]);
        break;
      }
      case 'zigzag':
        zigzag(runs, 0, S, world);
        break;
      case 'striped':
        dealt.push({ range: [0, S], cursor: 0 });
        break;
      case 'doc-zigzag': {
        const cu = cuSeqlens ?? [0, S];
        if (cu[0] !== 0 || cu[cu.length - 1] !== S)
          throw new Error(`shard: document boundaries [${cu.join(',')}] do not cover [0, ${S})`);
        let cursor = 0;
        for (let d = 0; d + 1 < cu.length; d++) {
          const s0 = cu[d]!,
            len = cu[d + 1]! - s0;
          if (len >= 2 * world) {
            zigzag(runs, s0, len, world);
            continue;
          }
          // a document too short for 2N chunks: deal its tokens round robin, continuing where
          // the previous short document stopped, so many short documents still spread evenly
          dealt.push({ range: [s0, s0 + len], cursor });
          cursor = (cursor + len) % world;
        }
        break;
      }
    }
    return new ShardMap(kind, S, world, runs, dealt);
  }

  /** A placement a dispatcher chose (src/varlen): each rank's positions, ascending; together every position once. */
  static fromPositions(S: number, lists: readonly Int32Array[]): ShardMap {
    const seen = new Uint8Array(S);
    for (const l of lists)
      l.forEach((p, i) => {
        if (p < 0 || p >= S || seen[p] || (i > 0 && p <= l[i - 1]!))
          throw new Error(`shard: position ${p} repeated, out of order or outside [0, ${S})`);
        seen[p] = 1;
      });
    if (seen.includes(0)) throw new Error(`shard: the placement leaves position ${seen.indexOf(0)} on no rank`);
    return new ShardMap('dispatched', S, lists.length, lists.map(runsOf), [], lists);
  }

  /** The rank's whole intervals, ascending (not its dealt tokens: dealt()). */
  runs(rank: number): readonly Interval[] {
    this.check(rank);
    return this.runList[rank]!;
  }

  /** The ranges dealt token by token over all ranks, ascending: every rank holds about 1/world of each. */
  dealt(): readonly Interval[] {
    return this.dealtList.map((d) => d.range);
  }

  /** Global positions of the rank's local rows, in local order (ascending). Made on first use, then the same array. */
  positions(rank: number): Int32Array {
    this.check(rank);
    return (this.pos[rank] ??= this.materialise(rank));
  }

  length(rank: number): number {
    this.check(rank);
    return this.allLengths()[rank]!;
  }

  maxLength(): number {
    return Math.max(...this.allLengths());
  }

  private check(rank: number): void {
    if (!Number.isInteger(rank) || rank < 0 || rank >= this.world)
      throw new Error(`shard: rank ${rank} outside a world of ${this.world}`);
  }

  /** Every rank's length: its runs, and its share of each dealt range (one more for the first len mod world from the cursor). */
  private allLengths(): Int32Array {
    if (this.lengths) return this.lengths;
    const W = this.world,
      n = new Int32Array(W),
      extra = new Int32Array(W + 1);
    this.runList.forEach((rs, r) => rs.forEach(([a, b]) => (n[r]! += b - a)));
    let each = 0;
    for (const { range, cursor } of this.dealtList) {
      const len = range[1] - range[0],
        rem = len % W;
      each += Math.floor(len / W);
      // ranks cursor … cursor + rem − 1 (mod W) get one more: a difference array
      const end = cursor + rem;
      extra[cursor]!++;
      if (end <= W) extra[end]!--;
      else {
        extra[W]!--;
        extra[0]!++;
        extra[end - W]!--;
      }
    }
    let run = 0;
    for (let r = 0; r < W; r++) {
      run += extra[r]!;
      n[r]! += each + run;
    }
    return (this.lengths = n);
  }

  /** The rank's runs and dealt tokens merged in ascending order. */
  private materialise(rank: number): Int32Array {
    const out = new Int32Array(this.length(rank)),
      runs = this.runList[rank]!,
      W = this.world;
    let i = 0,
      x = 0;
    const put = (p: number): void => {
      out[i++] = p;
    };
    for (const { range, cursor } of this.dealtList) {
      for (; x < runs.length && runs[x]![0] < range[0]; x++) for (let p = runs[x]![0]; p < runs[x]![1]; p++) put(p);
      for (let p = range[0] + ((((rank - cursor) % W) + W) % W); p < range[1]; p += W) put(p);
    }
    for (; x < runs.length; x++) for (let p = runs[x]![0]; p < runs[x]![1]; p++) put(p);
    return out;
  }

  /**
   * The rank's part of a global tensor: the rows of dimension `axis` (0 for q/k/v [S,H,D],
   * 1 for lse [H,S]) at the rank's positions.
   */
  scatter(t: HostTensor, rank: number, axis: 0 | 1 = 0, shared = false): HostTensor {
    if (t.shape[axis] !== this.S)
      throw new Error(`shard: dimension ${axis} of ${fmtShape(t.shape)} is not the sequence length ${this.S}`);
    const pos = this.positions(rank);
    const shape = [...t.shape];
    shape[axis] = pos.length;
    const out = hostZeros(t.dtype, shape, shared);
    moveRows(t, out, axis, pos, true);
    return out;
  }

  /** The inverse of scatter: one global tensor from every rank's part. */
  gather(parts: readonly HostTensor[], axis: 0 | 1 = 0): HostTensor {
    if (parts.length !== this.world) throw new Error(`shard: ${parts.length} parts for ${this.world} ranks`);
    const shape = [...parts[0]!.shape];
    shape[axis] = this.S;
    const out = hostZeros(parts[0]!.dtype, shape);
    parts.forEach((p, r) => {
      const want = [...shape];
      want[axis] = this.length(r);
      if (p.dtype !== out.dtype || fmtShape(p.shape) !== fmtShape(want))
        throw new Error(`shard: rank ${r} part ${p.dtype}${fmtShape(p.shape)}, expected ${out.dtype}${fmtShape(want)}`);
      moveRows(out, p, axis, this.positions(r), false);
    });
    return out;
  }
}

/** Zigzag over [s0, s0 + len): 2N near-equal chunks, rank r takes chunks r and 2N − 1 − r. */
function zigzag(runs: Interval[][], s0: number, len: number, world: number): void {
  const b = evenSplit(len, 2 * world);
  for (let r = 0; r < world; r++)
    for (const c of [r, 2 * world - 1 - r]) if (b[c]! < b[c + 1]!) runs[r]!.push([s0 + b[c]!, s0 + b[c + 1]!]);
}

/** Copy between a global tensor and a local one along `axis`; `toLocal` picks the direction. */
function moveRows(global: HostTensor, local: HostTensor, axis: 0 | 1, pos: Int32Array, toLocal: boolean): void {
  const outer = axis === 0 ? 1 : global.shape[0]!;
  const inner = numel(global.shape.slice(axis + 1));
  const gRows = global.shape[axis]!,
    lRows = pos.length;
  const g = global.data,
    l = local.data;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < lRows; i++) {
      const go = (o * gRows + pos[i]!) * inner,
        lo = (o * lRows + i) * inner;
      if (toLocal) l.set(g.subarray(go, go + inner) as never, lo);
      else g.set(l.subarray(lo, lo + inner) as never, go);
    }
  }
}
