// The data-movement seam a strategy needs beyond the kernel and the Comm: allocate, copy a box
// of rows and heads, accumulate, cast, and move to and from the host. The CPU backend does
// these on typed arrays; the CUDA backend enqueues them on its compute stream.
import type { DType } from '../tensor/dtype.js';
import { fmtShape, type HostTensor, numel, type Tensor } from '../tensor/host.js';

/**
 * A region of a tensor viewed as [A, B, rest]: rows [a, a + size[0]) of the first dimension and
 * [b, b + size[1]) of the second, with every element of the trailing dimensions.
 * For q/k/v [T, H, D] that is (tokens, heads); for lse [H, T] it is (heads, tokens).
 */
export interface Box {
  src: readonly [number, number];
  dst: readonly [number, number];
  size: readonly [number, number];
}

export interface Device {
  readonly kind: 'cpu' | 'cuda';
  /** A zero-filled tensor. */
  zeros(dtype: DType, shape: readonly number[]): Tensor;
  /**
   * A tensor whose every element the caller writes before reading (a receive buffer, a copy
   * target): no fill on GPUs. The CPU device fills it with NaN, so a read of an unwritten
   * element shows up in the CPU tests.
   */
  empty(dtype: DType, shape: readonly number[]): Tensor;
  /** A tensor filled with one value (−∞ for a fresh lse). */
  full(dtype: DType, shape: readonly number[], value: number): Tensor;
  /** dst[box.dst …] ← src[box.src …], converting dtype if they differ. */
  copyBox(src: Tensor, dst: Tensor, box: Box): void;
  /** dst += src, elementwise; shapes match. */
  add(dst: Tensor, src: Tensor): void;
  cast(src: Tensor, dtype: DType): Tensor;
  upload(t: HostTensor): Tensor;
  /**
   * The caller's tensor is not used again: its memory goes back now (GPUs: stream-ordered, work
   * already enqueued on it still runs) instead of when the garbage collector finds it. Strategies
   * release what they allocate per step, so a rank holds O(S/N), not every block it saw. The CPU
   * device fills it with NaN, so a later read shows up in the CPU tests.
   */
  release(t: Tensor): void;
  download(t: Tensor): Promise<HostTensor>;
  /** Wait for everything enqueued so far (a no-op on the CPU). */
  synchronize(): Promise<void>;
}

/** Validate a box against both tensors; returns the [A, B] extents and the trailing run length. */
export function checkBox(src: Tensor, dst: Tensor, box: Box): { sb: number; db: number; inner: number } {
  const [sa, sb] = [src.shape[0]!, src.shape[1] ?? 1],
    [da, db] = [dst.shape[0]!, dst.shape[1] ?? 1];
  const inner = numel(src.shape.slice(2));
  if (inner !== numel(dst.shape.slice(2)))
    throw new Error(`copyBox: trailing dims of ${fmtShape(src.shape)} and ${fmtShape(dst.shape)} differ`);
  const [na, nb] = box.size;
  if (
    box.src[0] + na > sa ||
    box.src[1] + nb > sb ||
    box.dst[0] + na > da ||
    box.dst[1] + nb > db ||
    Math.min(...box.src, ...box.dst, na, nb) < 0
  )
    throw new Error(`copyBox: box ${JSON.stringify(box)} outside ${fmtShape(src.shape)} → ${fmtShape(dst.shape)}`);
  return { sb, db, inner };
}
