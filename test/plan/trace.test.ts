// The planner reads each ring's schedule from the strategy code run dry (counts.ts). Here the dry
// run is held to the code on CPU ranks, step by step: every strategy on worlds 1, 2, 4, 6 and 8,
// causal and sliding-window masks, each rank's transfers (operation, peer, bytes, under the step
// the strategy names) and kernel calls (pass, unmasked area) and merges, in order, must equal
// the dry run of that rank. And the planner's ring phases are held to the dry run at the real
// size: per (step, position) the block it prices is the one the code computes with, of the same
// area, and the bytes it moves per step are the code's (long rings too, whose schedule is read
// at three shorter lengths).
import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import { runRanks } from '../../src/backends/cpu/comm/launch.js';
import type { MaskSpec } from '../../src/mask/spec.js';
import { queryRows } from '../../src/mask/view.js';
import { parseConfig } from '../../src/plan/config.js';
import { type CountCase, traceRank } from '../../src/plan/counts.js';
import { completeLayout } from '../../src/plan/layout.js';
import { layerSchedule, type RingPhase } from '../../src/plan/schedule.js';
import { buildContext, prepare } from '../../src/plan/search.js';
import { resolveLayout } from '../../src/run/layout.js';
import type { ShardKind } from '../../src/shard/shard.js';
import { layouts } from './metered-cases.js';
import { type Seen, seen, type TraceTask } from './trace-cases.js';

const MASKS: MaskSpec[] = [{ kind: 'causal' }, { kind: 'sliding', left: 5, right: 0 }];

describe('the dry run against the CPU ranks, step by step', () => {
  for (const N of [1, 2, 4, 6, 8]) {
    it(`world ${N}: every rank's transfers, kernel calls and merges equal the dry run's`, async (t) => {
      const shape = { S: 12 * N, H: 24, Hkv: 2, D: 2 };
      const cases = layouts(N, true).flatMap((l) => MASKS.map((mask) => ({ l, mask })));
      const tasks: TraceTask[] = cases.map(({ l, mask }) => ({ layout: resolveLayout(l, shape), ...shape, mask }));
      const cpu = await runRanks<Seen[][]>(
        N,
        { module: new URL('./trace-cases.js', import.meta.url), fn: 'tracedRank' },
        () => tasks,
      );
      let events = 0;
      for (const [i, { l, mask }] of cases.entries()) {
        const u = l.strategy === 'ulysses' ? N : l.strategy === 'usp' ? l.ulysses! : 1;
        const c: CountCase = {
          strategy: l.strategy,
          ulysses: u,
          ring: N / u,
          inner: l.inner ?? N / u,
          placement: l.placement ?? 'head-first',
          H: shape.H,
          Hkv: shape.Hkv,
          D: shape.D,
          e: 4,
        };
        for (let r = 0; r < N; r++) {
          const dry = await traceRank(c, N, r, { T: shape.S / N, kernelTemps: false, mask, countArea: true });
          const got = seen(dry.trace.events);
          assert.deepEqual(got, cpu[r]![i], `${l.strategy} ${JSON.stringify(mask)} rank ${r}`);
          events += got.length;
        }
      }
      t.diagnostic(`${cases.length} cases × ${N} ranks: ${events} events, all equal`);
    });
  }
});

/** The planner's ring phases of one layout (attention mode: one layer, forward and backward). */
async function phases(S: number, mask: string, strategy: string, ring: number, shard: ShardKind, inner?: number) {
  const cfg = parseConfig({
    model: { layers: 1, hidden: 16, heads: 8, kvHeads: 2, headDim: 2, ffnHidden: 32, vocab: 64 },
    mode: 'attention',
    seqLen: S,
    mask,
    precision: 'fp32',
    cluster: { nodes: 1, gpusPerNode: ring, gpu: 'h200' },
  });
  const ctx = buildContext(cfg),
    l = completeLayout({ ring, strategy: strategy as 'ring', shard, inner }, cfg);
  await prepare(ctx, [l]);
  const sched = layerSchedule(ctx, l);
  const pick = (ps: typeof sched.fwd): RingPhase => ps.find((p): p is RingPhase => p.kind === 'ring')!;
  return { fwd: pick(sched.fwd), bwd: pick(sched.bwd) };
}

