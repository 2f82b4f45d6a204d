// The sharded KV cache. Every rank holds part of each request's K/V, one row per token, with the
// token's global position beside it — exactly a shard, so MaskViews, the kernels and the merge
// apply unchanged. Two halves:
//   CacheMap  — the metadata, replicated on every rank and on the host: which request owns which
//               range of global positions, which rank and slot holds each token. Deterministic,
//               so every rank computes the same placement without talking.
//   KvCache   — one rank's device tensors: per layer K and V of [capacity, Hkv, D], allocated in
//               full when the cache is made (memory is reserved up front, never grown).
// Requests live side by side in one global position space: request b owns positions
// [base_b, base_b + limit_b), where limit_b is the most tokens it may ever hold. One mask grid
// covers the whole batch (each request's mask, shifted to its base), so one kernel call attends a
// whole batch of requests of different lengths: pairs across requests are masked out.
import type { Device } from '../device/device.js';
import { UserError } from '../errors.js';
import { MaskGrid } from '../mask/grid.js';
import { lower, maskName, type MaskSpec, type Slice } from '../mask/spec.js';
import { editPositions } from '../mask/view.js';
import type { DType } from '../tensor/dtype.js';
import { bytesPerElement } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/host.js';

export interface RequestInfo {
  /** first global position of the request */
  readonly base: number;
  /** the most tokens the request may hold (its share of the position space) */
  readonly limit: number;
  /** the request's mask over its own tokens 0 … limit−1 */
  readonly mask: MaskSpec;
  /** tokens cached so far */
  length: number;
}

/** Where one step's new tokens go: in request order, then token order. */
export interface TokenPlacement {
  /** new tokens per request */
  readonly counts: readonly number[];
  /** global position, rank and slot of every new token (step order) */
  readonly pos: Int32Array;
  readonly rank: Int32Array;
  readonly slot: Int32Array;
  /** per rank: the step-order indices of the new tokens it holds */
  readonly byRank: readonly Int32Array[];
  /** per rank: their global positions (the rank's query positions in a prefill) */
  readonly posByRank: readonly Int32Array[];
}

/**
 * A mask fit for a cache: no token sees a later one, so cached rows never need recomputing and a
 * mask lowered over a request's whole limit answers the same for every prefix of it.
 */
function checkCausal(mask: MaskSpec, limit: number): void {
  const g = MaskGrid.build(mask, limit);
  for (let q = 0; q < limit; q++) {
    for (let i = 0; i < g.m; i++) {
      const lo = g.lo[q * g.m + i]!,
        hi = g.hi[q * g.m + i]!;
      if (lo < hi && hi > q + 1)
        throw new UserError(
          `mask '${maskName(mask)}' lets token ${q} see later tokens; a KV cache needs a mask where no token sees a later one (causal, sliding:L,0, document-causal, document-sliding:L,0)`,
        );
    }
  }
}

export class CacheMap {
  readonly requests: RequestInfo[] = [];
  /** per rank: the global position held in each slot, −1 when free (a fresh array at every change) */
  private slots: Int32Array[];
  private used: number[];
  /** per rank and request: rows held */
  private held: number[][];
  private gridCache?: MaskGrid;

  /** `capacity`: rows per rank, the same on every rank, reserved up front. */
  constructor(
    readonly world: number,
    readonly capacity: number,
  ) {
    if (!Number.isInteger(world) || world < 1) throw new UserError(`world size ${world} must be a positive integer`);
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new UserError(`cache capacity ${capacity} rows per rank must be a positive integer`);
    this.slots = Array.from({ length: world }, () => new Int32Array(capacity).fill(-1));
    this.used = new Array<number>(world).fill(0);
    this.held = Array.from({ length: world }, () => []);
  }

  /** Add a request that may hold up to `limit` tokens under `mask`; returns its index. */
  open(limit: number, mask: MaskSpec): number {
    if (!Number.isInteger(limit) || limit < 1)
      throw new UserError(`request limit ${limit} must be a positive number of tokens`);
    checkCausal(mask, limit);
    const base = this.requests.reduce((a, r) => a + r.limit, 0);
    this.requests.push({ base, limit, mask, length: 0 });
    for (const h of this.held) h.push(0);
    this.gridCache = undefined;
    return this.requests.length - 1;
  }

