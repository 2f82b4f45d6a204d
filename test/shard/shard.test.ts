import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SHARD_KINDS, ShardMap } from '../../src/shard/shard.js';
import { evenSplit } from '../../src/shard/split.js';
import { hostZeros } from '../../src/tensor/host.js';
import { randn, Rng } from '../../src/tensor/random.js';

const arr = (p: Int32Array): number[] => Array.from(p);

/** Random document boundaries over S tokens. */
const docsArb = (S: number) =>
  fc
    .uniqueArray(fc.integer({ min: 1, max: S - 1 }), { maxLength: Math.min(12, S - 1) })
    .map((cuts) => [0, ...cuts.sort((a, b) => a - b), S]);

/** Any shard kind over 1–9 ranks and up to 90 tokens more than ranks, with random documents (from 2 tokens). */
const shardCase = fc
  .tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 90 }), fc.constantFrom(...SHARD_KINDS), fc.integer())
  .map(([world, extra, kind, seed]) => {
    const S = world + extra;
    const cu = S >= 2 ? fc.sample(docsArb(S), { numRuns: 1, seed })[0]! : undefined;
    return { world, S, kind, cu };
  });

describe('evenSplit', () => {
  it('splits into near-equal parts, larger ones first', () => {
    assert.deepEqual(Array.from(evenSplit(10, 4)), [0, 3, 6, 8, 10]);
    assert.deepEqual(Array.from(evenSplit(2, 4)), [0, 1, 2, 2, 2]);
    assert.deepEqual(Array.from(evenSplit(0, 1)), [0, 0]);
  });
});

