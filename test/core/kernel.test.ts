import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { attendSingle } from '../../src/kernel/attend.js';
import { CpuKernel } from '../../src/backends/cpu/kernel.js';
import { MaskGrid } from '../../src/mask/grid.js';
import type { MaskSpec } from '../../src/mask/spec.js';
import { maskView } from '../../src/mask/view.js';
import { asF64, castHost, type HostTensor, hostZeros } from '../../src/tensor/host.js';
import { randn, Rng } from '../../src/tensor/random.js';
import { naiveAttention, rel } from '../helpers/naive.js';
import { arbMask } from '../helpers/arb.js';

const kernel = new CpuKernel();

interface Case {
  S: number;
  H: number;
  Hkv: number;
  D: number;
  spec: MaskSpec;
  seed: number;
}

function inputs(
  c: Case,
  dtype: 'f64' | 'f32' = 'f64',
): { q: HostTensor; k: HostTensor; v: HostTensor; dout: HostTensor } {
  const rng = new Rng(c.seed);
  return {
    q: randn(rng, dtype, [c.S, c.H, c.D]),
    k: randn(rng, dtype, [c.S, c.Hkv, c.D]),
    v: randn(rng, dtype, [c.S, c.Hkv, c.D]),
    dout: randn(rng, dtype, [c.S, c.H, c.D]),
  };
}

function check(c: Case, dtype: 'f64' | 'f32', tol: number): void {
  const x = inputs(c, dtype);
  const scale = 1 / Math.sqrt(c.D);
  const r = attendSingle(kernel, x.q, x.k, x.v, c.spec, scale, x.dout);
  const n = naiveAttention(asF64(x.q), asF64(x.k), asF64(x.v), c.S, c.H, c.Hkv, c.D, c.spec, scale, asF64(x.dout));
  const label = JSON.stringify(c);
  for (const [name, got, want] of [
    ['out', r.out, n.out],
    ['lse', r.lse, n.lse],
    ['dq', r.dq!, n.dq],
    ['dk', r.dk!, n.dk],
    ['dv', r.dv!, n.dv],
  ] as const) {
    const e = rel(asF64(got), want);
    // a gradient that cancels to far below its O(1) terms (unit-normal inputs; S = 2, D = 1:
    // ‖dq‖ ≈ 4e-4; a 2-token document, D = 1: dk ≈ ±2e-3) carries the rounding of those terms:
    // judged against an RMS of at least 0.1 per element, not its own norm
    const norm = Math.hypot(...want),
      floor = 0.1 * Math.sqrt(want.length);
    const judged = norm >= floor || !Number.isFinite(e) ? e : (e * norm) / floor;
    assert.ok(
      judged <= tol,
      `${name} error ${e} > ${tol} for ${label}${judged !== e ? ` (${judged} against the floor)` : ''}`,
    );
  }
}

const caseArb = fc
  .record({
    S: fc.integer({ min: 1, max: 70 }),
    Hkv: fc.integer({ min: 1, max: 2 }),
    group: fc.integer({ min: 1, max: 3 }),
    D: fc.constantFrom(1, 4, 8),
    seed: fc.integer({ min: 1, max: 1e6 }),
  })
  .chain((b) => arbMask(b.S).map((spec) => ({ S: b.S, H: b.Hkv * b.group, Hkv: b.Hkv, D: b.D, spec, seed: b.seed })));

test('kernel forward and backward match the naive f64 reference (f64, random shapes, masks, GQA)', () => {
  fc.assert(
    fc.property(caseArb, (c) => check(c, 'f64', 1e-12)),
    { numRuns: 60 },
  );
});

test('kernel in f32 stays within 1e-5 of the reference', () => {
  fc.assert(
    fc.property(caseArb, (c) => check(c, 'f32', 1e-5)),
    { numRuns: 25 },
  );
});

test('tiles larger than one block exercise skipping: long causal, sliding and document cases', () => {
  check({ S: 301, H: 2, Hkv: 1, D: 8, spec: { kind: 'causal' }, seed: 7 }, 'f64', 1e-12);
  check({ S: 257, H: 2, Hkv: 2, D: 4, spec: { kind: 'sliding', left: 40, right: 5 }, seed: 8 }, 'f64', 1e-12);
  check(
    {
      S: 233,
      H: 4,
      Hkv: 2,
      D: 4,
      spec: { kind: 'document', cuSeqlens: [0, 1, 100, 165, 233], inner: { kind: 'causal' } },
      seed: 9,
    },
    'f64',
    1e-12,
  );
});

