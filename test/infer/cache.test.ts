// The sharded KV cache's bookkeeping: balanced placement, capacity reserved up front, a step that
// does not fit refused before any write with the cache unchanged, masks that a cache cannot hold.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CpuDevice } from '../../src/backends/cpu/device.js';
import { UserError } from '../../src/errors.js';
import { CpuKernel } from '../../src/backends/cpu/kernel.js';
import type { Comm } from '../../src/comm/comm.js';
import { CacheMap, decode, KvCache, prefillPassKv, runInference } from '../../src/infer/index.js';
import { runs } from '../../src/infer/cache.js';
import type { Box } from '../../src/device/device.js';
import { referenceAttention } from '../../src/kernel/reference.js';
import { MaskGrid } from '../../src/mask/grid.js';
import { NO_TRACE } from '../../src/strategy/types.js';
import { hostZeros, relError } from '../../src/tensor/host.js';
import { asF64 } from '../../src/tensor/host.js';
import { randn, Rng } from '../../src/tensor/random.js';

/** Everything observable about a map, to compare before and after a refused step. */
function snapshot(m: CacheMap): string {
  return JSON.stringify({
    slots: Array.from({ length: m.world }, (_, r) => Array.from(m.positions(r))),
    used: Array.from({ length: m.world }, (_, r) => m.usedRows(r)),
    requests: m.requests.map((q) => ({ ...q })),
    free: m.free,
  });
}

