// A calibration says what a GPU class achieves of its datasheet rates, from measurements. Every
// figure carries its source. Rates are stored as TFLOP/s or GB/s as measured on `gpu` and used
// as fractions of that GPU's datasheet peak, so one calibration serves every GPU of its class.
import type { ElementwiseOp } from '../../strategy/accounting.js';
import type { GpuClass } from '../types.js';

export type KernelPass = 'fwd' | 'fwd+bwd';

/** One class's rate: achieved / datasheet HBM bandwidth on large tensors, and the time of a small call back to back (µs). */
export interface DeviceOpRate { hbmEfficiency: number; callUs: number }

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
   * Host-side preparation of a partially masked block's mask view before its kernel is issued,
   * µs per query row plus key row of the view (0: views are prepared once and reused). The GPU
   * waits for it only when it has run out of queued work (cost.ts runs a host clock beside the
   * GPU's). Where it is paid is the implementation's: see `weft-127f7f2d`.
   */
  hostPrepUsPerRow: number;
  /**
   * The ring backward's order (ring, USP's ring, double ring; docs/strategies.md "ring"):
   * 'home-hop' — K/V rotate the forward way from the own block, the f32 dK/dV sums travel along and
   * an N-th hop brings every block's total home, exposed after the last kernel (weft up to
   * 7c54dd9d, ring-flash-attention); 'turn-back' — K/V rotate back the other way from the block the
   * forward ended with, so step s holds member i+1+s's block, K/V move only before steps 1..N−2
   * (N−2 hops, none for a ring of 2), each dK/dV sum passes N−1 times under the next step's kernel
   * and completes at home on the last step (weft since 84c36db). A double ring's nested passes keep
   * no block from the forward: each fetches its first block (one exposed bf16 K/V hop) first.
   */
  ringBackward: 'home-hop' | 'turn-back';
  /**
   * Device memory of attention modes, counted from weft's code (footprint.ts), plus the inputs and
   * the kernel's cached block lists: 'weft-gc' — what the strategy code allocates in one
   * iteration, all of it live at its end (weft up to a57aad4: tensors freed by the garbage
   * collector between iterations); 'weft' — the peak of what it holds, allocations minus releases
   * (since 90faa7f the strategies release per step; held.ts); 'generic' — q, k, v, out and their
   * gradients plus the larger of the forward's and the backward's strategy buffers (an
   * implementation that frees what it no longer needs). Training and prefill use the generic
   * count for every implementation.
   */
  footprint: 'weft-gc' | 'weft' | 'generic';
  /**
   * The strategy code's own elementwise device work outside the kernels — zero-filled buffers, the
   * lse fill, the all-to-all packing copies, the adds of arriving gradient sums, the casts —
   * counted from weft's code (elementwise.ts: bytes and calls per rank) and priced as serial HBM
   * traffic on the compute stream, each class of operation at its measured share of the GPU's HBM
   * bandwidth plus its cost per call (`weft bench ops`).
   * The backward's adds of arriving dK,dV (and TokenRing's dq) sums are among them, so the
   * backward prices no merge. Absent: not priced (the merges stand for it).
   */
  deviceOps?: { ops: Record<ElementwiseOp, DeviceOpRate>; source: string };
  /**
   * weft up to aa4a388: the backward read the accumulation-type output, held to its end
   * (TokenRing's travelled in it); since then it reads the output cast to the input type
   * (held.ts HeldCase.heldAccOut).
   */
  heldAccOut?: boolean;
  source: string;
}

