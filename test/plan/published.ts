// Published measurements the planner is validated against, transcribed with their sources.
// Nothing here is fitted or invented: every number is as printed in the cited table.

/**
 * USP: A Unified Sequence Parallelism Approach for Long Context Generative AI (Fang & Zhao,
 * arXiv 2405.07719), section 5, Megatron-LM on A800 nodes (8 × A800 80 GB per node, NVLink
 * 400 GB/s, nodes joined by 1.6 Tbps RDMA = 25 GB/s per GPU per direction), ZeRO-1 over data
 * and sequence ranks, TP with sequence parallelism, no recomputation. "FLOPS/GPU" counts only
 * the computation a causal mask keeps (the paper says so), i.e. causal counts half.
 */
export interface UspTrainingRow { table: string; model: 'llama2-7b' | 'llama3-8b'; nodes: number; seqK: number; batch: number; tp: number; ulysses: number; ring: number; tflops: number }

export const USP_TRAINING: UspTrainingRow[] = [
  // Table 5: LLaMA2-7B on a single 8×A800 node
  { table: 'USP Table 5', model: 'llama2-7b', nodes: 1, seqK: 64, batch: 1, tp: 4, ulysses: 2, ring: 1, tflops: 154.49 },
  { table: 'USP Table 5', model: 'llama2-7b', nodes: 1, seqK: 64, batch: 1, tp: 4, ulysses: 1, ring: 2, tflops: 151.40 },
  { table: 'USP Table 5', model: 'llama2-7b', nodes: 1, seqK: 64, batch: 1, tp: 8, ulysses: 1, ring: 1, tflops: 141.85 },
  { table: 'USP Table 5', model: 'llama2-7b', nodes: 1, seqK: 30, batch: 16, tp: 2, ulysses: 4, ring: 1, tflops: 155.98 },
  { table: 'USP Table 5', model: 'llama2-7b', nodes: 1, seqK: 30, batch: 16, tp: 2, ulysses: 1, ring: 4, tflops: 147.77 },
  { table: 'USP Table 5', model: 'llama2-7b', nodes: 1, seqK: 30, batch: 16, tp: 4, ulysses: 1, ring: 1, tflops: 150.05 },
  { table: 'USP Table 5', model: 'llama2-7b', nodes: 1, seqK: 30, batch: 16, tp: 1, ulysses: 8, ring: 1, tflops: 163.42 },
  { table: 'USP Table 5', model: 'llama2-7b', nodes: 1, seqK: 30, batch: 16, tp: 1, ulysses: 1, ring: 8, tflops: 142.16 },
  { table: 'USP Table 5', model: 'llama2-7b', nodes: 1, seqK: 30, batch: 16, tp: 8, ulysses: 1, ring: 1, tflops: 129.12 },
  // Table 6: LLaMA3-8B on two 8×A800 nodes
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 64, batch: 1, tp: 1, ulysses: 8, ring: 2, tflops: 136.31 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 64, batch: 1, tp: 1, ulysses: 4, ring: 4, tflops: 137.48 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 64, batch: 1, tp: 1, ulysses: 2, ring: 8, tflops: 129.44 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 64, batch: 1, tp: 1, ulysses: 1, ring: 16, tflops: 121.83 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 64, batch: 1, tp: 8, ulysses: 1, ring: 2, tflops: 129.75 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 64, batch: 1, tp: 4, ulysses: 2, ring: 2, tflops: 122.45 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 64, batch: 1, tp: 2, ulysses: 4, ring: 2, tflops: 87.67 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 64, batch: 1, tp: 2, ulysses: 2, ring: 4, tflops: 89.35 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 64, batch: 1, tp: 4, ulysses: 1, ring: 4, tflops: 122.57 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 64, batch: 1, tp: 2, ulysses: 1, ring: 8, tflops: 101.35 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 64, batch: 2, tp: 8, ulysses: 1, ring: 1, tflops: 141.20 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 80, batch: 1, tp: 1, ulysses: 8, ring: 2, tflops: 147.46 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 80, batch: 1, tp: 1, ulysses: 4, ring: 4, tflops: 148.90 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 80, batch: 1, tp: 1, ulysses: 2, ring: 8, tflops: 140.13 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 80, batch: 1, tp: 1, ulysses: 1, ring: 16, tflops: 132.86 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 80, batch: 1, tp: 8, ulysses: 1, ring: 2, tflops: 136.16 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 80, batch: 1, tp: 4, ulysses: 2, ring: 2, tflops: 137.49 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 80, batch: 1, tp: 2, ulysses: 4, ring: 2, tflops: 111.05 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 80, batch: 1, tp: 2, ulysses: 2, ring: 4, tflops: 110.81 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 80, batch: 1, tp: 4, ulysses: 1, ring: 4, tflops: 130.27 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 80, batch: 1, tp: 2, ulysses: 1, ring: 8, tflops: 121.14 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 80, batch: 2, tp: 8, ulysses: 1, ring: 1, tflops: 144.40 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 120, batch: 1, tp: 4, ulysses: 2, ring: 2, tflops: 152.51 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 120, batch: 1, tp: 2, ulysses: 4, ring: 2, tflops: 136.63 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 120, batch: 1, tp: 8, ulysses: 1, ring: 2, tflops: 145.92 },
  { table: 'USP Table 6', model: 'llama3-8b', nodes: 2, seqK: 120, batch: 1, tp: 4, ulysses: 1, ring: 4, tflops: 150.96 },
  // Table 7: upper bound of the sequence length, LLaMA3-8B on two nodes
  { table: 'USP Table 7', model: 'llama3-8b', nodes: 2, seqK: 160, batch: 1, tp: 4, ulysses: 2, ring: 2, tflops: 158.64 },
  { table: 'USP Table 7', model: 'llama3-8b', nodes: 2, seqK: 160, batch: 1, tp: 8, ulysses: 1, ring: 2, tflops: 156.63 },
  { table: 'USP Table 7', model: 'llama3-8b', nodes: 2, seqK: 208, batch: 1, tp: 8, ulysses: 1, ring: 2, tflops: 147.26 },
  { table: 'USP Table 7', model: 'llama3-8b', nodes: 2, seqK: 160, batch: 1, tp: 4, ulysses: 1, ring: 4, tflops: 159.37 },
  { table: 'USP Table 7', model: 'llama3-8b', nodes: 2, seqK: 190, batch: 1, tp: 4, ulysses: 1, ring: 4, tflops: 157.08 },
];

