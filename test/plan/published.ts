// Published measurements the planner is validated against, transcribed with their sources.
// Nothing here is fitted or invented: every number is as printed in the cited table.

/**
 * USP: A Unified Sequence Parallelism Approach for Long Context Generative AI (Fang & Zhao,
 * arXiv 2405.07719), section 5, Megatron-LM on A800 nodes (8 × A800 80 GB per node, NVLink
 * 400 GB/s, nodes joined by 1.6 Tbps RDMA = 25 GB/s per GPU per direction), ZeRO-1 over data
 * and sequence ranks, TP with sequence parallelism, no recomputation. "FLOPS/GPU" counts only
 * the computation a causal mask keeps (the paper says so), i.e. causal counts half.
 */
export interface UspTrainingRow {
  table: string;
  model: 'llama2-7b' | 'llama3-8b';
  nodes: number;
  seqK: number;
  batch: number;
  tp: number;
  ulysses: number;
  ring: number;
  tflops: number;
}

export const USP_TRAINING: UspTrainingRow[] = [
  // Table 5: LLaMA2-7B on a single 8×A800 node
  {
    table: 'USP Table 5',
    model: 'llama2-7b',
    nodes: 1,
    seqK: 64,
    batch: 1,
    tp: 4,
    ulysses: 2,
    ring: 1,
    tflops: 154.49,
  },
  { table: 'USP Table 5', model: 'llama2-7b', nodes: 1, seqK: 64, batch: 1, tp: 4, ulysses: 1, ring: 2, tflops: 151.4 },
  {
    table: 'USP Table 5',
    model: 'llama2-7b',
    nodes: 1,
    seqK: 64,
    batch: 1,
    tp: 8,
    ulysses: 1,
    ring: 1,
    tflops: 141.85,
  },
  {
    table: 'USP Table 5',
    model: 'llama2-7b',
    nodes: 1,
    seqK: 30,
    batch: 16,
    tp: 2,
    ulysses: 4,
    ring: 1,
    tflops: 155.98,
  },
  {
    table: 'USP Table 5',
    model: 'llama2-7b',
    nodes: 1,
    seqK: 30,
    batch: 16,
    tp: 2,
    ulysses: 1,
    ring: 4,
    tflops: 147.77,
  },
  {
    table: 'USP Table 5',
    model: 'llama2-7b',
    nodes: 1,
    seqK: 30,
    batch: 16,
    tp: 4,
    ulysses: 1,
    ring: 1,
    tflops: 150.05,
  },
  {
    table: 'USP Table 5',
    model: 'llama2-7b',
    nodes: 1,
    seqK: 30,
    batch: 16,
    tp: 1,
    ulysses: 8,
    ring: 1,
    tflops: 163.42,
  },
  {
    table: 'USP Table 5',
    model: 'llama2-7b',
    nodes: 1,
    seqK: 30,
    batch: 16,
    tp: 1,
    ulysses: 1,
    ring: 8,
    tflops: 142.16,
  },
  {
    table: 'USP Table 5',
    model: 'llama2-7b',
    nodes: 1,
    seqK: 30,
    batch: 16,
    tp: 8,
    ulysses: 1,
    ring: 1,
    tflops: 129.12,
  },
  // Table 6: LLaMA3-8B on two 8×A800 nodes
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 64,
    batch: 1,
    tp: 1,
    ulysses: 8,
    ring: 2,
    tflops: 136.31,
  },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 64,
    batch: 1,
    tp: 1,
    ulysses: 4,
    ring: 4,
    tflops: 137.48,
  },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 64,
    batch: 1,
    tp: 1,
    ulysses: 2,
    ring: 8,
    tflops: 129.44,
  },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 64,
    batch: 1,
    tp: 1,
    ulysses: 1,
    ring: 16,
    tflops: 121.83,
  },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 64,
    batch: 1,
    tp: 8,
    ulysses: 1,
    ring: 2,
    tflops: 129.75,
  },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 64,
    batch: 1,
    tp: 4,
    ulysses: 2,
    ring: 2,
    tflops: 122.45,
  },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 64, batch: 1, tp: 2, ulysses: 4, ring: 2, tflops: 87.67 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 64, batch: 1, tp: 2, ulysses: 2, ring: 4, tflops: 89.35 },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 64,
    batch: 1,
    tp: 4,
    ulysses: 1,
    ring: 4,
    tflops: 122.57,
  },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 64,
    batch: 1,
    tp: 2,
    ulysses: 1,
    ring: 8,
    tflops: 101.35,
  },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 64, batch: 2, tp: 8, ulysses: 1, ring: 1, tflops: 141.2 },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 80,
    batch: 1,
    tp: 1,
    ulysses: 8,
    ring: 2,
    tflops: 147.46,
  },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 80, batch: 1, tp: 1, ulysses: 4, ring: 4, tflops: 148.9 },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 80,
    batch: 1,
    tp: 1,
    ulysses: 2,
    ring: 8,
    tflops: 140.13,
  },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 80,
    batch: 1,
    tp: 1,
    ulysses: 1,
    ring: 16,
    tflops: 132.86,
  },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 80,
    batch: 1,
    tp: 8,
    ulysses: 1,
    ring: 2,
    tflops: 136.16,
  },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 80,
    batch: 1,
    tp: 4,
    ulysses: 2,
    ring: 2,
    tflops: 137.49,
  },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 80,
    batch: 1,
    tp: 2,
    ulysses: 4,
    ring: 2,
    tflops: 111.05,
  },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 80,
    batch: 1,
    tp: 2,
    ulysses: 2,
    ring: 4,
    tflops: 110.81,
  },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 80,
    batch: 1,
    tp: 4,
    ulysses: 1,
    ring: 4,
    tflops: 130.27,
  },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 80,
    batch: 1,
    tp: 2,
    ulysses: 1,
    ring: 8,
    tflops: 121.14,
  },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 80, batch: 2, tp: 8, ulysses: 1, ring: 1, tflops: 144.4 },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 120,
    batch: 1,
    tp: 4,
    ulysses: 2,
    ring: 2,
    tflops: 152.51,
  },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 120,
    batch: 1,
    tp: 2,
    ulysses: 4,
    ring: 2,
    tflops: 136.63,
  },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 120,
    batch: 1,
    tp: 8,
    ulysses: 1,
    ring: 2,
    tflops: 145.92,
  },
  {
    table: 'USP Table 6',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 120,
    batch: 1,
    tp: 4,
    ulysses: 1,
    ring: 4,
    tflops: 150.96,
  },
  // Table 7: upper bound of the sequence length, LLaMA3-8B on two nodes
  {
    table: 'USP Table 7',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 160,
    batch: 1,
    tp: 4,
    ulysses: 2,
    ring: 2,
    tflops: 158.64,
  },
  {
    table: 'USP Table 7',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 160,
    batch: 1,
    tp: 8,
    ulysses: 1,
    ring: 2,
    tflops: 156.63,
  },
  {
    table: 'USP Table 7',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 208,
    batch: 1,
    tp: 8,
    ulysses: 1,
    ring: 2,
    tflops: 147.26,
  },
  {
    table: 'USP Table 7',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 160,
    batch: 1,
    tp: 4,
    ulysses: 1,
    ring: 4,
    tflops: 159.37,
  },
  {
    table: 'USP Table 7',
    model: 'llama3-8b',
    nodes: 2,
    seqK: 190,
    batch: 1,
    tp: 4,
    ulysses: 1,
    ring: 4,
    tflops: 157.08,
  },
];

