// Predictions for every published measurement in published.ts, with the configs that describe
// each published setup. Shared by the validation tests and by docs/plan.md's table.
import { parseConfig, type PlanConfig } from '../../src/plan/config.js';
import { completeLayout, type Layout } from '../../src/plan/layout.js';
import { buildContext, evaluateLayout, maxSeqLen, type PlanResult } from '../../src/plan/search.js';
import { RING_ATTENTION_MAX, RING_FLASH_ATTN, TORCH_CP_H200, USP_ATTENTION, USP_TRAINING } from './published.js';

export interface Check { source: string; label: string; group: string; published: number; predicted: number; unit: string }

export const relErr = (c: Check): number => (c.predicted - c.published) / c.published;

const A800_NODES = (nodes: number): Record<string, unknown> => ({
  nodes, gpusPerNode: 8, gpu: 'a800',
  // USP §5.2: nodes joined by 1.6 Tbps RDMA = 200 GB/s per node = 25 GB/s per GPU per direction
  ...(nodes > 1 ? { interNode: { GBps: 25, latencyUs: 10 } } : {}),
});

export function uspTrainingConfig(model: string, nodes: number, seqK: number, batch: number): PlanConfig {
  // Megatron-LM's context parallel and yunchang merge partial results with PyTorch operations;
  // the A800 runs FlashAttention-2
  return parseConfig({ model, mode: 'training', seqLen: seqK * 1024, batchSeqs: batch, mask: 'causal', implementation: 'pytorch', kernel: 'fa2', cluster: A800_NODES(nodes) });
}

export function layoutFor(cfg: PlanConfig, c: { tp?: number; ulysses?: number; ring?: number; shard?: Layout['shard']; dp?: number }): Layout {
  return completeLayout({ ...c, placement: 'head-first' }, cfg);
}

function predictOne(cfg: PlanConfig, l: Layout): PlanResult {
  return evaluateLayout(buildContext(cfg), l);
}

/** USP Tables 5–7: predicted vs published TFLOP/s per GPU (causal counts half). */
export function uspTrainingChecks(): Check[] {
  return USP_TRAINING.map((row) => {
    const cfg = uspTrainingConfig(row.model, row.nodes, row.seqK, row.batch);
    const res = predictOne(cfg, layoutFor(cfg, row));
    return {
      source: row.table, group: `${row.table} ${row.seqK}K bs${row.batch}`,
      label: `${row.model} ${row.seqK}K bs${row.batch} tp${row.tp} u${row.ulysses} r${row.ring}`,
      published: row.tflops, predicted: res.prediction!.tflopsPerGpu, unit: 'TFLOP/s/GPU',
    };
  });
}

/**
 * The L20 box of USP Fig. 4: two sockets, two PCIe switches each, two GPUs per switch. The
 * planner's two link classes are the switch (PCIe Gen4 x16, 32 GB/s) and beyond it (the switch's
 * x16 uplink shared by its two GPUs: 16 GB/s each), so a "node" here is a switch pair.
 */
const L20_BOX = { nodes: 4, gpusPerNode: 2, gpu: 'l20', intraNode: { GBps: 32, latencyUs: 10 }, interNode: { GBps: 16, latencyUs: 20 } };
const A100_BOX = { nodes: 1, gpusPerNode: 8, gpu: 'a100-80g' };

export function uspAttentionConfig(gpu: 'l20' | 'a100-80g', seqK: number): PlanConfig {
  return parseConfig({ model: 'llama3-8b', mode: 'attention-forward', seqLen: seqK * 1024, mask: 'causal', implementation: 'pytorch', kernel: 'fa2', cluster: gpu === 'l20' ? L20_BOX : A100_BOX });
}

/** USP Tables 3–4: predicted vs published iterations per second (forward only). */
export function uspAttentionChecks(): Check[] {
  return USP_ATTENTION.map((row) => {
    const cfg = uspAttentionConfig(row.gpu, row.seqK);
    const res = predictOne(cfg, layoutFor(cfg, { ulysses: row.ulysses, ring: 8 / row.ulysses, shard: row.shard }));
    return {
      source: row.table, group: `${row.table} ${row.seqK}K`,
      label: `${row.gpu} ${row.seqK}K u${row.ulysses} r${8 / row.ulysses} ${row.shard}`,
      published: row.itersPerSec, predicted: 1000 / res.prediction!.stepMs, unit: 'iter/s',
    };
  });
}

export function rfaConfig(gpu: 'h800' | 'a100-80g', pass: 'fwd' | 'fwd+bwd', seqLen = 65536, gpus = 8): PlanConfig {
  return parseConfig({
    model: 'llama3-8b', mode: pass === 'fwd' ? 'attention-forward' : 'attention', seqLen, mask: 'causal',
    implementation: 'pytorch', kernel: 'fa2', cluster: { nodes: 1, gpusPerNode: gpus, gpu },
  });
}

