// Published measurements the inference planner (src/plan/inference.ts) is checked against,
// transcribed with their sources. Nothing here is fitted: every number is as printed.

/** Llama 3.1 405B's shape (its config.json): the model of arXiv 2411.01783's measurements. */
export const LLAMA3_405B = {
  name: 'llama3-405b',
  layers: 126,
  hidden: 16384,
  heads: 128,
  kvHeads: 8,
  headDim: 128,
  ffnHidden: 53248,
  vocab: 128256,
};

/**
 * Context Parallelism for Scalable Million-Token Inference (Yang et al., arXiv 2411.01783, MLSys
 * 2025): Llama3 405B, full prefill (no cached context), TP8 inside each 8×H100 host, context
 * parallelism across hosts joined by 400 Gb/s RDMA per GPU (50 GB/s each way), FP8 feed-forward
 * weights. Abstract: "1M context prefill ... in 77s" and "128K context prefill in 3.8s" on 16
 * hosts (128 H100); introduction: "With a single H100 GPU host (8 GPUs), it can take 60 seconds to
 * serve 128K context length".
 */
export interface TtftRow {
  source: string;
  nodes: number;
  tokens: number;
  seconds: number;
}
export const CP_INFERENCE_TTFT: TtftRow[] = [
  { source: 'arXiv 2411.01783, introduction', nodes: 1, tokens: 131072, seconds: 60 },
  { source: 'arXiv 2411.01783, abstract', nodes: 16, tokens: 131072, seconds: 3.8 },
  { source: 'arXiv 2411.01783, abstract', nodes: 16, tokens: 1048576, seconds: 77 },
];

/**
 * The same paper, persistent-KV prefill on 4 hosts (CP4 × TP8), P + T = 128K: pass-Q is faster at
 * low KV-cache miss rates T/(T+P), pass-KV above; the crossover lies near 5% (read from the paper's
 * TTFT comparison by W. Arnold's DLAlgo reading-group slides, 2025-12-04: "Empirically ≈ 5%" —
 * a second-hand reading of a figure, not a table). Its rule: pass-KV when T/(T+P) ≥ 2·Hkv/H.
 */
export const PASS_CROSSOVER = {
  source: 'arXiv 2411.01783 TTFT comparison, as read by the DLAlgo slides',
  nodes: 4,
  total: 128000,
  missRate: 0.05,
};

/**
 * PyTorch SDPA decode on one H200 (bf16, D = 128, Hkv = 8, H = 32, one new token): the K/V cache
 * read rate, TB/s, measured 2026-12-04 (issue 16's table); the planner's decode step is a read of
 * the same bytes at the calibrated HBM rate. weft's own decode records will join these.
 */
export interface DecodeRow {
  source: string;
  batch: number;
  context: number;
  fa2TBs: number;
  cudnnTBs: number;
}
export const SDPA_DECODE_H200: DecodeRow[] = [
  { source: 'issue 16, PyTorch SDPA on one H200, 2026-12-04', batch: 1, context: 131072, fa2TBs: 3.2, cudnnTBs: 3.7 },
  { source: 'issue 16, PyTorch SDPA on one H200, 2026-12-04', batch: 1, context: 1048576, fa2TBs: 4.0, cudnnTBs: 4.4 },
  { source: 'issue 16, PyTorch SDPA on one H200, 2026-12-04', batch: 8, context: 131072, fa2TBs: 4.4, cudnnTBs: 4.4 },
  { source: 'issue 16, PyTorch SDPA on one H200, 2026-12-04', batch: 16, context: 65536, fa2TBs: 4.4, cudnnTBs: 4.5 },
];