// weft's Device operations as measured by `weft bench ops` on an H200 (efficiency: the fit's GB/s
// over the sizes 1 MiB–1 GiB ÷ 4800 GB/s; callUs: a 4 KiB call's time back to back, which the
// host's enqueue (6–10 µs per call through the FFI) sets). The builtins up to cd1042c
// (bench/results/ops-2026-11-28-18-17-10-cd1042c.jsonl): memsets for zeros, a scalar fill kernel,
// box copies by cuMemcpy(2D)Async — contiguous 0.88, strided rows 0.67 (a quarter of the heads):
// strategies' copies are about half each (Ulysses packs strided boxes and unpacks contiguous
// ones), so the harmonic mean 0.76 — and adds and casts through a generic kernel whose 64-bit
// index divisions held casts to 0.26. copyBox's call: the mean of a contiguous and a strided
// 4 KiB box. The timing of every record up to cd1042c ran these.
const OPS_CD1042C: Record<ElementwiseOp, DeviceOpRate> = {
  zeros: { hbmEfficiency: 0.93, callUs: 6.0 }, full: { hbmEfficiency: 0.76, callUs: 7.7 },
  copyBox: { hbmEfficiency: 0.76, callUs: 7.6 }, add: { hbmEfficiency: 0.73, callUs: 7.2 }, cast: { hbmEfficiency: 0.26, callUs: 8.6 },
};
const OPS_CD1042C_SOURCE = 'counted from the strategy code (src/plan/elementwise.ts, equal to MeteredDevice on the CPU ranks); each class at its rate measured by weft bench ops on an H200 (bench/results/ops-2026-11-28-18-17-10-cd1042c.jsonl: the builtins up to cd1042c)';
// The builtins since 3c19881 (bench/results/ops-2026-11-28-18-38-42-3c19881.jsonl): constant fills
// as memsets, casts, adds and strided or converting box copies through the vectorised rows kernel.
// copyBox: contiguous cuMemcpy 0.86, strided rows (the rows kernel) 0.70, half each: 0.77. The
// calls cost 1–3 µs more on the host than before (the rows path's checks and its nine arguments).
// Predicted before the run (NOTES.md): fills ≥ 0.90, casts and adds ≥ 0.80, strided copies ≥ 0.80
// (measured 0.70, the miss: four rows in flight per thread did not help either (4a0bde0); the
// cause is not known), converting copies ≥ 0.80 (0.78).
const OPS_NOW: Record<ElementwiseOp, DeviceOpRate> = {
  zeros: { hbmEfficiency: 0.93, callUs: 5.1 }, full: { hbmEfficiency: 0.93, callUs: 4.1 },
  copyBox: { hbmEfficiency: 0.77, callUs: 9.3 }, add: { hbmEfficiency: 0.85, callUs: 9.0 }, cast: { hbmEfficiency: 0.85, callUs: 11.5 },
};
const OPS_NOW_SOURCE = 'counted from the strategy code (src/plan/elementwise.ts, equal to MeteredDevice on the CPU ranks); each class at its rate measured by weft bench ops on an H200 (bench/results/ops-2026-11-28-18-38-42-3c19881.jsonl: the rows kernel and memset fills)';

