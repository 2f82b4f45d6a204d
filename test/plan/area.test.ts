// The planner's closed-form mask areas and shard blocks against the exact row-by-row MaskGrid and
// the shard maps the strategies use.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MaskGrid } from '../../src/mask/grid.js';
import type { MaskSpec } from '../../src/mask/spec.js';
import { ShardMap, type ShardKind } from '../../src/shard/shard.js';
import { MaskAreas } from '../../src/mask/area.js';
import { RingWork } from '../../src/plan/work.js';

function docs(S: number, cuts: number[]): number[] {
  const inner = [...new Set(cuts.map((c) => 1 + (c % (S - 1))))].sort((a, b) => a - b);
  return [0, ...inner, S];
}

const maskArb = (S: number): fc.Arbitrary<MaskSpec> =>
  fc.oneof(
    fc.constant<MaskSpec>({ kind: 'full' }),
    fc.constant<MaskSpec>({ kind: 'causal' }),
    fc
      .record({ left: fc.integer({ min: -1, max: S }), right: fc.integer({ min: -1, max: S }) })
      .map((b): MaskSpec => ({ kind: 'sliding', ...b })),
    fc.integer({ min: 0, max: S }).map((prefix): MaskSpec => ({ kind: 'prefix', prefix })),
    fc
      .tuple(
        fc.array(fc.integer({ min: 0, max: 10_000 }), { maxLength: 6 }),
        fc.constantFrom<MaskSpec>({ kind: 'full' }, { kind: 'causal' }, { kind: 'sliding', left: 3, right: 0 }),
      )
      .map(([cuts, inner]): MaskSpec => ({ kind: 'document', cuSeqlens: docs(S, cuts), inner })),
  );

test('rectangle areas equal the MaskGrid row sums for every mask kind', () => {
  fc.assert(
    fc.property(
      fc
        .integer({ min: 2, max: 70 })
        .chain((S) =>
          fc.tuple(
            fc.constant(S),
            maskArb(S),
            fc.tuple(
              fc.integer({ min: 0, max: S }),
              fc.integer({ min: 0, max: S }),
              fc.integer({ min: 0, max: S }),
              fc.integer({ min: 0, max: S }),
            ),
          ),
        ),
      ([S, spec, [a, b, c, d]]) => {
        const grid = MaskGrid.build(spec, S),
          areas = new MaskAreas(spec, S);
        const [q0, q1] = a <= b ? [a, b] : [b, a],
          [k0, k1] = c <= d ? [c, d] : [d, c];
        assert.equal(areas.area(q0, q1, k0, k1), grid.area(q0, q1, k0, k1));
        assert.equal(areas.total, grid.area());
      },
    ),
    { numRuns: 400 },
  );
});

test('causal counts half: the density of a causal mask is (S+1)/2S', () => {
  for (const S of [1, 7, 1000, 1 << 20])
    assert.equal(new MaskAreas({ kind: 'causal' }, S).density(), (S + 1) / (2 * S));
  // a million-token causal mask costs no grid: closed form only
  const big = new MaskAreas({ kind: 'causal' }, 1 << 20);
  assert.equal(big.area(0, 1 << 19, 1 << 19, 1 << 20), 0);
  assert.equal((big as unknown as { grid?: unknown }).grid, undefined);
});

/** Brute force over the shard map of the strategies: pairs and rows seen by rank i's queries in rank j's keys. */
function bruteBlock(grid: MaskGrid, map: ShardMap, i: number, j: number): { area: number; rows: number } {
  const keys = new Set(map.positions(j));
  let area = 0,
    rows = 0;
  for (const q of map.positions(i)) {
    let n = 0;
    for (const k of keys) if (grid.allowed(q, k)) n++;
    area += n;
    if (n > 0) rows++;
  }
  return { area, rows };
}

test('ring blocks match the shard maps of src/shard (contiguous, zigzag, doc-zigzag)', () => {
  const S = 96;
  const cases: [ShardKind, MaskSpec, number[] | undefined][] = [
    ['contiguous', { kind: 'causal' }, undefined],
    ['zigzag', { kind: 'causal' }, undefined],
    ['zigzag', { kind: 'sliding', left: 10, right: 0 }, undefined],
    ['doc-zigzag', { kind: 'document', cuSeqlens: [0, 40, 90, 96], inner: { kind: 'causal' } }, [0, 40, 90, 96]],
  ];
  for (const [kind, spec, cu] of cases) {
    for (const r of [2, 3, 4]) {
      const grid = MaskGrid.build(spec, S),
        map = ShardMap.build(kind, S, r, cu);
      const work = new RingWork(new MaskAreas(spec, S), map);
      for (let i = 0; i < r; i++) {
        for (let j = 0; j < r; j++) {
          const want = bruteBlock(grid, map, i, j),
            got = work.block(i, j);
          // doc-zigzag deals short documents token by token; the planner spreads them evenly
          if (kind === 'doc-zigzag')
            assert.ok(
              Math.abs(got.area - want.area) <= 0.1 * Math.max(want.area, 40),
              `${kind} r=${r} (${i},${j}) ${got.area} vs ${want.area}`,
            );
          else assert.equal(got.area, want.area, `${kind} r=${r} block (${i},${j})`);
          // rows: the planner counts whole shard chunks a kernel call touches; under a causal mask
          // every row of such a chunk sees a key, so the counts agree
          if (spec.kind === 'causal') assert.equal(got.rows, want.rows, `${kind} r=${r} rows (${i},${j})`);
        }
      }
    }
  }
});

test('zigzag balances a causal mask; contiguous does not', () => {
  const areas = new MaskAreas({ kind: 'causal' }, 1 << 16);
  assert.ok(new RingWork(areas, ShardMap.build('zigzag', 1 << 16, 8)).imbalance() < 1.001);
  // the last of 8 contiguous ranks does (2·8−1)/8 ≈ 1.9 × the mean
  assert.ok(Math.abs(new RingWork(areas, ShardMap.build('contiguous', 1 << 16, 8)).imbalance() - 15 / 8) < 0.01);
});

test("a 16,384-rank ring over a million tokens: blocks from the ShardMap's intervals (4 rectangles a zigzag block), no position array made", () => {
  const S = 1 << 20,
    r = 16384;
  class Counted extends MaskAreas {
    rectangles = 0;
    override area(q0: number, q1: number, k0: number, k1: number): number {
      this.rectangles++;
      return super.area(q0, q1, k0, k1);
    }
  }
  const areas = new Counted({ kind: 'causal' }, S),
    map = ShardMap.build('zigzag', S, r);
  const work = new RingWork(areas, map);
  areas.rectangles = 0;
  const b = work.block(3, 7000);
  assert.equal(areas.rectangles, 4);
  assert.equal(b.area, 2 * (S / (2 * r)) ** 2); // rank 3's late chunk sees both of rank 7000's chunks, its early one neither
  assert.ok(work.imbalance() < 1.001);
  assert.ok(
    (map as unknown as { pos: unknown[] }).pos.every((p) => p === undefined),
    'the planner made position arrays',
  );
});
