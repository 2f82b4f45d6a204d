// Each strategy's traffic per rank and step, against its schedule's formula: a strategy that
// silently fell back to another schedule (or skipped, duplicated or widened a transfer) fails.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Layout, runBatch, type RunResult } from '../../src/run/index.js';
import { ShardMap } from '../../src/shard/shard.js';
import { HeadPlan } from '../../src/strategy/heads.js';
import { Rng } from '../../src/tensor/random.js';
import { makeCase } from './cases.js';
import { PLACEMENTS } from '../../src/mesh/mesh.js';

const E = 8; // f64 bytes; the accumulation type is f64 too

interface Traffic {
  messages: number;
  bytesSent: number;
  bytesReceived: number;
}
function traffic(r: RunResult, rank: number, prefix: string): Traffic {
  const t = { messages: 0, bytesSent: 0, bytesReceived: 0 };
  for (const s of r.stats.steps) {
    if (s.rank !== rank || !s.label.startsWith(prefix)) continue;
    t.messages += s.messages;
    t.bytesSent += s.bytesSent;
    t.bytesReceived += s.bytesReceived;
  }
  return t;
}
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const mod = (a: number, n: number): number => ((a % n) + n) % n;

async function run(
  layout: Layout,
  dims: { S: number; H: number; Hkv: number; D: number },
  mask: 'causal' | 'full' = 'causal',
): Promise<RunResult> {
  const [res] = await runBatch([makeCase(new Rng(11), layout, mask, dims)]);
  return res!;
}

