import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type Interval, MaskAreas, runsOf } from '../../src/mask/area.js';
import { MaskGrid } from '../../src/mask/grid.js';
import { MaskError, type MaskSpec, parseMask } from '../../src/mask/spec.js';
import { classifyTile, maskView, viewArea } from '../../src/mask/view.js';
import { arbMask } from '../helpers/arb.js';
import { naiveAllowed } from '../helpers/naive.js';

test('the lowered grid agrees with each mask definition on every pair', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }).chain((S) => fc.tuple(fc.constant(S), arbMask(S))),
      ([S, spec]) => {
        const g = MaskGrid.build(spec, S);
        let area = 0;
        for (let i = 0; i < S; i++)
          for (let j = 0; j < S; j++) {
            const want = naiveAllowed(spec, i, j);
            assert.equal(g.allowed(i, j), want, `${JSON.stringify(spec)} (${i},${j})`);
            if (want) area++;
          }
        assert.equal(g.area(), area);
      },
    ),
    { numRuns: 150 },
  );
});

test('unions of slices give several intervals per row, merged', () => {
  const spec: MaskSpec = {
    kind: 'slices',
    slices: [
      { q: [0, 10], k: [0, 3], left: Infinity, right: Infinity },
      { q: [0, 10], k: [6, 8], left: Infinity, right: Infinity },
      { q: [5, 10], k: [2, 5], left: Infinity, right: Infinity }, // joins the first on rows 5..9
    ],
  };
  const g = MaskGrid.build(spec, 10);
  assert.equal(g.m, 2);
  for (let i = 0; i < 10; i++)
    for (let j = 0; j < 10; j++) assert.equal(g.allowed(i, j), naiveAllowed(spec, i, j), `(${i},${j})`);
});

test('block classification and area match brute force, also for scattered positions', () => {
  fc.assert(
    fc.property(
      fc
        .integer({ min: 2, max: 30 })
        .chain((S) =>
          fc.tuple(
            fc.constant(S),
            arbMask(S),
            fc.array(fc.integer({ min: -1, max: S - 1 }), { minLength: 1, maxLength: 12 }),
            fc.array(fc.integer({ min: -1, max: S - 1 }), { minLength: 1, maxLength: 12 }),
          ),
        ),
      ([S, spec, qp, kp]) => {
        const g = MaskGrid.build(spec, S);
        const view = maskView(g, Int32Array.from(qp), Int32Array.from(kp));
        let n = 0;
        for (const i of qp) for (const j of kp) if (i >= 0 && j >= 0 && g.allowed(i, j)) n++;
        assert.equal(viewArea(view), n);
        const cls = classifyTile(view, 0, qp.length, 0, kp.length);
        if (cls === 'empty') assert.equal(n, 0);
        if (cls === 'full') assert.equal(n, qp.length * kp.length);
        const c2 = g.classify(0, S, 0, S);
        assert.equal(c2, g.area() === 0 ? 'empty' : g.area() === S * S ? 'full' : 'partial');
      },
    ),
    { numRuns: 200 },
  );
});

test('areas over intervals: a view of few runs (shards, gathered blocks, padding) counts as brute force does, as MaskAreas.block does', () => {
  fc.assert(
    fc.property(
      fc
        .integer({ min: 2, max: 60 })
        .chain((S) =>
          fc.tuple(
            fc.constant(S),
            arbMask(S),
            fc.uniqueArray(fc.integer({ min: 0, max: S }), { minLength: 2, maxLength: 6 }),
            fc.uniqueArray(fc.integer({ min: 0, max: S }), { minLength: 2, maxLength: 6 }),
          ),
        ),
      ([S, spec, qc, kc]) => {
        // positions from alternate stretches between sorted cut points, padding (−1) between them
        const runs = (cuts: number[]): Interval[] => {
          const c = [...cuts].sort((a, b) => a - b),
            out: Interval[] = [];
          for (let i = 0; i + 1 < c.length; i += 2) if (c[i]! < c[i + 1]!) out.push([c[i]!, c[i + 1]!]);
          return out;
        };
        const pos = (rs: Interval[]): Int32Array =>
          Int32Array.from(rs.flatMap(([a, b]) => [-1, ...Array.from({ length: b - a }, (_, i) => a + i)]));
        const g = MaskGrid.build(spec, S),
          qs = runs(qc),
          ks = runs(kc);
        const qp = pos(qs),
          kp = pos(ks);
        let n = 0;
        for (const i of qp) for (const j of kp) if (i >= 0 && j >= 0 && g.allowed(i, j)) n++;
        assert.deepEqual(runsOf(qp), qs);
        assert.equal(viewArea(maskView(g, qp, kp)), n);
        assert.equal(new MaskAreas(spec, S).block(qs, ks).area, n);
      },
    ),
    { numRuns: 300 },
  );
});

test('parseMask reads every CLI form and rejects the rest with a clear message', () => {
  assert.deepEqual(parseMask('causal'), { kind: 'causal' });
  assert.deepEqual(parseMask('sliding:4,-1'), { kind: 'sliding', left: 4, right: -1 });
  assert.deepEqual(parseMask('prefix:7'), { kind: 'prefix', prefix: 7 });
  assert.deepEqual(parseMask('document-causal', [0, 3, 5]), {
    kind: 'document',
    cuSeqlens: [0, 3, 5],
    inner: { kind: 'causal' },
  });
  for (const [bad, msg] of [
    ['bogus', /unknown mask/],
    ['sliding:1', /2 integers/],
    ['sliding:a,b', /2 integers/],
    ['prefix:-2', /≥ 0/],
    ['causal:3', /no argument/],
    ['document', /cu_seqlens/],
  ] as const)
    assert.throws(
      () => parseMask(bad),
      (e: Error) => e instanceof MaskError && msg.test(e.message),
      bad,
    );
  assert.throws(
    () => MaskGrid.build({ kind: 'document', cuSeqlens: [0, 4, 3], inner: { kind: 'full' } }, 3),
    /strictly increasing/,
  );
  assert.throws(
    () => MaskGrid.build({ kind: 'document', cuSeqlens: [0, 4], inner: { kind: 'full' } }, 5),
    /end at the sequence length 5/,
  );
});
