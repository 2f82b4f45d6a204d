// The CPU block kernel: tiled exact attention in TypeScript, the oracle the GPU kernels are
// checked against. Arithmetic runs in f64 (JS numbers); results are stored in the accumulation
// type of the inputs (f64 for f64, else f32), so the f32 path rounds where a GPU would.
import { classifyTile, sees, type MaskView } from '../../mask/view.js';
import type { BlockClass } from '../../mask/grid.js';
import { accumType } from '../../tensor/dtype.js';
import { asF64, fmtShape, type HostTensor, hostZeros, type Tensor } from '../../tensor/host.js';
import type { AttnGrads, AttnKernel, AttnState, BackwardArgs, ForwardArgs } from '../../kernel/kernel.js';
import { mergeRows } from '../../kernel/merge.js';

const BR = 32; // query rows per tile
const BC = 64; // key columns per tile

interface Dims {
  Tq: number;
  Tk: number;
  H: number;
  Hkv: number;
  D: number;
}

function dims(q: Tensor, k: Tensor, v: Tensor, view: MaskView): Dims {
  const [Tq, H, D] = q.shape as [number, number, number];
  const [Tk, Hkv, Dk] = k.shape as [number, number, number];
  if (q.shape.length !== 3 || k.shape.length !== 3)
    throw new Error(`kernel: q ${fmtShape(q.shape)} and k ${fmtShape(k.shape)} must be [T, H, D]`);
  if (v.shape.join() !== k.shape.join())
    throw new Error(`kernel: v ${fmtShape(v.shape)} differs from k ${fmtShape(k.shape)}`);
  if (Dk !== D) throw new Error(`kernel: head dim of q (${D}) and k (${Dk}) differ`);
  if (Hkv === 0 || H % Hkv !== 0)
    throw new Error(`kernel: ${H} query heads are not a multiple of ${Hkv} key/value heads`);
  if (view.kPos.length !== Tk || view.q.lo.length !== Tq * view.q.m)
    throw new Error('kernel: mask view does not match the block');
  return { Tq, Tk, H, Hkv, D };
}

/** Per-(row tile, column tile) answers; shared by all heads of the block. */
function tileClasses(view: MaskView, Tq: number, Tk: number): BlockClass[] {
  const out: BlockClass[] = [];
  for (let r0 = 0; r0 < Tq; r0 += BR)
    for (let c0 = 0; c0 < Tk; c0 += BC)
      out.push(classifyTile(view, r0, Math.min(Tq, r0 + BR), c0, Math.min(Tk, c0 + BC)));
  return out;
}

function host(t: Tensor): HostTensor {
  if (!('data' in t)) throw new Error('cpu kernel: tensor is not in host memory');
  return t as HostTensor;
}