/**
 * Layouts the USP paper reports as out of memory (section 5.4): SP without TP at 64K on one
 * node (LLaMA2-7B); SP without TP with global batch 2 at 64K and 80K, and at 120K and beyond
 * (LLaMA3-8B on two nodes). The paper names the class ("SP-only"), not one layout, so every
 * SP-only layout of that size is expected to be flagged.
 */
export const USP_OOM: { model: 'llama2-7b' | 'llama3-8b'; nodes: number; seqK: number; batch: number; note: string }[] =
  [
    {
      model: 'llama2-7b',
      nodes: 1,
      seqK: 64,
      batch: 1,
      note: 'USP §5.4: "When seqlen=64K, SP-only will bring OOM issue"',
    },
    {
      model: 'llama3-8b',
      nodes: 2,
      seqK: 64,
      batch: 2,
      note: 'USP §5.4: "SP-only always has an OOM issue with global-bs=2"',
    },
    {
      model: 'llama3-8b',
      nodes: 2,
      seqK: 80,
      batch: 2,
      note: 'USP §5.4: "SP-only always has an OOM issue with global-bs=2"',
    },
    {
      model: 'llama3-8b',
      nodes: 2,
      seqK: 120,
      batch: 1,
      note: 'USP §5.4: "At this sequence length, SP-only meets an OOM issue"',
    },
    {
      model: 'llama3-8b',
      nodes: 2,
      seqK: 208,
      batch: 1,
      note: 'USP §5.4 (Table 7): "At this point, SP-only could not run due to OOM"',
    },
  ];

