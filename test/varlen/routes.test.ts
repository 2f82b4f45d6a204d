// The routes (star, chunked star, group-cast relay) deliver exactly what each rank needs, and the
// relay spreads the sending of a large causal group; the pricing charges what the routes move and
// chooseRoutes never picks routes priced slower than the plain star.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/plan/config.js';
import { buildContext } from '../../src/plan/search.js';
import {
  chooseRoutes,
  dispatchPriced,
  headCandidates,
  priceDispatch,
  wholeDocumentsMs,
} from '../../src/plan/varlen.js';
import { type Batch } from '../../src/varlen/batch.js';
import { dispatch, type DispatchPlan, roundsOf, withRoutes, withVisits } from '../../src/varlen/dispatch.js';
import { fillPack } from '../../src/varlen/distributions.js';
import { intersect, mergeRanges } from '../../src/varlen/routes.js';

const causal = (lengths: number[]): Batch => ({ lengths, masks: lengths.map(() => ({ kind: 'causal' as const })) });

/** What each rank ends up holding of others' rows, following the hops round by round (a hop may only send what its sender has). */
function delivered(plan: DispatchPlan): [number, number][][] {
  const has: [number, number][][] = Array.from({ length: plan.world }, () => []);
  const own: [number, number][][] = Array.from({ length: plan.world }, () => []);
  for (const p of plan.pieces) own[p.rank]!.push([p.start, p.end]);
  const all = roundsOf(plan);
  const rounds = Math.max(0, ...all.map((t) => t.round + 1));
  for (let r = 0; r < rounds; r++) {
    const now = all.filter((t) => t.round === r);
    for (const t of now) {
      const src = mergeRanges([...own[t.from]!, ...has[t.from]!].map(([a, b]) => [a, b] as [number, number]));
      assert.deepEqual(intersect(t.ranges, src), t.ranges, `round ${r}: ${t.from} sends rows it does not hold`);
    }
    for (const t of now)
      has[t.to] = mergeRanges([...has[t.to]!, ...t.ranges.map(([a, b]) => [a, b] as [number, number])]);
  }
  return has;
}

/** The key rows each rank's queries see and it does not hold. */
function needed(plan: DispatchPlan): [number, number][][] {
  const cu = [0];
  for (const L of plan.lengths) cu.push(cu[cu.length - 1]! + L);
  const out: [number, number][][] = Array.from({ length: plan.world }, () => []);
  const mine = Array.from({ length: plan.world }, () => [] as [number, number][]);
  for (const p of plan.pieces) {
    mine[p.rank]!.push([p.start, p.end]);
    if (plan.masks[p.doc]!.kind === 'causal') out[p.rank]!.push([cu[p.doc]!, p.end]);
  }
  return out.map((l, r) => {
    const m = mergeRanges(mine[r]!);
    const all = mergeRanges(l);
    // all minus own
    const res: [number, number][] = [];
    for (const [a, b] of all) {
      let at = a;
      for (const [c, d] of m) {
        if (d <= at || c >= b) continue;
        if (c > at) res.push([at, c]);
        at = Math.max(at, d);
      }
      if (at < b) res.push([at, b]);
    }
    return res;
  });
}