describe('KV cache map', () => {
  it('keeps every request balanced across ranks (within one row) through prefills and decode steps', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 3, maxLength: 3 }), {
          minLength: 1,
          maxLength: 8,
        }),
        (world, steps) => {
          const total = steps.reduce((a, s) => a + s.reduce((x, y) => x + y, 0), 0);
          const m = new CacheMap(world, Math.max(1, total));
          const limits = [0, 1, 2].map((b) =>
            Math.max(
              1,
              steps.reduce((a, s) => a + s[b]!, 0),
            ),
          );
          limits.forEach((l) => m.open(l, { kind: 'causal' }));
          for (const counts of steps) {
            const p = m.place(counts);
            m.commit(p);
            for (let b = 0; b < 3; b++) {
              const r = m.requests[b]!;
              const held = Array.from(
                { length: world },
                (_, j) => Array.from(m.positions(j)).filter((x) => x >= r.base && x < r.base + r.limit).length,
              );
              if (Math.max(...held) - Math.min(...held) > 1) return false;
              if (held.reduce((a, x) => a + x, 0) !== r.length) return false;
            }
          }
          // every position held exactly once
          const all = Array.from({ length: world }, (_, j) => Array.from(m.positions(j)).filter((x) => x >= 0)).flat();
          return new Set(all).size === all.length && all.length === total;
        },
      ),
      { numRuns: 60, seed: 4 },
    );
  });

  it('a step that does not fit is a UserError before any write, and the cache is unchanged', () => {
    const m = new CacheMap(3, 4);
    m.open(20, { kind: 'causal' });
    m.open(5, { kind: 'sliding', left: 2, right: 0 });
    const dev = new CpuDevice();
    const cache = new KvCache(dev, m, 1, 2, 2, 3, 'f64');
    const rng = new Rng(1);
    const p = m.place([7, 2]);
    m.commit(p);
    const k = randn(rng, 'f64', [9, 2, 3]),
      v = randn(rng, 'f64', [9, 2, 3]);
    cache.write(0, p, k, v);
    cache.write(1, p, v, k);
    const before = snapshot(m),
      data = cache.k.concat(cache.v).map((t) => Array.from(asF64(t as never)));
    assert.throws(
      () => m.place([4, 0]),
      (e: Error) =>
        e instanceof UserError &&
        /KV cache full: the step needs 4 rows, 3 of 12 are free \(3 ranks × 4 rows reserved up front\); nothing was written/.test(
          e.message,
        ),
    );
    assert.throws(
      () => m.place([0, 4]),
      (e: Error) =>
        e instanceof UserError && /request 1: 2 cached \+ 4 new tokens exceed its limit of 5/.test(e.message),
    );
    assert.equal(snapshot(m), before);
    assert.deepEqual(
      cache.k.concat(cache.v).map((t) => Array.from(asF64(t as never))),
      data,
    );
    // the rows that do fit still go in, and freeing a request makes room again
    m.commit(m.place([3, 0]));
    assert.equal(m.free, 0);
    m.close(1);
    assert.equal(m.free, 2);
    m.commit(m.place([0, 2]));
    assert.equal(m.free, 0);
  });

  it('writes new rows in one copy per run of consecutive rows and slots (a GPU pays per copy)', () => {
    assert.deepEqual(runs(Int32Array.of(0, 1, 2, 5, 6, 9), Int32Array.of(10, 11, 12, 13, 14, 20)), [
      [0, 10, 3],
      [5, 13, 2],
      [9, 20, 1],
    ]);
    assert.deepEqual(runs(new Int32Array(0), new Int32Array(0)), []);
    const boxes: Box[] = [];
    const device = new CpuDevice(true);
    const copyBox = device.copyBox.bind(device);
    device.copyBox = (src, dst, box) => {
      boxes.push(box);
      copyBox(src, dst, box);
    };
    const rng = new Rng(3);
    for (const world of [1, 3]) {
      const m = new CacheMap(world, 60);
      m.open(60, { kind: 'causal' });
      m.commit(m.place([20]));
      const p = m.place([30]);
      m.commit(p);
      const cache = new KvCache(device, m, 0, 1, 2, 4, 'f64');
      const k = randn(rng, 'f64', [30, 2, 4]),
        v = randn(rng, 'f64', [30, 2, 4]);
      boxes.length = 0;
      cache.write(0, p, k, v);
      // one rank: the 30 new rows lie in order after the cached ones, one copy each for K and V;
      // three ranks: rank 0 holds every third new row, and its slots follow one another
      assert.equal(boxes.length, world === 1 ? 2 : 2 * p.byRank[0]!.length);
      const kc = asF64(cache.k[0] as never);
      p.byRank[0]!.forEach((t) => {
        const s = p.slot[t]!;
        assert.deepEqual(Array.from(kc.subarray(s * 8, s * 8 + 8)), Array.from(asF64(k).subarray(t * 8, t * 8 + 8)));
      });
    }
  });

  it('refuses masks under which a token sees later ones', () => {
    const m = new CacheMap(2, 8);
    for (const mask of [
      { kind: 'full' } as const,
      { kind: 'sliding', left: 2, right: 1 } as const,
      { kind: 'prefix', prefix: 3 } as const,
    ]) {
      assert.throws(
        () => m.open(8, mask),
        (e: Error) =>
          e instanceof UserError && /a KV cache needs a mask where no token sees a later one/.test(e.message),
      );
    }
    assert.equal(m.requests.length, 0);
  });

  it('a run whose script overflows the reserved capacity fails on the host, before the ranks start', async () => {
    const rng = new Rng(2);
    const req = {
      mask: { kind: 'causal' } as const,
      q: randn(rng, 'f64', [10, 1, 2]),
      k: randn(rng, 'f64', [10, 1, 2]),
      v: randn(rng, 'f64', [10, 1, 2]),
    };
    await assert.rejects(
      runInference({
        world: 2,
        capacity: 4,
        dtype: 'f64',
        scale: 1,
        requests: [req],
        steps: [
          { kind: 'prefill', pass: 'kv', counts: [7] },
          { kind: 'decode', counts: [2] },
        ],
      }),
      (e: Error) => e instanceof UserError && /KV cache full: the step needs 2 rows, 1 of 8 are free/.test(e.message),
    );
  });

  it('layers are independent: each attends its own K/V over the same placement', async () => {
    const m = new CacheMap(1, 16);
    m.open(12, { kind: 'causal' });
    const dev = new CpuDevice(),
      rng = new Rng(5);
    const cache = new KvCache(dev, m, 0, 2, 1, 4, 'f64');
    const env = { kernel: new CpuKernel(), device: dev, mask: m.grid(), scale: 0.5, trace: NO_TRACE };
    const one = { rank: 0, size: 1 } as Comm; // world 1: no exchange is issued
    const q = [0, 1].map(() => randn(rng, 'f64', [12, 2, 4])),
      k = [0, 1].map(() => randn(rng, 'f64', [12, 1, 4])),
      v = [0, 1].map(() => randn(rng, 'f64', [12, 1, 4]));
    const rows = (t: (typeof q)[0], a: number, b: number): typeof t => ({
      ...t,
      shape: [b - a, ...t.shape.slice(1)],
      data: t.data.slice(a * 4 * t.shape[1]!, b * 4 * t.shape[1]!),
    });
    const p1 = m.place([10]);
    m.commit(p1);
    const p2 = m.place([2]);
    m.commit(p2);
    for (const l of [0, 1]) {
      const ref = referenceAttention(q[l]!, k[l]!, v[l]!, MaskGrid.build({ kind: 'causal' }, 12), 0.5);
      cache.write(l, p1, rows(k[l]!, 0, 10), rows(v[l]!, 0, 10));
      const pre = await prefillPassKv(env, one, cache, l, rows(q[l]!, 0, 10), p1);
      cache.write(l, p2, rows(k[l]!, 10, 12), rows(v[l]!, 10, 12));
      const dec = await decode(env, one, cache, l, rows(q[l]!, 10, 12), p2.pos);
      const out = hostZeros('f64', [12, 2, 4]);
      out.data.set(asF64(pre.out as never), 0);
      out.data.set(asF64(dec.out as never), 10 * 8);
      assert.ok(relError(out, ref.out) < 1e-14, `layer ${l}`);
    }
  });
});