/** ring-flash-attention README: predicted vs published iterations per second. */
export function rfaChecks(): Check[] {
  return RING_FLASH_ATTN.map((row) => {
    const cfg = rfaConfig(row.gpu, row.pass);
    const res = predictOne(cfg, layoutFor(cfg, { ring: 8, shard: row.shard }));
    return {
      source: 'ring-flash-attention README', group: `RFA ${row.gpu} ${row.pass}`,
      label: `${row.gpu} ${row.pass} ring 8 ${row.shard}`,
      published: row.itersPerSec, predicted: 1000 / res.prediction!.stepMs, unit: 'iter/s',
    };
  });
}

/** The README's efficiency: ring throughput over (single-GPU flash_attn on 8K) / 8, both predicted. */
export function rfaEfficiency(gpu: 'h800' | 'a100-80g', pass: 'fwd' | 'fwd+bwd', shard: Layout['shard']): number {
  const ringCfg = rfaConfig(gpu, pass);
  const ring = predictOne(ringCfg, layoutFor(ringCfg, { ring: 8, shard }));
  const oneCfg = rfaConfig(gpu, pass, 8192, 1);
  const one = predictOne(oneCfg, layoutFor(oneCfg, {}));
  return (8 * one.prediction!.stepMs) / ring.prediction!.stepMs;
}

export function torchCpConfig(seqK: number): PlanConfig {
  return parseConfig({ model: 'llama2-7b', mode: 'attention', seqLen: seqK * 1024, mask: 'causal', implementation: 'pytorch', kernel: 'cudnn', cluster: { nodes: 1, gpusPerNode: 2, gpu: 'h200' } });
}

/** PyTorch context parallel on 2 × H200 (DESIGN.md): predicted vs measured TFLOP/s per GPU. */
export function torchCpChecks(): Check[] {
  return TORCH_CP_H200.map((row) => {
    const cfg = torchCpConfig(row.seqK);
    const res = predictOne(cfg, layoutFor(cfg, { ring: 2, shard: 'zigzag' }));
    return {
      source: 'DESIGN.md (2×H200)', group: `PyTorch CP H200 ${row.seqK}K`, label: `h200 ${row.seqK}K ring 2 zigzag (cuDNN)`,
      published: row.tflopsPerGpu, predicted: res.prediction!.tflopsPerGpu, unit: 'TFLOP/s/GPU',
    };
  });
}

/** The Ring Attention paper's models (LLaMA architecture: OpenLLaMA-3B, LLaMA-7B, LLaMA-13B shapes). */
const RA_MODELS = {
  '3B': { name: 'open-llama-3b', layers: 26, hidden: 3200, heads: 32, kvHeads: 32, headDim: 100, ffnHidden: 8640, vocab: 32000 },
  '7B': 'llama2-7b',
  '13B': 'llama2-13b',
} as const;

export function ringAttentionConfig(model: '3B' | '7B' | '13B', gpus: number): PlanConfig {
  return parseConfig({
    model: RA_MODELS[model], mode: 'training', seqLen: 4096, batchSeqs: gpus, mask: 'causal', precision: 'fp32', recompute: 'full', zero: 3,
    cluster: gpus <= 8 ? { nodes: 1, gpusPerNode: gpus, gpu: 'a100-80g' } : { nodes: gpus / 8, gpusPerNode: 8, gpu: 'a100-80g', interNode: { GBps: 25, latencyUs: 10 } },
  });
}

/** Ring Attention Table 3: the longest power-of-two context (K tokens) predicted to fit. */
export function ringAttentionChecks(): (Check & { baselinePublished: number; baselinePredicted: number })[] {
  const pow2 = (n: number): number => (n <= 0 ? 0 : 2 ** Math.floor(Math.log2(n)));
  return RING_ATTENTION_MAX.map((row) => {
    const cfg = ringAttentionConfig(row.model, row.gpus);
    // baseline: one sequence per GPU (FSDP over all GPUs); Ring Attention: one sequence over all GPUs
    const base = pow2(maxSeqLen(cfg, completeLayout({ dp: row.gpus, ring: 1 }, cfg)) / 1024);
    const ringCfg = { ...cfg, batchSeqs: 1 };
    const ring = pow2(maxSeqLen(ringCfg, completeLayout({ ring: row.gpus, dp: 1 }, ringCfg)) / 1024);
    return {
      source: 'Ring Attention Table 3', group: 'Ring Attention max context', label: `${row.hardware} ${row.model}`,
      published: row.ringK, predicted: ring, unit: 'K tokens', baselinePublished: row.baselineK, baselinePredicted: base,
    };
  });
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}
