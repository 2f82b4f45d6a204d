// Every strategy × shard × mask × world 1–8 against the f64 reference, forward and backward.
// The covering set gives every (strategy, mask) pair all four shards across the worlds and every
// (strategy, world) pair all nine masks; a seeded random sample adds larger, odder problems.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Layout, runBatch, type RunResult } from '../../src/run/index.js';
import { SHARD_KINDS } from '../../src/shard/shard.js';
import { relError } from '../../src/tensor/host.js';
import { randn, Rng } from '../../src/tensor/random.js';
import { CpuKernel } from '../../src/backends/cpu/kernel.js';
import { attendSingle } from '../../src/kernel/attend.js';
import { type Case, divisors, makeCase, MASKS } from './cases.js';

const VARIANTS = [
  'ring',
  'allgather',
  'ulysses',
  'usp head-first',
  'usp context-first',
  'double-ring',
  'tokenring',
] as const;
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(0, xs.length - 1)]!;

/** A layout of `variant` on `world` ranks with random degrees, and head counts that fit it. */
function layoutFor(
  rng: Rng,
  variant: (typeof VARIANTS)[number],
  world: number,
  shard: Layout['shard'],
): { layout: Layout; H: number; Hkv: number } {
  const [strategy, placement] = variant.split(' ') as [Layout['strategy'], Layout['placement']];
  const layout: Layout = { strategy, world, shard };
  let u = 1;
  if (strategy === 'ulysses') u = world;
  if (strategy === 'usp') {
    u = pick(rng, divisors(world));
    layout.ulysses = u;
    layout.ring = world / u;
    layout.placement = placement;
  }
  if (strategy === 'double-ring') layout.inner = pick(rng, divisors(world));
  const H = u * pick(rng, u > 2 ? [1, 2] : [1, 2, 4]);
  // any divisor of H: covers MHA, GQA, MQA, u > Hkv and the irregular Ulysses head splits
  return { layout, H, Hkv: pick(rng, divisors(H)) };
}

function check(c: Case, r: RunResult, tol: number): string[] {
  const bad: string[] = [];
  for (const n of ['out', 'lse', 'dq', 'dk', 'dv'] as const) {
    const got = r[n],
      want = c.ref[n];
    if (!got || !want) {
      bad.push(`${c.name}: ${n} missing`);
      continue;
    }
    const e = relError(got, want);
    if (!(e <= tol)) bad.push(`${c.name}: ${n} error ${e}`);
  }
  if (r.out.dtype !== c.problem.dtype) bad.push(`${c.name}: out is ${r.out.dtype}`);
  if (r.lse.dtype !== c.problem.dtype) bad.push(`${c.name}: lse is ${r.lse.dtype}, not the accumulation type`);
  return bad;
}

describe('strategies match the f64 reference (1e-10 relative), forward and backward', () => {
  const rng = new Rng(2026);
  for (let world = 1; world <= 8; world++) {
    it(`world ${world}: covering set`, async () => {
      const cases: Case[] = [];
      VARIANTS.forEach((variant, vi) =>
        MASKS.forEach((mask, mi) => {
          const shard = SHARD_KINDS[(world + vi + mi) % SHARD_KINDS.length]!;
          const { layout, H, Hkv } = layoutFor(rng, variant, world, shard);
          cases.push(makeCase(rng, layout, mask, { S: rng.int(world, world + 24), H, Hkv, D: rng.int(2, 5) }));
        }),
      );
      const results = await runBatch(cases);
      assert.deepEqual(
        cases.flatMap((c, i) => check(c, results[i]!, 1e-10)),
        [],
      );
    });
  }

  it('a seeded random sample: larger and odder problems', async () => {
    const r = new Rng(77);
    const byWorld = new Map<number, Case[]>();
    for (let i = 0; i < 48; i++) {
      const world = r.int(1, 8);
      const { layout, H, Hkv } = layoutFor(r, pick(r, VARIANTS), world, pick(r, SHARD_KINDS));
      const c = makeCase(r, layout, pick(r, MASKS), { S: r.int(world, 100), H, Hkv, D: r.int(1, 8) });
      byWorld.set(world, [...(byWorld.get(world) ?? []), c]);
    }
    const bad: string[] = [];
    for (const cases of byWorld.values()) {
      const results = await runBatch(cases);
      cases.forEach((c, i) => bad.push(...check(c, results[i]!, 1e-10)));
    }
    assert.deepEqual(bad, []);
  });

  it('f32: running state in f32, results within 1e-5 of the f64 reference', async () => {
    const r = new Rng(5);
    const cases = VARIANTS.map((variant) => {
      const { layout, H, Hkv } = layoutFor(r, variant, 4, 'zigzag');
      return makeCase(r, layout, 'causal', { S: 90, H, Hkv, D: 8 }, 'f32');
    });
    const results = await runBatch(cases);
    assert.deepEqual(
      cases.flatMap((c, i) => check(c, results[i]!, 1e-5)),
      [],
    );
  });

  it('forward only: no gradients, no backward traffic', async () => {
    const r = new Rng(9);
    const c = makeCase(r, { strategy: 'ring', world: 3 }, 'causal', { S: 20, H: 2, Hkv: 1, D: 4 }, 'f64', false);
    const [res] = await runBatch([c]);
    assert.equal(res!.dq, undefined);
    assert.ok(relError(res!.out, c.ref.out) < 1e-12);
    assert.ok(res!.stats.steps.every((s) => s.label.startsWith('ring fwd')));
  });
});

describe('non-finite inputs across ranks', () => {
  it('a NaN in one query row reaches exactly the outputs it reaches on one rank, in every strategy', async () => {
    const rng = new Rng(3),
      [S, H, D] = [24, 4, 4];
    const q = randn(rng, 'f64', [S, H, D]),
      k = randn(rng, 'f64', [S, 2, D]),
      v = randn(rng, 'f64', [S, 2, D]),
      dout = randn(rng, 'f64', [S, H, D]);
    q.data[(10 * H + 1) * D] = NaN;
    const mask = { kind: 'causal' } as const;
    const one = attendSingle(new CpuKernel(), q, k, v, mask, 0.5, dout, { nonFinite: 'propagate' });
    const nan = (t: { data: ArrayLike<number> }): string =>
      Array.from(t.data, (x) => (Number.isNaN(x) ? '1' : '0')).join('');
    assert.ok(nan(one.out).includes('1') && nan(one.dk!).includes('1') && !nan(one.lse).startsWith('1'));
    const layouts: Layout[] = [
      { strategy: 'ring', world: 4 },
      { strategy: 'ulysses', world: 4 },
      { strategy: 'usp', world: 4, ulysses: 2 },
      { strategy: 'tokenring', world: 4 },
      { strategy: 'allgather', world: 4 },
      { strategy: 'double-ring', world: 4, inner: 2 },
    ];
    const results = await runBatch(
      layouts.map((layout) => ({ problem: { q, k, v, dout, mask, scale: 0.5, dtype: 'f64' as const }, layout })),
    );
    results.forEach((r, i) => {
      for (const n of ['out', 'lse', 'dq', 'dk', 'dv'] as const)
        assert.equal(nan(r[n]!), nan(one[n]!), `${layouts[i]!.strategy} ${n}`);
    });
  });
});
