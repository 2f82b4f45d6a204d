// A calibration says what a GPU class achieves of its datasheet rates, from measurements. Every
// figure carries its source. Rates are stored as TFLOP/s or GB/s as measured on `gpu` and used
// as fractions of that GPU's datasheet peak, so one calibration serves every GPU of its class.
import type { GpuClass } from '../hardware.js';

export type KernelPass = 'fwd' | 'fwd+bwd';

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
}

/** How an implementation merges partial attention results and how much each ring step costs it. */
export interface Implementation {
  name: string;
  /** HBM bytes moved per element of the running output (H·D per token) by one merge */
  mergeBytesPerElement: number;
  /** fixed cost per ring step: kernel launches, host dispatch, synchronisation */
  stepOverheadUs: number;
  source: string;
}

export const IMPLEMENTATIONS: Readonly<Record<string, Implementation>> = {
  // fused merge: read running out (f32), read the block's out (f32), write out: 12 bytes
  weft: { name: 'weft', mergeBytesPerElement: 12, stepOverheadUs: 10, source: 'assumption: one fused f32 merge kernel per step (DESIGN.md numerics contract); to be replaced by weft bench cp' },
  // ring-flash-attention / yunchang update_out_and_lse: cast block out bf16→f32 (2+4), then
  // out − σ(·)·(out − block) as three elementwise passes over f32 tensors (3·12), ≈ 38–42 bytes
  pytorch: { name: 'pytorch', mergeBytesPerElement: 40, stepOverheadUs: 30, source: 'counted from zhuzilin/ring-flash-attention ring_flash_attn/utils.py update_out_and_lse (one cast + three f32 elementwise passes); overhead: ~10 PyTorch ops at ~3 µs dispatch' },
};
