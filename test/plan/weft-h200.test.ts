// weft's own context-parallel runs on 2 × H200 at revision 127f7f2d (bench/results/cp-2026-11-28-*):
// how the model treats their host-side preparation, that the FLOP conventions agree, that the
// planner ranks zigzag above contiguous for causal rings as measured, and that the simulator runs
// the host clock as the analytical model does. The error statistics are in validation.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { IMPLEMENTATIONS } from '../../src/plan/calibration/types.js';
import { completeLayout } from '../../src/plan/layout.js';
import { buildContext, evaluateLayout, plan } from '../../src/plan/search.js';
import { simulate } from '../../src/sim/simulate.js';
import { WEFT_CP_1M, WEFT_CP_CAUSAL } from './published.js';
import { cpRecords, median, repoFile, weftCpConfig, weftH200Checks } from './validation.js';

test('the host preparation rate of weft-127f7f2d is the median gap before the first kernel in the mask-sweep timelines', (t) => {
  // each rank's gap before its first kernel (after the all-to-all it waited for, for Ulysses)
  // over the rows of its first view: a ring position's own block (S/2 queries and keys), or the
  // whole gathered sequence (S and S) for Ulysses. Full masks prepare nothing (every tile full).
  const perRow: number[] = [];
  for (const r of cpRecords()) {
    const e = r.extra;
    if (!e || r.config.mask === 'full') continue;
    for (const rank of e.timeline) {
      const first = Math.min(...rank.spans.filter((s) => s.stream === 'compute').map((s) => s.start));
      const waited = e.layout.strategy === 'ulysses' ? rank.spans.filter((s) => s.stream === 'comm' && s.start < first).map((s) => s.end) : [];
      const rows = e.layout.strategy === 'ulysses' ? 2 * r.config.seq : r.config.seq;
      perRow.push(((first - Math.max(0, ...waited)) * 1000) / rows);
      t.diagnostic(`${r.name} ${r.config.mask} rank ${rank.rank}: first kernel at ${first.toFixed(1)} ms, ${perRow.at(-1)!.toFixed(3)} µs per row`);
    }
  }
  assert.equal(perRow.length, 8);
  const k = median(perRow);
  assert.ok(Math.abs(IMPLEMENTATIONS['weft-127f7f2d']!.hostPrepUsPerRow - k) < 0.0005, `median ${k} µs per row`);
  // with a full mask every view is all pairs: no preparation, and no gap
  for (const r of cpRecords().filter((x) => x.extra && x.config.mask === 'full')) {
    for (const rank of r.extra!.timeline) assert.ok(Math.min(...rank.spans.filter((s) => s.stream === 'compute').map((s) => s.start)) < 8);
  }
});

test('measured TFLOP/s recomputed from milliseconds with the model\'s FLOP count match what the runs printed', () => {
  const cs = weftH200Checks();
  assert.equal(cs.length, WEFT_CP_CAUSAL.length + 9 + 1);
  for (const c of cs) assert.ok(Math.abs(c.published / c.printed - 1) < 0.005, `${c.label}: ${c.published} vs printed ${c.printed}`);
});

test('the 1M run paid more than the view preparation before its first kernel: it ran without warm-up', (t) => {
  const spans = (JSON.parse(readFileSync(repoFile(WEFT_CP_1M.timeline), 'utf8')) as { rank: number; spans: { stream: string; start: number }[] }[])
    .map((r) => Math.min(...r.spans.filter((s) => s.stream === 'compute').map((s) => s.start)));
  const cfg = weftCpConfig(WEFT_CP_1M.seq, 'causal', 2, WEFT_CP_1M.kvHeads);
  const r = evaluateLayout(buildContext(cfg), completeLayout({ ring: 2, shard: 'zigzag' }, cfg));
  const host = r.timing!.breakdown.host;
  t.diagnostic(`first kernel at ${spans.map((x) => x.toFixed(0)).join(' / ')} ms; modelled view preparation ${host.toFixed(0)} ms; the rest is first-use cost`);
  // the forward's first view only: later ones hide behind 4-second steps
  assert.ok(Math.abs(host - IMPLEMENTATIONS['weft-127f7f2d']!.hostPrepUsPerRow * WEFT_CP_1M.seq / 1000) < 1);
  for (const s of spans) assert.ok(s > host);
  // and the same run with views prepared once pays none
  const now = weftCpConfig(WEFT_CP_1M.seq, 'causal', 2, WEFT_CP_1M.kvHeads, 'weft');
  assert.equal(evaluateLayout(buildContext(now), completeLayout({ ring: 2, shard: 'zigzag' }, now)).timing!.breakdown.host, 0);
});

test('zigzag beats contiguous for causal rings, by about the measured efficiencies', (t) => {
  for (const S of [32768, 131072, 262144]) {
    const measured = (shard: string): number => WEFT_CP_CAUSAL.find((r) => r.seqK * 1024 === S && r.layout?.strategy === 'ring' && r.layout.shard === shard)!.efficiency!;
    const one = evaluateLayout(buildContext(weftCpConfig(S, 'causal', 1)), completeLayout({}, weftCpConfig(S, 'causal', 1))).prediction!.stepMs;
    for (const implementation of ['weft-127f7f2d', 'weft']) {
      const cfg = { ...weftCpConfig(S, 'causal', 2, 32, implementation), candidates: [{ ring: 2, shard: 'contiguous' as const }, { ring: 2, shard: 'zigzag' as const }] };
      const { results } = plan(cfg);
      assert.equal(results[0]!.layout.shard, 'zigzag', `${S} ${implementation}`);
      const eff = (shard: string): number => one / (2 * results.find((x) => x.layout.shard === shard)!.prediction!.stepMs);
      t.diagnostic(`S=${S} ${implementation}: efficiency zigzag ${eff('zigzag').toFixed(3)} contiguous ${eff('contiguous').toFixed(3)}${implementation === 'weft-127f7f2d' ? ` (measured ${measured('zigzag')} / ${measured('contiguous')})` : ' (views prepared once: what 839f0e1 should measure)'}`);
      if (implementation === 'weft-127f7f2d') {
        for (const shard of ['zigzag', 'contiguous']) assert.ok(Math.abs(eff(shard) - measured(shard)) < 0.1, `${S} ${shard}: ${eff(shard)} vs ${measured(shard)}`);
      }
    }
  }
});

test('the simulator runs the host clock as the analytical model does', () => {
  const cases: [number, string, Parameters<typeof completeLayout>[0]][] = [
    [32768, 'causal', { ring: 2 }], [131072, 'sliding:8191,0', { ring: 2 }], [32768, 'causal', { ulysses: 2 }],
    [32768, 'causal', { ring: 2, strategy: 'allgather' }], [131072, 'document-causal', { ring: 2, shard: 'doc-zigzag' }],
  ];
  for (const [S, mask, l] of cases) {
    const cfg = weftCpConfig(S, mask, 2);
    const sim = simulate(buildContext(cfg), completeLayout(l, cfg));
    assert.ok(Math.abs(sim.stepMs / sim.analyticStepMs - 1) < 1e-9, `${S} ${mask} ${JSON.stringify(l)}: ${sim.stepMs} vs ${sim.analyticStepMs}`);
    assert.ok(sim.ranks.every((r) => r.hostMs > 0));
  }
  // TokenRing's partials make its steps unlike: close, not exact
  const cfg = weftCpConfig(32768, 'causal', 2);
  const sim = simulate(buildContext(cfg), completeLayout({ ring: 2, strategy: 'tokenring' }, cfg));
  assert.ok(Math.abs(sim.stepMs / sim.analyticStepMs - 1) < 0.01);
});
