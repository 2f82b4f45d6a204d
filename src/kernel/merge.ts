// The online-softmax merge of two partial results of the same queries over disjoint key sets,
// in the log-sigmoid form: out ← out − σ(lse_b − lse)(out − out_b), lse ← lse − log σ(lse − lse_b).
// σ of a difference of log-sum-exps is the share of the second set in the combined softmax, so
// the running output never leaves the range of its parts, and −∞ on either side never gives NaN.

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

function logSigmoid(x: number): number {
  return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
}

/**
 * Merge rows in place. out/outB: [T, H, D] flat; lse/lseB: [H, T] flat.
 */
export function mergeRows(
  out: Float64Array | Float32Array,
  lse: Float64Array | Float32Array,
  outB: ArrayLike<number>,
  lseB: ArrayLike<number>,
  T: number,
  H: number,
  D: number,
): void {
  for (let h = 0; h < H; h++) {
    for (let r = 0; r < T; r++) {
      const la = lse[h * T + r]!,
        lb = lseB[h * T + r]!;
      if (lb === -Infinity) continue;
      const base = (r * H + h) * D;
      if (la === -Infinity) {
        for (let d = 0; d < D; d++) out[base + d] = outB[base + d]!;
        lse[h * T + r] = lb;
        continue;
      }
      const w = sigmoid(lb - la);
      for (let d = 0; d < D; d++) {
        const o = out[base + d]!;
        out[base + d] = o - w * (o - outB[base + d]!);
      }
      lse[h * T + r] = la - logSigmoid(la - lb);
    }
  }
}