/**
 * USP (arXiv 2405.07719) Tables 3 and 4: attention alone, forward only, throughput in iterations
 * per second; LLaMA3-8B attention shape (32 heads, group_num 4 → 8 KV heads, head size 128),
 * batch 1, causal, 8 GPUs, ring degree = 8 / ulysses degree; basic-ring = contiguous shard,
 * lb-ring = load-balanced (zigzag). Table 3: 8 × L20 PCIe; Table 4: 8 × A100-SXM4 NVLink.
 * (The text of §5.1 says ulysses 4 × ring 2 is best on L20 and ulysses 8 at both lengths on A100;
 * the tables show ulysses 2 on L20 and, at 128K on A100, ulysses 1. The tables are used.)
 *
 * The Table 4 numbers are as printed (re-checked against an independent transcription of the
 * paper's Tables 3–7, stored in the search index). Its 128K rows contradict the rest of the two
 * tables (test/plan/validation.test.ts asserts it from these numbers alone): from 32K to 128K the
 * A100 time grows 39–53× for every layout — 2.4–3.3× the 16× growth of the causal FLOPs, where a
 * compute-bound kernel grows by at most 16× (its efficiency rises with length) and the L20 rows
 * grow 5.5–13× — so the A100 box, 2–10× faster than the L20 box at 32K, comes out at 0.5–1.1× of it
 * at 128K on the same workload and code, though its bf16 peak is 2.6× and its HBM 2.4× the L20's.
 * The rows are as if each A100 128K iteration did ~3.5–4× the labelled work: a 256K sequence
 * (yunchang's benchmark_longctx.py takes --seq_len per rank, the global sequence being
 * 8 × seq_len, and scripts/run_qkvpack_compare.sh sets SEQLEN=32768 "#128K" for 8 GPUs — 256K),
 * or forward + backward (run without --fwd_only). Which, if either, is not established; the rows
 * are kept as printed and counted (docs/validation.md).
 */
export interface UspAttentionRow {
  table: string;
  gpu: 'l20' | 'a100-80g';
  seqK: number;
  ulysses: number;
  shard: 'contiguous' | 'zigzag';
  itersPerSec: number;
}

const usp34 = (table: string, gpu: 'l20' | 'a100-80g', rows: [number, number, number, number][]): UspAttentionRow[] =>
  rows.flatMap(([seqK, ulysses, basic, lb]) => [
    { table, gpu, seqK, ulysses, shard: 'contiguous' as const, itersPerSec: basic },
    { table, gpu, seqK, ulysses, shard: 'zigzag' as const, itersPerSec: lb },
  ]);

export const USP_ATTENTION: UspAttentionRow[] = [
  ...usp34('USP Table 3', 'l20', [
    [8, 8, 57.346, 57.098],
    [8, 4, 153.134, 152.189],
    [8, 2, 415.5, 454.93],
    [8, 1, 358.595, 361.969],
    [32, 8, 15.229, 14.262],
    [32, 4, 28.584, 32.818],
    [32, 2, 44.348, 62.754],
    [32, 1, 40.478, 58.377],
    [128, 8, 2.563, 2.586],
    [128, 4, 3.217, 4.235],
    [128, 2, 3.399, 5.476],
    [128, 1, 3.131, 5.186],
  ]),
  ...usp34('USP Table 4', 'a100-80g', [
    [32, 8, 135.569, 136.375],
    [32, 4, 103.525, 132.979],
    [32, 2, 91.365, 132.979],
    [32, 1, 81.985, 113.79],
    [128, 8, 2.782, 2.785],
    [128, 4, 2.024, 2.771],
    [128, 2, 1.73, 2.89],
    [128, 1, 1.628, 2.91],
  ]),
];

/**
 * zhuzilin/ring-flash-attention README ("The current performance", batch API): 8 GPUs, each with
 * 8K tokens of a 64K sequence, LLaMA-3.1-8B attention (32 heads, 8 KV heads, head dim 128),
 * causal, bf16 (benchmark/benchmark_kvpacked_func.py). ring_attn = contiguous shard, zigzag_ring
 * = zigzag, stripe_attn = striped. Throughput in iterations per second; the README's efficiency
 * is that over (single-GPU flash_attn on 8K) / 8.
 */
