// Plain f64 attention over a whole sequence, row by row, with no tiling and no online softmax:
// the yardstick `--check` and the demo measure every strategy and kernel against.
import type { MaskGrid } from '../mask/grid.js';
import { asF64, type HostTensor, hostTensor } from '../tensor/host.js';

export interface Reference {
  out: HostTensor;
  lse: HostTensor;
  dq?: HostTensor;
  dk?: HostTensor;
  dv?: HostTensor;
}

/**
 * q [S,H,D], k/v [S,Hkv,D]; when dout is given, gradients too. All results are f64. `rows`: only
 * the query rows [r0, r1) (the others stay out 0, lse −∞): a check of a few new tokens after a
 * long cached context.
 */
export function referenceAttention(
  qT: HostTensor,
  kT: HostTensor,
  vT: HostTensor,
  mask: MaskGrid,
  scale: number,
  doutT?: HostTensor,
  rows?: readonly [number, number],
): Reference {
  const [S, H, D] = qT.shape as [number, number, number];
  const Hkv = kT.shape[1]!,
    group = H / Hkv;
  const q = asF64(qT),
    k = asF64(kT),
    v = asF64(vT),
    dout = doutT ? asF64(doutT) : undefined;
  const out = new Float64Array(S * H * D),
    lse = new Float64Array(H * S).fill(-Infinity);
  const dq = new Float64Array(S * H * D),
    dk = new Float64Array(S * Hkv * D),
    dv = new Float64Array(S * Hkv * D);
  const p = new Float64Array(S);
  for (let h = 0; h < H; h++) {
    const g = Math.floor(h / group);
    for (let i = rows?.[0] ?? 0; i < (rows?.[1] ?? S); i++) {
      const qb = (i * H + h) * D;
      let mx = -Infinity;
      for (let j = 0; j < S; j++) {
        if (!mask.allowed(i, j)) {
          p[j] = -Infinity;
          continue;
        }
        let s = 0;
        for (let d = 0; d < D; d++) s += q[qb + d]! * k[(j * Hkv + g) * D + d]!;
        p[j] = s * scale;
        if (p[j]! > mx) mx = p[j]!;
      }
      if (mx === -Infinity) continue; // fully masked: out 0, lse −∞, no gradient
      let sum = 0;
      for (let j = 0; j < S; j++) {
        p[j] = p[j] === -Infinity ? 0 : Math.exp(p[j]! - mx);
        sum += p[j]!;
      }
      lse[h * S + i] = mx + Math.log(sum);
      for (let j = 0; j < S; j++) {
        if (p[j] === 0) continue;
        p[j] = p[j]! / sum;
        for (let d = 0; d < D; d++) out[qb + d] = out[qb + d]! + p[j]! * v[(j * Hkv + g) * D + d]!;
      }
      if (!dout) continue;
      // dS_ij = P_ij (dO_i·V_j − dO_i·O_i)
      let delta = 0;
      for (let d = 0; d < D; d++) delta += dout[qb + d]! * out[qb + d]!;
      for (let j = 0; j < S; j++) {
        if (p[j] === 0) continue;
        const kb = (j * Hkv + g) * D;
        let dp = 0;
        for (let d = 0; d < D; d++) dp += dout[qb + d]! * v[kb + d]!;
        const ds = p[j]! * (dp - delta) * scale;
        for (let d = 0; d < D; d++) {
          dv[kb + d] = dv[kb + d]! + p[j]! * dout[qb + d]!;
          dk[kb + d] = dk[kb + d]! + ds * q[qb + d]!;
          dq[qb + d] = dq[qb + d]! + ds * k[kb + d]!;
        }
      }
    }
  }
  const r: Reference = { out: hostTensor('f64', [S, H, D], out), lse: hostTensor('f64', [H, S], lse) };
  if (dout) {
    r.dq = hostTensor('f64', [S, H, D], dq);
    r.dk = hostTensor('f64', [S, Hkv, D], dk);
    r.dv = hostTensor('f64', [S, Hkv, D], dv);
  }
  return r;
}