/**
 * Layouts the USP paper reports as out of memory (section 5.4): SP without TP at 64K on one
 * node (LLaMA2-7B); SP without TP with global batch 2 at 64K and 80K, and at 120K and beyond
 * (LLaMA3-8B on two nodes). The paper names the class ("SP-only"), not one layout, so every
 * SP-only layout of that size is expected to be flagged.
 */
export const USP_OOM: { model: 'llama2-7b' | 'llama3-8b'; nodes: number; seqK: number; batch: number; note: string }[] = [
  { model: 'llama2-7b', nodes: 1, seqK: 64, batch: 1, note: 'USP §5.4: "When seqlen=64K, SP-only will bring OOM issue"' },
  { model: 'llama3-8b', nodes: 2, seqK: 64, batch: 2, note: 'USP §5.4: "SP-only always has an OOM issue with global-bs=2"' },
  { model: 'llama3-8b', nodes: 2, seqK: 80, batch: 2, note: 'USP §5.4: "SP-only always has an OOM issue with global-bs=2"' },
  { model: 'llama3-8b', nodes: 2, seqK: 120, batch: 1, note: 'USP §5.4: "At this sequence length, SP-only meets an OOM issue"' },
  { model: 'llama3-8b', nodes: 2, seqK: 208, batch: 1, note: 'USP §5.4 (Table 7): "At this point, SP-only could not run due to OOM"' },
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
 * are kept as printed and counted (docs/plan.md, *What the model gets wrong*).
 */
export interface UspAttentionRow { table: string; gpu: 'l20' | 'a100-80g'; seqK: number; ulysses: number; shard: 'contiguous' | 'zigzag'; itersPerSec: number }

const usp34 = (table: string, gpu: 'l20' | 'a100-80g', rows: [number, number, number, number][]): UspAttentionRow[] =>
  rows.flatMap(([seqK, ulysses, basic, lb]) => [
    { table, gpu, seqK, ulysses, shard: 'contiguous' as const, itersPerSec: basic },
    { table, gpu, seqK, ulysses, shard: 'zigzag' as const, itersPerSec: lb },
  ]);

export const USP_ATTENTION: UspAttentionRow[] = [
  ...usp34('USP Table 3', 'l20', [
    [8, 8, 57.346, 57.098], [8, 4, 153.134, 152.189], [8, 2, 415.5, 454.93], [8, 1, 358.595, 361.969],
    [32, 8, 15.229, 14.262], [32, 4, 28.584, 32.818], [32, 2, 44.348, 62.754], [32, 1, 40.478, 58.377],
    [128, 8, 2.563, 2.586], [128, 4, 3.217, 4.235], [128, 2, 3.399, 5.476], [128, 1, 3.131, 5.186],
  ]),
  ...usp34('USP Table 4', 'a100-80g', [
    [32, 8, 135.569, 136.375], [32, 4, 103.525, 132.979], [32, 2, 91.365, 132.979], [32, 1, 81.985, 113.79],
    [128, 8, 2.782, 2.785], [128, 4, 2.024, 2.771], [128, 2, 1.73, 2.89], [128, 1, 1.628, 2.91],
  ]),
];

/**
 * zhuzilin/ring-flash-attention README ("The current performance", batch API): 8 GPUs, each with
 * 8K tokens of a 64K sequence, LLaMA-3.1-8B attention (32 heads, 8 KV heads, head dim 128),
 * causal, bf16 (benchmark/benchmark_kvpacked_func.py). ring_attn = contiguous shard, zigzag_ring
 * = zigzag, stripe_attn = striped. Throughput in iterations per second; the README's efficiency
 * is that over (single-GPU flash_attn on 8K) / 8.
 */
export interface RfaRow { gpu: 'h800' | 'a100-80g'; pass: 'fwd' | 'fwd+bwd'; shard: 'contiguous' | 'zigzag' | 'striped'; itersPerSec: number; efficiency: number }

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
export interface RingAttentionRow { hardware: string; gpus: number; model: '3B' | '7B' | '13B'; baselineK: number; ringK: number }

export const RING_ATTENTION_MAX: RingAttentionRow[] = [
  { hardware: '8x A100 NVLink', gpus: 8, model: '3B', baselineK: 64, ringK: 512 },
  { hardware: '8x A100 NVLink', gpus: 8, model: '7B', baselineK: 32, ringK: 256 },
  { hardware: '8x A100 NVLink', gpus: 8, model: '13B', baselineK: 16, ringK: 128 },
  { hardware: '32x A100 InfiniBand', gpus: 32, model: '7B', baselineK: 128, ringK: 4096 },
  { hardware: '32x A100 InfiniBand', gpus: 32, model: '13B', baselineK: 64, ringK: 2048 },
];

/**
 * This project's own measurement (/work/shared/DESIGN.md, 2× H200, 2026-11-28): PyTorch native
 * context parallel, cuDNN SDPA, load-balanced ring, causal, bf16, B=1, H=32, D=128, forward +
 * backward, TFLOP/s per GPU (fwd 4·S²·H·D/2, bwd 2.5 × fwd).
 */
export const TORCH_CP_H200: { seqK: number; tflopsPerGpu: number }[] = [
  { seqK: 32, tflopsPerGpu: 455 },
  { seqK: 128, tflopsPerGpu: 522 },
  { seqK: 256, tflopsPerGpu: 537 },
];

/**
 * weft's own context-parallel runs on 2 × H200 (NVLink) at revision 127f7f2d: B=1, H=32, D=128,
 * bf16, forward+backward of one attention layer, median of 3 iterations after 1 warm-up,
 * TFLOP/s per GPU with the convention above. The causal sweep as `weft bench cp` printed it —
 * bench/results/cp-2026-11-28-causal-127f7f2d.log (its JSON records were lost to the step's time
 * limit; PyTorch's 256K run ran out of memory). `layout` null is the kernel alone on one GPU;
 * `torch` is PyTorch's context_parallel (cuDNN SDPA, load-balanced ring of 2) with its K/V
 * rotation method. The mask sweep's records (sliding, document, full masks, with per-rank
 * timelines) are read from bench/results/cp-2026-11-28-13-36-57-127f7f2d.jsonl by validation.ts.
 */
export interface WeftCpRow {
  seqK: number;
  layout: { strategy: 'ring' | 'ulysses' | 'allgather' | 'tokenring'; shard: 'zigzag' | 'contiguous' } | null;
  torch?: 'allgather' | 'alltoall';
  ms: number;
  tflopsPerGpu: number;
  efficiency?: number;
}

export const WEFT_CP_CAUSAL_LOG = 'bench/results/cp-2026-11-28-causal-127f7f2d.log';

const zig = (strategy: 'ring' | 'ulysses' | 'allgather' | 'tokenring') => ({ strategy, shard: 'zigzag' as const });

export const WEFT_CP_CAUSAL: WeftCpRow[] = [
  { seqK: 32, layout: null, ms: 74.0, tflopsPerGpu: 416 },
  { seqK: 32, layout: zig('ring'), ms: 53.5, tflopsPerGpu: 288, efficiency: 0.691 },
  { seqK: 32, layout: { strategy: 'ring', shard: 'contiguous' }, ms: 66.5, tflopsPerGpu: 231, efficiency: 0.557 },
  { seqK: 32, layout: zig('ulysses'), ms: 54.7, tflopsPerGpu: 282, efficiency: 0.677 },
  { seqK: 32, layout: zig('allgather'), ms: 53.2, tflopsPerGpu: 289, efficiency: 0.695 },
  { seqK: 32, layout: zig('tokenring'), ms: 54.4, tflopsPerGpu: 283, efficiency: 0.681 },
  { seqK: 32, layout: null, torch: 'allgather', ms: 33.2, tflopsPerGpu: 464 },
  { seqK: 32, layout: null, torch: 'alltoall', ms: 33.4, tflopsPerGpu: 461 },
  { seqK: 128, layout: null, ms: 1201.1, tflopsPerGpu: 410 },
  { seqK: 128, layout: zig('ring'), ms: 654.1, tflopsPerGpu: 377, efficiency: 0.918 },
  { seqK: 128, layout: { strategy: 'ring', shard: 'contiguous' }, ms: 957.3, tflopsPerGpu: 257, efficiency: 0.627 },
  { seqK: 128, layout: zig('ulysses'), ms: 659.7, tflopsPerGpu: 373, efficiency: 0.910 },
  { seqK: 128, layout: zig('allgather'), ms: 675.1, tflopsPerGpu: 365, efficiency: 0.890 },
  { seqK: 128, layout: zig('tokenring'), ms: 653.9, tflopsPerGpu: 377, efficiency: 0.918 },
  { seqK: 128, layout: null, torch: 'allgather', ms: 468.2, tflopsPerGpu: 526 },
  { seqK: 128, layout: null, torch: 'alltoall', ms: 467.7, tflopsPerGpu: 527 },
  { seqK: 256, layout: null, ms: 4824.0, tflopsPerGpu: 408 },
  { seqK: 256, layout: zig('ring'), ms: 2518.3, tflopsPerGpu: 391, efficiency: 0.958 },
  { seqK: 256, layout: { strategy: 'ring', shard: 'contiguous' }, ms: 3737.1, tflopsPerGpu: 264, efficiency: 0.645 },
  { seqK: 256, layout: zig('ulysses'), ms: 2530.3, tflopsPerGpu: 389, efficiency: 0.953 },
  { seqK: 256, layout: zig('allgather'), ms: 2543.1, tflopsPerGpu: 387, efficiency: 0.948 },
  { seqK: 256, layout: zig('tokenring'), ms: 2513.6, tflopsPerGpu: 392, efficiency: 0.960 },
];

/**
 * The 1M-token run (bench/results/cp-2026-11-28-1m-127f7f2d.log): ring of 2, zigzag, causal,
 * S = 1,048,576, H=32, Hkv=8, D=128, one iteration without warm-up (test-gpu/strategy/device-run.sh:
 * --iters 1 --warmup 0), slowest rank. Its per-rank timeline
 * (bench/results/cp-timeline-1m-ring-2xh200-127f7f2d.json) starts the first kernel at 393 ms.
 */
export const WEFT_CP_1M = {
  log: 'bench/results/cp-2026-11-28-1m-127f7f2d.log', timeline: 'bench/results/cp-timeline-1m-ring-2xh200-127f7f2d.json',
  seq: 1048576, kvHeads: 8, ms: 40186.73, tflopsPerGpu: 392.2,
} as const;

/**
 * The 1M-token ring again, after the fix (bench/results/cp-2026-11-28-1m-e4fbcd6c.log): ring of 2,
 * zigzag, causal, S = 1,048,576, H=32, Hkv=8, D=128, ONE iteration without warm-up, slowest rank.
 * e4fbcd6c differs from 7c54dd9d only in USP's position arrays and test scripts (git diff
 * 7c54dd9d e4fbcd6c: src/strategy/usp.ts, test-gpu/), so its ring is the ring of 7c54dd9d —
 * views prepared once, i.e. in this one iteration. Per-rank timeline:
 * bench/results/cp-timeline-1m-ring-2xh200-e4fbcd6c.json (first kernel at 444 / 412 ms);
 * nvidia-smi every 3 s: bench/results/cp-2026-11-28-1m-smi-e4fbcd6c.csv (timestamp, GPU, SM clock,
 * power, temperature, throttle reasons — 0x4 = SW power cap —, utilisation). `peakGiB`: the
 * allocator's peak per rank, as the log prints it (56.5 on both ranks).
 */
export const WEFT_CP_1M_E4FBCD6C = {
  log: 'bench/results/cp-2026-11-28-1m-e4fbcd6c.log', timeline: 'bench/results/cp-timeline-1m-ring-2xh200-e4fbcd6c.json',
  smi: 'bench/results/cp-2026-11-28-1m-smi-e4fbcd6c.csv',
  seq: 1048576, kvHeads: 8, ms: 43069.28, tflopsPerGpu: 366.0,
  forwardMs: [12447.92, 12112.47], backwardMs: [30611.76, 30956.81], peakGiB: 56.5,
} as const;

/**
 * The planner's predictions for the fixed code (implementation `weft`: views prepared once),
 * written down before measuring: NOTES.md, commit 71f6cf7 (2026-11-28 14:05:28 UTC), "predicts,
 * for the fixed code, 128K causal ring zigzag 619.6 ms (efficiency 0.955) and 128K sliding ring
 * 86.9 ms: the next GPU session checks both". Measured at 7c54dd9d from 14:37
 * (bench/results/cp-2026-11-28-14-37-24-7c54dd9d.jsonl, cp-2026-11-28-14-40-38-7c54dd9d.jsonl).
 */
export const PREREGISTERED: { label: string; seq: number; mask: string; ms: number; efficiency?: number }[] = [
  { label: '128K causal ring zigzag', seq: 131072, mask: 'causal', ms: 619.6, efficiency: 0.955 },
  { label: '128K sliding ring zigzag', seq: 131072, mask: 'sliding:8191,0', ms: 86.9 },
];

/**
 * The planner's predictions for the next GPU session, for the current code (implementation
 * `weft`: views prepared once, the ring backward turned back so no dK/dV hop home is exposed —
 * built in 84c36db; `revision` is the HEAD they were written at, whose ring code is 84c36db's),
 * written down on 2026-11-28 before anything was measured (docs/plan.md, "The turned-back ring, predicted and measured"). 2 × H200, B=1,
 * H=32, D=128, bf16, forward + backward of one attention layer, ring of 2. `ms`: the `weft` model;
 * `oldMs`: the same run priced with the schedule measured at 7c54dd9d (`weft-7c54dd9d`, final hop
 * home); `efficiency`: one GPU's predicted time / (2 × `ms`). Nothing was refitted.
 *
 * Checked against the a57aad4 runs (`measured`: the record of each row — GPUs 0 and 1 of a 4-GPU
 * host; the 1M row was not run at a57aad4, its 2M and 2.5M runs are checks of their own in
 * validation.ts). No tolerance was written down with the predictions: docs/plan.md said each row
 * would be compared with its figure and its TFLOP/s error reported, and that the runs would take
 * about the per-iteration time outside the kernels longer (unpriced; e.g. 128K ≈ 626 ms).
 * test/plan/weft-h200.test.ts holds each row to the project's 10% target; a row that misses it
 * carries `miss`, its cause.
 */
export const NEXT_PREDICTIONS: {
  date: string; revision: string;
  measured: { revision: string; files: readonly string[] };
  rows: {
    label: string; seq: number; mask: string; kvHeads: number; shard: 'zigzag' | 'doc-zigzag'; ms: number; oldMs: number; efficiency?: number;
    /** the a57aad4 record (file, name) that measured this row */
    record?: { file: string; name: string };
    miss?: string;
  }[];
} = {
  date: '2026-11-28', revision: '83b0f50',
  measured: { revision: 'a57aad4', files: ['bench/results/cp-2026-11-28-15-58-36-a57aad4.jsonl', 'bench/results/cp-2026-11-28-16-01-54-a57aad4.jsonl'] },
  rows: [
    { label: '32K causal ring zigzag', seq: 32768, mask: 'causal', kvHeads: 32, shard: 'zigzag', ms: 39.8, oldMs: 41.3, efficiency: 0.950, record: { file: 'bench/results/cp-2026-11-28-15-58-36-a57aad4.jsonl', name: 'weft-ring-zigzag' } },
    { label: '128K causal ring zigzag', seq: 131072, mask: 'causal', kvHeads: 32, shard: 'zigzag', ms: 613.7, oldMs: 619.6, efficiency: 0.964, record: { file: 'bench/results/cp-2026-11-28-15-58-36-a57aad4.jsonl', name: 'weft-ring-zigzag' } },
    { label: '256K causal ring zigzag', seq: 262144, mask: 'causal', kvHeads: 32, shard: 'zigzag', ms: 2439.6, oldMs: 2451.6, efficiency: 0.966, record: { file: 'bench/results/cp-2026-11-28-15-58-36-a57aad4.jsonl', name: 'weft-ring-zigzag' } },
    {
      label: '128K sliding:8191,0 ring zigzag', seq: 131072, mask: 'sliding:8191,0', kvHeads: 32, shard: 'zigzag', ms: 81.4, oldMs: 86.9, efficiency: 0.929,
      record: { file: 'bench/results/cp-2026-11-28-16-01-54-a57aad4.jsonl', name: 'weft-ring-zigzag' },
      miss: 'the kernels took what the model prices (82.4 ms on the slower rank, model 81.4); the 8.9 ms outside them — 10.7 at 7c54dd9d — are not priced, and against a sliding window\'s 81 ms of kernels they are 11%',
    },
    { label: '128K document-causal:8 ring doc-zigzag', seq: 131072, mask: 'document-causal', kvHeads: 32, shard: 'doc-zigzag', ms: 146.5, oldMs: 152.4, efficiency: 0.949, record: { file: 'bench/results/cp-2026-11-28-16-01-54-a57aad4.jsonl', name: 'weft-ring-doc-zigzag' } },
    { label: '1M causal ring zigzag (Hkv 8)', seq: 1048576, mask: 'causal', kvHeads: 8, shard: 'zigzag', ms: 38854.1, oldMs: 38866.0 },
  ],
};

/**
 * The planner's memory predictions for runs not yet made, written down on 2026-11-28 when the
 * memory of attention modes became weft's counted footprint (src/plan/footprint.ts: what one
 * iteration of the a57aad4 strategy code allocates, all of it live at its end, plus the kernel's
 * block lists — it reproduces every measured allocator peak of the a57aad4 and 7c54dd9d records
 * and the 1M–2.5M runs within 1.1%). The timing model did not change, so no new timing
 * predictions. B=1, H=32, D=128, bf16, causal, zigzag, forward+backward of one attention layer on
 * one node of H200s (NVLink). `peakGiB`: the allocator's peak per GPU (`peakGiB` of a record, the
 * largest rank's), counted; `maxSeq`: the longest S (a multiple of 65,536) `maxSeqLen` says fits
 * (it adds the 1.5 GiB workspace and 5% fragmentation assumptions to the count, against the
 * preset's 140.4 GiB). Valid for the strategy code as of a57aad4: if the strategies start releasing
 * tensors inside an iteration, recount footprint.ts first. Superseded before any was measured:
 * 90faa7f made the strategies release per step (NEXT_MEMORY_PREDICTIONS below); kept as written,
 * and still what `weft-a57aad4` gives.
 */
export const MEMORY_PREDICTIONS_A57AAD4: {
  date: string; code: string;
  peaks: { label: string; gpus: number; seq: number; kvHeads: number; layout: { ulysses?: number; ring?: number; strategy?: 'ring' | 'ulysses' | 'usp' | 'double-ring' | 'tokenring' | 'allgather'; inner?: number }; peakGiB: number }[];
  longest: { label: string; gpus: number; kvHeads: number; layout: { ulysses?: number; ring?: number }; maxSeq: number }[];
} = {
  date: '2026-11-28', code: 'a57aad4',
  peaks: [
    { label: '4×H200 1M ring 4', gpus: 4, seq: 1048576, kvHeads: 32, layout: { ring: 4 }, peakGiB: 100.22 },
    { label: '4×H200 1M Ulysses 4', gpus: 4, seq: 1048576, kvHeads: 32, layout: { ulysses: 4 }, peakGiB: 80.88 },
    { label: '4×H200 1M USP 2×2', gpus: 4, seq: 1048576, kvHeads: 32, layout: { ulysses: 2, ring: 2 }, peakGiB: 100.50 },
    { label: '4×H200 1M double ring 2', gpus: 4, seq: 1048576, kvHeads: 32, layout: { ring: 4, strategy: 'double-ring', inner: 2 }, peakGiB: 100.22 },
    { label: '4×H200 1M TokenRing', gpus: 4, seq: 1048576, kvHeads: 32, layout: { ring: 4, strategy: 'tokenring' }, peakGiB: 110.50 },
    { label: '8×H200 1M ring 8', gpus: 8, seq: 1048576, kvHeads: 32, layout: { ring: 8 }, peakGiB: 98.11 },
    { label: '8×H200 1M Ulysses 8', gpus: 8, seq: 1048576, kvHeads: 32, layout: { ulysses: 8 }, peakGiB: 40.81 },
    { label: '8×H200 1M USP 2×4', gpus: 8, seq: 1048576, kvHeads: 32, layout: { ulysses: 2, ring: 4 }, peakGiB: 74.25 },
    { label: '8×H200 1M USP 4×2', gpus: 8, seq: 1048576, kvHeads: 32, layout: { ulysses: 4, ring: 2 }, peakGiB: 50.44 },
  ],
  longest: [
    { label: '4×H200 ring 4, Hkv 8', gpus: 4, kvHeads: 8, layout: { ring: 4 }, maxSeq: 3670016 },
    { label: '4×H200 Ulysses 4, Hkv 8', gpus: 4, kvHeads: 8, layout: { ulysses: 4 }, maxSeq: 2621440 },
    { label: '8×H200 ring 8, Hkv 8', gpus: 8, kvHeads: 8, layout: { ring: 8 }, maxSeq: 4456448 },
    { label: '8×H200 Ulysses 8, Hkv 8', gpus: 8, kvHeads: 8, layout: { ulysses: 8 }, maxSeq: 4849664 },
  ],
};

type PredictedLayout = { ulysses?: number; ring?: number; strategy?: 'ring' | 'ulysses' | 'usp' | 'double-ring' | 'tokenring' | 'allgather'; inner?: number };

/**
 * The planner's memory predictions for the next GPU session, written down on 2026-11-28 for
 * weft's strategy code as of 90faa7f, which releases what it allocates per step (the `weft`
 * profile: src/plan/held.ts follows the code's allocations and releases; its count equals the
 * metered peak of every CPU rank in test/plan/held.test.ts, exactly; on a GPU it adds the inputs,
 * the kernel's cached block lists and the backward kernel's f32 delta). No GPU has run this code
 * yet. B=1, H=32, D=128, bf16, causal, zigzag, forward+backward of one attention layer on one
 * node of H200s. `peakGiB`: the allocator's peak per GPU (a record's `peakGiB`, its largest rank),
 * counted; `a57aad4GiB`: the count for the code as measured at a57aad4 (`weft-a57aad4`, which
 * reproduced the measured peaks within 1.1%: 101.7 GiB at 2M, 127.5 at 2.5M); `maxSeq`: the
 * longest S (a multiple of `step`) `maxSeqLen` says fits (the count plus the 1.5 GiB workspace and
 * 5% fragmentation allowance, against the preset's 140.4 GiB), `a57aad4` the same for that code.
 */
export const NEXT_MEMORY_PREDICTIONS: {
  date: string; code: string;
  peaks: { label: string; gpus: number; seq: number; kvHeads: number; layout: PredictedLayout; peakGiB: number; a57aad4GiB: number }[];
  longest: { label: string; gpus: number; kvHeads: number; layout: PredictedLayout; step: number; maxSeq: number; a57aad4: number }[];
} = {
  date: '2026-11-28', code: '90faa7f',
  peaks: [
    { label: '2×H200 1M ring 2, Hkv 8', gpus: 2, seq: 1048576, kvHeads: 8, layout: { ring: 2 }, peakGiB: 42.50, a57aad4GiB: 50.44 },
    { label: '2×H200 2M ring 2, Hkv 8', gpus: 2, seq: 2097152, kvHeads: 8, layout: { ring: 2 }, peakGiB: 85.75, a57aad4GiB: 101.63 },
    { label: '2×H200 2.5M ring 2, Hkv 8', gpus: 2, seq: 2621440, kvHeads: 8, layout: { ring: 2 }, peakGiB: 107.66, a57aad4GiB: 127.50 },
    { label: '4×H200 1M ring 4, Hkv 8', gpus: 4, seq: 1048576, kvHeads: 8, layout: { ring: 4 }, peakGiB: 23.25, a57aad4GiB: 37.22 },
    { label: '4×H200 1M Ulysses 4, Hkv 8', gpus: 4, seq: 1048576, kvHeads: 8, layout: { ulysses: 4 }, peakGiB: 22.84, a57aad4GiB: 50.88 },
    { label: '4×H200 1M USP 2×2, Hkv 8', gpus: 4, seq: 1048576, kvHeads: 8, layout: { ulysses: 2, ring: 2 }, peakGiB: 26.47, a57aad4GiB: 55.50 },
    { label: '8×H200 1M ring 8, Hkv 8', gpus: 8, seq: 1048576, kvHeads: 8, layout: { ring: 8 }, peakGiB: 11.63, a57aad4GiB: 30.61 },
    { label: '8×H200 1M Ulysses 8, Hkv 8', gpus: 8, seq: 1048576, kvHeads: 8, layout: { ulysses: 8 }, peakGiB: 11.80, a57aad4GiB: 25.81 },
    { label: '8×H200 1M USP 2×4, Hkv 8', gpus: 8, seq: 1048576, kvHeads: 8, layout: { ulysses: 2, ring: 4 }, peakGiB: 14.23, a57aad4GiB: 33.75 },
    { label: '8×H200 1M USP 4×2, Hkv 8', gpus: 8, seq: 1048576, kvHeads: 8, layout: { ulysses: 4, ring: 2 }, peakGiB: 13.42, a57aad4GiB: 27.94 },
    { label: '4×H200 1M ring 4, Hkv 32', gpus: 4, seq: 1048576, kvHeads: 32, layout: { ring: 4 }, peakGiB: 50.25, a57aad4GiB: 100.22 },
    { label: '4×H200 1M Ulysses 4, Hkv 32', gpus: 4, seq: 1048576, kvHeads: 32, layout: { ulysses: 4 }, peakGiB: 34.84, a57aad4GiB: 80.88 },
    { label: '4×H200 1M USP 2×2, Hkv 32', gpus: 4, seq: 1048576, kvHeads: 32, layout: { ulysses: 2, ring: 2 }, peakGiB: 50.47, a57aad4GiB: 100.50 },
    { label: '4×H200 1M double ring 2, Hkv 32', gpus: 4, seq: 1048576, kvHeads: 32, layout: { ring: 4, strategy: 'double-ring', inner: 2 }, peakGiB: 58.25, a57aad4GiB: 100.22 },
    { label: '4×H200 1M TokenRing, Hkv 32', gpus: 4, seq: 1048576, kvHeads: 32, layout: { ring: 4, strategy: 'tokenring' }, peakGiB: 54.31, a57aad4GiB: 110.50 },
    { label: '8×H200 1M ring 8, Hkv 32', gpus: 8, seq: 1048576, kvHeads: 32, layout: { ring: 8 }, peakGiB: 25.13, a57aad4GiB: 98.11 },
    { label: '8×H200 1M Ulysses 8, Hkv 32', gpus: 8, seq: 1048576, kvHeads: 32, layout: { ulysses: 8 }, peakGiB: 17.80, a57aad4GiB: 40.81 },
    { label: '8×H200 1M USP 2×4, Hkv 32', gpus: 8, seq: 1048576, kvHeads: 32, layout: { ulysses: 2, ring: 4 }, peakGiB: 29.23, a57aad4GiB: 74.25 },
    { label: '8×H200 1M USP 4×2, Hkv 32', gpus: 8, seq: 1048576, kvHeads: 32, layout: { ulysses: 4, ring: 2 }, peakGiB: 25.42, a57aad4GiB: 50.44 },
  ],
  longest: [
    { label: '2×H200 ring 2, Hkv 8', gpus: 2, kvHeads: 8, layout: { ring: 2 }, step: 1024, maxSeq: 3205120, a57aad4: 2717696 },
    { label: '4×H200 ring 4, Hkv 8', gpus: 4, kvHeads: 8, layout: { ring: 4 }, step: 65536, maxSeq: 5701632, a57aad4: 3670016 },
    { label: '4×H200 Ulysses 4, Hkv 8', gpus: 4, kvHeads: 8, layout: { ulysses: 4 }, step: 65536, maxSeq: 5308416, a57aad4: 2621440 },
    { label: '4×H200 USP 2×2, Hkv 8', gpus: 4, kvHeads: 8, layout: { ulysses: 2, ring: 2 }, step: 65536, maxSeq: 4915200, a57aad4: 2424832 },
    { label: '8×H200 ring 8, Hkv 8', gpus: 8, kvHeads: 8, layout: { ring: 8 }, step: 65536, maxSeq: 11075584, a57aad4: 4456448 },
    { label: '8×H200 Ulysses 8, Hkv 8', gpus: 8, kvHeads: 8, layout: { ulysses: 8 }, step: 65536, maxSeq: 8192000, a57aad4: 4849664 },
    { label: '8×H200 USP 2×4, Hkv 8', gpus: 8, kvHeads: 8, layout: { ulysses: 2, ring: 4 }, step: 65536, maxSeq: 8847360, a57aad4: 3997696 },
  ],
};