export interface RfaRow {
  gpu: 'h800' | 'a100-80g';
  pass: 'fwd' | 'fwd+bwd';
  shard: 'contiguous' | 'zigzag' | 'striped';
  itersPerSec: number;
  efficiency: number;
}

export const RING_FLASH_ATTN: RfaRow[] = [
  { gpu: 'h800', pass: 'fwd', shard: 'contiguous', itersPerSec: 38.5, efficiency: 0.521 },
  { gpu: 'h800', pass: 'fwd', shard: 'zigzag', itersPerSec: 63.0, efficiency: 0.852 },
  { gpu: 'h800', pass: 'fwd', shard: 'striped', itersPerSec: 55.0, efficiency: 0.744 },
  { gpu: 'h800', pass: 'fwd+bwd', shard: 'contiguous', itersPerSec: 10.4, efficiency: 0.539 },
  { gpu: 'h800', pass: 'fwd+bwd', shard: 'zigzag', itersPerSec: 17.4, efficiency: 0.902 },
  { gpu: 'h800', pass: 'fwd+bwd', shard: 'striped', itersPerSec: 16.0, efficiency: 0.829 },
  { gpu: 'a100-80g', pass: 'fwd', shard: 'contiguous', itersPerSec: 24.0, efficiency: 0.514 },
  { gpu: 'a100-80g', pass: 'fwd', shard: 'zigzag', itersPerSec: 38.2, efficiency: 0.817 },
  { gpu: 'a100-80g', pass: 'fwd', shard: 'striped', itersPerSec: 32.5, efficiency: 0.696 },
  { gpu: 'a100-80g', pass: 'fwd+bwd', shard: 'contiguous', itersPerSec: 6.2, efficiency: 0.525 },
  { gpu: 'a100-80g', pass: 'fwd+bwd', shard: 'zigzag', itersPerSec: 10.6, efficiency: 0.898 },
  { gpu: 'a100-80g', pass: 'fwd+bwd', shard: 'striped', itersPerSec: 9.75, efficiency: 0.826 },
];

/**
 * Ring Attention (Liu, Zaharia & Abbeel, arXiv 2310.01889) Table 3: the longest context each
 * model trains with, in thousands of tokens, under FSDP, full precision, full rematerialisation
 * ("nothing_saveable"), blockwise attention and feed-forward; "Memory Efficient Attn and FFN" is
 * the single-sequence-per-device baseline, Ring Attention splits one sequence over all devices.
 * Only the GPU rows are used (TPU memory is not modelled).
 */
export interface RingAttentionRow {
  hardware: string;
  gpus: number;
  model: '3B' | '7B' | '13B';
  baselineK: number;
  ringK: number;
}

export const RING_ATTENTION_MAX: RingAttentionRow[] = [
  { hardware: '8x A100 NVLink', gpus: 8, model: '3B', baselineK: 64, ringK: 512 },
  { hardware: '8x A100 NVLink', gpus: 8, model: '7B', baselineK: 32, ringK: 256 },
  { hardware: '8x A100 NVLink', gpus: 8, model: '13B', baselineK: 16, ringK: 128 },
  { hardware: '32x A100 InfiniBand', gpus: 32, model: '7B', baselineK: 128, ringK: 4096 },
  { hardware: '32x A100 InfiniBand', gpus: 32, model: '13B', baselineK: 64, ringK: 2048 },
];

/**
 * This project's own measurement (2 × H200 NVLink, 2026-11-28, PyTorch 2.11): PyTorch native
 * context parallel, cuDNN SDPA, load-balanced ring, causal, bf16, B=1, H=32, D=128, forward +
 * backward, TFLOP/s per GPU (fwd 4·S²·H·D/2, bwd 2.5 × fwd). The `torch-cp-*` records that
 * `weft bench cp` wrote beside weft's runs that day (bench/results/cp-2026-11-28-*.jsonl) agree within 2%.
 */
export const TORCH_CP_H200: { seqK: number; tflopsPerGpu: number }[] = [
  { seqK: 32, tflopsPerGpu: 455 },
  { seqK: 128, tflopsPerGpu: 522 },
  { seqK: 256, tflopsPerGpu: 537 },
];