export class CpuKernel implements AttnKernel {
  forward(a: ForwardArgs): AttnState {
    const { Tq, Tk, H, Hkv, D } = dims(a.q, a.k, a.v, a.view);
    const acc = accumType(a.q.dtype);
    const q = asF64(host(a.q)),
      k = asF64(host(a.k)),
      v = asF64(host(a.v));
    const part = { out: hostZeros(acc, [Tq, H, D]), lse: hostZeros(acc, [H, Tq]) };
    const O = part.out.data as Float64Array | Float32Array,
      L = part.lse.data as Float64Array | Float32Array;
    L.fill(-Infinity);
    const classes = tileClasses(a.view, Tq, Tk);
    const nct = Math.ceil(Tk / BC),
      group = H / Hkv,
      scale = a.scale;
    const s = new Float64Array(BC),
      o = new Float64Array(D);
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group);
      for (let r0 = 0, rt = 0; r0 < Tq; r0 += BR, rt++) {
        const r1 = Math.min(Tq, r0 + BR);
        for (let r = r0; r < r1; r++) {
          let mx = -Infinity,
            l = 0,
            poisoned = false;
          o.fill(0);
          const qb = (r * H + h) * D;
          for (let c0 = 0, ct = 0; c0 < Tk; c0 += BC, ct++) {
            const cls = classes[rt * nct + ct]!;
            if (cls === 'empty') continue;
            const c1 = Math.min(Tk, c0 + BC);
            let tmax = -Infinity;
            for (let c = c0; c < c1; c++) {
              if (cls === 'partial' && !sees(a.view.q, r, a.view.kPos[c]!)) {
                s[c - c0] = -Infinity;
                continue;
              }
              const kb = (c * Hkv + g) * D;
              let dot = 0;
              for (let d = 0; d < D; d++) dot += q[qb + d]! * k[kb + d]!;
              const x = dot * scale;
              s[c - c0] = x;
              if (x > tmax) tmax = x;
              else if (x !== x) poisoned = true; // a NaN score: the tile may look empty, the row is not
            }
            if (tmax === -Infinity) continue;
            const nm = Math.max(mx, tmax);
            const corr = Math.exp(mx - nm); // mx = −∞ gives 0, harmless on a zero accumulator
            l *= corr;
            for (let d = 0; d < D; d++) o[d]! *= corr;
            for (let c = c0; c < c1; c++) {
              const x = s[c - c0]!;
              if (x === -Infinity) continue;
              const p = Math.exp(x - nm);
              l += p;
              const vb = (c * Hkv + g) * D;
              for (let d = 0; d < D; d++) o[d]! += p * v[vb + d]!;
            }
            mx = nm;
          }
          // l = 0 only for a fully masked row (out 0, lse −∞); a non-finite input makes l NaN, which
          // reaches out and lse as IEEE arithmetic would carry it
          if (poisoned) l = NaN;
          if (l > 0 || l !== l) {
            for (let d = 0; d < D; d++) O[qb + d] = o[d]! / l;
            L[h * Tq + r] = mx + Math.log(l);
          }
        }
      }
    }
    if (!a.state) return part;
    this.merge(a.state, part);
    return a.state;
  }

  backward(a: BackwardArgs): AttnGrads {
    const { Tq, Tk, H, Hkv, D } = dims(a.q, a.k, a.v, a.view);
    const acc = accumType(a.q.dtype);
    const q = asF64(host(a.q)),
      k = asF64(host(a.k)),
      v = asF64(host(a.v));
    const out = asF64(host(a.out)),
      lse = asF64(host(a.lse)),
      dout = asF64(host(a.dout));
    const grads = {
      dq: (a.into?.dq as HostTensor | undefined) ?? hostZeros(acc, [Tq, H, D]),
      dk: (a.into?.dk as HostTensor | undefined) ?? hostZeros(acc, [Tk, Hkv, D]),
      dv: (a.into?.dv as HostTensor | undefined) ?? hostZeros(acc, [Tk, Hkv, D]),
    };
    const dQ = grads.dq.data,
      dK = grads.dk.data,
      dV = grads.dv.data;
    const classes = tileClasses(a.view, Tq, Tk);
    const nct = Math.ceil(Tk / BC),
      group = H / Hkv,
      scale = a.scale;
    const dq = new Float64Array(D);
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group);
      for (let r0 = 0, rt = 0; r0 < Tq; r0 += BR, rt++) {
        const r1 = Math.min(Tq, r0 + BR);
        for (let r = r0; r < r1; r++) {
          const L = lse[h * Tq + r]!;
          if (L === -Infinity) continue; // fully masked row: no gradient flows (a NaN row passes on its NaN)
          const qb = (r * H + h) * D;
          let delta = 0;
          for (let d = 0; d < D; d++) delta += dout[qb + d]! * out[qb + d]!;
          dq.fill(0);
          for (let c0 = 0, ct = 0; c0 < Tk; c0 += BC, ct++) {
            const cls = classes[rt * nct + ct]!;
            if (cls === 'empty') continue;
            const c1 = Math.min(Tk, c0 + BC);
            for (let c = c0; c < c1; c++) {
              if (cls === 'partial' && !sees(a.view.q, r, a.view.kPos[c]!)) continue;
              const kb = (c * Hkv + g) * D;
              let dot = 0,
                dp = 0;
              for (let d = 0; d < D; d++) {
                dot += q[qb + d]! * k[kb + d]!;
                dp += dout[qb + d]! * v[kb + d]!;
              }
              const p = Math.exp(dot * scale - L);
              const ds = p * (dp - delta) * scale;
              for (let d = 0; d < D; d++) {
                dV[kb + d] = dV[kb + d]! + p * dout[qb + d]!;
                dK[kb + d] = dK[kb + d]! + ds * q[qb + d]!;
                dq[d]! += ds * k[kb + d]!;
              }
            }
          }
          for (let d = 0; d < D; d++) dQ[qb + d] = dQ[qb + d]! + dq[d]!;
        }
      }
    }
    return grads;
  }

  merge(state: AttnState, part: AttnState): void {
    const [T, H, D] = state.out.shape as [number, number, number];
    const so = host(state.out),
      sl = host(state.lse),
      po = host(part.out),
      pl = host(part.lse);
    if (so.dtype !== 'f64' && so.dtype !== 'f32') throw new Error('merge: the running state must be f32 or f64');
    mergeRows(
      so.data as Float64Array | Float32Array,
      sl.data as Float64Array | Float32Array,
      asF64(po),
      asF64(pl),
      T,
      H,
      D,
    );
  }
}
