// The mask language. Every mask is a declarative spec that lowers to slices over global token
// positions (MagiAttention's idea): {q: [q0, q1), k: [k0, k1), band}. A band {left, right} keeps
// key j for query i when  i' − left ≤ j' ≤ i' + right,  with i', j' measured from the slice's
// bottom-right-aligned diagonal (FlashAttention's convention). full = (∞, ∞), causal = (∞, 0).

import { UserError } from '../errors.js';

export type MaskSpec =
  | { kind: 'full' }
  | { kind: 'causal' }
  | { kind: 'sliding'; left: number; right: number } // negative side = unbounded
  | { kind: 'prefix'; prefix: number } // bidirectional over [0, prefix), causal after
  | { kind: 'document'; cuSeqlens: readonly number[]; inner: MaskSpec } // `inner` inside each document
  | { kind: 'slices'; slices: readonly Slice[] };

export interface Slice {
  q: readonly [number, number];
  k: readonly [number, number];
  left: number; // Infinity = unbounded
  right: number;
}

export class MaskError extends UserError {}

const FULL = { left: Infinity, right: Infinity };
const CAUSAL = { left: Infinity, right: 0 };

/** Lower a spec to slices over a sequence of S tokens. */
export function lower(spec: MaskSpec, S: number): Slice[] {
  switch (spec.kind) {
    case 'full':
      return S > 0 ? [{ q: [0, S], k: [0, S], ...FULL }] : [];
    case 'causal':
      return S > 0 ? [{ q: [0, S], k: [0, S], ...CAUSAL }] : [];
    case 'sliding': {
      const left = spec.left < 0 ? Infinity : spec.left;
      const right = spec.right < 0 ? Infinity : spec.right;
      return S > 0 ? [{ q: [0, S], k: [0, S], left, right }] : [];
    }
    case 'prefix': {
      const p = Math.min(spec.prefix, S);
      const out: Slice[] = lower({ kind: 'causal' }, S);
      if (p > 0) out.push({ q: [0, S], k: [0, p], ...FULL });
      return out;
    }
    case 'document': {
      checkCuSeqlens(spec.cuSeqlens, S);
      const out: Slice[] = [];
      const cu = spec.cuSeqlens;
      for (let d = 0; d + 1 < cu.length; d++) {
        const s0 = cu[d]!,
          len = cu[d + 1]! - s0;
        for (const sl of lower(spec.inner, len)) {
          out.push({
            q: [sl.q[0] + s0, sl.q[1] + s0],
            k: [sl.k[0] + s0, sl.k[1] + s0],
            left: sl.left,
            right: sl.right,
          });
        }
      }
      return out;
    }
    case 'slices':
      for (const sl of spec.slices) {
        if (!(0 <= sl.q[0] && sl.q[0] <= sl.q[1] && sl.q[1] <= S && 0 <= sl.k[0] && sl.k[0] <= sl.k[1] && sl.k[1] <= S))
          throw new MaskError(`slice q=[${sl.q}] k=[${sl.k}] lies outside [0, ${S})`);
      }
      return spec.slices.map((s) => ({ ...s }));
  }
}

export function checkCuSeqlens(cu: readonly number[], S: number): void {
  if (cu.length < 2) throw new MaskError('cu_seqlens needs at least two entries');
  if (cu[0] !== 0) throw new MaskError(`cu_seqlens must start at 0, not ${cu[0]}`);
  for (let i = 1; i < cu.length; i++) {
    if (!Number.isInteger(cu[i]) || cu[i]! <= cu[i - 1]!)
      throw new MaskError(
        `cu_seqlens must be strictly increasing integers (entry ${i} is ${cu[i]} after ${cu[i - 1]})`,
      );
  }
  if (cu[cu.length - 1] !== S)
    throw new MaskError(`cu_seqlens must end at the sequence length ${S}, not ${cu[cu.length - 1]}`);
}

/** The interval [lo, hi) of keys that row q of slice `s` sees (may be empty). */
export function sliceRow(s: Slice, q: number): [number, number] {
  const diag = s.k[0] + (q - s.q[0]) + (s.k[1] - s.k[0]) - (s.q[1] - s.q[0]);
  const lo = s.left === Infinity ? s.k[0] : Math.max(s.k[0], diag - s.left);
  const hi = s.right === Infinity ? s.k[1] : Math.min(s.k[1], diag + s.right + 1);
  return [lo, Math.max(lo, hi)];
}

/**
 * Parse a mask name as the CLI takes it: full, causal, sliding:L,R, prefix:N, document,
 * document-causal, document-sliding:L,R. Document masks need cu_seqlens.
 */
export function parseMask(text: string, cuSeqlens?: readonly number[]): MaskSpec {
  const [name, arg] = text.includes(':')
    ? [text.slice(0, text.indexOf(':')), text.slice(text.indexOf(':') + 1)]
    : [text, undefined];
  const ints = (want: number): number[] => {
    const parts = (arg ?? '').split(',');
    if (arg === undefined || parts.length !== want || parts.some((p) => !/^-?\d+$/.test(p.trim())))
      throw new MaskError(
        `mask '${text}': expected ${want === 1 ? 'one integer' : `${want} integers separated by a comma`} after '${name}:'`,
      );
    return parts.map((p) => Number(p.trim()));
  };
  const noArg = (spec: MaskSpec): MaskSpec => {
    if (arg !== undefined) throw new MaskError(`mask '${name}' takes no argument`);
    return spec;
  };
  const doc = (inner: MaskSpec): MaskSpec => {
    if (!cuSeqlens) throw new MaskError(`mask '${name}' needs cu_seqlens (a document boundary list)`);
    return { kind: 'document', cuSeqlens, inner };
  };
  switch (name) {
    case 'full':
      return noArg({ kind: 'full' });
    case 'causal':
      return noArg({ kind: 'causal' });
    case 'sliding': {
      const [l, r] = ints(2);
      return { kind: 'sliding', left: l!, right: r! };
    }
    case 'prefix': {
      const [p] = ints(1);
      if (p! < 0) throw new MaskError(`mask '${text}': the prefix length must be ≥ 0`);
      return { kind: 'prefix', prefix: p! };
    }
    case 'document':
      return noArg(doc({ kind: 'full' }));
    case 'document-causal':
      return noArg(doc({ kind: 'causal' }));
    case 'document-sliding': {
      const [l, r] = ints(2);
      return doc({ kind: 'sliding', left: l!, right: r! });
    }
    default:
      throw new MaskError(
        `unknown mask '${text}' (known: full, causal, sliding:L,R, prefix:N, document, document-causal, document-sliding:L,R)`,
      );
  }
}

/** A short name for a spec, as parseMask reads it. */
export function maskName(spec: MaskSpec): string {
  switch (spec.kind) {
    case 'full':
    case 'causal':
      return spec.kind;
    case 'sliding':
      return `sliding:${spec.left},${spec.right}`;
    case 'prefix':
      return `prefix:${spec.prefix}`;
    case 'document': {
      const inner = maskName(spec.inner);
      return inner === 'full' ? 'document' : `document-${inner}`;
    }
    case 'slices':
      return `slices(${spec.slices.length})`;
  }
}
