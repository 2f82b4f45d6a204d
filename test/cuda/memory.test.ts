import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GpuError } from '../../src/backends/cuda/runtime/errors.js';
import { CachingAllocator, type Marker, type RawMemory, roundSize } from '../../src/backends/cuda/runtime/memory.js';

/** A fake device: a bump allocator with a capacity, and markers completed by hand. */
function fakeDevice(capacity = 1 << 30) {
  let next = 0x1000n,
    used = 0;
  const live = new Map<bigint, number>();
  const markers: { done: boolean; released: boolean }[] = [];
  const raw: RawMemory = {
    alloc: (bytes) => {
      if (used + bytes > capacity)
        throw new GpuError('cuda', 'cuMemAlloc_v2', 2, 'CUDA_ERROR_OUT_OF_MEMORY', 'out of memory');
      const p = next;
      next += BigInt(bytes);
      used += bytes;
      live.set(p, bytes);
      return p;
    },
    free: (p) => {
      used -= live.get(p)!;
      live.delete(p);
    },
    mark: (): Marker => {
      const m = { done: false, released: false };
      markers.push(m);
      return {
        done: () => m.done,
        release: () => {
          m.released = true;
        },
      };
    },
    synchronize: () => {
      for (const m of markers) m.done = true;
    },
    info: () => ({ free: capacity - used, total: capacity }),
  };
  return { raw, live, markers, used: () => used };
}

const S1 = 1n,
  S2 = 2n;

test('sizes round to 512 B below 1 MiB and to 2 MiB above', () => {
  assert.equal(roundSize(0), 512);
  assert.equal(roundSize(513), 1024);
  assert.equal(roundSize((1 << 20) + 1), 2 << 20);
  assert.equal(roundSize(5 << 20), 6 << 20);
});

test('a freed block is reused on its own stream without going to the driver', () => {
  const d = fakeDevice();
  const a = new CachingAllocator(d.raw);
  const b1 = a.alloc(1000, S1);
  a.free(b1);
  const b2 = a.alloc(900, S1);
  assert.equal(b2.ptr, b1.ptr);
  assert.deepEqual([a.stats().driverAllocs, a.stats().cacheHits], [1, 1]);
  // another stream does not get it: its work is not ordered after S1's
  a.free(b2);
  const b3 = a.alloc(1000, S2);
  assert.notEqual(b3.ptr, b1.ptr);
  assert.throws(() => {
    a.free(b3);
    a.free(b3);
  }, /freed twice/);
});

test('large blocks are reused only when little is wasted', () => {
  const a = new CachingAllocator(fakeDevice().raw);
  const big = a.alloc(100 << 20, S1);
  a.free(big);
  assert.notEqual(a.alloc(10 << 20, S1).ptr, big.ptr, '100 MiB block not handed out for 10 MiB');
  assert.equal(a.alloc(90 << 20, S1).ptr, big.ptr, 'but for 90 MiB');
});

test('a block used on another stream waits for that stream before reuse', () => {
  const d = fakeDevice();
  const a = new CachingAllocator(d.raw);
  const b = a.alloc(4096, S1);
  a.recordUse(b, S2);
  a.free(b);
  assert.notEqual(a.alloc(4096, S1).ptr, b.ptr, 'held back while S2 may still use it');
  d.markers[0]!.done = true;
  assert.equal(a.alloc(4096, S1).ptr, b.ptr, 'reused once S2 passed the free');
  assert.ok(d.markers[0]!.released);
});

test('out of memory empties the cache and retries, then reports sizes', () => {
  const d = fakeDevice(8 << 20);
  const a = new CachingAllocator(d.raw);
  const x = a.alloc(6 << 20, S1);
  a.free(x); // cached: the driver still holds 6 MiB
  const y = a.alloc(4 << 20, S1); // does not fit beside the cached block: cache emptied, retried
  assert.equal(d.used(), 4 << 20);
  assert.equal(a.stats().allocated, 4 << 20);
  assert.throws(
    () => a.alloc(6 << 20, S1),
    (e: Error) =>
      e instanceof GpuError &&
      /out of device memory allocating 6\.0 MiB \(4\.0 MiB in use by weft, 4\.0 MiB free of 8\.0 MiB\)/.test(e.message),
  );
  a.free(y);
  a.emptyCache();
  assert.equal(d.live.size, 0);
  assert.equal(a.stats().reserved, 0);
});
