// The ring backward's two orders as the planner and the simulator describe them (Implementation
// `ringBackward`): 'home-hop' (ring-flash-attention: K/V rotate the forward way, the f32 dK/dV
// sums follow and a last hop brings them home) and 'turn-back' (weft, src/strategy/ring-pass.ts:
// K/V rotate back from the block the forward ended with, step s holds position i+1+s's block,
// N−2 K/V hops, N−1 sum hops under the next step's kernel, none home; a double ring keeps its
// outer pass's first block and its inner passes fetch theirs). weft's order is read from its code
// run dry (counts.ts); these tests hold the walks read there to the order above.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IMPLEMENTATIONS } from '../../src/plan/calibration/types.js';
import { parseConfig, type CandidateSpec } from '../../src/plan/config.js';
import { emptyBreakdown, phasesMs } from '../../src/plan/cost.js';
import { completeLayout } from '../../src/plan/layout.js';
import { p2pMs } from '../../src/plan/links.js';
import { layerSchedule, type RingPhase, ringCompute, RingGrid } from '../../src/plan/schedule.js';
import { buildContext, evaluate, prepare } from '../../src/plan/search.js';
import { simulate } from '../../src/sim/simulate.js';

const node8 = { nodes: 1, gpusPerNode: 8, gpu: 'h200' };
const slow = (nodes: number, gpusPerNode = 1) => ({
  nodes,
  gpusPerNode,
  gpu: 'h200',
  interNode: { GBps: 5, latencyUs: 10 },
});

async function setup(config: Record<string, unknown>, cand: CandidateSpec) {
  const cfg = parseConfig({ model: 'llama3-8b', mode: 'attention', mask: 'causal', ...config });
  const ctx = buildContext(cfg),
    l = completeLayout(cand, cfg);
  await prepare(ctx, [l]);
  const bwd = layerSchedule(ctx, l).bwd;
  const ring = bwd.find((p): p is RingPhase => p.kind === 'ring')!;
  return { cfg, ctx, l, bwd, ring };
}

test('which implementations turn the ring backward back: weft does, PyTorch does not', async () => {
  assert.equal(IMPLEMENTATIONS.weft!.ringBackward, 'turn-back');
  assert.equal(IMPLEMENTATIONS.pytorch!.ringBackward, 'home-hop');
  for (const [impl, turned] of [
    ['weft', true],
    ['pytorch', false],
  ] as const) {
    const { ctx, l, ring } = await setup({ seqLen: 65536, cluster: node8, implementation: impl }, { ring: 8 });
    assert.equal(ring.turned, turned, impl);
    // the forward never turns
    assert.equal(layerSchedule(ctx, l).fwd.find((p): p is RingPhase => p.kind === 'ring')!.turned, false);
  }
});

test("the turned order: step s holds position i+1+s's block (nested: outer g+1+o, inner p+1+t) — the forward's step r−1−s, its blocks reversed", async () => {
  for (const [config, cand] of [
    [
      { seqLen: 65536, cluster: node8 },
      { ring: 8, shard: 'zigzag' },
    ],
    [
      { seqLen: 65536, cluster: node8, mask: 'sliding:4095,0' },
      { ring: 6, shard: 'contiguous' },
    ],
    [
      {
        seqLen: 131072,
        cluster: { ...node8, nodes: 2, interNode: { GBps: 25, latencyUs: 10 } },
        mask: 'document-causal',
        documentLength: 16384,
      },
      { ring: 16, strategy: 'double-ring', inner: 4, shard: 'doc-zigzag' },
    ],
  ] as [Record<string, unknown>, CandidateSpec][]) {
    const { ring: p } = await setup(config, cand);
    const g = p.units.grid,
      r = g.r,
      inner = g.inner,
      outer = r / inner;
    assert.ok(g.walks.back);
    for (let s = 0; s < r; s++) {
      for (let i = 0; i < r; i++) {
        const expect =
          inner === r
            ? (i + 1 + s) % r
            : ((Math.floor(i / inner) + 1 + Math.floor(s / inner)) % outer) * inner +
              (((i % inner) + 1 + (s % inner)) % inner);
        assert.equal(g.owners(s, i)[1], expect);
        assert.equal(g.owners(s, i)[0], i);
      }
    }
    // the last step of every pass is the position's own block (of the pass); the first is the next one's
    for (let i = 0; i < r; i++) assert.equal(g.owners(r - 1, i)[1], i);
    // blocks mirrored from the forward grid equal blocks computed directly
    const direct = new RingGrid(g.work, r, inner, g.walks);
    assert.deepEqual([...direct.area], [...g.area]);
    assert.deepEqual([...direct.rows], [...g.rows]);
    assert.deepEqual([...direct.full], [...g.full]);
  }
  // a plain ring above STEP_LIMIT is priced on a sample of its steps: turned, the last two (which
  // move no K/V) are priced exactly, as the first
  const small = await setup({ seqLen: 1 << 20, cluster: node8 }, { ring: 8 });
  const work = small.ctx.ringWork('zigzag', 4096);
  const sampled = new RingGrid(work, 4096, 4096, small.ring.units.grid.walks);
  assert.deepEqual([sampled.steps[0], ...sampled.steps.slice(-2)], [0, 4094, 4095]);
  assert.deepEqual([sampled.weights[0], ...sampled.weights.slice(-2)], [1, 1, 1]);
  assert.equal(
    sampled.weights.reduce((a, w) => a + w, 0),
    4096,
  );
});

