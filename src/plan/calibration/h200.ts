// H200 defaults, measured on this project's 2× H200 machine on 2026-11-28 (/work/shared/DESIGN.md,
// "Where the field is"). A .ts module rather than .json so that tsc ships it with the code; the
// same shape is what `--calibration FILE` reads and what bench records update (records.ts).
import type { Calibration } from './types.js';

const DESIGN = 'DESIGN.md, measured on 2× H200, 2026-11-28';

export const H200: Calibration = {
  gpu: 'h200',
  class: 'hopper',
  gemm: { tflops: 790, source: `${DESIGN}: bf16 matrix product ~790 TFLOP/s` },
  // PyTorch SDPA, B=1 H=32 D=128; DESIGN.md gives the range over S = 8K–32K, so the ends of the
  // range are taken as the 8K and 32K points. The mask is not stated there; causal is assumed
  // (the same runs' context-parallel figures are causal).
  attention: [
    { kernel: 'fa2', pass: 'fwd', seqLen: 8192, mask: 'causal', headDim: 128, tflops: 319, source: `${DESIGN}: SDPA FlashAttention-2 fwd 319–359` },
    { kernel: 'fa2', pass: 'fwd', seqLen: 32768, mask: 'causal', headDim: 128, tflops: 359, source: `${DESIGN}: SDPA FlashAttention-2 fwd 319–359` },
    { kernel: 'fa2', pass: 'fwd+bwd', seqLen: 8192, mask: 'causal', headDim: 128, tflops: 293, source: `${DESIGN}: SDPA FlashAttention-2 fwd+bwd 293–325` },
    { kernel: 'fa2', pass: 'fwd+bwd', seqLen: 32768, mask: 'causal', headDim: 128, tflops: 325, source: `${DESIGN}: SDPA FlashAttention-2 fwd+bwd 293–325` },
    { kernel: 'cudnn', pass: 'fwd', seqLen: 8192, mask: 'causal', headDim: 128, tflops: 598, source: `${DESIGN}: SDPA cuDNN fwd 598–671` },
    { kernel: 'cudnn', pass: 'fwd', seqLen: 32768, mask: 'causal', headDim: 128, tflops: 671, source: `${DESIGN}: SDPA cuDNN fwd 598–671` },
    { kernel: 'cudnn', pass: 'fwd+bwd', seqLen: 8192, mask: 'causal', headDim: 128, tflops: 539, source: `${DESIGN}: SDPA cuDNN fwd+bwd 539–605` },
    { kernel: 'cudnn', pass: 'fwd+bwd', seqLen: 32768, mask: 'causal', headDim: 128, tflops: 605, source: `${DESIGN}: SDPA cuDNN fwd+bwd 539–605` },
  ],
  defaultKernel: 'cudnn',
  links: {
    // NVLink 4 on H200: 450 GB/s per direction nominal
    p2pEfficiency: 360 / 450,
    collectiveEfficiency: 333 / 450,
    source: `${DESIGN}: NCCL send/recv 360 GB/s each way, all-reduce bus bandwidth 333 GB/s, over 450 GB/s nominal`,
  },
  hbmEfficiency: { value: 0.8, source: 'assumption: elementwise kernels reach ~80% of HBM bandwidth (not yet measured here)' },
};
