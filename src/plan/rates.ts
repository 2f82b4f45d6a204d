// What one GPU achieves: attention kernel throughput as a curve in the keys each query row sees,
// GEMM and HBM rates, link efficiencies — a calibration scaled to the GPU's datasheet peak.
import { type KernelPass, PASS_FACTOR } from '../kernel/flops.js';
import type { Calibration, Implementation, KernelPoint } from './calibration/types.js';
import { GPU_PRESETS, type GpuSpec } from './hardware.js';
import { UserError } from '../errors.js';

/**
 * Head-dimension factor relative to D = 128: D/(D+32), normalised. An assumption (FlashAttention
 * kernels lose efficiency at small D as the softmax share grows); measured points at other D
 * replace it through the fit, which divides it out.
 */
function headDimFactor(D: number): number {
  return D / (D + 32) / (128 / 160);
}

/** eff(k̄) = eInf · k̄ / (k̄ + k0): fraction of peak when each query row sees k̄ keys. */
interface Curve {
  eInf: number;
  k0: number;
}

/** Keys per query row of a measured point: S × unmasked fraction (causal ≈ S/2). */
function keysPerRow(p: KernelPoint): number {
  return p.mask === 'causal' ? (p.seqLen + 1) / 2 : p.seqLen;
}

function fitPoints(points: readonly KernelPoint[], peak: number, k0Default: number): Curve {
  const xs = points.map((p) => 1 / keysPerRow(p));
  const ys = points.map((p) => (peak * headDimFactor(p.headDim)) / p.tflops); // 1/eff
  const distinct = new Set(xs).size;
  if (distinct >= 2) {
    // 1/eff = 1/eInf + (k0/eInf) · (1/k̄): least squares on the linear form
    const n = xs.length,
      mx = xs.reduce((a, b) => a + b) / n,
      my = ys.reduce((a, b) => a + b) / n;
    let sxy = 0,
      sxx = 0;
    for (let i = 0; i < n; i++) {
      sxy += (xs[i]! - mx) * (ys[i]! - my);
      sxx += (xs[i]! - mx) ** 2;
    }
    const b = sxy / sxx,
      a = my - b * mx;
    if (a > 0 && b >= 0) return { eInf: 1 / a, k0: b / a };
  }
  // one length only, or measurements that do not rise with length: keep the default shape, match the level
  const y = ys.reduce((s, v) => s + v) / ys.length,
    x = xs.reduce((s, v) => s + v) / xs.length;
  const a = y / (1 + k0Default * x);
  return { eInf: 1 / a, k0: k0Default };
}

function kernelNames(cal: Calibration): string[] {
  return [...new Set(cal.attention.map((p) => p.kernel))];
}

/** Masks a block can have for the kernel: every tile fully unmasked, or some tiles partial (causal-like). */
export type BlockMask = 'full' | 'causal';
const MASKS: readonly BlockMask[] = ['full', 'causal'];
const PASSES: readonly KernelPass[] = ['fwd', 'fwd+bwd'];

const evalCurve = (c: Curve, kbar: number): number => c.eInf * (kbar / (kbar + c.k0));

/**
 * Fitted curves of one calibration, per kernel, pass and block mask. A kernel measured under one
 * mask only gets the other by the ratio the reference calibration (`ref`, H200) measured for the
 * same kernel at equal keys per row (1 when the reference lacks it): stated in docs/plan.md.
 */
export function fitCalibration(cal: Calibration, k0Default: number, ref?: Map<string, Curve>): Map<string, Curve> {
  const peak = GPU_PRESETS[cal.gpu]?.bf16Tflops;
  if (!peak) throw new UserError(`calibration: unknown gpu '${cal.gpu}'`);
  const out = new Map<string, Curve>();
  for (const kernel of kernelNames(cal)) {
    for (const pass of PASSES) {
      for (const mask of MASKS) {
        const pts = cal.attention.filter((p) => p.kernel === kernel && p.pass === pass && p.mask === mask);
        if (pts.length) out.set(`${kernel}/${pass}/${mask}`, fitPoints(pts, peak, k0Default));
      }
      const full = out.get(`${kernel}/${pass}/full`),
        causal = out.get(`${kernel}/${pass}/causal`);
      if (full && causal) continue;
      const rf = ref?.get(`${kernel}/${pass}/full`),
        rc = ref?.get(`${kernel}/${pass}/causal`);
      // ratio full ÷ causal at equal keys per row, averaged over 4K–32K
      const rho =
        rf && rc ? [4096, 8192, 16384, 32768].reduce((s, k) => s + evalCurve(rf, k) / evalCurve(rc, k), 0) / 4 : 1;
      if (causal) out.set(`${kernel}/${pass}/full`, { eInf: causal.eInf * rho, k0: causal.k0 });
      else if (full) out.set(`${kernel}/${pass}/causal`, { eInf: full.eInf / rho, k0: full.k0 });
    }
  }
  return out;
}

