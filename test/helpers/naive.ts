// An independent f64 attention for the tests: the mask predicate comes straight from each
// mask's definition (not from weft's lowering to intervals), and softmax is done on whole rows.
import type { MaskSpec } from '../../src/mask/spec.js';

export function naiveAllowed(spec: MaskSpec, i: number, j: number): boolean {
  switch (spec.kind) {
    case 'full':
      return true;
    case 'causal':
      return j <= i;
    case 'sliding':
      return (spec.left < 0 || j >= i - spec.left) && (spec.right < 0 || j <= i + spec.right);
    case 'prefix':
      return j < spec.prefix || j <= i;
    case 'document': {
      const cu = spec.cuSeqlens;
      const doc = (p: number): number => {
        let d = 0;
        while (cu[d + 1]! <= p) d++;
        return d;
      };
      const di = doc(i);
      return di === doc(j) && naiveAllowed(spec.inner, i - cu[di]!, j - cu[di]!);
    }
    case 'slices':
      return spec.slices.some((s) => {
        if (i < s.q[0] || i >= s.q[1] || j < s.k[0] || j >= s.k[1]) return false;
        const diag = i - s.q[0] + (s.k[1] - s.k[0]) - (s.q[1] - s.q[0]); // bottom-right aligned
        const jj = j - s.k[0];
        return jj >= diag - s.left && jj <= diag + s.right;
      });
  }
}

export interface Naive {
  out: Float64Array;
  lse: Float64Array;
  dq: Float64Array;
  dk: Float64Array;
  dv: Float64Array;
}

/** q [S,H,D], k/v [S,Hkv,D] as plain f64 arrays; dout optional (gradients are zero without it). */
export function naiveAttention(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  S: number,
  H: number,
  Hkv: number,
  D: number,
  spec: MaskSpec,
  scale: number,
  dout?: ArrayLike<number>,
): Naive {
  const out = new Float64Array(S * H * D),
    lse = new Float64Array(H * S);
  const dq = new Float64Array(S * H * D),
    dk = new Float64Array(S * Hkv * D),
    dv = new Float64Array(S * Hkv * D);
  const at = (x: ArrayLike<number>, t: number, h: number, heads: number, d: number): number =>
    x[(t * heads + h) * D + d]!;
  for (let h = 0; h < H; h++) {
    const g = Math.floor((h * Hkv) / H);
    for (let i = 0; i < S; i++) {
      const s: number[] = [];
      for (let j = 0; j < S; j++) {
        if (!naiveAllowed(spec, i, j)) {
          s.push(-Infinity);
          continue;
        }
        let x = 0;
        for (let d = 0; d < D; d++) x += at(q, i, h, H, d) * at(k, j, g, Hkv, d);
        s.push(x * scale);
      }
      const mx = Math.max(...s);
      if (mx === -Infinity) {
        lse[h * S + i] = -Infinity;
        continue;
      }
      const e = s.map((x) => Math.exp(x - mx));
      const z = e.reduce((a, b) => a + b, 0);
      lse[h * S + i] = mx + Math.log(z);
      const p = e.map((x) => x / z);
      for (let d = 0; d < D; d++) {
        let o = 0;
        for (let j = 0; j < S; j++) o += p[j]! * at(v, j, g, Hkv, d);
        out[(i * H + h) * D + d] = o;
      }
      if (!dout) continue;
      const dO = (d: number): number => at(dout, i, h, H, d);
      const dp = p.map((_, j) => {
        let x = 0;
        for (let d = 0; d < D; d++) x += dO(d) * at(v, j, g, Hkv, d);
        return x;
      });
      const rowDot = p.reduce((a, pj, j) => a + pj * dp[j]!, 0);
      for (let j = 0; j < S; j++) {
        if (p[j] === 0) continue;
        const ds = p[j]! * (dp[j]! - rowDot);
        for (let d = 0; d < D; d++) {
          dv[(j * Hkv + g) * D + d] += p[j]! * dO(d);
          dq[(i * H + h) * D + d] += ds * scale * at(k, j, g, Hkv, d);
          dk[(j * Hkv + g) * D + d] += ds * scale * at(q, i, h, H, d);
        }
      }
    }
  }
  return { out, lse, dq, dk, dv };
}

/** ‖a − b‖ / ‖b‖, with equal entries (including ±∞) counting as exact. */
export function rel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let n = 0,
    d = 0;
  for (let i = 0; i < b.length; i++) {
    const x = a[i]!,
      y = b[i]!;
    if (Number.isNaN(x) || Number.isNaN(y)) return NaN;
    if (x === y) {
      if (Number.isFinite(y)) d += y * y;
      continue;
    }
    n += (x - y) ** 2;
    d += y * y;
  }
  return d === 0 ? (n === 0 ? 0 : Infinity) : Math.sqrt(n / d);
}