test('transfer-bound rings: the turned backward costs N−2 K/V hops and N−1 sum hops, the old one N−1 and N (the last after the last kernel)', async () => {
  // one GPU per node behind a 5 GB/s link, full mask: every step is alike and transfers dominate
  for (const N of [2, 3, 4, 6]) {
    const ms: Record<string, number> = {};
    for (const impl of ['weft', 'pytorch']) {
      const {
        ctx,
        bwd,
        ring: p,
      } = await setup(
        { seqLen: 4096 * N, mask: 'full', cluster: slow(N), implementation: impl },
        { ring: N, shard: 'contiguous' },
      );
      const kv = p2pMs(ctx.net, p.preBytes, 'inter'),
        acc = p2pMs(ctx.net, p.postBytes, 'inter');
      assert.equal(p.preBytes * 4, p.postBytes * 2); // bf16 K,V out, f32 dK,dV sums
      const C = Array.from({ length: N }, (_, s) => ringCompute(p, s, 0));
      for (const c of C) assert.ok(c < Math.min(kv, acc), `compute ${c} below a hop`);
      const turned = C.reduce((a, c, s) => a + Math.max(c, (s <= N - 3 ? kv : 0) + (s >= 1 ? acc : 0)), 0);
      const home = C.reduce((a, c, s) => a + Math.max(c, (s <= N - 2 ? kv : 0) + (s >= 1 ? acc : 0)), 0) + acc;
      ms[impl] = phasesMs(
        ctx,
        bwd.filter((x) => x.kind === 'ring'),
        emptyBreakdown(),
        1,
      ); // the ring alone (not weft's Device operations after it)
      assert.ok(
        Math.abs(ms[impl]! - (impl === 'weft' ? turned : home)) < 1e-9,
        `${impl} N=${N}: ${ms[impl]} vs ${impl === 'weft' ? turned : home}`,
      );
      // N ≥ 3: all transfer — (N−2)·kv + (N−1)·acc turned, (N−1)·kv + N·acc before
      if (N >= 3)
        assert.ok(
          Math.abs(turned - ((N - 2) * kv + (N - 1) * acc)) < 1e-9 && Math.abs(home - ((N - 1) * kv + N * acc)) < 1e-9,
        );
    }
    assert.ok(ms.weft! < ms.pytorch!);
  }
});

test("the simulator sends what the strategy code sends: per rank N−2 K/V blocks and N−1 sums in a turned backward; a double ring's inner passes fetch their first blocks", async () => {
  const sends = (r: ReturnType<typeof simulate>, rank: number): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const s of r.engine.spans(rank)) if (s.role === 'send') out[s.name] = (out[s.name] ?? 0) + 1;
    return out;
  };
  for (const N of [2, 3, 5]) {
    for (const impl of ['weft', 'pytorch']) {
      const { ctx, l } = await setup({ seqLen: 2048 * N, cluster: node8, implementation: impl }, { ring: N });
      const sim = simulate(ctx, l);
      for (let rank = 0; rank < N; rank++) {
        // forward: N−1 K/V blocks; backward as in test/strategy/accounting.test.ts
        assert.deepEqual(
          sends(sim, rank),
          impl === 'weft'
            ? { 'k,v block': N - 1 + N - 2, 'dk,dv sum': N - 1 }
            : { 'k,v block': 2 * (N - 1), 'dk,dv accumulator': N - 1, 'dk,dv home': 1 },
          `${impl} N=${N} rank ${rank}`,
        );
      }
    }
  }
  // double ring, outer × inner: forward outer·(inner−1) inner hops + outer−1 outer hops; turned
  // backward: per round an inner fetch, inner−2 inner K/V and inner−1 inner sums;
  // outer−2 outer K/V and outer−1 outer sums
  for (const [outer, inner] of [
    [2, 4],
    [3, 4],
    [4, 2],
  ]) {
    const r = outer * inner;
    const { ctx, l } = await setup(
      {
        seqLen: 2048 * r,
        cluster: { nodes: outer, gpusPerNode: inner, gpu: 'h200', interNode: { GBps: 25, latencyUs: 10 } },
      },
      { ring: r, strategy: 'double-ring', inner },
    );
    const sim = simulate(ctx, l);
    const kvFwd = outer * (inner - 1) + outer - 1,
      kvBwd = outer * (inner - 2) + outer - 2;
    for (let rank = 0; rank < r; rank++) {
      const got = sends(sim, rank);
      assert.deepEqual(
        got,
        { 'k,v block': kvFwd + kvBwd, 'k,v first block': outer, 'dk,dv sum': outer * (inner - 1) + outer - 1 },
        `${outer}×${inner} rank ${rank}`,
      );
    }
  }
});

