// fast-check generators shared by the tests.
import fc from 'fast-check';
import type { MaskSpec } from '../../src/mask/spec.js';

/** Random mask specs over a sequence of S tokens. */
export function arbMask(S: number): fc.Arbitrary<MaskSpec> {
  const inner = fc.oneof(
    fc.constant<MaskSpec>({ kind: 'full' }),
    fc.constant<MaskSpec>({ kind: 'causal' }),
    fc.record({
      kind: fc.constant('sliding' as const),
      left: fc.integer({ min: -1, max: 8 }),
      right: fc.integer({ min: -1, max: 8 }),
    }),
    fc.record({ kind: fc.constant('prefix' as const), prefix: fc.integer({ min: 0, max: S }) }),
  );
  const cuts = fc
    .uniqueArray(fc.integer({ min: 1, max: Math.max(1, S - 1) }), { maxLength: 4 })
    .map((c) => [0, ...c.filter((x) => x < S).sort((a, b) => a - b), S]);
  return fc.oneof(inner, fc.record({ kind: fc.constant('document' as const), cuSeqlens: cuts, inner }));
}