describe('routes', () => {
  const batch = causal(fillPack('magi', 16 * 4096, 3));
  const star = dispatch(batch, { world: 16, nodeSize: 4 });

  it('star, chunked star and relay deliver exactly the rows each rank needs, each sent by a rank holding it', () => {
    const want = needed(star);
    for (const plan of [
      star,
      withRoutes(star, [], 3),
      withRoutes(
        star,
        star.docs.map((d) => d.doc),
        2,
      ),
    ]) {
      const got = delivered(plan);
      for (let r = 0; r < plan.world; r++)
        assert.deepEqual(intersect(got[r]!, want[r]!), want[r], `rank ${r} misses rows (chunks ${plan.chunks})`);
    }
  });

  it('a chunked star moves the same rows as the star, in growing rounds', () => {
    const c = roundsOf(withRoutes(star, [], 4));
    assert.equal(
      c.reduce((s, t) => s + t.rows, 0),
      star.transfers.reduce((s, t) => s + t.rows, 0),
    );
    const perRound = [0, 1, 2, 3].map((r) => c.filter((t) => t.round === r).reduce((s, t) => s + t.rows, 0));
    for (let r = 1; r < 4; r++) assert.ok(perRound[r]! > perRound[r - 1]!, JSON.stringify(perRound));
    // each chunk's area is what its rows cost, and the chunks' areas add up to the whole transfer's
    assert.equal(
      c.reduce((s, t) => s + t.area, 0),
      star.transfers.reduce((s, t) => s + t.area, 0),
    );
  });

  it('lists a star transfer once whatever its chunks: one per (owner, peer) pair', () => {
    // a long causal document over 48 ranks: ~48²/2 star pairs; cut into 6 chunks they were listed 6 times
    const wide = dispatch(causal([40, 48 * 1024, 17]), { world: 48 });
    const chunked = dispatch(causal([40, 48 * 1024, 17]), { world: 48, chunks: 6 });
    const pairs = new Set(wide.transfers.map((t) => t.from * 48 + t.to));
    assert.ok(pairs.size > 1000, `${pairs.size} pairs`);
    assert.equal(wide.transfers.length, pairs.size);
    assert.equal(chunked.transfers.length, pairs.size);
    assert.ok(roundsOf(chunked).length > 5 * pairs.size);
  });

  it("the relay spreads a large group's sending: the busiest sender sends less than under the star, in ⌈log2 n⌉ rounds", () => {
    const big = star.docs.filter((d) => d.ranks.length >= 4);
    assert.ok(big.length > 0, 'the batch has a large group');
    const relay = withRoutes(
      star,
      big.map((d) => d.doc),
    );
    const maxSend = (p: DispatchPlan): number => Math.max(...p.ranks.map((r) => r.sendRows));
    assert.ok(maxSend(relay) < maxSend(star), `relay ${maxSend(relay)} vs star ${maxSend(star)}`);
    const widest = Math.max(...big.map((d) => d.ranks.length));
    assert.ok(Math.max(...relay.transfers.map((t) => t.round + 1)) <= Math.ceil(Math.log2(widest)));
  });
});

