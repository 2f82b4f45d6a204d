// The non-finite policy (README, "Non-finite values"). A NaN or an infinity in q, k, v or dout
// is either an error — the default, and what the CLI always does — or propagated as IEEE
// arithmetic would: NaN in, NaN in every output it reaches. Either way it is never mistaken for
// a fully masked row, which alone gives out 0 and lse −∞.
import { UserError } from '../errors.js';
import { asF64, type HostTensor } from '../tensor/host.js';

/** 'error': refuse non-finite inputs before computing; 'propagate': compute, NaN flows to the outputs it reaches. */
export type NonFinite = 'error' | 'propagate';

/** The flat index of the first NaN or ±∞ in `t`, or −1. */
export function firstNonFinite(t: HostTensor): number {
  const x = t.dtype === 'f64' || t.dtype === 'f32' ? (t.data as Float64Array | Float32Array) : asF64(t);
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i]!)) return i;
  return -1;
}

/** A flat index as [i, j, …] in `shape`. */
export function indexIn(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = flat % shape[d]!;
    flat = Math.floor(flat / shape[d]!);
  }
  return idx;
}

/** Throw a one-line UserError naming `name` and its first non-finite element, if it has one. */
export function checkFinite(name: string, t: HostTensor): void {
  const i = firstNonFinite(t);
  if (i < 0) return;
  const x = t.dtype === 'f64' || t.dtype === 'f32' ? (t.data as Float64Array)[i]! : asF64(t)[i]!;
  throw new UserError(
    `${name} holds ${x} at [${indexIn(i, t.shape).join(', ')}]: weft refuses NaN and infinite inputs (see "Non-finite values" in the README)`,
  );
}