test('the simulator reproduces the turned backward of the model exactly where steps are alike, across nodes too', async () => {
  const cases: [Record<string, unknown>, CandidateSpec][] = [
    [
      { seqLen: 65536, cluster: node8 },
      { ring: 8, shard: 'zigzag' },
    ],
    [
      { seqLen: 16384, mask: 'full', cluster: slow(4) },
      { ring: 4, shard: 'contiguous' },
    ],
    [
      { seqLen: 20480, mask: 'full', cluster: slow(5) },
      { ring: 5, shard: 'contiguous' },
    ],
    [
      { seqLen: 16384, mask: 'full', cluster: slow(2) },
      { ring: 2, shard: 'contiguous' },
    ],
    [
      { mode: 'training', seqLen: 131072, cluster: node8 },
      { ulysses: 4, ring: 2 },
    ],
    // double rings whose inner rings are nodes: inner and outer transfers on different ports
    [
      { seqLen: 32768, mask: 'full', cluster: slow(2, 4) },
      { ring: 8, strategy: 'double-ring', inner: 4, shard: 'contiguous' },
    ],
    [
      { seqLen: 98304, cluster: { nodes: 3, gpusPerNode: 4, gpu: 'h200', interNode: { GBps: 25, latencyUs: 10 } } },
      { ring: 12, strategy: 'double-ring', inner: 4 },
    ],
    [
      { seqLen: 65536, cluster: { nodes: 2, gpusPerNode: 8, gpu: 'h200', interNode: { GBps: 25, latencyUs: 10 } } },
      { ring: 16, strategy: 'double-ring', inner: 8 },
    ],
  ];
  for (const [config, cand] of cases) {
    const { ctx, l, ring } = await setup(config, cand);
    assert.ok(ring.turned && ring.fetchFirst === (l.strategy === 'double-ring'));
    const sim = simulate(ctx, l);
    assert.ok(
      Math.abs(sim.stepMs / sim.analyticStepMs - 1) < 1e-9,
      `${JSON.stringify(cand)}: simulated ${sim.stepMs} vs analytical ${sim.analyticStepMs}`,
    );
  }
});

test("training keeps each layer's forward state until its backward, as weft's code holds it: counted by hand here, for L − 1 layers", async () => {
  const base = {
    model: 'llama3-8b',
    mode: 'training',
    seqLen: 131072,
    mask: 'causal',
    cluster: { nodes: 2, gpusPerNode: 8, gpu: 'h200', interNode: { GBps: 25, latencyUs: 10 } },
  };
  const kept = async (extra: Record<string, unknown>, cand: CandidateSpec): Promise<number | undefined> => {
    const cfg = parseConfig({ ...base, ...extra });
    return (await evaluate(buildContext(cfg), completeLayout(cand, cfg))).memory!.parts.kept;
  };
  // llama3-8b: 32 heads, 8 KV heads of 128, bf16; 8192 tokens a GPU; the last layer's state is in its peak
  const MiB = 1024 ** 2,
    layers = 31;
  const lse = 32 * 8192 * 4; // the local lse (f32); the local output is an activation
  const close = (got: number | undefined, mib: number): boolean =>
    got !== undefined && Math.abs(got * 1024 ** 3 - layers * mib * MiB) < 1e-3;
  // ring of 16, turned back: the last K,V block (8192 tokens × 8 KV heads × K,V) and the lse
  assert.ok(close(await kept({}, { ring: 16 }), (8192 * 8 * 128 * 2 * 2 + lse) / MiB));
  assert.equal(await kept({}, { ring: 16, strategy: 'double-ring', inner: 8 }), await kept({}, { ring: 16 }));
  // Ulysses 16: the head-sharded q and out (131072 tokens × 2 heads), K and V (1 KV head), their
  // lse, beside the local lse: 64 + 64 + 32 + 32 + 1 + 1 MiB
  assert.ok(close(await kept({}, { ulysses: 16 }), 194));
  // USP 8 × 2: q and out of 65536 tokens × 4 heads, K and V of 1 KV head, the lse, the ring's
  // last K,V block, the local lse: 64 + 64 + 16 + 16 + 1 + 32 + 1 MiB
  assert.ok(close(await kept({}, { ulysses: 8, ring: 2 }), 194));
  // all-gather over 16: the gathered K,V (131072 tokens × 8 KV heads), the lse
  assert.ok(close(await kept({}, { ring: 16, strategy: 'allgather' }), 512 + 1));
  assert.equal(await kept({ recompute: 'full' }, { ring: 16 }), 0);
  assert.equal(await kept({ implementation: 'pytorch', kernel: 'cudnn' }, { ring: 16 }), undefined);
});