describe('communication accounting', () => {
  it('ring: N − 1 K/V blocks forward; backward turns back from the last block: N − 2 K/V hops, N − 1 dK/dV hops, none home', async () => {
    const N = 5,
      S = 23,
      Hkv = 2,
      D = 3,
      kv = Hkv * D * E;
    const res = await run({ strategy: 'ring', world: N, shard: 'zigzag' }, { S, H: 4, Hkv, D });
    const sh = ShardMap.build('zigzag', S, N);
    const T = (r: number): number => sh.length(mod(r, N));
    for (let r = 0; r < N; r++) {
      const sent = 2 * kv * sum(Array.from({ length: N - 1 }, (_, s) => T(r - s)));
      const recv = 2 * kv * sum(Array.from({ length: N - 1 }, (_, s) => T(r - s - 1)));
      assert.deepEqual(traffic(res, r, 'ring fwd'), { messages: 2 * (N - 1), bytesSent: sent, bytesReceived: recv });
      // backward, step s holds member r + 1 + s's block: K/V go to r − 1 for s ≤ N − 3, and the
      // dK/dV sum of the previous step's block (r + s) follows for s ≥ 1; the last block is r's own
      const kvSent = 2 * kv * (S - T(r) - T(r - 1)),
        kvRecv = 2 * kv * (S - T(r) - T(r + 1));
      const gSent = 2 * kv * (S - T(r)),
        gRecv = 2 * kv * (S - T(r + 1));
      assert.deepEqual(traffic(res, r, 'ring bwd'), {
        messages: 2 * (N - 2) + 2 * (N - 1),
        bytesSent: kvSent + gSent,
        bytesReceived: kvRecv + gRecv,
      });
      assert.equal(res.stats.steps.filter((s) => s.rank === r && s.label.startsWith('ring fwd')).length, N - 1);
    }
  });

  it('ring skips empty blocks: causal on contiguous shards, rank r computes r + 1 blocks', async () => {
    const N = 4;
    const res = await run({ strategy: 'ring', world: N, shard: 'contiguous' }, { S: 17, H: 2, Hkv: 1, D: 2 });
    assert.deepEqual(
      res.stats.perRank.map((p) => p.kernelCalls),
      [0, 1, 2, 3].map((r) => 2 * (r + 1)),
    );
    // the causal work on a contiguous split is badly balanced; zigzag fixes it
    const zz = await run({ strategy: 'ring', world: N, shard: 'zigzag' }, { S: 64, H: 2, Hkv: 1, D: 2 });
    const ct = await run({ strategy: 'ring', world: N, shard: 'contiguous' }, { S: 64, H: 2, Hkv: 1, D: 2 });
    assert.ok(
      ct.stats.balance > 1.5 && zz.stats.balance < 1.05,
      `contiguous ${ct.stats.balance}, zigzag ${zz.stats.balance}`,
    );
  });

  it('allgather: one gather of padded K and V, one reduce-scatter of dK and dV', async () => {
    const N = 3,
      S = 10,
      Hkv = 1,
      D = 4;
    const res = await run({ strategy: 'allgather', world: N, shard: 'contiguous' }, { S, H: 2, Hkv, D });
    const Tmax = 4; // 10 tokens over 3 ranks: 4, 3, 3
    for (let r = 0; r < N; r++) {
      const b = 2 * (N - 1) * Tmax * Hkv * D * E;
      assert.deepEqual(traffic(res, r, 'allgather fwd'), { messages: 2 * (N - 1), bytesSent: b, bytesReceived: b });
      assert.deepEqual(traffic(res, r, 'allgather bwd'), { messages: 2 * (N - 1), bytesSent: b, bytesReceived: b });
    }
  });

  it('ulysses: the all-to-all volume 4·(S/u)·H·D·e·(u−1)/u per rank forward (MHA), plus lse', async () => {
    const u = 4,
      S = 32,
      H = 8,
      D = 2;
    const res = await run({ strategy: 'ulysses', world: u, shard: 'striped' }, { S, H, Hkv: H, D });
    for (let r = 0; r < u; r++) {
      const qkvo = (4 * (S / u) * H * D * E * (u - 1)) / u,
        lse = ((S / u) * H * E * (u - 1)) / u;
      const fwd = traffic(res, r, 'ulysses fwd');
      assert.deepEqual(fwd, { messages: 5 * (u - 1), bytesSent: qkvo + lse, bytesReceived: qkvo + lse });
      // backward: dout in, dq dk dv out — the same four tensors' worth
      const bwd = traffic(res, r, 'ulysses bwd');
      assert.deepEqual(bwd, { messages: 4 * (u - 1), bytesSent: qkvo, bytesReceived: qkvo });
    }
  });

  it('ulysses with u > Hkv: each member receives only the KV head it needs (no expansion to H heads)', async () => {
    const u = 4,
      S = 13,
      H = 8,
      Hkv = 2,
      D = 2;
    const res = await run({ strategy: 'ulysses', world: u, shard: 'zigzag' }, { S, H, Hkv, D });
    const sh = ShardMap.build('zigzag', S, u),
      plan = new HeadPlan(u, H, Hkv);
    for (let r = 0; r < u; r++) {
      const others = [0, 1, 2, 3].filter((j) => j !== r);
      const nR = (c: number): number => plan.kv(c)[1] - plan.kv(c)[0];
      assert.ok(others.every((j) => nR(j) === 1));
      const sent = sum(others.map((j) => sh.length(r) * (H / u + 2 * nR(j)) * D * E));
      const recv = sum(others.map((j) => sh.length(j) * (H / u + 2 * nR(r)) * D * E));
      assert.deepEqual(traffic(res, r, 'ulysses fwd qkv'), {
        messages: 3 * (u - 1),
        bytesSent: sent,
        bytesReceived: recv,
      });
    }
  });

  it('usp: Ulysses all-to-alls inside groups of u, a ring of r − 1 gathered blocks across', async () => {
    const u = 2,
      rr = 3,
      S = 24,
      H = 4,
      Hkv = 2,
      D = 2;
    for (const placement of PLACEMENTS) {
      const res = await run(
        { strategy: 'usp', world: u * rr, ulysses: u, ring: rr, placement, shard: 'contiguous' },
        { S, H, Hkv, D },
      );
      for (let r = 0; r < u * rr; r++) {
        const T = S / (u * rr),
          block = u * T * (Hkv / u) * D * E; // a gathered K block: u shards, Hkv/u heads
        assert.deepEqual(traffic(res, r, 'usp ring fwd'), {
          messages: 2 * (rr - 1),
          bytesSent: 2 * (rr - 1) * block,
          bytesReceived: 2 * (rr - 1) * block,
        });
        assert.equal(traffic(res, r, 'usp ulysses fwd qkv').messages, 3 * (u - 1));
        assert.equal(traffic(res, r, 'usp ulysses fwd out').messages, 2 * (u - 1));
      }
    }
  });

  it('double-ring: O − 1 outer hops and O(I − 1) inner hops — still every other block exactly once', async () => {
    const N = 6,
      I = 3,
      O = 2,
      S = 30,
      Hkv = 1,
      D = 2;
    const res = await run({ strategy: 'double-ring', world: N, inner: I, shard: 'zigzag' }, { S, H: 2, Hkv, D });
    const sh = ShardMap.build('zigzag', S, N);
    for (let r = 0; r < N; r++) {
      const outer = traffic(res, r, 'double-ring outer fwd'),
        inner = traffic(res, r, 'double-ring inner fwd');
      assert.equal(outer.messages, 2 * (O - 1));
      assert.equal(inner.messages, 2 * O * (I - 1));
      assert.equal(outer.bytesReceived + inner.bytesReceived, 2 * (S - sh.length(r)) * Hkv * D * E);
    }
  });

  it('tokenring: Q travels N − 1 hops; partials go home only for non-empty pairs', async () => {
    const N = 4,
      S = 16,
      H = 2,
      D = 2,
      T = S / N;
    const res = await run({ strategy: 'tokenring', world: N, shard: 'contiguous' }, { S, H, Hkv: 1, D });
    for (let r = 0; r < N; r++) {
      // causal, contiguous: rank r's keys are seen by the queries of ranks r..N−1, so it
      // returns partials (out and lse) to the N − 1 − r later ranks
      const partials = N - 1 - r;
      const f = traffic(res, r, 'tokenring fwd');
      assert.equal(f.messages, N - 1 + 2 * partials);
      assert.equal(f.bytesSent, (N - 1) * T * H * D * E + partials * (T * H * D + H * T) * E);
    }
  });
});
