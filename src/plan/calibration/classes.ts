// Calibrations for GPU classes measured elsewhere than on this project's machine. Each figure is a
// published single-GPU measurement; everything not measured is inherited from the H200
// calibration as an efficiency (fraction of datasheet peak) and says so.
import { attentionFlops } from '../../kernel/flops.js';
import type { GpuClass } from '../types.js';
import { H200 } from './h200.js';
import type { Calibration } from './types.js';

// zhuzilin/ring-flash-attention README (benchmark/benchmark_kvpacked_func.py: B=1, S=8K per GPU,
// H=32, Hkv=8, D=128, causal, bf16): single-GPU flash_attn rows, counted over the causal area
// 8192²/2 (fwd 5.498e11 FLOPs per iteration).
const RFA = 'zhuzilin/ring-flash-attention README, flash_attn single-GPU row';
const RFA_AREA = (8192 * 8192) / 2;

/**
 * No published Ampere GEMM measurement of the shapes that matter was found, and the H200 ratio
 * (0.80) over-predicted every USP run by ~10%. So the class's GEMM efficiency is calibrated once,
 * on one end-to-end run without sequence parallelism — USP (arXiv 2405.07719) Table 6, LLaMA3-8B,
 * 64K, global batch 2, TP 8 (141.20 TFLOP/s per GPU on A800): the value that reproduces it is
 * 212.2 TFLOP/s = 0.680 of peak. It stands for everything the model does not price in Megatron's
 * non-attention work (kernel launches, small GEMMs, PyTorch overhead). That row is excluded from
 * the validation statistics (test/plan/validation.test.ts re-derives the value).
 */
export const AMPERE_GEMM_REFERENCE = {
  table: 'USP Table 6',
  model: 'llama3-8b',
  nodes: 2,
  seqK: 64,
  batch: 2,
  tp: 8,
  ulysses: 1,
  ring: 1,
  tflops: 141.2,
} as const;

export const AMPERE: Calibration = {
  gpu: 'a100-80g',
  class: 'ampere',
  gemm: {
    tflops: 212.2,
    source:
      'calibrated on USP Table 6 (LLaMA3-8B, 64K, batch 2, TP 8, 2×8 A800: 141.20 TFLOP/s per GPU); 0.680 of peak',
  },
  attention: [
    {
      kernel: 'fa2',
      pass: 'fwd',
      seqLen: 8192,
      mask: 'causal',
      headDim: 128,
      tflops: (373.4 * attentionFlops(RFA_AREA, 32, 128, 'fwd')) / 1e12,
      source: `${RFA}: 8×A100 fwd 373.4 iter/s`,
    },
    {
      kernel: 'fa2',
      pass: 'fwd+bwd',
      seqLen: 8192,
      mask: 'causal',
      headDim: 128,
      tflops: (94.7 * attentionFlops(RFA_AREA, 32, 128, 'fwd+bwd')) / 1e12,
      source: `${RFA}: 8×A100 fwd+bwd 94.7 iter/s`,
    },
  ],
  defaultKernel: 'fa2',
  links: { ...H200.links, source: `assumption: H200-measured link efficiencies (${H200.links.source})` },
  hbmEfficiency: H200.hbmEfficiency,
};

/**
 * Ada (L20): no published single-GPU attention measurement was found. The FlashAttention-2 level
 * is calibrated once on USP (arXiv 2405.07719) Table 3 — 8 × L20, 128K, ring 8 with load
 * balancing, forward, 5.186 iterations/s, where ring transfers hide behind compute — which puts
 * FA2 on L20 at 1.2455 × the Ampere efficiency (0.82 of the L20's 119.5 TFLOP/s at 8K causal).
 * That row is excluded from the validation statistics. GEMM and links: the Ampere figures (assumed).
 */
export const ADA_ATTENTION_REFERENCE = {
  table: 'USP Table 3',
  gpu: 'l20',
  seqK: 128,
  ulysses: 1,
  shard: 'zigzag',
  itersPerSec: 5.186,
} as const;
const ADA_FA2_OVER_AMPERE = 1.2455;

const ADA: Calibration = {
  ...AMPERE,
  gpu: 'l20',
  class: 'ada',
  gemm: {
    tflops: AMPERE.gemm.tflops * (119.5 / 312),
    source: `assumption: the Ampere GEMM efficiency (${AMPERE.gemm.source})`,
  },
  attention: AMPERE.attention.map((p) => ({
    ...p,
    tflops: p.tflops * (119.5 / 312) * ADA_FA2_OVER_AMPERE,
    source: `calibrated on USP Table 3 (L20, 128K, ring 8 lb-ring): ${ADA_FA2_OVER_AMPERE} × the Ampere efficiency of ${p.source}`,
  })),
};

export const CLASS_CALIBRATIONS: Readonly<Record<GpuClass, Calibration>> = { hopper: H200, ampere: AMPERE, ada: ADA };
