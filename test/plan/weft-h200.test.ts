// weft's own context-parallel runs on 2 × H200 (bench/results/cp-2026-11-28-*): at revision 127f7f2d,
// how the model treats their host-side preparation; after the fix (7c54dd9d, and the 1M ring at
// e4fbcd6c), the pre-registered predictions against the measurements and where the larger errors
// come from in the per-rank timelines. Also that the FLOP conventions agree, that the planner ranks
// zigzag above contiguous for causal rings as measured, and that the simulator runs the host clock
// as the analytical model does. The 7c54dd9d and e4fbcd6c rows are priced with `weft-7c54dd9d` (the
// ring backward with its final hop home, as that code ran); the predictions for the next session
// with `weft` (the backward turned back, 84c36db). The error statistics are in validation.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { IMPLEMENTATIONS } from '../../src/plan/calibration/types.js';
import { emptyBreakdown, phasesMs } from '../../src/plan/cost.js';
import { completeLayout } from '../../src/plan/layout.js';
import { p2pMs } from '../../src/plan/links.js';
import { layerSchedule } from '../../src/plan/schedule.js';
import { buildContext, evaluateLayout, plan } from '../../src/plan/search.js';
import { simulate } from '../../src/sim/simulate.js';
import { NEXT_PREDICTIONS, PREREGISTERED, WEFT_CP_1M, WEFT_CP_1M_E4FBCD6C, WEFT_CP_CAUSAL } from './published.js';
import {
  cpRecords, type CpRecord, median, relErr, repoFile, timelineSplit, WEFT_CP_EXCLUDED, WEFT_CP_FIXED_RECORDS, weftCpConfig, weftH200Checks, weftH200FixedChecks, weftTag,
} from './validation.js';

test('the host preparation rate of weft-127f7f2d is the median gap before the first kernel in the mask-sweep timelines', (t) => {
  // each rank's gap before its first kernel (after the all-to-all it waited for, for Ulysses)
  // over the rows of its first view: a ring position's own block (S/2 queries and keys), or the
  // whole gathered sequence (S and S) for Ulysses. Full masks prepare nothing (every tile full).
  const perRow: number[] = [];
  for (const r of cpRecords()) {
    const e = r.extra;
    if (!e?.layout || !e.timeline || r.config.mask === 'full') continue;
    for (const rank of e.timeline) {
      const first = Math.min(...rank.spans.filter((s) => s.stream === 'compute').map((s) => s.start));
      const waited = e.layout!.strategy === 'ulysses' ? rank.spans.filter((s) => s.stream === 'comm' && s.start < first).map((s) => s.end) : [];
      const rows = e.layout!.strategy === 'ulysses' ? 2 * r.config.seq : r.config.seq;
      perRow.push(((first - Math.max(0, ...waited)) * 1000) / rows);
      t.diagnostic(`${r.name} ${r.config.mask} rank ${rank.rank}: first kernel at ${first.toFixed(1)} ms, ${perRow.at(-1)!.toFixed(3)} µs per row`);
    }
  }
  assert.equal(perRow.length, 8);
  const k = median(perRow);
  assert.ok(Math.abs(IMPLEMENTATIONS['weft-127f7f2d']!.hostPrepUsPerRow - k) < 0.0005, `median ${k} µs per row`);
  // with a full mask every view is all pairs: no preparation, and no gap
  for (const r of cpRecords().filter((x) => x.extra?.timeline && x.config.mask === 'full')) {
    for (const rank of r.extra!.timeline!) assert.ok(Math.min(...rank.spans.filter((s) => s.stream === 'compute').map((s) => s.start)) < 8);
  }
});