  /** Global positions spanned by all requests. */
  get span(): number {
    return this.requests.reduce((a, r) => a + r.limit, 0);
  }

  /** The mask over the whole batch: each request's, shifted to its base (rebuilt only when a request opens). */
  grid(): MaskGrid {
    if (!this.gridCache) {
      const slices: Slice[] = [];
      for (const r of this.requests) {
        for (const s of lower(r.mask, r.limit))
          slices.push({ ...s, q: [s.q[0] + r.base, s.q[1] + r.base], k: [s.k[0] + r.base, s.k[1] + r.base] });
      }
      this.gridCache = MaskGrid.fromSlices(slices, this.span);
    }
    return this.gridCache;
  }

  /** Slot positions of rank r (an immutable snapshot: kernels memoize on the array). */
  positions(r: number): Int32Array {
    return this.slots[r]!;
  }

  /** Rows rank r holds, and the highest used slot + 1 (the prefix a transfer must carry). */
  usedRows(r: number): number {
    return this.used[r]!;
  }
  extent(r: number): number {
    const s = this.slots[r]!;
    let e = s.length;
    while (e > 0 && s[e - 1]! < 0) e--;
    return e;
  }

  /** Free rows on every rank together. */
  get free(): number {
    return this.world * this.capacity - this.used.reduce((a, b) => a + b, 0);
  }

  /**
   * Where `counts[b]` new tokens of each request go. Each token goes to the rank holding the fewest
   * rows of its request (then the fewest rows in all, then the lowest rank) among ranks with room,
   * into that rank's lowest free slot: requests stay balanced across ranks, a prefill onto an even
   * cache comes out striped (which balances causal work), and decode steps go round the ranks.
   * Checks everything before it returns and changes nothing: a step that does not fit throws a
   * UserError and leaves the cache as it was.
   */
  place(counts: readonly number[]): TokenPlacement {
    if (counts.length !== this.requests.length)
      throw new Error(`place: ${counts.length} counts for ${this.requests.length} requests`);
    const total = counts.reduce((a, b) => a + b, 0);
    counts.forEach((c, b) => {
      const r = this.requests[b]!;
      if (!Number.isInteger(c) || c < 0) throw new UserError(`request ${b}: ${c} new tokens is not a whole number ≥ 0`);
      if (r.length + c > r.limit)
        throw new UserError(`request ${b}: ${r.length} cached + ${c} new tokens exceed its limit of ${r.limit} tokens`);
    });
    if (total > this.free) {
      throw new UserError(
        `KV cache full: the step needs ${total} rows, ${this.free} of ${this.world * this.capacity} are free ` +
          `(${this.world} ranks × ${this.capacity} rows reserved up front); nothing was written`,
      );
    }
    const used = [...this.used],
      held = this.held.map((h) => [...h]);
    const nextFree = this.slots.map((s) => {
      let i = 0;
      while (i < s.length && s[i]! >= 0) i++;
      return i;
    });
    const taken: Set<number>[] = this.slots.map(() => new Set());
    const pos = new Int32Array(total),
      rank = new Int32Array(total),
      slot = new Int32Array(total);
    let t = 0;
    counts.forEach((c, b) => {
      const r = this.requests[b]!;
      for (let i = 0; i < c; i++, t++) {
        let best = -1;
        for (let j = 0; j < this.world; j++) {
          if (used[j]! >= this.capacity) continue;
          if (best < 0 || held[j]![b]! < held[best]![b]! || (held[j]![b] === held[best]![b] && used[j]! < used[best]!))
            best = j;
        }
        const s = this.slots[best]!;
        let f = nextFree[best]!;
        while (s[f]! >= 0 || taken[best]!.has(f)) f++;
        taken[best]!.add(f);
        nextFree[best] = f + 1;
        pos[t] = r.base + r.length + i;
        rank[t] = best;
        slot[t] = f;
        used[best]!++;
        held[best]![b]!++;
      }
    });
    const byRank = Array.from({ length: this.world }, (_, j) =>
      Int32Array.from({ length: total }, (_, i) => i).filter((i) => rank[i] === j),
    );
    return { counts: [...counts], pos, rank, slot, byRank, posByRank: byRank.map((ix) => ix.map((i) => pos[i]!)) };
  }