export class Rates {
  // the kernel's four curves, looked up per call in hot loops: kept as fields
  private readonly fwdFull: Curve;
  private readonly fwdCausal: Curve;
  private readonly fbFull: Curve;
  private readonly fbCausal: Curve;
  readonly gemmTflops: number;
  readonly hbmGBps: number;

  /**
   * `computeScale` multiplies every compute rate: 0.5 for fp32, which runs on TF32 tensor cores at
   * half the bf16 peak on A100 and H100 datasheets (an approximation for attention kernels).
   */
  constructor(
    readonly gpu: GpuSpec,
    readonly cal: Calibration,
    readonly kernel: string,
    readonly impl: Implementation,
    curves: Map<string, Curve>,
    readonly computeScale = 1,
  ) {
    for (const pass of PASSES) {
      if (!curves.has(`${kernel}/${pass}/causal`))
        throw new UserError(
          `kernel: '${kernel}' has no forward and forward+backward measurements for the ${gpu.class} class (known: ${kernelNames(cal).join(', ')})`,
        );
    }
    this.fwdFull = curves.get(`${kernel}/fwd/full`)!;
    this.fwdCausal = curves.get(`${kernel}/fwd/causal`)!;
    this.fbFull = curves.get(`${kernel}/fwd+bwd/full`)!;
    this.fbCausal = curves.get(`${kernel}/fwd+bwd/causal`)!;
    const calPeak = GPU_PRESETS[cal.gpu]!.bf16Tflops;
    this.gemmTflops = (cal.gemm.tflops / calPeak) * gpu.bf16Tflops * computeScale;
    this.hbmGBps = cal.hbmEfficiency.value * gpu.hbmTBs * 1000;
  }

  /** Achieved attention TFLOP/s for a pass when query rows see k̄ keys on average, in blocks of the given mask. */
  attnTflops(pass: KernelPass, kbar: number, headDim: number, mask: BlockMask): number {
    const c =
      pass === 'fwd'
        ? mask === 'full'
          ? this.fwdFull
          : this.fwdCausal
        : mask === 'full'
          ? this.fbFull
          : this.fbCausal;
    return evalCurve(c, kbar) * headDimFactor(headDim) * this.gpu.bf16Tflops * this.computeScale;
  }

  /**
   * Milliseconds of an attention kernel over `fwdFlops` (forward count, 4·pairs·D per head) with
   * k̄ keys per row: the forward, or the backward alone (fwd+bwd time − fwd time, the backward
   * counting 2.5 × the forward FLOPs).
   */
  attnMs(pass: 'fwd' | 'bwd', fwdFlops: number, kbar: number, headDim: number, mask: BlockMask): number {
    if (fwdFlops <= 0) return 0;
    const tf = fwdFlops / (this.attnTflops('fwd', kbar, headDim, mask) * 1e9);
    if (pass === 'fwd') return tf;
    const tfb = (PASS_FACTOR['fwd+bwd'] * fwdFlops) / (this.attnTflops('fwd+bwd', kbar, headDim, mask) * 1e9);
    return Math.max(tfb - tf, (PASS_FACTOR.bwd * fwdFlops) / (this.gpu.bf16Tflops * this.computeScale * 1e9));
  }

  gemmMs(flops: number): number {
    return flops / (this.gemmTflops * 1e9);
  }

  hbmMs(bytes: number): number {
    return bytes / (this.hbmGBps * 1e6);
  }

  /** One merge of partial results into the running output over `elements` (rows · heads · D). */
  mergeMs(elements: number): number {
    return this.hbmMs(elements * this.impl.mergeBytesPerElement);
  }

  stepOverheadMs(): number {
    return this.impl.stepOverheadUs / 1000;
  }
}
