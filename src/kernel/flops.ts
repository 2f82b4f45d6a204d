// The FLOP count every throughput figure uses (FlashAttention's convention): the forward does two
// matrix products of 2·D multiply-adds per unmasked (query, key) pair and head, and the backward
// 2.5 times the forward, so forward + backward is 3.5 forwards.

export type Pass = 'fwd' | 'bwd' | 'fwd+bwd';

/** The passes a kernel is timed on (the backward alone needs the forward's outputs). */
export type KernelPass = Exclude<Pass, 'bwd'>;

/** FLOPs of each pass in forwards. */
export const PASS_FACTOR: Record<Pass, number> = { fwd: 1, bwd: 2.5, 'fwd+bwd': 3.5 };

/** FLOPs of attention over `area` unmasked (query, key) pairs with `heads` query heads of `headDim`. */
export function attentionFlops(area: number, heads: number, headDim: number, pass: Pass): number {
  return 4 * area * heads * headDim * PASS_FACTOR[pass];
}