  /** Record a placement (every rank and the host do it in the same order). */
  commit(p: TokenPlacement): void {
    p.byRank.forEach((ix, j) => {
      if (ix.length === 0) return;
      this.slots[j] = editPositions(
        this.slots[j]!,
        ix.map((i) => p.slot[i]!),
        ix.map((i) => p.pos[i]!),
      );
      this.used[j]! += ix.length;
    });
    p.counts.forEach((c, b) => {
      this.requests[b]!.length += c;
    });
    for (let i = 0; i < p.pos.length; i++) this.held[p.rank[i]!]![this.requestOf(p.pos[i]!)]!++;
  }

  /** Free every row of request b (its position range stays reserved to it, empty). */
  close(b: number): void {
    const r = this.requests[b]!;
    for (let j = 0; j < this.world; j++) {
      const s = this.slots[j]!,
        freed: number[] = [];
      for (let i = 0; i < s.length; i++) if (s[i]! >= r.base && s[i]! < r.base + r.limit) freed.push(i);
      this.slots[j] = editPositions(s, Int32Array.from(freed), new Int32Array(freed.length).fill(-1));
      this.used[j]! -= freed.length;
      this.held[j]![b] = 0;
    }
    r.length = 0;
  }

  requestOf(p: number): number {
    return this.requests.findIndex((r) => p >= r.base && p < r.base + r.limit);
  }
}

/** Bytes one rank reserves: K and V of `capacity` rows, for every layer. */
export function cacheBytes(capacity: number, layers: number, kvHeads: number, headDim: number, dtype: DType): number {
  return 2 * layers * capacity * kvHeads * headDim * bytesPerElement(dtype);
}

/** One rank's cache tensors and the replicated map. */
export class KvCache {
  readonly k: Tensor[];
  readonly v: Tensor[];

  constructor(
    readonly device: Device,
    readonly map: CacheMap,
    readonly rank: number,
    readonly layers: number,
    readonly kvHeads: number,
    readonly headDim: number,
    readonly dtype: DType,
  ) {
    const shape = [map.capacity, kvHeads, headDim];
    this.k = Array.from({ length: layers }, () => device.zeros(dtype, shape));
    this.v = Array.from({ length: layers }, () => device.zeros(dtype, shape));
  }

  /**
   * Write this rank's new rows of one layer: `kNew`/`vNew` hold the step's rows at `rows[i]`
   * (step order, or indices into a rank-local block), going to the slots the placement chose.
   */
  write(layer: number, p: TokenPlacement, kNew: Tensor, vNew: Tensor, local = false): void {
    const mine = p.byRank[this.rank]!;
    const src = local ? Int32Array.from(mine, (_, i) => i) : mine;
    // one copy per run of rows that are consecutive on both sides (a GPU pays per copy)
    for (const [from, to, n] of runs(
      src,
      Int32Array.from(mine, (t) => p.slot[t]!),
    )) {
      const box = { src: [from, 0] as const, dst: [to, 0] as const, size: [n, this.kvHeads] as const };
      this.device.copyBox(kNew, this.k[layer]!, box);
      this.device.copyBox(vNew, this.v[layer]!, box);
    }
  }

  /** The slot positions of this rank (the kernel view's kPos for the whole buffer). */
  get positions(): Int32Array {
    return this.map.positions(this.rank);
  }
}

/** Runs [src, dst, length] of index pairs that advance together by one: copies of many rows in few boxes. */
export function runs(src: Int32Array, dst: Int32Array): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let i = 0; i < src.length;) {
    let n = 1;
    while (i + n < src.length && src[i + n] === src[i]! + n && dst[i + n] === dst[i]! + n) n++;
    out.push([src[i]!, dst[i]!, n]);
    i += n;
  }
  return out;
}