describe('ShardMap', () => {
  it('every kind partitions [0, S), with at least one token a rank and increasing local order', () => {
    fc.assert(
      fc.property(shardCase, ({ world, S, kind, cu }) => {
        const m = ShardMap.build(kind, S, world, cu);
        const seen = new Uint8Array(S);
        for (let r = 0; r < world; r++) {
          const p = m.positions(r);
          assert.ok(p.length >= 1, `rank ${r} of ${world} holds nothing (${kind}, S=${S})`);
          for (let i = 0; i < p.length; i++) {
            if (i > 0) assert.ok(p[i]! > p[i - 1]!);
            assert.equal(seen[p[i]!], 0);
            seen[p[i]!] = 1;
          }
        }
        assert.ok(seen.every((x) => x === 1));
      }),
      { numRuns: 300 },
    );
  });

  it("each rank's positions are its runs and its round-robin share of the dealt ranges, and nothing else", () => {
    fc.assert(
      fc.property(shardCase, ({ world, S, kind, cu }) => {
        const m = ShardMap.build(kind, S, world, cu);
        const dealt = m.dealt();
        let dealtSeen = 0;
        for (let r = 0; r < world; r++) {
          const inRuns = m.runs(r).flatMap(([a, b]) => Array.from({ length: b - a }, (_, i) => a + i));
          const rest = arr(m.positions(r)).filter((p) => !inRuns.includes(p));
          assert.equal(
            m.positions(r).length - rest.length,
            inRuns.length,
            `${kind} rank ${r}: a run outside its positions`,
          );
          for (const p of rest)
            assert.ok(
              dealt.some(([a, b]) => a <= p && p < b),
              `${kind}: ${p} in no run, dealt by no range`,
            );
          assert.equal(m.length(r), m.positions(r).length);
          dealtSeen += rest.length;
        }
        // the dealt ranges hold exactly the positions no run holds, spread within one token per range
        assert.equal(
          dealtSeen,
          dealt.reduce((n, [a, b]) => n + b - a, 0),
        );
        if (kind === 'striped') assert.deepEqual(dealt, [[0, S]]);
        if (kind === 'contiguous' || kind === 'zigzag') assert.deepEqual(dealt, []);
      }),
      { numRuns: 300 },
    );
  });

  it('contiguous, zigzag and striped place tokens as their names say', () => {
    assert.deepEqual(
      [0, 1, 2].map((r) => arr(ShardMap.build('contiguous', 8, 3).positions(r))),
      [
        [0, 1, 2],
        [3, 4, 5],
        [6, 7],
      ],
    );
    // 2N = 4 chunks of 3: rank 0 holds chunks 0 and 3, rank 1 chunks 1 and 2
    assert.deepEqual(
      [0, 1].map((r) => arr(ShardMap.build('zigzag', 12, 2).positions(r))),
      [
        [0, 1, 2, 9, 10, 11],
        [3, 4, 5, 6, 7, 8],
      ],
    );
    // uneven: 10 tokens in 4 chunks of 3, 3, 2, 2
    assert.deepEqual(
      [0, 1].map((r) => arr(ShardMap.build('zigzag', 10, 2).positions(r))),
      [
        [0, 1, 2, 8, 9],
        [3, 4, 5, 6, 7],
      ],
    );
    assert.deepEqual(
      [0, 1, 2].map((r) => arr(ShardMap.build('striped', 7, 3).positions(r))),
      [
        [0, 3, 6],
        [1, 4],
        [2, 5],
      ],
    );
  });

  it('doc-zigzag zigzags each long document and deals short ones round robin', () => {
    // documents [0,8) long (≥ 2N = 4), [8,9), [9,10), [10,11) short
    const m = ShardMap.build('doc-zigzag', 11, 2, [0, 8, 9, 10, 11]);
    assert.deepEqual(arr(m.positions(0)), [0, 1, 6, 7, 8, 10]);
    assert.deepEqual(arr(m.positions(1)), [2, 3, 4, 5, 9]);
    // without boundaries it is zigzag
    assert.deepEqual(
      arr(ShardMap.build('doc-zigzag', 10, 2).positions(0)),
      arr(ShardMap.build('zigzag', 10, 2).positions(0)),
    );
  });

  it('doc-zigzag balances causal work per document where whole-sequence zigzag cannot', () => {
    const cu = [0, 40, 52, 64];
    const doc = (p: number): number => cu.findIndex((_, d) => cu[d + 1]! > p);
    const spread = (kind: 'zigzag' | 'doc-zigzag'): number => {
      const w = [0, 1, 2, 3].map((r) =>
        arr(ShardMap.build(kind, 64, 4, cu).positions(r)).reduce((a, p) => a + p - cu[doc(p)]! + 1, 0),
      );
      return Math.max(...w) / Math.min(...w);
    };
    assert.ok(spread('doc-zigzag') < 1.1, `doc-zigzag max/min work ${spread('doc-zigzag')}`);
    assert.ok(spread('zigzag') > 2, `zigzag max/min work ${spread('zigzag')}`);
  });

  it('scatter and gather are inverse, along rows and along lse columns', () => {
    const rng = new Rng(3);
    for (const kind of SHARD_KINDS) {
      const m = ShardMap.build(kind, 13, 4, [0, 2, 13]);
      const t = randn(rng, 'f64', [13, 3, 2]);
      const parts = [0, 1, 2, 3].map((r) => m.scatter(t, r, 0, true));
      parts.forEach((p, r) => {
        assert.ok(p.data.buffer instanceof SharedArrayBuffer);
        const pos = m.positions(r);
        for (let i = 0; i < pos.length; i++)
          assert.deepEqual(
            Array.from(p.data.subarray(i * 6, i * 6 + 6)),
            Array.from(t.data.subarray(pos[i]! * 6, pos[i]! * 6 + 6)),
          );
      });
      assert.deepEqual(m.gather(parts).data, t.data);
      const lse = randn(rng, 'f32', [3, 13]);
      assert.deepEqual(
        m.gather(
          [0, 1, 2, 3].map((r) => m.scatter(lse, r, 1)),
          1,
        ).data,
        lse.data,
      );
    }
  });

  it('refuses a world larger than the sequence and mismatched parts', () => {
    assert.throws(() => ShardMap.build('zigzag', 3, 4), /3 tokens cannot give each of 4 ranks one/);
    const m = ShardMap.build('contiguous', 4, 2);
    assert.throws(
      () => m.gather([hostZeros('f64', [2, 1]), hostZeros('f64', [1, 1])]),
      /rank 1 part f64\[1,1\], expected f64\[2,1\]/,
    );
  });
});