describe('priced routes', () => {
  const cfg = parseConfig({
    model: { name: 'a', layers: 1, hidden: 8192, heads: 64, kvHeads: 8, headDim: 128, ffnHidden: 32768, vocab: 32000 },
    mode: 'attention',
    seqLen: 16 * 8192,
    mask: 'causal',
    implementation: 'weft',
    cluster: { nodes: 2, gpusPerNode: 8, gpu: 'h200', interNode: { GBps: 50, latencyUs: 10 } },
  });
  const ctx = buildContext(cfg);
  const dims = { H: 64, Hkv: 8, D: 128 };
  const plan = dispatch(causal(fillPack('magi', 16 * 8192, 1)), { world: 16 });

  it('charges the bytes the routes move, and chooseRoutes is never priced slower than the star', () => {
    const p = priceDispatch(plan, dims, ctx.rates, ctx.net, 8);
    assert.equal(p.fwdBytes, plan.transfers.reduce((s, t) => s + t.rows, 0) * 2 * 8 * 128 * 2);
    const best = chooseRoutes(plan, dims, ctx.rates, ctx.net, 8);
    assert.ok(best.price.stepMs <= p.stepMs);
    assert.equal(best.price.stepMs, priceDispatch(best.plan, dims, ctx.rates, ctx.net, 8).stepMs);
  });

  it('prices a chunked star from its whole transfers as from its listed rounds', () => {
    for (const chunks of [2, 4]) {
      const c = withRoutes(plan, [], chunks);
      // the same plan with every round listed as a transfer of its own (not direct: not cut again)
      const listed = { ...c, chunks: 1, transfers: roundsOf(c).map((t) => ({ ...t, direct: false })) };
      assert.equal(
        priceDispatch(c, dims, ctx.rates, ctx.net, 8).stepMs,
        priceDispatch(listed, dims, ctx.rates, ctx.net, 8).stepMs,
      );
    }
  });

  it('places a head-parallel document on ulysses × ring consecutive ranks, moves none of its rows point to point, and prices it', () => {
    const lengths = [300, 40 * 1024, ...Array.from({ length: 180 }, (_, i) => 200 + ((i * 37) % 400))];
    const batch = causal(lengths);
    const hp = dispatch(batch, { world: 16, heads: [{ doc: 1, ulysses: 8, ring: 2 }] });
    const d = hp.docs[1]!;
    assert.equal(d.mode, 'heads');
    assert.deepEqual(
      d.heads!.members,
      Array.from({ length: 16 }, (_, i) => i),
    );
    const [s0, s1] = [d.start, d.start + d.length];
    for (const t of hp.transfers)
      for (const [a, b] of t.ranges) assert.ok(b <= s0 || a >= s1, 'no hop carries its rows');
    // zigzag: every member computes a sixteenth of its causal area (per head), within a row's worth
    const area = (d.length * (d.length + 1)) / 2;
    for (const r of hp.ranks) assert.ok(Math.abs(r.headArea - area / 16) <= d.length, `rank ${r.rank}: ${r.headArea}`);
    assert.ok(hp.balance.area <= 1.05, `area balance ${hp.balance.area}`);
    assert.ok(hp.ranks.every((r) => r.tokens <= hp.maxTokens));
    const p = priceDispatch(hp, dims, ctx.rates, ctx.net, 8);
    assert.equal(p.fwdBytes, hp.transfers.reduce((s, t) => s + t.rows, 0) * 2 * 8 * 128 * 2);
    assert.ok(p.stepMs >= wholeDocumentsMs(hp, dims, ctx.rates) * 0.999);
    // the choice by priced time takes it, and is never slower than the plain dispatch's routes
    const plain = chooseRoutes(dispatch(batch, { world: 16 }), dims, ctx.rates, ctx.net, 8);
    const chosen = dispatchPriced(batch, { world: 16 }, dims, ctx.rates, ctx.net, 8);
    assert.ok(chosen.price.stepMs <= plain.price.stepMs);
    assert.equal(chosen.plan.docs[1]!.mode, 'heads');
    assert.deepEqual(
      headCandidates(batch, 16, 64, 8, hp.maxTokens).map((c) => c.doc),
      [1],
    );
  });

  it('prices visits by the bytes they move: the queries out and their partials back', () => {
    const v = withVisits(plan, 0.01);
    assert.ok(v.visits.length > 0, 'some pairs visit');
    const p = priceDispatch(v, dims, ctx.rates, ctx.net, 8);
    const rows = v.visits.reduce((s, x) => s + x.rows, 0),
      kv = v.transfers.reduce((s, t) => s + t.rows, 0);
    assert.equal(p.fwdBytes, kv * 2 * 8 * 128 * 2 + rows * (64 * 128 * 2 + (64 * 128 + 64) * 4));
    assert.equal(
      v.ranks.reduce((s, r) => s + r.area, 0),
      plan.ranks.reduce((s, r) => s + r.area, 0),
      'the area moves with the queries',
    );
    assert.ok(v.balance.area <= 1.05, `area balance ${v.balance.area}`);
  });

  it('prices no step faster than the whole-document bound', () => {
    for (const chunks of [1, 2, 4]) {
      const p = priceDispatch(withRoutes(plan, [], chunks), dims, ctx.rates, ctx.net, 8);
      assert.ok(p.stepMs >= wholeDocumentsMs(plan, dims, ctx.rates) * 0.999);
    }
  });
});
