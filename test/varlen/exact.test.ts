// The dispatcher and the sparse K/V executor against the f64 reference, forward and backward:
// random batches (fast-check) on worlds 1–8, each document causal, full or a sliding window, with
// one-token documents and documents longer than a rank's share; and the executor's counted
// traffic equal to what the plan says it moves.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { referenceAttention } from '../../src/kernel/reference.js';
import { MaskGrid } from '../../src/mask/grid.js';
import { runVarlen } from '../../src/run/varlen.js';
import { relError } from '../../src/tensor/host.js';
import { randn, Rng } from '../../src/tensor/random.js';
import { type Batch, batchMaskSpec, type DocMask } from '../../src/varlen/batch.js';
import { dispatch } from '../../src/varlen/dispatch.js';

const docMask: fc.Arbitrary<DocMask> = fc.oneof(
  fc.constant<DocMask>({ kind: 'causal' }),
  fc.constant<DocMask>({ kind: 'full' }),
  fc.record({
    kind: fc.constant('sliding' as const),
    left: fc.integer({ min: -1, max: 6 }),
    right: fc.integer({ min: -1, max: 3 }),
  }),
);

/** A batch on `world` ranks: short documents, one-token ones, and one longer than a rank's share. */
const batchArb = fc.integer({ min: 1, max: 8 }).chain((world) =>
  fc.record({
    world: fc.constant(world),
    short: fc.array(fc.record({ len: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 12 })), mask: docMask }), {
      minLength: 0,
      maxLength: 5,
    }),
    long: fc.record({ len: fc.integer({ min: 8 * world, max: 24 * world }), mask: docMask }),
    at: fc.nat(),
    hkv: fc.constantFrom(1, 2),
    g: fc.constantFrom(1, 2),
    relay: fc.constantFrom<'none' | 'all' | number>('none', 'all', 3),
    chunks: fc.constantFrom(1, 2, 3),
    visit: fc.constantFrom<'none' | 'all' | number>('none', 'all', 0.5),
    heads: fc.record({ on: fc.boolean(), u: fc.constantFrom(1, 2, 4), ring: fc.constantFrom(1, 2) }),
    seed: fc.nat(),
  }),
);

describe('varlen executor', () => {
  it('matches the f64 reference, forward and backward, and moves exactly the planned K/V (star, relay, visiting queries, head-parallel documents)', async () => {
    await fc.assert(
      fc.asyncProperty(batchArb, async (c) => {
        const docs = [...c.short];
        docs.splice(c.at % (docs.length + 1), 0, c.long);
        const batch: Batch = { lengths: docs.map((d) => d.len), masks: docs.map((d) => d.mask) };
        const H = c.hkv * c.g,
          S0 = batch.lengths.reduce((a, b) => a + b, 0),
          longDoc = docs.indexOf(c.long);
        // the long document head-parallel on u × ring ranks, where the heads split u ways and its share fits a rank
        const u = Math.min(c.heads.u, H),
          heads =
            c.heads.on &&
            u * c.heads.ring <= c.world &&
            Math.ceil(c.long.len / (u * c.heads.ring)) <= Math.ceil((S0 / c.world) * 1.05) - 1
              ? [{ doc: longDoc, ulysses: u, ring: c.heads.ring }]
              : [];
        const plan = dispatch(batch, { world: c.world, relay: c.relay, chunks: c.chunks, visit: c.visit, heads });
        const S = plan.S,
          Hkv = c.hkv,
          D = 4,
          rng = new Rng(c.seed);
        const q = randn(rng, 'f64', [S, H, D]),
          k = randn(rng, 'f64', [S, Hkv, D]),
          v = randn(rng, 'f64', [S, Hkv, D]),
          dout = randn(rng, 'f64', [S, H, D]);
        const mask = batchMaskSpec(batch);
        const res = await runVarlen({ q, k, v, dout, mask, scale: 0.4, dtype: 'f64' }, plan);
        const ref = referenceAttention(q, k, v, MaskGrid.build(mask, S), 0.4, dout);
        for (const n of ['out', 'lse', 'dq', 'dk', 'dv'] as const) {
          const e = relError(res[n]!, ref[n]!);
          assert.ok(e <= 1e-10, `${n}: relative error ${e} (world ${c.world}, lengths ${batch.lengths.join(',')})`);
        }
        // forward traffic: one K and one V row of Hkv·D f64 per planned row, nothing else
        const rowBytes = 2 * Hkv * D * 8;
        const fwd = res.stats.steps.filter((s) => s.label === 'varlen fwd kv'),
          bwd = res.stats.steps.filter((s) => s.label === 'varlen bwd dkv');
        for (let r = 0; r < c.world; r++) {
          const sent = fwd.filter((s) => s.rank === r).reduce((a, s) => a + s.bytesSent, 0);
          assert.equal(sent, plan.ranks[r]!.sendRows * rowBytes, `rank ${r} sent`);
          const returned = bwd.filter((s) => s.rank === r).reduce((a, s) => a + s.bytesSent, 0);
          assert.equal(returned, plan.ranks[r]!.recvRows * rowBytes, `rank ${r} returned`);
          // visits: the query rows out, the partial (out, lse) back; dout, out, lse out, dQ back
          const qRow = H * D * 8,
            byLabel = (label: string): number =>
              res.stats.steps.filter((s) => s.rank === r && s.label === label).reduce((a, s) => a + s.bytesSent, 0);
          const visiting = plan.visits.filter((x) => x.from === r).reduce((a, x) => a + x.rows, 0),
            guests = plan.ranks[r]!.guestRows;
          assert.equal(byLabel('varlen fwd q'), visiting * qRow, `rank ${r} visiting queries`);
          assert.equal(byLabel('varlen fwd partial'), guests * (qRow + H * 8), `rank ${r} partials`);
          assert.equal(byLabel('varlen bwd q'), visiting * (2 * qRow + H * 8), `rank ${r} dout, out, lse`);
          assert.equal(byLabel('varlen bwd dq'), guests * qRow, `rank ${r} dq`);
        }
        for (let r = 0; r < c.world; r++)
          assert.equal(res.stats.perRank[r]!.area, H * plan.ranks[r]!.area, `rank ${r} kernel area = planned area`);
        if (heads.length) assert.equal(plan.docs[longDoc]!.mode, 'heads');
        if (c.visit === 'all') assert.equal(plan.transfers.filter((t) => t.direct).length, 0, 'every star pair visits');
        assert.equal(
          res.stats.perRank.reduce((a, r) => a + r.area, 0),
          H * plan.ranks.reduce((a, r) => a + r.area, 0),
          'kernel area = planned area',
        );
      }),
      { numRuns: 24, seed: 17 },
    );
  });
});
