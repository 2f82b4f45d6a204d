// How global token positions map to ranks. A ShardMap is plain host metadata (the same on every
// rank, rebuilt from its kind, S, world and document boundaries), so strategies can ask which
// positions any rank holds without communicating. Shards may be uneven; every rank holds at
// least one token when S ≥ world. Local rows are in increasing position order.
import { fmtShape, type HostTensor, hostZeros, numel } from '../tensor/host.js';
import { evenSplit } from './split.js';

export type ShardKind = 'contiguous' | 'zigzag' | 'striped' | 'doc-zigzag';
export const SHARD_KINDS: readonly ShardKind[] = ['contiguous', 'zigzag', 'striped', 'doc-zigzag'];

export function isShardKind(s: string): s is ShardKind {
  return (SHARD_KINDS as readonly string[]).includes(s);
}

export class ShardMap {
  private constructor(
    readonly kind: ShardKind | 'dispatched',
    readonly S: number,
    readonly world: number,
    private readonly pos: readonly Int32Array[],
  ) {}

  /**
   * `cuSeqlens` (document boundaries) only matters for doc-zigzag; without it the whole sequence
   * is one document and doc-zigzag equals zigzag.
   */
  static build(kind: ShardKind, S: number, world: number, cuSeqlens?: readonly number[]): ShardMap {
    if (!Number.isInteger(world) || world < 1) throw new Error(`shard: world size ${world} must be a positive integer`);
    if (!Number.isInteger(S) || S < world) throw new Error(`shard: ${S} tokens cannot give each of ${world} ranks one`);
    const lists: number[][] = Array.from({ length: world }, () => []);
    switch (kind) {
      case 'contiguous': {
        const b = evenSplit(S, world);
        for (let r = 0; r < world; r++) for (let p = b[r]!; p < b[r + 1]!; p++) lists[r]!.push(p);
        break;
      }
      case 'zigzag':
        zigzag(lists, 0, S, world);
        break;
      case 'striped':
        for (let p = 0; p < S; p++) lists[p % world]!.push(p);
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
            zigzag(lists, s0, len, world);
            continue;
          }
          // a document too short for 2N chunks: deal its tokens round robin, continuing where
          // the previous short document stopped, so many short documents still spread evenly
          for (let p = s0; p < s0 + len; p++) {
            lists[cursor]!.push(p);
            cursor = (cursor + 1) % world;
          }
        }
        break;
      }
    }
    return new ShardMap(
      kind,
      S,
      world,
      lists.map((l) => Int32Array.from(l)),
    );
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
    return new ShardMap('dispatched', S, lists.length, lists);
  }

  /** Global positions of the rank's local rows, in local order. */
  positions(rank: number): Int32Array {
    const p = this.pos[rank];
    if (!p) throw new Error(`shard: rank ${rank} outside a world of ${this.world}`);
    return p;
  }

  length(rank: number): number {
    return this.positions(rank).length;
  }

  maxLength(): number {
    return Math.max(...this.pos.map((p) => p.length));
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
function zigzag(lists: number[][], s0: number, len: number, world: number): void {
  const b = evenSplit(len, 2 * world);
  for (let r = 0; r < world; r++) {
    for (const c of [r, 2 * world - 1 - r]) for (let p = b[c]!; p < b[c + 1]!; p++) lists[r]!.push(s0 + p);
  }
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
