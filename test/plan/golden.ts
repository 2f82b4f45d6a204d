// The planner's predictions for a spread of configs (strategies, worlds 2–16,384, masks, modes,
// memory and time) and for `weft bench cp` rows, unrounded: golden.test.ts holds the planner to
// test/plan/golden.json. Regenerate (only when a change of figures is intended and explained):
//   WEFT_GOLDEN_WRITE=1 node --test dist/test/plan/golden.test.js
import { parseMask } from '../../src/mask/spec.js';
import { parseConfig } from '../../src/plan/config.js';
import { describeLayout } from '../../src/plan/layout.js';
import { predictRun, type RunLayout, type RunShape } from '../../src/plan/predict-run.js';
import { maxSeqLen, plan } from '../../src/plan/search.js';

const node8 = { nodes: 1, gpusPerNode: 8, gpu: 'h200' };
const two = { nodes: 2, gpusPerNode: 8, gpu: 'h200', interNode: { GBps: 25, latencyUs: 10 } };
const attn = (H: number, Hkv: number, D = 128) => ({
  name: `attention H${H}`,
  layers: 1,
  hidden: H * D,
  heads: H,
  kvHeads: Hkv,
  headDim: D,
  ffnHidden: 4 * H * D,
  vocab: 32000,
});

/** name → config body */
export const GOLDEN_CONFIGS: Record<string, Record<string, unknown>> = {
  'training-16-causal': { model: 'llama3-8b', mode: 'training', seqLen: 131072, mask: 'causal', cluster: two },
  'training-16-full-fp32-zero3-recompute': {
    model: 'llama2-7b',
    mode: 'training',
    seqLen: 65536,
    mask: 'full',
    precision: 'fp32',
    zero: 3,
    recompute: 'full',
    cluster: two,
  },
  'training-64-sliding': {
    model: 'llama3-8b',
    mode: 'training',
    seqLen: 262144,
    batchSeqs: 4,
    microBatchSeqs: 2,
    mask: 'sliding:4096,0',
    cluster: { ...two, nodes: 8 },
  },
  'attention-2-causal-weft': {
    model: attn(32, 8),
    mode: 'attention',
    seqLen: 131072,
    mask: 'causal',
    cluster: { ...node8, gpusPerNode: 2 },
  },
  'attention-2-causal-pytorch': {
    model: attn(32, 8),
    mode: 'attention',
    seqLen: 131072,
    mask: 'causal',
    implementation: 'pytorch',
    kernel: 'cudnn',
    cluster: { ...node8, gpusPerNode: 2 },
  },
  'attention-8-doc-causal': {
    model: attn(32, 8),
    mode: 'attention',
    seqLen: 262144,
    mask: 'document-causal',
    documentLength: 16384,
    cluster: node8,
  },
  'attention-8-gqa-irregular': { model: attn(24, 6), mode: 'attention', seqLen: 98304, mask: 'causal', cluster: node8 },
  'attention-8-mqa-shared': { model: attn(8, 1, 64), mode: 'attention', seqLen: 65536, mask: 'full', cluster: node8 },
  'attention-forward-4-prefix': {
    model: attn(32, 8),
    mode: 'attention-forward',
    seqLen: 65536,
    mask: 'prefix:8192',
    cluster: { ...node8, gpusPerNode: 4 },
  },
  'prefill-16-causal': { model: 'llama3-70b', mode: 'prefill', seqLen: 524288, mask: 'causal', cluster: two },
  'attention-16-candidates': {
    model: attn(32, 8),
    mode: 'attention',
    seqLen: 262144,
    mask: 'causal',
    cluster: two,
    candidates: [
      { ring: 16, strategy: 'ring' },
      { ring: 16, strategy: 'tokenring' },
      { ring: 16, strategy: 'allgather' },
      { ring: 16, strategy: 'double-ring', inner: 4 },
      { ulysses: 8, ring: 2 },
      { ulysses: 4, ring: 4, placement: 'context-first' },
      { ring: 16, shard: 'striped' },
      { ring: 16, shard: 'contiguous' },
      { ulysses: 8, dp: 2 },
    ],
  },
  'attention-8-l20-pcie': {
    model: attn(32, 8),
    mode: 'attention',
    seqLen: 65536,
    mask: 'causal',
    cluster: { nodes: 1, gpusPerNode: 8, gpu: 'l20' },
  },
  'training-1024-causal': {
    model: 'llama3-70b',
    mode: 'training',
    seqLen: 1 << 20,
    batchSeqs: 4,
    mask: 'causal',
    cluster: { ...two, nodes: 128 },
  },
  'training-16384-causal': {
    model: 'llama3-70b',
    mode: 'training',
    seqLen: 1 << 20,
    batchSeqs: 16,
    mask: 'causal',
    cluster: { ...two, nodes: 2048 },
  },
};

