// A calibration says what a GPU class achieves of its datasheet rates, from measurements. Every
// figure carries its source. Rates are stored as TFLOP/s or GB/s as measured on `gpu` and used
// as fractions of that GPU's datasheet peak, so one calibration serves every GPU of its class.
import type { KernelPass } from '../../kernel/flops.js';
import type { ElementwiseOp } from '../../strategy/accounting.js';
import type { GpuClass } from '../types.js';

/** One class's rate: achieved / datasheet HBM bandwidth on large tensors, and the time of a small call back to back (µs). */
export interface DeviceOpRate {
  hbmEfficiency: number;
  callUs: number;
}

/** One measured attention kernel throughput (FLOP convention: fwd 4·S²·H·D × unmasked fraction, bwd 2.5 × fwd). */
export interface KernelPoint {
  kernel: string; // e.g. 'cudnn', 'fa2', 'weft'
  pass: KernelPass;
  seqLen: number;
  mask: 'causal' | 'full';
  headDim: number;
  tflops: number;
  source: string;
}

export interface Calibration {
  /** GPU preset the figures were measured on */
  gpu: string;
  class: GpuClass;
  /** achieved large bf16 matrix product */
  gemm: { tflops: number; source: string };
  attention: KernelPoint[];
  /** kernel assumed when the config names none */
  defaultKernel: string;
  /** achieved / nominal link bandwidth: point-to-point send/recv, and collectives (bus bandwidth) */
  links: { p2pEfficiency: number; collectiveEfficiency: number; source: string };
  /** achieved / datasheet HBM bandwidth of elementwise kernels */
  hbmEfficiency: { value: number; source: string };
  /**
   * weft's current Device operations as `weft bench ops` measured them on this class (from records
   * given to --calibration): used instead of the `weft` profile's shipped H200 rates. Absent: the
   * profile's rates (shares of HBM, so they carry over to other GPUs as they are).
   */
  deviceOps?: { ops: Record<ElementwiseOp, DeviceOpRate>; source: string };
}

/** How an implementation merges partial attention results and how much each ring step costs it. */
export interface Implementation {
  name: string;
  /** HBM bytes moved per element of the running output (H·D per token) by one merge */
  mergeBytesPerElement: number;
  /** fixed cost per ring step: kernel launches, host dispatch, synchronisation */
  stepOverheadUs: number;
  /**
   * The ring backward's order (ring, USP's ring, double ring; docs/strategies.md "ring"):
   * 'home-hop' — K/V rotate the forward way from the own block, the f32 dK/dV sums travel along and
   * an N-th hop brings every block's total home, exposed after the last kernel (ring-flash-attention);
   * 'turn-back' — K/V rotate back the other way from the block the forward ended with, so step s
   * holds member i+1+s's block, K/V move only before steps 1..N−2 (N−2 hops, none for a ring of 2),
   * each dK/dV sum passes N−1 times under the next step's kernel and completes at home on the last
   * step (weft). A double ring's nested passes keep no block from the forward: each fetches its
   * first block (one exposed bf16 K/V hop) first.
   */
  ringBackward: 'home-hop' | 'turn-back';
  /**
   * Device memory of attention modes: 'weft' — the peak weft's strategy code holds (allocations
   * minus releases, counted by running it on the dry-run backend: plan/counts.ts), plus the inputs
   * and the kernel's cached block lists; 'generic' — the generic model of an implementation that is not
   * weft's code (the PyTorch peers): q, k, v, out and their gradients plus the
   * larger of the forward's and the backward's strategy buffers (an implementation that frees what
   * it no longer needs). Training and prefill use the generic count for every implementation.
   */
  footprint: 'weft' | 'generic';
  /**
   * The strategy code's own elementwise device work outside the kernels — zero-filled buffers, the
   * lse fill, the all-to-all packing copies, the adds of arriving gradient sums, the casts —
   * counted by running weft's strategy code on the dry-run backend (plan/counts.ts: bytes and calls per rank) and priced as serial HBM
   * traffic on the compute stream, each class of operation at its measured share of the GPU's HBM
   * bandwidth plus its cost per call (`weft bench ops`).
   * The backward's adds of arriving dK,dV (and TokenRing's dq) sums are among them, so the
   * backward prices no merge. Absent: not priced (the merges stand for it).
   */
  deviceOps?: { ops: Record<ElementwiseOp, DeviceOpRate>; source: string };
  /**
   * What the Ulysses all-to-alls move: 'counted' — what weft's exchange code (strategy/ulysses.ts,
   * which USP runs too) sends, read from its dry run (plan/counts.ts): the output travels with
   * its f32 lse, and KV heads shared by several members send f32 partial dK,dV sums; 'peer' — the
   * PyTorch peers' exchanges (yunchang): q, k, v with the KV heads repeated up to the degree, the
   * output and the gradients, all in the input type.
   */
  exchanges: 'counted' | 'peer';
  /** the decode kernel's fixed cost per step, µs, where measured; absent: two step overheads */
  decodeFixedUs?: number;
  source: string;
}

