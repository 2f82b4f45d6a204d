// The block-attention seam. A strategy calls these once per (local queries × one key block);
// backends implement them (CPU: TypeScript loops; CUDA: NVRTC-compiled flash kernels).
// Layouts: q, out, dq [T, H, D]; k, v, dk, dv [T, Hkv, D]; lse [H, T] (natural log, accum type).
import type { MaskView } from '../mask/view.js';
import type { Tensor } from '../tensor/host.js';

/** A running softmax result: out in the accumulation type (f32, or f64 on the f64 path), and lse. */
export interface AttnState {
  out: Tensor;
  lse: Tensor;
}
export interface AttnGrads {
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
}

export interface ForwardArgs {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  view: MaskView;
  scale: number;
  /** continue from this running state: the block's result is merged into it, in place */
  state?: AttnState;
}

export interface BackwardArgs {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  /** the final output and lse over all key blocks */
  out: Tensor;
  lse: Tensor;
  dout: Tensor;
  view: MaskView;
  scale: number;
  /** accumulate into these (accumulation type) instead of returning fresh tensors */
  into?: Partial<AttnGrads>;
}

export interface AttnKernel {
  forward(a: ForwardArgs): AttnState;
  backward(a: BackwardArgs): AttnGrads;
  /** state ← merge(state, part), in place, stable when either lse is −∞ */
  merge(state: AttnState, part: AttnState): void;
}

export function defaultScale(headDim: number): number {
  return 1 / Math.sqrt(headDim);
}
