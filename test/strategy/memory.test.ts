// What a rank holds: every strategy releases the blocks and buffers it allocates per step once
// they are used and passed on, so a rank holds O(S/N) — the point of context parallelism — and
// not every block it saw (GPU memory returns at garbage collection otherwise, i.e. after the
// iteration). Counted by MeteredDevice: allocations minus releases. The CPU device poisons
// released tensors with NaN, so the exactness tests catch a release that comes too early.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CpuDevice } from '../../src/backends/cpu/device.js';
import { type Layout, runBatch } from '../../src/run/index.js';
import { MeteredDevice } from '../../src/strategy/accounting.js';
import { finish, type Env } from '../../src/strategy/common.js';
import { asF64, hostZeros } from '../../src/tensor/host.js';
import { Rng } from '../../src/tensor/random.js';
import { makeCase } from './cases.js';

const S = 240,
  H = 16,
  D = 2;

/** Each layout's largest per-rank peak, in units of one rank's query-sized f64 tensor (S/N · H · D · 8 bytes). */
async function peaks(N: number, layouts: Layout[]): Promise<number[]> {
  const res = await runBatch(layouts.map((l) => makeCase(new Rng(1), l, 'causal', { S, H, Hkv: H, D })));
  return res.map((r) => Math.max(...r.stats.perRank.map((p) => p.peakHeldBytes)) / ((S / N) * H * D * 8));
}

const layouts = (N: number): Layout[] => [
  { strategy: 'ring', world: N, shard: 'zigzag' },
  { strategy: 'tokenring', world: N, shard: 'zigzag' },
  { strategy: 'ulysses', world: N, shard: 'zigzag' },
  { strategy: 'usp', world: N, ulysses: 2, ring: N / 2, placement: 'head-first', shard: 'zigzag' },
  { strategy: 'double-ring', world: N, inner: 2, shard: 'zigzag' },
];

describe('memory a rank holds', () => {
  it('ring, TokenRing, Ulysses, USP and double ring hold the same multiple of S/N on 8 and 16 ranks (at most 18 query-sized tensors)', async () => {
    const [p8, p16] = [await peaks(8, layouts(8)), await peaks(16, layouts(16))];
    layouts(8).forEach((l, i) => {
      assert.ok(Math.abs(p8[i]! - p16[i]!) < 1e-9, `${l.strategy}: ${p8[i]} units on 8 ranks, ${p16[i]} on 16`);
      assert.ok(p8[i]! <= 18, `${l.strategy}: ${p8[i]} units`);
    });
  });

  it('all-gather holds the whole K/V (and its gradients) by design: its multiple of S/N grows with N', async () => {
    const [a4] = await peaks(4, [{ strategy: 'allgather', world: 4, shard: 'zigzag' }]);
    const [a8] = await peaks(8, [{ strategy: 'allgather', world: 8, shard: 'zigzag' }]);
    assert.ok(a8! > 1.5 * a4!, `${a4} → ${a8}`);
  });

  it('finish releases the accumulation-type output once cast (the backward reads the cast), the gradients as it casts them, and runs the backward once', async () => {
    const device = new MeteredDevice(new CpuDevice());
    const env = { device } as unknown as Env;
    const f32 = (x: number) => {
      const t = device.full('f32', [3, 2, 4], x);
      return t;
    };
    const out32 = f32(1.5),
      state = { out: out32, lse: device.zeros('f32', [2, 3]) };
    const grads = { dq: f32(2), dk: f32(3), dv: f32(4) };
    const q = 3 * 2 * 4;
    const start = device.held;
    let seen: unknown;
    const res = finish(env, 'bf16', {
      state,
      backward: async () => {
        seen = state.out;
        return grads;
      },
    });
    assert.equal(res.out.dtype, 'bf16');
    // the f32 output went at the cast: the partial's state now holds the returned bf16 output
    assert.equal(device.held - start, -q * 4 + q * 2);
    assert.ok(Number.isNaN(asF64(out32 as never)[0]!) && state.out === res.out);
    const before = device.held;
    const g = await res.backward(hostZeros('bf16', [3, 2, 4]));
    assert.equal(seen, res.out, 'the backward sees the cast output');
    assert.deepEqual(
      [g.dq, g.dk, g.dv].map((t) => [t.dtype, asF64(t as never)[0]]),
      [
        ['bf16', 2],
        ['bf16', 3],
        ['bf16', 4],
      ],
    );
    // three f32 gradients released, three bf16 casts made (half their size)
    assert.equal(device.held - before, -3 * q * 4 + 3 * q * 2);
    for (const t of [grads.dq, grads.dk, grads.dv])
      assert.ok(Number.isNaN(asF64(t as never)[0]!), 'released tensors are poisoned');
    assert.ok(!Number.isNaN(asF64(state.lse as never)[0]!), 'lse is part of the result and stays');
    await assert.rejects(res.backward(hostZeros('bf16', [3, 2, 4])), /backward called twice/);
  });
});
