// The dispatcher's promises: every token on exactly one rank, the token limit kept, the plan the
// same for the same input, short documents kept whole when they fit, areas counted right, and on
// long-tail batches far less K/V moved than a ring moves.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MaskGrid } from '../../src/mask/grid.js';
import { type Batch, batchMaskSpec, pairArea } from '../../src/varlen/batch.js';
import { dispatch, rankPositions } from '../../src/varlen/dispatch.js';
import {
  fillPack,
  fitWordSample,
  LONGTAIL,
  MAGI_LONG,
  MAGI_SHORT,
  magiBins,
  SLIMPAJAMA_TOKENS_PER_WORD,
  SLIMPAJAMA_WORDS,
} from '../../src/varlen/distributions.js';

const causal = (lengths: number[]): Batch => ({ lengths, masks: lengths.map(() => ({ kind: 'causal' as const })) });

describe('dispatch', () => {
  it('places every token once, under the limit, deterministically', () => {
    const b = causal(fillPack('longtail', 8 * 2048, 5));
    const p = dispatch(b, { world: 8 });
    const pos = rankPositions(p);
    const all = pos.flatMap((x) => [...x]).sort((x, y) => x - y);
    assert.deepEqual(
      all,
      Array.from({ length: p.S }, (_, i) => i),
    );
    for (const x of pos) assert.ok(x.length >= 1 && x.length <= p.maxTokens);
    assert.deepEqual(dispatch(b, { world: 8 }), p);
  });

  it('keeps a document local when it fits and moves nothing for an all-local plan', () => {
    const p = dispatch(causal([100, 100, 100, 100]), { world: 4 });
    assert.ok(p.docs.every((d) => d.mode === 'local'));
    assert.equal(p.transfers.length, 0);
  });

  it('counts the area each rank holds as the mask grid does', () => {
    const b: Batch = {
      lengths: [7, 30, 1, 19],
      masks: [{ kind: 'full' }, { kind: 'causal' }, { kind: 'causal' }, { kind: 'sliding', left: 4, right: 2 }],
    };
    const p = dispatch(b, { world: 3 });
    const grid = MaskGrid.build(batchMaskSpec(b), p.S);
    rankPositions(p).forEach((pos, r) =>
      assert.equal(
        p.ranks[r]!.area,
        [...pos].reduce((s, q) => s + grid.rowArea(q), 0),
      ),
    );
    assert.equal(pairArea({ kind: 'causal' }, 10, 2, 6, 3, 5), 0 + 1 + 2 + 2); // rows 2–5 of a causal document against keys 3, 4
  });

  it('refuses a token limit that cannot hold the batch', () => {
    assert.throws(() => dispatch(causal([10, 10]), { world: 2, maxTokens: 9 }), /holds 18 of the 20 tokens/);
  });

  it('moves at most half the K/V of a ring on long-tail causal batches at world 8', () => {
    for (const seed of [1, 2, 3]) {
      const p = dispatch(causal(fillPack('longtail', 8 * 8192, seed)), { world: 8 });
      const moved = p.transfers.reduce((s, t) => s + t.rows, 0),
        ring = 7 * p.S;
      assert.ok(moved <= ring / 2, `seed ${seed}: ${moved} rows against the ring's ${ring}`);
    }
  });
});

describe('dispatch at scale', () => {
  it('balances area within 5% on 256 and 1024 ranks, in a bounded number of pieces', () => {
    for (const [world, dist] of [
      [256, 'magi'],
      [1024, 'longtail'],
    ] as const) {
      const p = dispatch(causal(fillPack(dist, world * 8192, 1)), { world });
      assert.ok(p.balance.area <= 1.05, `${dist} on ${world}: area balance ${p.balance.area}`);
      assert.ok(
        p.ranks.every((r) => r.tokens <= p.maxTokens),
        `${dist} on ${world}: over the token limit`,
      );
      // the work of routing and pricing grows with the pieces: a few per rank, not one per token
      assert.ok(p.pieces.length <= 16 * world, `${dist} on ${world}: ${p.pieces.length} pieces`);
    }
  });
});

describe('distributions', () => {
  it("longtail is the log-normal fitted to SlimPajama's published word counts and tokens per word", () => {
    assert.equal(SLIMPAJAMA_WORDS.length, 266);
    const f = fitWordSample(SLIMPAJAMA_WORDS, SLIMPAJAMA_TOKENS_PER_WORD);
    assert.ok(Math.abs(f.mu - LONGTAIL.mu) < 1e-3 && Math.abs(f.sigma - LONGTAIL.sigma) < 1e-3, JSON.stringify(f));
  });

  it("packs fill exactly, reproduce from the seed, and follow MagiAttention's 128K rule", () => {
    for (const d of ['longtail', 'magi'] as const) {
      const a = fillPack(d, 65536, 9);
      assert.equal(
        a.reduce((s, x) => s + x, 0),
        65536,
      );
      assert.ok(a.every((x) => x >= 1));
      assert.deepEqual(fillPack(d, 65536, 9), a);
    }
    assert.equal(magiBins(128 * 1024), MAGI_SHORT);
    assert.equal(magiBins(128 * 1024 + 1), MAGI_LONG);
  });
});
