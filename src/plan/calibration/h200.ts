// H200 defaults, measured on this project's 2× H200 machine on 2026-11-28. A .ts module rather
// than .json so that tsc ships it with the code; the same shape is what `--calibration FILE`
// reads and what bench records update (records.ts).
//
// Attention kernels: weft bench records (B=1, H=32, D=128, bf16; median of 10; FLOP convention
// fwd 4·S²·H·D × unmasked fraction, bwd 2.5 × fwd) — PyTorch SDPA (cuDNN, FlashAttention-2) from
// bench/results/kernel-2026-11-28-13-10-33-28b642f8.jsonl, weft's kernel from the latest file,
// kernel-2026-11-28-13-27-24-a3163e5f.jsonl. weft's kernel is still changing: re-price with --calibration and the
// newest records.
// GEMM and links: this project's measurements on that machine, corroborated by the comm records of
// bench/results (send/recv peaks at 360.8 GB/s, a 2-rank all-to-all at 331 GB/s bus bandwidth).
import type { Calibration, KernelPoint } from './types.js';

const MEASURED = 'measured on 2× H200, 2026-11-28';
const REC = 'bench/results/kernel-2026-11-28-13-10-33-28b642f8.jsonl';

const WEFT_REC = 'bench/results/kernel-2026-11-28-13-27-24-a3163e5f.jsonl';

const pt = (
  kernel: string,
  record: string,
  pass: KernelPoint['pass'],
  seqLen: number,
  mask: KernelPoint['mask'],
  tflops: number,
): KernelPoint => ({
  kernel,
  pass,
  seqLen,
  mask,
  headDim: 128,
  tflops,
  source: `${kernel === 'weft' ? WEFT_REC : REC}: ${record} ${pass} S=${seqLen} ${mask}`,
});

export const H200: Calibration = {
  gpu: 'h200',
  class: 'hopper',
  gemm: { tflops: 790, source: `${MEASURED}: bf16 matrix product ~790 TFLOP/s` },
  attention: [
    pt('cudnn', 'sdpa-cudnn', 'fwd', 8192, 'causal', 589.5),
    pt('cudnn', 'sdpa-cudnn', 'fwd', 32768, 'causal', 602.3),
    pt('cudnn', 'sdpa-cudnn', 'fwd', 8192, 'full', 666.5),
    pt('cudnn', 'sdpa-cudnn', 'fwd', 32768, 'full', 624.1),
    pt('cudnn', 'sdpa-cudnn', 'fwd+bwd', 8192, 'causal', 547.4),
    pt('cudnn', 'sdpa-cudnn', 'fwd+bwd', 32768, 'causal', 554.1),
    pt('cudnn', 'sdpa-cudnn', 'fwd+bwd', 8192, 'full', 588.2),
    pt('cudnn', 'sdpa-cudnn', 'fwd+bwd', 32768, 'full', 567.7),
    pt('fa2', 'sdpa-flash', 'fwd', 8192, 'causal', 317.5),
    pt('fa2', 'sdpa-flash', 'fwd', 32768, 'causal', 336.1),
    pt('fa2', 'sdpa-flash', 'fwd', 8192, 'full', 356.3),
    pt('fa2', 'sdpa-flash', 'fwd', 32768, 'full', 351.0),
    pt('fa2', 'sdpa-flash', 'fwd+bwd', 8192, 'causal', 295.9),
    pt('fa2', 'sdpa-flash', 'fwd+bwd', 32768, 'causal', 326.2),
    pt('fa2', 'sdpa-flash', 'fwd+bwd', 8192, 'full', 316.6),
    pt('fa2', 'sdpa-flash', 'fwd+bwd', 32768, 'full', 324.7),
    pt('weft', 'weft', 'fwd', 8192, 'causal', 520.1),
    pt('weft', 'weft', 'fwd', 32768, 'causal', 545.6),
    pt('weft', 'weft', 'fwd', 8192, 'full', 568.2),
    pt('weft', 'weft', 'fwd', 32768, 'full', 530.4),
    pt('weft', 'weft', 'fwd+bwd', 8192, 'causal', 374.1),
    pt('weft', 'weft', 'fwd+bwd', 32768, 'causal', 407.2),
    pt('weft', 'weft', 'fwd+bwd', 8192, 'full', 387.3),
    pt('weft', 'weft', 'fwd+bwd', 32768, 'full', 392.2),
  ],
  // weft plan plans weft runs: weft's own kernel as measured (the v1 harness); "kernel": "cudnn" or "fa2" for PyTorch's
  defaultKernel: 'weft',
  links: {
    // NVLink 4 on H200: 450 GB/s per direction nominal
    p2pEfficiency: 360 / 450,
    collectiveEfficiency: 333 / 450,
    source: `${MEASURED}: NCCL send/recv 360 GB/s each way, all-reduce bus bandwidth 333 GB/s, over 450 GB/s nominal`,
  },
  hbmEfficiency: {
    value: 0.8,
    source:
      "assumption for elementwise kernels (PyTorch's norms, merges, optimizer): weft's own Device operations measured 0.73–0.93 of HBM on an H200 (weft bench ops, bench/results/ops-2026-11-28-*.jsonl; they are priced per class from those records)",
  },
};