test('measured TFLOP/s recomputed from milliseconds with the model\'s FLOP count match what the runs printed', () => {
  const cs = weftH200Checks();
  assert.equal(cs.length, WEFT_CP_CAUSAL.length + 9 + 1);
  const fixed = weftH200FixedChecks();
  // 3 lengths × (one GPU, 5 two-GPU layouts, 2 PyTorch) + 3 masks × (one GPU, 3 layouts) + the 1M ring
  assert.equal(fixed.length, 3 * 8 + 3 * 4 + 1);
  for (const c of [...cs, ...fixed]) assert.ok(Math.abs(c.published / c.printed - 1) < 0.005, `${c.label}: ${c.published} vs printed ${c.printed}`);
  // the excluded run is not among them
  assert.ok(fixed.every((c) => c.source !== WEFT_CP_EXCLUDED.file));
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
    const measured127 = (shard: string): number => WEFT_CP_CAUSAL.find((r) => r.seqK * 1024 === S && r.layout?.strategy === 'ring' && r.layout.shard === shard)!.efficiency!;
    const measuredFixed = (shard: string): number => cpRecords(WEFT_CP_FIXED_RECORDS[0]).find((r) => r.config.seq === S && r.name === `weft-ring-${shard}`)!.derived.efficiency!;
    const one = evaluateLayout(buildContext(weftCpConfig(S, 'causal', 1)), completeLayout({}, weftCpConfig(S, 'causal', 1))).prediction!.stepMs;
    for (const implementation of ['weft-127f7f2d', 'weft-7c54dd9d']) {
      const cfg = { ...weftCpConfig(S, 'causal', 2, 32, implementation), candidates: [{ ring: 2, shard: 'contiguous' as const }, { ring: 2, shard: 'zigzag' as const }] };
      const { results } = plan(cfg);
      assert.equal(results[0]!.layout.shard, 'zigzag', `${S} ${implementation}`);
      const eff = (shard: string): number => one / (2 * results.find((x) => x.layout.shard === shard)!.prediction!.stepMs);
      const measured = implementation === 'weft-127f7f2d' ? measured127 : measuredFixed;
      t.diagnostic(`S=${S} ${implementation}: efficiency zigzag ${eff('zigzag').toFixed(3)} contiguous ${eff('contiguous').toFixed(3)} (measured at ${implementation.slice(5)} ${measured('zigzag').toFixed(3)} / ${measured('contiguous').toFixed(3)})`);
      for (const shard of ['zigzag', 'contiguous']) assert.ok(Math.abs(eff(shard) - measured(shard)) < 0.1, `${S} ${implementation} ${shard}: ${eff(shard)} vs ${measured(shard)}`);
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

const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`;

test('the predictions written down before measuring the fixed code (NOTES.md, 71f6cf7) against 7c54dd9d', (t) => {
  const fixed = weftH200FixedChecks();
  for (const p of PREREGISTERED) {
    const c = fixed.find((x) => x.label === `h200 ${p.label}` && x.group === `weft H200 ${weftTag(p.seq, p.mask)} (7c54dd9d)`)!;
    // the model still predicts what was written down
    assert.ok(Math.abs(c.predictedMs - p.ms) < 0.05, `${p.label}: the model now predicts ${c.predictedMs} ms, not the pre-registered ${p.ms}`);
    let eff = '';
    if (p.efficiency !== undefined) {
      const one = fixed.find((x) => x.group === `weft H200 ${weftTag(p.seq, p.mask)} one GPU (7c54dd9d)`)!;
      const predicted = one.predictedMs / (2 * c.predictedMs), measured = one.measuredMs / (2 * c.measuredMs);
      assert.equal(predicted.toFixed(3), p.efficiency.toFixed(3));
      eff = `; efficiency ${p.efficiency} → measured ${measured.toFixed(3)}`;
    }
    t.diagnostic(`${p.label}: pre-registered ${p.ms} ms → measured ${c.measuredMs.toFixed(1)} ms (the run took ${pct(c.measuredMs / c.predictedMs - 1)} longer than predicted; error in TFLOP/s ${pct(relErr(c))})${eff}`);
  }
});

test('predictions for the next measurement: the current code (`weft`, ring backward turned back) against the 7c54dd9d schedule', (t) => {
  const { date, revision, rows } = NEXT_PREDICTIONS;
  t.diagnostic(`written down ${date} for ${revision}: 2×H200, B=1 H=32 D=128 bf16 fwd+bwd, ring of 2`);
  for (const p of rows) {
    const l = { ring: 2, shard: p.shard } as const;
    const ms = (implementation: string): number => {
      const cfg = weftCpConfig(p.seq, p.mask, 2, p.kvHeads, implementation);
      return evaluateLayout(buildContext(cfg), completeLayout(l, cfg)).prediction!.stepMs;
    };
    const now = ms('weft'), old = ms('weft-7c54dd9d');
    // the model still predicts what was written down, for both schedules
    assert.ok(Math.abs(now - p.ms) < 0.05, `${p.label}: the model now predicts ${now} ms, not the pre-registered ${p.ms}`);
    assert.ok(Math.abs(old - p.oldMs) < 0.05, `${p.label}: the 7c54dd9d schedule now gives ${old} ms, not ${p.oldMs}`);
    // a ring of 2 moves no K/V in the turned backward and exposes no hop home: never slower, and
    // at most the old hop home (f32 dK/dV of one position) faster
    const cfg = weftCpConfig(p.seq, p.mask, 2, p.kvHeads);
    const hop = p2pMs(buildContext(cfg).net, (p.seq / 2) * 2 * p.kvHeads * 128 * 4, 'intra');
    assert.ok(now < old && old - now <= hop + 1e-9, `${p.label}: ${old} → ${now} ms, hop ${hop} ms`);
    let eff = '';
    if (p.efficiency !== undefined) {
      const c1 = weftCpConfig(p.seq, p.mask, 1, p.kvHeads);
      const one = evaluateLayout(buildContext(c1), completeLayout({}, c1)).prediction!.stepMs;
      assert.equal((one / (2 * now)).toFixed(3), p.efficiency.toFixed(3));
      eff = `, efficiency ${p.efficiency.toFixed(3)} (was ${(one / (2 * old)).toFixed(3)})`;
    }
    t.diagnostic(`${p.label.padEnd(40)} weft ${now.toFixed(1).padStart(8)} ms  (7c54dd9d schedule ${old.toFixed(1).padStart(8)} ms, ${(now - old).toFixed(1)} ms; its hop home ${hop.toFixed(2)} ms)${eff}`);
  }
});

test('after the fix: predicted vs measured for every new row; the larger errors lie outside the kernels', (t) => {
  for (const c of weftH200FixedChecks()) {
    t.diagnostic(`${c.label.padEnd(52)} ${c.group.endsWith('(e4fbcd6c)') ? 'e4fbcd6c' : '7c54dd9d'}  measured ${c.measuredMs.toFixed(1).padStart(8)} ms  predicted ${c.predictedMs.toFixed(1).padStart(8)} ms  ${pct(relErr(c)).padStart(7)}`);
  }
  // each two-GPU record's slowest rank: its kernels against the model's attention terms, and the
  // rest of the iteration (transfers not under kernels, gaps, after the last span) against the
  // model's transfers; "unpriced" = measured rest − modelled rest
  const rows: { r: CpRecord; s: ReturnType<typeof timelineSplit> }[] = [];
  for (const file of WEFT_CP_FIXED_RECORDS) {
    for (const r of cpRecords(file).filter((x) => x.extra?.layout && x.extra.timeline)) {
      const s = timelineSplit(r, 'weft-7c54dd9d');
      rows.push({ r, s });
      t.diagnostic(`${weftTag(r.config.seq, r.config.mask).padEnd(14)} ${r.name.padEnd(24)} kernels ${s.kernels.toFixed(1).padStart(7)} (model ${pct(s.modelKernels / s.kernels - 1)})  rest ${s.rest.toFixed(1).padStart(5)} ms [transfers ${s.exposedComm.toFixed(1)}, gaps ${s.idle.toFixed(1)}, after ${s.tail.toFixed(1)}] vs model ${s.modelRest.toFixed(1)}: unpriced ${(s.rest - s.modelRest).toFixed(1)} ms`);
    }
  }
  const find = (seq: number, mask: string, name: string): { r: CpRecord; s: ReturnType<typeof timelineSplit> } => rows.find((x) => x.r.config.seq === seq && x.r.config.mask === mask && x.r.name === name)!;
  const unpriced = (x: { s: ReturnType<typeof timelineSplit> }): number => x.s.rest - x.s.modelRest;
  // the kernels of the layouts the planner prices on zigzag shards agree within 5% (Ulysses on
  // documents excepted: its kernel runs the gathered sequence in doc-zigzag order, 7–8% slower
  // than the model's whole-sequence price, at 127f7f2d as here)
  for (const { r, s } of rows) {
    if (r.extra!.layout!.shard === 'contiguous' || (r.config.mask === 'document-causal' && r.extra!.layout!.strategy === 'ulysses')) continue;
    assert.ok(Math.abs(s.modelKernels / s.kernels - 1) < 0.05, `${r.name} ${r.config.seq} ${r.config.mask}: kernels ${s.kernels} vs model ${s.modelKernels}`);
  }
  // sliding ring zigzag (the pre-registered 86.9 ms): kernels within 1%, and the unpriced rest is
  // at least 80% of the miss
  const sl = find(131072, 'sliding:8191,0', 'weft-ring-zigzag');
  assert.ok(Math.abs(sl.s.modelKernels / sl.s.kernels - 1) < 0.01);
  assert.ok(unpriced(sl) >= 0.8 * (sl.r.summary.median - sl.s.predictedMs), `unpriced ${unpriced(sl)} of ${sl.r.summary.median - sl.s.predictedMs} ms`);
  // the unpriced rest does not depend on the mask (per token, not per pair): at 128K, the ring's
  // and Ulysses' within 2 and 3 ms over all four masks, Ulysses' the larger in each
  const masks = ['causal', 'full', 'sliding:8191,0', 'document-causal'];
  const ring = masks.map((m) => unpriced(find(131072, m, m === 'document-causal' ? 'weft-ring-doc-zigzag' : 'weft-ring-zigzag')));
  const uly = masks.map((m) => unpriced(find(131072, m, m === 'document-causal' ? 'weft-ulysses-doc-zigzag' : 'weft-ulysses-zigzag')));
  t.diagnostic(`unpriced at 128K over ${masks.join(', ')}: ring ${ring.map((x) => x.toFixed(1)).join(' / ')} ms, Ulysses ${uly.map((x) => x.toFixed(1)).join(' / ')} ms`);
  assert.ok(Math.max(...ring) - Math.min(...ring) < 2 && Math.max(...uly) - Math.min(...uly) < 3);
  for (let i = 0; i < masks.length; i++) assert.ok(uly[i]! > ring[i]!);
  // and grows with the sequence: the causal ring's at 32K below its 128K
  assert.ok(unpriced(find(32768, 'causal', 'weft-ring-zigzag')) < 0.5 * ring[0]!);
});

test('the 1M ring at e4fbcd6c: a cold first iteration whose forward ran power-capped; its backward as modelled', (t) => {
  type Rank = { rank: number; spans: { stream: string; start: number; end: number }[] };
  const load = (f: string): Rank[] => JSON.parse(readFileSync(repoFile(f), 'utf8')) as Rank[];
  const kernels = (rs: Rank[]): number[][] => rs.map((r) => r.spans.filter((s) => s.stream === 'compute').map((s) => s.end - s.start));
  const now = load(WEFT_CP_1M_E4FBCD6C.timeline), before = load(WEFT_CP_1M.timeline);
  const first = (rs: Rank[]): number[] => rs.map((r) => Math.min(...r.spans.filter((s) => s.stream === 'compute').map((s) => s.start)));
  // before its first kernel the first iteration prepares its views once and pays first use, as
  // the 127f7f2d run did (393 / 402 ms): the fix removes preparation from later iterations only
  const f0 = first(now), f1 = first(before);
  t.diagnostic(`first kernel at ${f0.map((x) => x.toFixed(0)).join(' / ')} ms (127f7f2d: ${f1.map((x) => x.toFixed(0)).join(' / ')} ms)`);
  assert.ok(Math.abs(Math.max(...f0) / Math.max(...f1) - 1) < 0.15);
  // per rank: forward step 0, forward step 1, backward step 0, backward step 1
  const k0 = kernels(now), k1 = kernels(before);
  for (let r = 0; r < 2; r++) {
    const ratio = k0[r]!.map((x, i) => x / k1[r]![i]!);
    t.diagnostic(`rank ${r}: kernels ${k0[r]!.map((x) => x.toFixed(0)).join(' / ')} ms, × ${ratio.map((x) => x.toFixed(2)).join(' / ')} those of 127f7f2d`);
    // the forward's first step 1.6–1.8× slower; every other step within 8%
    assert.ok(ratio[0]! > 1.5, `rank ${r} forward step 0 × ${ratio[0]}`);
    for (const x of ratio.slice(1)) assert.ok(Math.abs(x - 1) < 0.08);
  }
  // nvidia-smi every 3 s: the busy samples under the SW power cap (0x4) come first, below 1980 MHz,
  // and none after the first at 1980 MHz (the backward)
  const busy = readFileSync(repoFile(WEFT_CP_1M_E4FBCD6C.smi), 'utf8').trim().split('\n').map((l) => l.split(', '))
    .filter((c) => parseFloat(c[6]!) >= 99).map((c) => ({ at: c[0]!, mhz: parseFloat(c[2]!), capped: (parseInt(c[5]!, 16) & 0x4) !== 0 }));
  const capped = busy.filter((b) => b.capped);
  const lastCapped = busy.map((b) => b.capped).lastIndexOf(true), firstFree = busy.findIndex((b) => !b.capped);
  t.diagnostic(`nvidia-smi: ${busy.length} busy samples, ${capped.length} power-capped at ${Math.min(...capped.map((b) => b.mhz))}–${Math.max(...capped.map((b) => b.mhz))} MHz (${capped[0]!.at} – ${capped.at(-1)!.at}), then 1980 MHz`);
  assert.ok(capped.length > 0 && lastCapped < firstFree && capped.every((b) => b.mhz < 1980));
  assert.ok(busy.slice(firstFree).every((b) => b.mhz === 1980));
  // the model's backward (a warm, unthrottled iteration's) against the measured one
  const cfg = weftCpConfig(WEFT_CP_1M_E4FBCD6C.seq, 'causal', 2, WEFT_CP_1M_E4FBCD6C.kvHeads, 'weft-7c54dd9d');
  const c = weftH200FixedChecks().find((x) => x.group === 'weft H200 1M causal (e4fbcd6c)')!;
  const ctx = buildContext(cfg), l = completeLayout({ ring: 2, shard: 'zigzag' }, cfg);
  assert.equal(evaluateLayout(ctx, l).timing!.breakdown.host, 0);
  const bwdModel = phasesMs(ctx, layerSchedule(ctx, l).bwd, emptyBreakdown(), 1);
  const bwd = Math.max(...WEFT_CP_1M_E4FBCD6C.backwardMs);
  t.diagnostic(`predicted ${c.predictedMs.toFixed(0)} ms, measured ${c.measuredMs.toFixed(0)} (${pct(relErr(c))}); backward: model ${bwdModel.toFixed(0)} ms, measured ${WEFT_CP_1M_E4FBCD6C.backwardMs.join(' / ')}; forward: model ${(c.predictedMs - bwdModel).toFixed(0)} ms, measured ${WEFT_CP_1M_E4FBCD6C.forwardMs.join(' / ')}`);
  assert.ok(Math.abs(bwdModel / bwd - 1) < 0.02);
});
