// The planner's training memory of weft's strategy code is the dry run's (counts.ts): each layer
// keeps what its forward returns holding, beyond its output, until its backward; the layer running
// holds its peak. Here it is held to what real CPU ranks hold running the same code for a model of
// L layers as training does (every forward, then the backwards in reverse): the bytes of device
// tensors alive (reachable after a collection and not released) at the peak, plus the L outputs
// the planner counts as activations, must equal the planner's kept + buffers, exactly (f32, so the
// planner's fp32 precision).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runRanks } from '../../src/backends/cpu/comm/launch.js';
import { parseConfig } from '../../src/plan/config.js';
import { completeLayout } from '../../src/plan/layout.js';
import { buildContext, evaluate } from '../../src/plan/search.js';
import { type Layout } from '../../src/run/index.js';
import { resolveLayout } from '../../src/run/layout.js';
import type { LivePeaks, LiveTask } from './live-memory.js';

const N = 4,
  L = 3,
  shape = { S: 16 * N, H: 8, Hkv: 4, D: 4 };
const GiB = 1024 ** 3;

const layouts: Layout[] = [
  { strategy: 'ring', world: N, shard: 'zigzag' },
  { strategy: 'tokenring', world: N, shard: 'zigzag' },
  { strategy: 'ulysses', world: N, shard: 'zigzag' },
  { strategy: 'allgather', world: N, shard: 'zigzag' },
  { strategy: 'usp', world: N, ulysses: 2, ring: 2, placement: 'head-first', shard: 'zigzag' },
  { strategy: 'double-ring', world: N, inner: 2, shard: 'zigzag' },
];

test("the planner's training memory of weft's code equals what CPU ranks running it hold at their peak, layers and all", async () => {
  const tasks: LiveTask[] = layouts.map((l) => ({
    layout: resolveLayout(l, shape),
    ...shape,
    dtype: 'f32',
    mask: { kind: 'full' },
    layers: L,
  }));
  const peaks = await runRanks<LivePeaks[]>(
    N,
    { module: new URL('./live-memory.js', import.meta.url), fn: 'liveRank' },
    () => tasks,
  );
  const cfg = parseConfig({
    model: {
      layers: L,
      hidden: shape.H * shape.D,
      heads: shape.H,
      kvHeads: shape.Hkv,
      headDim: shape.D,
      ffnHidden: 64,
      vocab: 64,
    },
    mode: 'training',
    seqLen: shape.S,
    mask: 'full',
    precision: 'fp32',
    cluster: { nodes: 1, gpusPerNode: N, gpu: 'h200' },
  });
  const ctx = buildContext(cfg);
  for (const [i, l] of layouts.entries()) {
    const u = l.strategy === 'ulysses' ? N : (l.ulysses ?? 1);
    const p = completeLayout(
      { strategy: l.strategy, ulysses: u, ring: N / u, inner: l.inner, placement: l.placement, shard: 'zigzag' },
      cfg,
    );
    const parts = (await evaluate(ctx, p)).memory!.parts;
    const outputs = L * (shape.S / N) * shape.H * shape.D * 4;
    const planned = Math.round(((parts.kept ?? 0) + parts.buffers!) * GiB) + outputs;
    const real = Math.max(...peaks.map((r) => r[i]!.live));
    // what a forward keeps, as the dry run counts it (allocations minus releases), is all alive
    for (const [r, x] of peaks.entries())
      assert.equal(x[i]!.liveKept, x[i]!.meteredKept, `${l.strategy} rank ${r}: kept`);
    assert.equal(planned, real, `${l.strategy}: planned ${planned} bytes, CPU ranks hold ${real}`);
  }
});
