// A caching, stream-ordered device allocator (the scheme PyTorch's CUDA allocator uses, pared
// down). cuMemAlloc/cuMemFree synchronise the device and cost tens of microseconds, so freed
// blocks go back to a pool owned by the stream they were allocated on: work later enqueued on
// that stream runs after every earlier use, so reuse needs no synchronisation. A block also used
// on another stream (the NCCL stream) is held back until an event recorded there at free time
// has completed. On out-of-memory the pool is returned to the driver and the allocation retried.
import { CU_OUT_OF_MEMORY, GpuError } from './errors.js';

/** A completion marker: an event recorded on a stream. */
export interface Marker {
  done(): boolean;
  release(): void;
}

/** What the allocator needs from the driver (a fake in the CPU tests). */
export interface RawMemory {
  alloc(bytes: number): bigint;
  free(ptr: bigint): void;
  mark(stream: bigint): Marker;
  /** Wait for all work on the device (before returning memory to the driver). */
  synchronize(): void;
  /** Free and total device memory, for the out-of-memory message. */
  info?(): { free: number; total: number };
}

export interface Block {
  readonly ptr: bigint;
  readonly size: number;
  /** The stream whose order makes reuse safe. */
  readonly stream: bigint;
  /** Other streams that used the block (recordUse). */
  uses?: Set<bigint>;
  live: boolean;
}

export interface AllocatorStats {
  allocated: number;
  reserved: number;
  peakAllocated: number;
  driverAllocs: number;
  cacheHits: number;
}

const SMALL = 1 << 20;
const SMALL_ROUND = 512;
const LARGE_ROUND = 2 << 20;

export function roundSize(bytes: number): number {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new Error(`allocation of ${bytes} bytes`);
  const b = Math.max(bytes, 1);
  return b < SMALL ? Math.ceil(b / SMALL_ROUND) * SMALL_ROUND : Math.ceil(b / LARGE_ROUND) * LARGE_ROUND;
}

function fmtBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${n} B`;
}

export class CachingAllocator {
  /** Free blocks per stream, sorted by size. */
  private readonly pools = new Map<bigint, Block[]>();
  private pending: { block: Block; markers: Marker[] }[] = [];
  private readonly st: AllocatorStats = { allocated: 0, reserved: 0, peakAllocated: 0, driverAllocs: 0, cacheHits: 0 };

  constructor(private readonly raw: RawMemory) {}

  stats(): AllocatorStats {
    return { ...this.st };
  }

  /** Start a new peak measurement from what is live now. */
  resetPeak(): void {
    this.st.peakAllocated = this.st.allocated;
  }

  alloc(bytes: number, stream: bigint): Block {
    const size = roundSize(bytes);
    this.collect();
    let block = this.take(size, stream);
    if (block) this.st.cacheHits++;
    else block = this.fresh(size, stream);
    block.live = true;
    this.st.allocated += block.size;
    this.st.peakAllocated = Math.max(this.st.peakAllocated, this.st.allocated);
    return block;
  }

  /** Note that `stream` uses the block, so that freeing waits for that stream too. */
  recordUse(block: Block, stream: bigint): void {
    if (stream === block.stream) return;
    (block.uses ??= new Set()).add(stream);
  }

  free(block: Block): void {
    if (!block.live) throw new Error('device memory freed twice');
    block.live = false;
    this.st.allocated -= block.size;
    if (block.uses?.size) {
      const markers = [...block.uses].map((s) => this.raw.mark(s));
      block.uses = undefined;
      this.pending.push({ block, markers });
    } else {
      this.insert(block);
    }
  }

  /** Return every cached block to the driver (waits for the device first). */
  emptyCache(): void {
    this.raw.synchronize();
    for (const p of this.pending) {
      for (const m of p.markers) m.release();
      this.insert(p.block);
    }
    this.pending = [];
    for (const pool of this.pools.values())
      for (const b of pool) {
        this.raw.free(b.ptr);
        this.st.reserved -= b.size;
      }
    this.pools.clear();
  }

  private collect(): void {
    if (this.pending.length === 0) return;
    const still: typeof this.pending = [];
    for (const p of this.pending) {
      if (p.markers.every((m) => m.done())) {
        for (const m of p.markers) m.release();
        this.insert(p.block);
      } else still.push(p);
    }
    this.pending = still;
  }

  private insert(block: Block): void {
    let pool = this.pools.get(block.stream);
    if (!pool) this.pools.set(block.stream, (pool = []));
    let lo = 0,
      hi = pool.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pool[mid]!.size < block.size) lo = mid + 1;
      else hi = mid;
    }
    pool.splice(lo, 0, block);
  }

  /** The smallest cached block that fits, wasting at most a quarter of it (small sizes: exact class). */
  private take(size: number, stream: bigint): Block | undefined {
    const pool = this.pools.get(stream);
    if (!pool?.length) return undefined;
    let lo = 0,
      hi = pool.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pool[mid]!.size < size) lo = mid + 1;
      else hi = mid;
    }
    const b = pool[lo];
    const limit = size < SMALL ? size : size + Math.floor(size / 4);
    if (!b || b.size > limit) return undefined;
    pool.splice(lo, 1);
    return b;
  }

  private fresh(size: number, stream: bigint): Block {
    let ptr: bigint;
    try {
      ptr = this.raw.alloc(size);
    } catch (e) {
      if (!(e instanceof GpuError && e.code === CU_OUT_OF_MEMORY)) throw e;
      this.emptyCache();
      try {
        ptr = this.raw.alloc(size);
      } catch (e2) {
        if (!(e2 instanceof GpuError && e2.code === CU_OUT_OF_MEMORY)) throw e2;
        const info = this.raw.info?.();
        throw new GpuError(
          'cuda',
          'cuMemAlloc_v2',
          e2.code,
          e2.codeName,
          `out of device memory allocating ${fmtBytes(size)} (${fmtBytes(this.st.allocated)} in use by weft` +
            (info ? `, ${fmtBytes(info.free)} free of ${fmtBytes(info.total)}` : '') +
            ')',
        );
      }
    }
    this.st.driverAllocs++;
    this.st.reserved += size;
    return { ptr, size, stream, live: false };
  }
}