test('splitting keys into blocks and merging gives the whole result, in any block order', () => {
  fc.assert(
    fc.property(caseArb, fc.integer({ min: 1, max: 4 }), fc.boolean(), (c, nb, reverse) => {
      const x = inputs(c);
      const grid = MaskGrid.build(c.spec, c.S);
      const pos = Int32Array.from({ length: c.S }, (_, i) => i);
      const whole = kernel.forward({ q: x.q, k: x.k, v: x.v, view: maskView(grid, pos, pos), scale: 0.3 });
      const cuts = Array.from({ length: nb + 1 }, (_, i) => Math.round((i * c.S) / nb));
      const order = [...Array(nb).keys()];
      if (reverse) order.reverse();
      let state;
      for (const b of order) {
        const [a, e] = [cuts[b]!, cuts[b + 1]!];
        const slice = (t: HostTensor): HostTensor => ({
          ...t,
          shape: [e - a, c.Hkv, c.D],
          data: t.data.slice(a * c.Hkv * c.D, e * c.Hkv * c.D),
        });
        state = kernel.forward({
          q: x.q,
          k: slice(x.k),
          v: slice(x.v),
          view: maskView(grid, pos, pos.slice(a, e)),
          scale: 0.3,
          state,
        });
      }
      assert.ok(rel(asF64(state!.out as HostTensor), asF64(whole.out as HostTensor)) < 1e-13);
      assert.ok(rel(asF64(state!.lse as HostTensor), asF64(whole.lse as HostTensor)) < 1e-13);
    }),
    { numRuns: 40 },
  );
});

test('fully masked rows give out 0, lse −∞ and zero gradients — never NaN', () => {
  // rows 0..3 see nothing; rows 4.. see keys [0, 4)
  const spec: MaskSpec = { kind: 'slices', slices: [{ q: [4, 9], k: [0, 4], left: Infinity, right: Infinity }] };
  const c = { S: 9, H: 2, Hkv: 1, D: 4, spec, seed: 3 };
  const x = inputs(c);
  const r = attendSingle(kernel, x.q, x.k, x.v, spec, 0.5, x.dout);
  for (const t of [r.out, r.lse, r.dq!, r.dk!, r.dv!]) assert.ok(!Array.from(t.data).some(Number.isNaN));
  for (let h = 0; h < 2; h++) for (let i = 0; i < 4; i++) assert.equal(r.lse.data[h * 9 + i], -Infinity);
  assert.ok(Array.from(r.out.data.slice(0, 4 * 2 * 4)).every((v) => v === 0));
  assert.ok(Array.from(r.dq!.data.slice(0, 4 * 2 * 4)).every((v) => v === 0));
  assert.ok(Array.from(r.dk!.data.slice(4 * 4)).every((v) => v === 0)); // keys 4.. are seen by nobody
  check(c, 'f64', 1e-12);
});

test('non-finite inputs: refused by default; with nonFinite propagate, NaN reaches the outputs — a poisoned row is never a masked one', () => {
  // rows 0..3 see nothing; rows 4.. see keys [0, 4)
  const spec: MaskSpec = { kind: 'slices', slices: [{ q: [4, 9], k: [0, 4], left: Infinity, right: Infinity }] };
  const [S, H, D] = [9, 2, 4];
  const x = inputs({ S, H, Hkv: 1, D, spec, seed: 3 });
  const clean = attendSingle(kernel, x.q, x.k, x.v, spec, 0.5, x.dout);
  const row = (t: HostTensor, r: number, h: number): number[] =>
    Array.from(t.data.slice((r * H + h) * D, (r * H + h + 1) * D));
  const masked = (r: { out: HostTensor; lse: HostTensor }): void => {
    for (let h = 0; h < H; h++)
      for (let i = 0; i < 4; i++) {
        assert.equal(r.lse.data[h * S + i], -Infinity);
        assert.deepEqual(row(r.out, i, h), [0, 0, 0, 0]);
      }
  };
  const poison = (t: HostTensor, i: number, value: number): HostTensor => {
    const c = castHost(t, 'f64');
    c.data[i] = value;
    return c;
  };

  assert.throws(
    () => attendSingle(kernel, poison(x.q, (6 * H + 0) * D + 2, NaN), x.k, x.v, spec, 0.5),
    /^UserError: q holds NaN at \[6, 0, 2\]/,
  );
  assert.throws(
    () => attendSingle(kernel, x.q, x.k, x.v, spec, 0.5, poison(x.dout, 0, Infinity), { nonFinite: 'error' }),
    /dout holds Infinity at \[0, 0, 0\]/,
  );

  for (const [what, value] of [
    ['NaN', NaN],
    ['+Inf', Infinity],
    ['-Inf', -Infinity],
  ] as const) {
    // one query row poisoned: that row's out and lse are NaN, every other row exactly as before
    const q = poison(x.q, (6 * H + 0) * D + 2, value);
    const r = attendSingle(kernel, q, x.k, x.v, spec, 0.5, x.dout, { nonFinite: 'propagate' });
    assert.ok(Number.isNaN(r.lse.data[0 * S + 6]!), `${what} in q: lse ${r.lse.data[6]}`);
    assert.ok(row(r.out, 6, 0).every(Number.isNaN), `${what} in q: out ${row(r.out, 6, 0)}`);
    assert.ok(row(r.dq!, 6, 0).every(Number.isNaN), `${what} in q: dq`);
    for (let i = 4; i < S; i++)
      for (let h = 0; h < H; h++)
        if (i !== 6 || h !== 0) {
          assert.deepEqual(row(r.out, i, h), row(clean.out, i, h));
          assert.equal(r.lse.data[h * S + i], clean.lse.data[h * S + i]);
        }
    masked(r);
  }
  // one key entry poisoned (the audit's −∞ in k): every row that sees it has a NaN or an exact IEEE
  // result, never lse −∞; the rows that see nothing stay out 0, lse −∞
  for (const value of [NaN, -Infinity, Infinity]) {
    const k = poison(x.k, (1 * 1 + 0) * D + 3, value);
    const r = attendSingle(kernel, x.q, k, x.v, spec, 0.5, x.dout, { nonFinite: 'propagate' });
    for (let h = 0; h < H; h++)
      for (let i = 4; i < S; i++) {
        const l = r.lse.data[h * S + i]!;
        assert.notEqual(l, -Infinity, `k ${value}: row ${i} head ${h} looks masked`);
        if (Number.isNaN(l)) assert.ok(row(r.out, i, h).every(Number.isNaN));
      }
    if (Number.isNaN(value))
      for (let h = 0; h < H; h++) for (let i = 4; i < S; i++) assert.ok(Number.isNaN(r.lse.data[h * S + i]!));
    masked(r);
  }
  // a NaN in v reaches the outputs of the rows that see it, and only those
  const r = attendSingle(kernel, x.q, x.k, poison(x.v, 2 * D, NaN), spec, 0.5, undefined, { nonFinite: 'propagate' });
  for (let h = 0; h < H; h++) for (let i = 4; i < S; i++) assert.ok(Number.isNaN(r.out.data[(i * H + h) * D]!));
  masked(r);
});