// weft's Device operations as `weft bench ops` measured them on an H200 (efficiency: the fit's
// GB/s over the sizes 1 MiB–1 GiB ÷ 4800 GB/s; callUs: a 4 KiB call's time back to back, which the
// host's enqueue through the FFI sets): constant fills as memsets, casts, adds and strided or
// converting box copies through the vectorised rows kernel; copyBox is the mean of contiguous
// (cuMemcpy, 0.86) and strided (the rows kernel, 0.70) boxes, as the strategies copy about half
// of each (docs/runtime.md has the table).
const WEFT_OPS: Record<ElementwiseOp, DeviceOpRate> = {
  zeros: { hbmEfficiency: 0.93, callUs: 5.1 },
  full: { hbmEfficiency: 0.93, callUs: 4.1 },
  copyBox: { hbmEfficiency: 0.77, callUs: 9.3 },
  add: { hbmEfficiency: 0.85, callUs: 9.0 },
  cast: { hbmEfficiency: 0.85, callUs: 11.5 },
};
const WEFT_OPS_SOURCE =
  'counted by running the strategy code on the dry-run backend (src/plan/counts.ts); each class at its rate measured by weft bench ops on an H200 (bench/results/ops-*.jsonl)';

/**
 * weft's split-K decode kernel's fixed cost per step, µs: launch, pipeline fill and the last CTA's
 * merge of the splits, which the stream below does not price. The minimax fit, at the fill rate,
 * over the kernel rows of weft's decode record on one H200 (batch 1–16 × context 32K–1M × 1, 4
 * and 8 new tokens): only the smallest reads constrain it, 1 × 32K with one new token (43 µs) and
 * with eight (53 µs, the two-m-tile variant). test/plan/inference-validation.ts (decodeFixedFit)
 * recomputes it from the record, and a test holds this constant to it.
 */
export const DECODE_FIXED_US = 17.4;

/** The profiles: weft's current code, and PyTorch context parallelism (ring-flash-attention, Megatron, yunchang) with the kernel the config names. */
export const IMPLEMENTATIONS: Readonly<Record<string, Implementation>> = {
  // a fused merge reads the running out (f32) and the block's out (f32) and writes out: 12 bytes;
  // the backward's adds of arriving sums are Device operations (deviceOps), so it prices no merge
  weft: {
    name: 'weft',
    mergeBytesPerElement: 12,
    stepOverheadUs: 10,
    ringBackward: 'turn-back',
    footprint: 'weft',
    deviceOps: { ops: WEFT_OPS, source: WEFT_OPS_SOURCE },
    exchanges: 'counted',
    decodeFixedUs: DECODE_FIXED_US,
    source:
      'merge: one fused f32 merge per step (the kernel epilogue); step overhead assumed; memory and Device operations counted by running the strategy code (dry-run backend), the kernels at the calibrated rates; checked against weft bench cp records (docs/validation.md)',
  },
  // ring-flash-attention / yunchang update_out_and_lse: cast block out bf16→f32 (2+4), then
  // out − σ(·)·(out − block) as three elementwise passes over f32 tensors (3·12), ≈ 38–42 bytes;
  // its backward sends dK/dV on with every step and waits for the last hop home (ring_flash_attn.py)
  pytorch: {
    name: 'pytorch',
    mergeBytesPerElement: 40,
    stepOverheadUs: 30,
    ringBackward: 'home-hop',
    footprint: 'generic',
    exchanges: 'peer',
    source:
      'counted from zhuzilin/ring-flash-attention ring_flash_attn/utils.py update_out_and_lse (one cast + three f32 elementwise passes); overhead: ~10 PyTorch ops at ~3 µs dispatch',
  },
};
