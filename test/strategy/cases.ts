// Problems for the strategy tests: random inputs, every mask family, uneven lengths, GQA.
import { referenceAttention, type Reference } from '../../src/kernel/reference.js';
import { MaskGrid } from '../../src/mask/grid.js';
import type { MaskSpec } from '../../src/mask/spec.js';
import type { Layout, Problem } from '../../src/run/index.js';
import { randn, Rng } from '../../src/tensor/random.js';

export const MASKS = [
  'full',
  'causal',
  'sliding',
  'prefix',
  'document',
  'document-causal',
  'document-sliding',
  'slices',
  'sparse',
] as const;
export type MaskKind = (typeof MASKS)[number];

function cuts(rng: Rng, S: number): number[] {
  const n = rng.int(1, Math.min(5, S));
  const set = new Set<number>();
  while (set.size < n - 1) set.add(rng.int(1, S - 1));
  return [0, ...[...set].sort((a, b) => a - b), S];
}

export function maskOf(kind: MaskKind, S: number, rng: Rng): MaskSpec {
  switch (kind) {
    case 'full':
      return { kind: 'full' };
    case 'causal':
      return { kind: 'causal' };
    case 'sliding':
      return { kind: 'sliding', left: rng.int(0, 6), right: rng.int(0, 3) };
    case 'prefix':
      return { kind: 'prefix', prefix: rng.int(0, S) };
    case 'document':
      return { kind: 'document', cuSeqlens: cuts(rng, S), inner: { kind: 'full' } };
    case 'document-causal':
      return { kind: 'document', cuSeqlens: cuts(rng, S), inner: { kind: 'causal' } };
    case 'document-sliding':
      return {
        kind: 'document',
        cuSeqlens: cuts(rng, S),
        inner: { kind: 'sliding', left: rng.int(0, 4), right: rng.int(0, 2) },
      };
    // rows before S/4 see nothing; rows after S/2 see two disjoint intervals
    case 'slices': {
      const a = Math.floor(S / 4),
        b = Math.floor(S / 2),
        c = Math.max(1, Math.floor(S / 5));
      return {
        kind: 'slices',
        slices: [
          { q: [a, S], k: [0, c], left: Infinity, right: Infinity },
          { q: [b, S], k: [b, S], left: Infinity, right: 0 },
        ],
      };
    }
    // a narrow band far off the diagonal: most blocks empty, some rows fully masked
    case 'sparse':
      return {
        kind: 'slices',
        slices: [{ q: [Math.floor(S / 2), S], k: [0, S - Math.floor(S / 2)], left: 0, right: 0 }],
      };
  }
}

export interface Case {
  name: string;
  problem: Problem;
  layout: Layout;
  ref: Reference;
}

export function makeCase(
  rng: Rng,
  layout: Layout,
  mask: MaskKind,
  dims: { S: number; H: number; Hkv: number; D: number },
  dtype: 'f64' | 'f32' = 'f64',
  grads = true,
): Case {
  const { S, H, Hkv, D } = dims;
  const spec = maskOf(mask, S, rng);
  const q = randn(rng, 'f64', [S, H, D]),
    k = randn(rng, 'f64', [S, Hkv, D]),
    v = randn(rng, 'f64', [S, Hkv, D]);
  const dout = grads ? randn(rng, 'f64', [S, H, D]) : undefined;
  const scale = 0.3 + rng.next();
  const ref = referenceAttention(q, k, v, MaskGrid.build(spec, S), scale, dout);
  const l = Object.entries(layout)
    .filter(([key]) => key !== 'world' && key !== 'strategy')
    .map(([key, val]) => `${key}=${val}`)
    .join(' ');
  return {
    name: `${layout.strategy} ${l} world=${layout.world} mask=${mask} S=${S} H=${H} Hkv=${Hkv} D=${D} ${dtype}`,
    problem: { q, k, v, dout, mask: spec, scale, dtype },
    layout,
    ref,
  };
}

export function divisors(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);
}