/** `weft bench cp` rows: shape, layout, GPUs */
export const GOLDEN_RUNS: { name: string; shape: Omit<RunShape, 'mask'> & { mask: string }; layout: RunLayout }[] = [];
for (const [world, S] of [
  [2, 131072],
  [4, 1 << 20],
] as const) {
  for (const mask of ['causal', 'full', 'sliding:8192,0']) {
    const shape = { S, H: 32, Hkv: 8, D: 128, mask, world };
    const layouts: RunLayout[] = [
      'one-gpu',
      'pytorch',
      { strategy: 'ring', ulysses: 1, ring: world, shard: 'zigzag' },
      { strategy: 'ring', ulysses: 1, ring: world, shard: 'contiguous' },
      { strategy: 'tokenring', ulysses: 1, ring: world, shard: 'zigzag' },
      { strategy: 'allgather', ulysses: 1, ring: world, shard: 'zigzag' },
      { strategy: 'ulysses', ulysses: world, ring: 1, shard: 'zigzag' },
    ];
    if (world === 4)
      layouts.push(
        { strategy: 'usp', ulysses: 2, ring: 2, shard: 'zigzag' },
        { strategy: 'double-ring', ulysses: 1, ring: 4, inner: 2, shard: 'zigzag' },
      );
    for (const layout of layouts)
      GOLDEN_RUNS.push({
        name: `${world}x ${S} ${mask} ${typeof layout === 'string' ? layout : JSON.stringify(layout)}`,
        shape,
        layout,
      });
  }
}

export type Snapshot = Record<string, unknown>;

/** Every layout's figures, keyed by its description; maxSeqLen of the best feasible one. */
export async function snapshot(): Promise<Snapshot> {
  const out: Snapshot = {};
  for (const [name, body] of Object.entries(GOLDEN_CONFIGS)) {
    const cfg = parseConfig(body),
      { results } = await plan(cfg);
    const rows: Record<string, unknown> = {};
    // every row of small searches; of large ones the first 40 and every 25th (the file stays small)
    for (const [i, r] of results.entries()) {
      if (i >= 40 && i % 25 !== 0) continue;
      rows[describeLayout(r.layout) + ` ${r.layout.strategy} ${r.layout.shard} ${r.layout.placement}`] = {
        feasible: r.feasible,
        prediction: r.prediction ?? null,
        breakdown: r.timing?.breakdown ?? null,
        memory: r.memory?.parts ?? null,
        balance: r.balance,
      };
    }
    const best = results.find((r) => r.feasible);
    out[name] = {
      order: results.map(
        (r) => describeLayout(r.layout) + ` ${r.layout.strategy} ${r.layout.shard} ${r.layout.placement}`,
      ),
      rows,
      maxSeqLen: best && results.length < 300 ? await maxSeqLen(cfg, best.layout) : null,
    };
  }
  for (const g of GOLDEN_RUNS)
    out[`run ${g.name}`] = await predictRun({ ...g.shape, mask: parseMask(g.shape.mask) }, g.layout, 'NVIDIA H200');
  return out;
}