export const IMPLEMENTATIONS: Readonly<Record<string, Implementation>> = {
  // fused merge: read running out (f32), read the block's out (f32), write out: 12 bytes
  // weft now: views prepared once (839f0e1, 7d64110), the ring backward turned back (84c36db), the
  // strategies releasing what they allocate per step (90faa7f); timing as measured at a57aad4
  weft: { name: 'weft', mergeBytesPerElement: 12, stepOverheadUs: 10, hostPrepUsPerRow: 0, ringBackward: 'turn-back', footprint: 'weft', deviceOps: { ops: OPS_NOW, source: OPS_NOW_SOURCE }, source: 'assumption: one fused f32 merge kernel per step (DESIGN.md numerics contract); to be replaced by weft bench cp. Ring backward turned back from the forward\'s last block (84c36db; measured at a57aad4: bench/results/cp-2026-11-28-*-a57aad4.jsonl). Memory: what weft\'s code holds (per-step releases since 90faa7f; the backward reads the bf16 output since aa4a388), counted (held.ts, footprint.ts), equal to the CPU ranks\' metered peaks; the same count with the f32 output held (weft-aa4a388, weft-cd1042c) is within 0.35% of every GPU peak of session 4 (2 and 4 × H200, up to 3M tokens)' },
  // weft at cd1042c: the releasing strategies (as `weft`) with the Device builtins up to cd1042c
  // (as `weft-a57aad4`). Prices the cd1042c records (bench/results/cp-2026-11-28-18-*-cd1042c.jsonl, the 3M log)
  'weft-cd1042c': { name: 'weft-cd1042c', mergeBytesPerElement: 12, stepOverheadUs: 10, hostPrepUsPerRow: 0, ringBackward: 'turn-back', footprint: 'weft', deviceOps: { ops: OPS_CD1042C, source: OPS_CD1042C_SOURCE }, heldAccOut: true, source: 'weft at cd1042c: per-step releases (90faa7f), Device builtins before the rows kernel (as measured in bench/results/cp-2026-11-28-18-*-cd1042c.jsonl)' },
  // weft at aa4a388 (and 3c19881): the rows kernel and comm priority (as `weft`), the backward
  // reading the f32 output held to its end. Prices bench/results/cp-2026-11-28-18-3*-3c19881.jsonl, -18-47-*-aa4a388.jsonl
  'weft-aa4a388': { name: 'weft-aa4a388', mergeBytesPerElement: 12, stepOverheadUs: 10, hostPrepUsPerRow: 0, ringBackward: 'turn-back', footprint: 'weft', deviceOps: { ops: OPS_NOW, source: OPS_NOW_SOURCE }, heldAccOut: true, source: 'weft at aa4a388: per-step releases, the rows kernel, the comm stream at the highest priority; the backward read the f32 output, held to its end (as measured in bench/results/cp-2026-11-28-18-3*-3c19881.jsonl, -18-47-*-aa4a388.jsonl)' },
  // weft as measured at a57aad4 (2 and 4 × H200, 2M–2.75M tokens): timing as `weft`; memory with
  // nothing released inside an iteration (the code before 90faa7f). Prices the a57aad4 records
  'weft-a57aad4': { name: 'weft-a57aad4', mergeBytesPerElement: 12, stepOverheadUs: 10, hostPrepUsPerRow: 0, ringBackward: 'turn-back', footprint: 'weft-gc', deviceOps: { ops: OPS_CD1042C, source: OPS_CD1042C_SOURCE }, heldAccOut: true, source: 'weft at a57aad4: views prepared once, ring backward turned back (84c36db), every allocation of an iteration live until the garbage collector runs between iterations (as measured in bench/results/cp-2026-11-28-*-a57aad4.jsonl and the 2M–2.75M logs)' },
  // weft as measured on 2×H200 at 7c54dd9d (bench/results/cp-2026-11-28-14-37-24-7c54dd9d.jsonl,
  // -14-40-38-7c54dd9d.jsonl; the 1M ring at e4fbcd6c, the same ring code): views prepared once, the
  // ring backward with its final dK/dV hop home (before 84c36db). The pre-registered predictions
  // (NOTES.md, 71f6cf7) were made with this model under the name 'weft'
  'weft-7c54dd9d': { name: 'weft-7c54dd9d', mergeBytesPerElement: 12, stepOverheadUs: 10, hostPrepUsPerRow: 0, ringBackward: 'home-hop', footprint: 'weft-gc', heldAccOut: true, source: 'weft at 7c54dd9d: views prepared once; ring backward with the final dK/dV hop home (as measured in bench/results/cp-2026-11-28-14-*-7c54dd9d.jsonl)' },
  // weft as measured on 2×H200 at revision 127f7f2d (bench/results/cp-2026-11-28-*-127f7f2d*): every
  // iteration re-derived its mask views on the host — queryRows, and per use isEmpty's
  // classifyTile + viewArea (a sort of the keys and two binary searches per query row) — before the
  // kernel could be issued; memoized since in 839f0e1 for shard-position views. Paid per ring step
  // in both passes (each step re-asked isEmpty) and once in the forward of single-kernel schedules
  // (Ulysses, all-gather, local), whose backward reused the forward's answer. 0.154 µs per row is
  // the median over the 8 (record, rank) gaps before the first kernel in the timelines of
  // cp-2026-11-28-13-36-57-127f7f2d.jsonl (sliding and document masks; 0.117–0.166), each gap over
  // the rows of the first view (test/plan/weft-h200.test.ts re-derives it). Ring backward with the
  // final hop home, as at 7c54dd9d
  'weft-127f7f2d': { name: 'weft-127f7f2d', mergeBytesPerElement: 12, stepOverheadUs: 10, hostPrepUsPerRow: 0.154, ringBackward: 'home-hop', footprint: 'weft-gc', heldAccOut: true, source: 'weft at 127f7f2d: mask views re-derived on the host every iteration (measured from bench/results/cp-2026-11-28-13-36-57-127f7f2d.jsonl timelines)' },
  // ring-flash-attention / yunchang update_out_and_lse: cast block out bf16→f32 (2+4), then
  // out − σ(·)·(out − block) as three elementwise passes over f32 tensors (3·12), ≈ 38–42 bytes;
  // its backward sends dK/dV on with every step and waits for the last hop home (ring_flash_attn.py)
  pytorch: { name: 'pytorch', mergeBytesPerElement: 40, stepOverheadUs: 30, hostPrepUsPerRow: 0, ringBackward: 'home-hop', footprint: 'generic', source: 'counted from zhuzilin/ring-flash-attention ring_flash_attn/utils.py update_out_and_lse (one cast + three f32 elementwise passes); overhead: ~10 PyTorch ops at ~3 µs dispatch' },
};