test("the planner's ring phases equal the dry run at the real size: the block of every step, its area, the bytes moved", async () => {
  let compared = 0;
  for (const [strategy, r, inner] of [
    ['ring', 2, undefined],
    ['ring', 3, undefined],
    ['ring', 5, undefined],
    ['ring', 8, undefined],
    ['tokenring', 3, undefined],
    ['tokenring', 4, undefined],
    ['double-ring', 4, 2],
    ['double-ring', 6, 3],
    ['double-ring', 8, 2],
    // read at 8, 9 and 10 positions and extended: held to the whole ring's run
    ['ring', 12, undefined],
    ['tokenring', 12, undefined],
    ['double-ring', 24, 12],
    ['double-ring', 22, 2],
  ] as const) {
    for (const shard of ['contiguous', 'zigzag'] as const) {
      for (const mask of ['causal', 'sliding:5,0', 'full']) {
        const S = 8 * r + 4;
        const p = await phases(S, mask, strategy, r, shard, inner);
        const spec: MaskSpec =
          mask === 'causal'
            ? { kind: 'causal' }
            : mask === 'full'
              ? { kind: 'full' }
              : { kind: 'sliding', left: 5, right: 0 };
        const c: CountCase = {
          strategy,
          ulysses: 1,
          ring: r,
          inner: inner ?? r,
          placement: 'head-first',
          H: 8,
          Hkv: 2,
          D: 2,
          e: 4,
        };
        for (let i = 0; i < r; i++) {
          // shards of S = 8r + 4 differ by a token: the dry run takes the ShardMap's own
          const dry = await traceRank(c, r, i, { S, kernelTemps: false, mask: spec, shard, countArea: true });
          const calls = dry.trace.events.filter((e) => e.kind === 'call');
          // whose rows a call's view holds: the owner of its first key; the queries' owner by identity (queryRows is memoised per positions)
          const owner = new Int32Array(S),
            qOwner = new Map<object, number>();
          for (let w = 0; w < r; w++) {
            for (const x of dry.shard.positions(w)) owner[x] = w;
            qOwner.set(queryRows(dry.mask, dry.shard.positions(w)), w);
          }
          for (const [pass, ph] of [
            ['fwd', p.fwd],
            ['bwd', p.bwd],
          ] as const) {
            const code = calls
              .filter((e) => e.pass === pass)
              .map((e) => [qOwner.get(e.view.q) ?? i, owner[e.view.kPos[0]!]!, e.area / 8]);
            const g = ph.units.grid,
              planned: number[][] = [];
            for (let s = 0; s < r; s++) {
              const [q, k] = g.owners(s, i);
              const a = g.work.block(q, k).area;
              if (a > 0) planned.push([q, k, a]);
            }
            assert.deepEqual(planned, code, `${strategy} r=${r} ${shard} ${mask} ${pass} position ${i}`);
            compared += code.length;
          }
        }
      }
    }
    // the bytes, where shards are even: the sends of rank 0 under a full mask, step by step, are
    // the phase's transfers in the order the pricing runs them (ring-pass.ts, tokenring.ts)
    const S = 8 * r;
    const p = await phases(S, 'full', strategy, r, 'zigzag', inner);
    const c = {
      strategy,
      ulysses: 1,
      ring: r,
      inner: inner ?? r,
      placement: 'head-first',
      H: 8,
      Hkv: 2,
      D: 2,
      e: 4,
    } as const;
    const dry = await traceRank(c, r, 0, { T: 8, kernelTemps: false });
    const sends = (pass: string): number[] => {
      const by = new Map<string, number>();
      for (const e of dry.trace.events)
        if (e.kind === 'transfer' && e.op === 'send' && e.label.includes(pass))
          by.set(e.label, (by.get(e.label) ?? 0) + e.bytes);
      return [...by.values()];
    };
    const total = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
    const [f, b] = [p.fwd, p.bwd];
    const O = r / (inner ?? r),
      I = inner ?? r;
    if (strategy === 'tokenring') {
      assert.ok(!b.turned);
      // a partial leaves the step after it is computed (none for the own block at step 0), the last after the last step
      const pb = f.preBytes + f.backBytes;
      assert.deepEqual(sends('fwd'), [f.preBytes, f.preBytes, ...Array(r - 3).fill(pb), f.backBytes, f.backBytes]);
      assert.equal(total(sends('bwd')), (r - 1) * (b.preBytes + b.backBytes));
    } else {
      assert.ok(b.turned && f.postBytes === 0 && f.backBytes === 0 && b.backBytes === 0);
      assert.equal(b.fetchFirst, strategy === 'double-ring');
      assert.ok(sends('fwd').every((x) => x === f.preBytes));
      assert.equal(total(sends('fwd')), (O - 1 + O * (I - 1)) * f.preBytes);
      assert.ok(sends('bwd').every((x) => [b.preBytes, b.postBytes, b.preBytes + b.postBytes].includes(x)));
      const kv = strategy === 'double-ring' ? O + O * Math.max(0, I - 2) + Math.max(0, O - 2) : Math.max(0, r - 2);
      const sums = strategy === 'double-ring' ? O * (I - 1) + O - 1 : r - 1;
      assert.equal(total(sends('bwd')), kv * b.preBytes + sums * b.postBytes);
    }
  }
  assert.ok(compared > 1000, `${compared} blocks compared`);
});