test('gradients agree with central finite differences of sum(out · dout)', () => {
  const c = { S: 11, H: 2, Hkv: 1, D: 3, spec: { kind: 'sliding', left: 3, right: 1 } as MaskSpec, seed: 11 };
  const x = inputs(c);
  const scale = 0.7;
  const loss = (q: HostTensor, k: HostTensor, v: HostTensor): number => {
    const out = attendSingle(kernel, q, k, v, c.spec, scale).out;
    let s = 0;
    for (let i = 0; i < out.data.length; i++) s += out.data[i]! * x.dout.data[i]!;
    return s;
  };
  const g = attendSingle(kernel, x.q, x.k, x.v, c.spec, scale, x.dout);
  const eps = 1e-6;
  for (const [name, t, grad] of [
    ['q', x.q, g.dq!],
    ['k', x.k, g.dk!],
    ['v', x.v, g.dv!],
  ] as const) {
    for (const idx of [0, 5, t.data.length - 1, Math.floor(t.data.length / 2)]) {
      const bump = (delta: number): number => {
        const tt = castHost(t, 'f64');
        tt.data[idx] = tt.data[idx]! + delta;
        return name === 'q' ? loss(tt, x.k, x.v) : name === 'k' ? loss(x.q, tt, x.v) : loss(x.q, x.k, tt);
      };
      const fd = (bump(eps) - bump(-eps)) / (2 * eps);
      assert.ok(
        Math.abs(fd - grad.data[idx]!) < 1e-7 * Math.max(1, Math.abs(fd)),
        `d${name}[${idx}]: ${grad.data[idx]} vs ${fd}`,
      );
    }
  }
});

test('merge is stable with −∞ on either side and symmetric', () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.constant(-Infinity), fc.double({ min: -50, max: 50, noNaN: true })), {
        minLength: 2,
        maxLength: 2,
      }),
      fc.array(fc.double({ min: -5, max: 5, noNaN: true }), { minLength: 2, maxLength: 2 }),
      ([la, lb], [oa, ob]) => {
        const mk = (o: number, l: number) => {
          const out = hostZeros('f64', [1, 1, 1]),
            lse = hostZeros('f64', [1, 1]);
          out.data[0] = l === -Infinity ? 0 : o;
          lse.data[0] = l;
          return { out, lse };
        };
        const ab = mk(oa!, la!),
          ba = mk(ob!, lb!);
        kernel.merge(ab, mk(ob!, lb!));
        kernel.merge(ba, mk(oa!, la!));
        for (const s of [ab, ba]) assert.ok(!Number.isNaN(s.out.data[0]) && !Number.isNaN(s.lse.data[0]));
        assert.ok(Math.abs(ab.out.data[0]! - ba.out.data[0]!) < 1e-12);
        const want = Math.log(Math.exp(la!) + Math.exp(lb!));
        if (Number.isFinite(want)) assert.ok(Math.abs(ab.lse.data[0]! - want) < 1e-9 * Math.max(1, Math.abs(want)));
        else assert.equal(ab.lse.data[0], -Infinity);
      },
    ),
    { numRuns: 300 },
  );
});
