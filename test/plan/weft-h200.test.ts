// weft's own context-parallel runs on 2 × H200 (bench/results/cp-2026-11-28-*): at revision 127f7f2d,
// how the model treats their host-side preparation; after the fix (7c54dd9d, and the 1M ring at
// e4fbcd6c), the pre-registered predictions against the measurements and where the larger errors
// come from in the per-rank timelines. Also that the FLOP conventions agree, that the planner ranks
// zigzag above contiguous for causal rings as measured, and that the simulator runs the host clock
// as the analytical model does. The 7c54dd9d and e4fbcd6c rows are priced with `weft-7c54dd9d` (the
// ring backward with its final hop home, as that code ran); the predictions for the next session
// with `weft` (the backward turned back, 84c36db), and checked against the a57aad4 runs, which ran
// that code (2 and 4 GPUs, and 2M–2.75M tokens): times, where the misses lie in the timelines, and
// the allocator's peak memory against weft's counted footprint (src/plan/footprint.ts), with the
// longest sequence that fits. The error statistics are in validation.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { IMPLEMENTATIONS } from '../../src/plan/calibration/types.js';
import { emptyBreakdown, memory, phasesMs } from '../../src/plan/cost.js';
import { completeLayout } from '../../src/plan/layout.js';
import { p2pMs } from '../../src/plan/links.js';
import { layerSchedule } from '../../src/plan/schedule.js';
import { buildContext, evaluateLayout, maxSeqLen, plan } from '../../src/plan/search.js';
import { simulate } from '../../src/sim/simulate.js';
import { MEMORY_PREDICTIONS_A57AAD4, NEXT_MEMORY_PREDICTIONS, NEXT_PREDICTIONS, PREREGISTERED, WEFT_CP_1M, WEFT_CP_1M_E4FBCD6C, WEFT_CP_CAUSAL } from './published.js';
import {
  countedGiB, cpRecords, type CpRecord, median, recordLayout, relErr, repoFile, timelineSplit, WEFT_CP_A57AAD4_RECORDS, WEFT_CP_EXCLUDED, WEFT_CP_FIXED_RECORDS, WEFT_CP_LENGTH_A57AAD4,
  weftCpConfig, weftH200A57Checks, weftH200Checks, weftH200FixedChecks, weftTag,
  withoutDeviceOps,
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
  // a57aad4: 2 GPUs as at 7c54dd9d; 4 GPUs 3 lengths × (one GPU, 5 layouts, 2 PyTorch) + documents (one GPU, 4 layouts); 2M, 2.5M
  const a57 = weftH200A57Checks();
  assert.equal(a57.length, 3 * 8 + 3 * 4 + 3 * 8 + 5 + 2);
  for (const c of [...cs, ...fixed, ...a57]) assert.ok(Math.abs(c.published / c.printed - 1) < 0.005, `${c.label}: ${c.published} vs printed ${c.printed}`);
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
    const measuredA57 = (shard: string): number => cpRecords(WEFT_CP_A57AAD4_RECORDS[0]).find((r) => r.config.seq === S && r.name === `weft-ring-${shard}`)!.derived.efficiency!;
    const one = evaluateLayout(buildContext(weftCpConfig(S, 'causal', 1)), completeLayout({}, weftCpConfig(S, 'causal', 1))).prediction!.stepMs;
    for (const implementation of ['weft-127f7f2d', 'weft-7c54dd9d', 'weft-a57aad4']) {
      const cfg = { ...weftCpConfig(S, 'causal', 2, 32, implementation), candidates: [{ ring: 2, shard: 'contiguous' as const }, { ring: 2, shard: 'zigzag' as const }] };
      const { results } = plan(cfg);
      assert.equal(results[0]!.layout.shard, 'zigzag', `${S} ${implementation}`);
      const eff = (shard: string): number => one / (2 * results.find((x) => x.layout.shard === shard)!.prediction!.stepMs);
      const measured = implementation === 'weft-127f7f2d' ? measured127 : implementation === 'weft-a57aad4' ? measuredA57 : measuredFixed;
      const rev = implementation.slice(5);
      t.diagnostic(`S=${S} ${implementation}: efficiency zigzag ${eff('zigzag').toFixed(3)} contiguous ${eff('contiguous').toFixed(3)} (measured at ${rev} ${measured('zigzag').toFixed(3)} / ${measured('contiguous').toFixed(3)})`);
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

test('the predictions for the turned-back ring (NEXT_PREDICTIONS, 83b0f50) against its measurement at a57aad4', (t) => {
  const { date, revision, rows, measured } = NEXT_PREDICTIONS;
  t.diagnostic(`written down ${date} for ${revision}, measured at ${measured.revision}: 2×H200, B=1 H=32 D=128 bf16 fwd+bwd, ring of 2`);
  const a57 = weftH200A57Checks();
  // the time outside the kernels at 7c54dd9d, which docs/plan.md said the runs would take longer
  // than predicted "if that time stays" (the same record at 7c54dd9d, its timeline against the model)
  const unpriced7c = (seq: number, mask: string, name: string): number => {
    const r = WEFT_CP_FIXED_RECORDS.flatMap((f) => cpRecords(f)).find((x) => x.config.seq === seq && x.config.mask === mask && x.name === name)!;
    const sp = timelineSplit(r, 'weft-7c54dd9d');
    return sp.rest - sp.modelRest;
  };
  let checked = 0;
  for (const p of rows) {
    const l = { ring: 2, shard: p.shard } as const;
    // the model as it was when they were written down: the strategy code's Device operations not yet counted
    const ms = (implementation: string, impl = withoutDeviceOps(implementation)): number => {
      const cfg = weftCpConfig(p.seq, p.mask, 2, p.kvHeads, implementation);
      return evaluateLayout(buildContext(cfg, undefined, impl), completeLayout(l, cfg)).prediction!.stepMs;
    };
    // `current`: the model now for the code that ran (a57aad4's Device builtins, their measured rates)
    const now = ms('weft'), old = ms('weft-7c54dd9d'), current = ms('weft-a57aad4', IMPLEMENTATIONS['weft-a57aad4']);
    // the model still predicts what was written down, for both schedules
    assert.ok(Math.abs(now - p.ms) < 0.05, `${p.label}: the model now predicts ${now} ms, not the pre-registered ${p.ms}`);
    assert.ok(Math.abs(old - p.oldMs) < 0.05, `${p.label}: the 7c54dd9d schedule now gives ${old} ms, not ${p.oldMs}`);
    // a ring of 2 moves no K/V in the turned backward and exposes no hop home: never slower, and
    // at most the old hop home (f32 dK/dV of one position) faster
    const cfg = weftCpConfig(p.seq, p.mask, 2, p.kvHeads);
    const hop = p2pMs(buildContext(cfg).net, (p.seq / 2) * 2 * p.kvHeads * 128 * 4, 'intra');
    assert.ok(now < old && old - now <= hop + 1e-9, `${p.label}: ${old} → ${now} ms, hop ${hop} ms`);
    if (!p.record) {
      t.diagnostic(`${p.label.padEnd(40)} predicted ${now.toFixed(1)} ms: not run at ${measured.revision}`);
      continue;
    }
    checked++;
    const rec = cpRecords(p.record.file).find((x) => x.config.seq === p.seq && x.config.mask === p.mask && x.name === p.record!.name && x.config.world === 2)!;
    const c = a57.find((x) => x.source === p.record!.file && x.group === `weft H200 ${weftTag(p.seq, p.mask)} (a57aad4)` && x.label.endsWith(`ring ${p.shard}`))!;
    assert.equal(c.measuredMs, rec.summary.median);
    assert.ok(Math.abs(c.predictedMs - current) < 0.05);
    const err = c.measuredMs / p.ms - 1; // the pre-registered figure: predicted / measured TFLOP/s − 1, positive = the model too fast
    // slower than predicted, as the unpriced time outside the kernels says they would be
    assert.ok(err > 0, `${p.label}: measured ${c.measuredMs} ms, faster than the predicted ${p.ms}`);
    // the project's 10% target, per row; a row that misses it says why
    if (p.miss) assert.ok(err > 0.10, `${p.label} is marked a miss but is within 10% (${pct(err)}): drop its miss`);
    else assert.ok(err <= 0.10, `${p.label}: ${pct(err)} beyond 10%`);
    // the stated reading: the prediction plus the time left unpriced at 7c54dd9d comes closer than the bare prediction
    let reading = '';
    if (p.seq <= 131072) {
      const plus = p.ms + unpriced7c(p.seq, p.mask, p.record.name);
      assert.ok(Math.abs(c.measuredMs - plus) < Math.abs(c.measuredMs - p.ms), `${p.label}: ${plus} ms (with the unpriced time) further from ${c.measuredMs} than ${p.ms}`);
      reading = `; with 7c54dd9d's unpriced time ${plus.toFixed(1)} ms (${pct(c.measuredMs / plus - 1)})`;
    }
    const one = a57.find((x) => x.group === `weft H200 ${weftTag(p.seq, p.mask)} one GPU (a57aad4)`)!;
    const effMeasured = one.measuredMs / (2 * c.measuredMs);
    t.diagnostic(`${p.label.padEnd(40)} predicted ${p.ms.toFixed(1).padStart(7)} ms → measured ${c.measuredMs.toFixed(1).padStart(7)} ms: ${pct(err)} in TFLOP/s${reading}; efficiency ${p.efficiency?.toFixed(3)} → ${effMeasured.toFixed(3)}${p.miss ? `  MISS (> 10%): ${p.miss}` : ''}; the model now (Device operations counted) ${current.toFixed(1)} ms (${pct(relErr(c))})`);
  }
  assert.equal(checked, 5);
});

test('a57aad4, 2 and 4 GPUs: the kernels as priced, the misses outside them; the turned-back ring leaves less unpriced than 7c54dd9d', (t) => {
  const rows: { r: CpRecord; s: ReturnType<typeof timelineSplit> }[] = [];
  for (const file of WEFT_CP_A57AAD4_RECORDS) {
    for (const r of cpRecords(file).filter((x) => x.extra?.layout && x.extra.timeline)) {
      const s = timelineSplit(r, 'weft-a57aad4');
      rows.push({ r, s });
      t.diagnostic(`${r.config.world} GPUs ${weftTag(r.config.seq, r.config.mask).padEnd(14)} ${r.name.padEnd(26)} measured ${r.summary.median.toFixed(1).padStart(7)} predicted ${s.predictedMs.toFixed(1).padStart(7)}  kernels ${s.kernels.toFixed(1).padStart(7)} (model ${pct(s.modelKernels / s.kernels - 1)})  rest ${s.rest.toFixed(1).padStart(5)} ms [transfers ${s.exposedComm.toFixed(1)}, gaps ${s.idle.toFixed(1)}, after ${s.tail.toFixed(1)}] vs model ${s.modelRest.toFixed(1)}: unpriced ${(s.rest - s.modelRest).toFixed(1)} ms`);
    }
  }
  assert.equal(rows.length, 3 * 5 + 3 * 3 + 3 * 5 + 4);
  const unpriced = (x: { s: ReturnType<typeof timelineSplit> }): number => x.s.rest - x.s.modelRest;
  // the kernels of zigzag-family layouts under causal, full and sliding masks, on 2 and 4 GPUs,
  // within 5% of the model (documents: Ulysses' permuted order as before; on 4 GPUs every
  // layout's document kernels run 5–17% over the model, reported above). The 4-GPU 32K ring's
  // kernels run 6.3% over: within 5% only while the model's kernel term held the backward's adds
  // of arriving dK,dV sums as merges (they are Device operations, outside the kernel spans)
  for (const { r, s } of rows) {
    if (r.extra!.layout!.shard === 'contiguous' || r.config.mask === 'document-causal') continue;
    const tol = r.config.world === 4 && r.config.seq === 32768 ? 0.065 : 0.05;
    assert.ok(Math.abs(s.modelKernels / s.kernels - 1) < tol, `${r.name} ${r.config.world} ${r.config.seq} ${r.config.mask}: kernels ${s.kernels} vs model ${s.modelKernels}`);
  }
  // 4 GPUs at 32K (8K tokens per GPU: the 16–30% misses): most of each miss lies outside the kernels
  // (with the Device operations priced at their rates measured by `weft bench ops` (cd1042c): the
  // ring 2.6 of 4.0 ms, 65% — its kernels run 6.3% over the model, the rest of its miss; 79–103% for the others)
  for (const x of rows.filter((y) => y.r.config.world === 4 && y.r.config.seq === 32768)) {
    const miss = x.r.summary.median - x.s.predictedMs;
    t.diagnostic(`4 GPUs 32K ${x.r.name}: unpriced ${unpriced(x).toFixed(2)} of a ${miss.toFixed(2)} ms miss`);
    assert.ok(miss > 0 && unpriced(x) >= 0.6 * miss, `${x.r.name}: unpriced ${unpriced(x)} of a ${miss} ms miss`);
  }
  // the turned-back ring leaves less time outside its kernels than the home-hop ring of 7c54dd9d
  // (the last kernel → final hop gap is gone) at 32K and on every 128K mask
  const fixed = WEFT_CP_FIXED_RECORDS.flatMap((f) => cpRecords(f));
  for (const [seq, mask, name] of [[32768, 'causal', 'weft-ring-zigzag'], [131072, 'causal', 'weft-ring-zigzag'], [131072, 'full', 'weft-ring-zigzag'],
    [131072, 'sliding:8191,0', 'weft-ring-zigzag'], [131072, 'document-causal', 'weft-ring-doc-zigzag']] as const) {
    // both by the model without the Device operations (not counted for 7c54dd9d's code)
    const r = rows.find((x) => x.r.config.world === 2 && x.r.config.seq === seq && x.r.config.mask === mask && x.r.name === name)!.r;
    const now = { s: timelineSplit(r, 'weft-a57aad4', withoutDeviceOps('weft-a57aad4')) };
    const before = timelineSplit(fixed.find((x) => x.config.seq === seq && x.config.mask === mask && x.name === name)!, 'weft-7c54dd9d');
    t.diagnostic(`ring ${weftTag(seq, mask)}: unpriced (Device operations too) ${(before.rest - before.modelRest).toFixed(1)} ms at 7c54dd9d → ${unpriced(now).toFixed(1)} ms at a57aad4; with them priced ${unpriced(rows.find((x) => x.r === r)!).toFixed(1)} ms`);
    assert.ok(unpriced(now) < before.rest - before.modelRest);
  }
});

/** Counted allocator peak of a layout, GiB (the model's memory without the workspace and fragmentation allowance). */
test('memory: weft\'s counted footprint against the allocator peak of every record that has one (a57aad4, 7c54dd9d; 2 and 4 GPUs)', (t) => {
  const errs: number[] = [];
  for (const [files, implementation] of [[WEFT_CP_A57AAD4_RECORDS, 'weft-a57aad4'], [WEFT_CP_FIXED_RECORDS, 'weft-7c54dd9d']] as const) {
    for (const file of files) {
      for (const r of cpRecords(file).filter((x) => x.extra?.peakGiB)) {
        const measured = Math.max(...r.extra!.peakGiB!);
        const counted = countedGiB(r.config.seq, r.config.mask, r.config.world, r.config.kvHeads, implementation, recordLayout(r));
        errs.push(counted / measured - 1);
        t.diagnostic(`${implementation.padEnd(13)} ${r.config.world} GPUs ${weftTag(r.config.seq, r.config.mask).padEnd(14)} ${r.name.padEnd(26)} peak ${measured.toFixed(2).padStart(6)} GiB, counted ${counted.toFixed(2).padStart(6)} (${pct(counted / measured - 1)})`);
        // within 1.5% (document shards are a little unequal: the count takes S / ranks rows each)
        assert.ok(Math.abs(counted / measured - 1) < 0.015, `${r.name} ${r.config.seq} ${r.config.mask} ${r.config.world}: counted ${counted} vs ${measured} GiB`);
      }
    }
  }
  assert.equal(errs.length, 3 * 5 + 3 * 3 + 3 * 5 + 4 + 3 * 5 + 3 * 3);
  t.diagnostic(`${errs.length} records: median error ${pct(median(errs))}, largest ${pct(errs.reduce((a, x) => (Math.abs(x) > Math.abs(a) ? x : a)))}`);
});

test('memory: the ring of 2 at 1M–2.75M tokens (Hkv 8) — the counted peaks, the out-of-memory point and the longest S that fits', (t) => {
  const L = WEFT_CP_LENGTH_A57AAD4, ring = { ring: 2, shard: 'zigzag' } as const;
  // the 1M run at e4fbcd6c (home-hop backward: one more K/V block and one more f32 sum than now) and the 2M, 2.5M runs at a57aad4 (logs print 0.1 GiB)
  const runs = [{ label: '1M (e4fbcd6c)', seq: WEFT_CP_1M_E4FBCD6C.seq, implementation: 'weft-7c54dd9d', peakGiB: WEFT_CP_1M_E4FBCD6C.peakGiB },
    ...L.runs.map((r) => ({ label: `${weftTag(r.seq, '').trim()} (a57aad4)`, seq: r.seq, implementation: 'weft-a57aad4', peakGiB: r.peakGiB }))];
  for (const r of runs) {
    const counted = countedGiB(r.seq, 'causal', 2, L.kvHeads, r.implementation, ring);
    // the generic count the planner used before footprint.ts (what an implementation that frees eagerly would hold)
    const gcfg = weftCpConfig(r.seq, 'causal', 2, L.kvHeads, 'pytorch');
    const gp = memory(buildContext(gcfg), completeLayout(ring, gcfg)).parts;
    const generic = gp.tensors! + gp.buffers!;
    t.diagnostic(`${r.label.padEnd(16)} peak ${r.peakGiB} GiB: counted ${counted.toFixed(2)} (${pct(counted / r.peakGiB - 1)}); the generic count ${generic.toFixed(2)} (${pct(generic / r.peakGiB - 1)})`);
    assert.ok(Math.abs(counted - r.peakGiB) < 0.1, `${r.label}: counted ${counted} vs ${r.peakGiB} GiB`);
    assert.ok(generic < 0.8 * r.peakGiB);
  }
  // 2.75M: out of memory at the cast of dv, the last allocation of the iteration (2.75 GiB, bf16), with
  // 137.80 GiB in use: the count without that cast
  const o = L.oom, GiB = 1024 ** 3;
  const cast = (o.seq / 2) * L.kvHeads * 128 * 2 / GiB;
  assert.ok(Math.abs(cast - o.allocGiB) < 0.005);
  const peak = countedGiB(o.seq, 'causal', 2, L.kvHeads, 'weft-a57aad4', ring);
  const other = o.totalGiB - o.inUseGiB - o.freeMiB / 1024; // CUDA context, NCCL, modules: what weft's allocator does not count
  t.diagnostic(`2.75M: counted peak ${peak.toFixed(2)} GiB; in use before the dv cast ${(peak - cast).toFixed(2)} (measured ${o.inUseGiB}); the GPU's ${o.totalGiB} GiB less ${other.toFixed(2)} GiB outside weft leave ${(o.totalGiB - other).toFixed(2)}`);
  assert.ok(Math.abs(peak - cast - o.inUseGiB) < 0.1, `in use before the dv cast: counted ${peak - cast} vs ${o.inUseGiB} GiB`);
  assert.ok(peak > o.totalGiB - other);
  // the planner's answer (the count plus its 1.5 GiB workspace and 5% fragmentation, against 140.4 GiB):
  // 2.5M fits, 2.75M does not — as measured
  const cfg = weftCpConfig(1 << 20, 'causal', 2, L.kvHeads, 'weft-a57aad4');
  const longest = maxSeqLen(cfg, completeLayout(ring, cfg));
  const fitsAt = (S: number, implementation = 'weft-a57aad4'): boolean => { const c = weftCpConfig(S, 'causal', 2, L.kvHeads, implementation); return evaluateLayout(buildContext(c), completeLayout(ring, c)).feasible; };
  const generic = maxSeqLen(weftCpConfig(1 << 20, 'causal', 2, L.kvHeads, 'pytorch'), completeLayout(ring, cfg));
  t.diagnostic(`longest S that fits on 2×H200 (ring of 2, H 32, Hkv 8, D 128): planner ${longest} (${(longest / 2 ** 20).toFixed(3)}M); measured: 2.5M fits, 2.75M does not; the generic count said ${generic} (${(generic / 2 ** 20).toFixed(2)}M)`);
  assert.ok(longest >= L.runs[1]!.seq && longest < o.seq);
  assert.ok(fitsAt(L.runs[1]!.seq) && !fitsAt(o.seq));
  assert.ok(generic > o.seq, 'the generic count put the limit beyond the measured out-of-memory point');
});

test('memory predictions written for the a57aad4 code (MEMORY_PREDICTIONS_A57AAD4, superseded by 90faa7f before measured): weft-a57aad4 still gives them', (t) => {
  const { date, code, peaks, longest } = MEMORY_PREDICTIONS_A57AAD4;
  t.diagnostic(`written down ${date}, weft's code as of ${code}`);
  for (const p of peaks) {
    const counted = countedGiB(p.seq, 'causal', p.gpus, p.kvHeads, 'weft-a57aad4', { shard: 'zigzag', ...p.layout });
    assert.ok(Math.abs(counted - p.peakGiB) < 0.005, `${p.label}: the model now counts ${counted} GiB, not ${p.peakGiB}`);
  }
  for (const p of longest) {
    const cfg = weftCpConfig(1 << 20, 'causal', p.gpus, p.kvHeads, 'weft-a57aad4');
    assert.equal(maxSeqLen(cfg, completeLayout({ shard: 'zigzag', ...p.layout }, cfg), undefined, 65536), p.maxSeq, p.label);
  }
});

test('memory predictions for the next GPU session (NEXT_MEMORY_PREDICTIONS, the releasing code of 90faa7f): the model still gives them; what the release changed', (t) => {
  const { date, code, peaks, longest } = NEXT_MEMORY_PREDICTIONS;
  t.diagnostic(`written down ${date}, weft's code as of ${code} (profile weft-aa4a388: the f32 output held through the backward, as that code did); the a57aad4 code's count (weft-a57aad4) beside`);
  for (const p of peaks) {
    const l = { shard: 'zigzag' as const, ...p.layout };
    const counted = countedGiB(p.seq, 'causal', p.gpus, p.kvHeads, 'weft-aa4a388', l), before = countedGiB(p.seq, 'causal', p.gpus, p.kvHeads, 'weft-a57aad4', l);
    assert.ok(Math.abs(counted - p.peakGiB) < 0.005, `${p.label}: the model now counts ${counted} GiB, not ${p.peakGiB}`);
    assert.ok(Math.abs(before - p.a57aad4GiB) < 0.005, `${p.label}: weft-a57aad4 now counts ${before} GiB, not ${p.a57aad4GiB}`);
    // releasing never holds more than keeping everything
    assert.ok(p.peakGiB < p.a57aad4GiB, p.label);
    t.diagnostic(`${p.label.padEnd(34)} peak ${p.peakGiB.toFixed(2).padStart(6)} GiB per GPU (a57aad4's code ${p.a57aad4GiB.toFixed(2).padStart(6)}: ${pct(p.peakGiB / p.a57aad4GiB - 1)})`);
  }
  for (const p of longest) {
    const cfg = weftCpConfig(1 << 20, 'causal', p.gpus, p.kvHeads, 'weft-aa4a388'), cfgA = weftCpConfig(1 << 20, 'causal', p.gpus, p.kvHeads, 'weft-a57aad4');
    const l = { shard: 'zigzag' as const, ...p.layout };
    assert.equal(maxSeqLen(cfg, completeLayout(l, cfg), undefined, p.step), p.maxSeq, `${p.label}: the model now says otherwise`);
    assert.equal(maxSeqLen(cfgA, completeLayout(l, cfgA), undefined, p.step), p.a57aad4, `${p.label}: weft-a57aad4 now says otherwise`);
    t.diagnostic(`${p.label.padEnd(34)} longest S ${p.maxSeq} (${(p.maxSeq / 2 ** 20).toFixed(3)}M; a57aad4's code ${(p.a57aad4 / 2 ** 20).toFixed(3)}M)`);
  }
  // the ring of 2 against what a57aad4 measured: 2M and 2.5M drop below the measured peaks, and the
  // 2.75M out-of-memory point now fits under the 138.0 GiB weft's allocator had there (139.80 less
  // the 1.80 outside it); the planner's longest S (allowance kept) lies beyond it
  const L = WEFT_CP_LENGTH_A57AAD4, o = L.oom, room = o.totalGiB - (o.totalGiB - o.inUseGiB - o.freeMiB / 1024);
  for (const r of L.runs) {
    const p = peaks.find((x) => x.gpus === 2 && x.seq === r.seq)!;
    t.diagnostic(`ring of 2 at ${weftTag(r.seq, '').trim()}: measured at a57aad4 ${r.peakGiB} GiB → predicted ${p.peakGiB} (${pct(p.peakGiB / r.peakGiB - 1)})`);
    assert.ok(p.peakGiB < 0.9 * r.peakGiB);
  }
  const at = (S: number): number => countedGiB(S, 'causal', 2, L.kvHeads, 'weft-aa4a388', { ring: 2, shard: 'zigzag' });
  t.diagnostic(`ring of 2: 2.75M ${at(o.seq).toFixed(2)} GiB, 3M ${at(3 << 20).toFixed(2)}, 3.25M ${at(3407872).toFixed(2)} against ${room.toFixed(2)} GiB for weft's allocator`);
  assert.ok(at(o.seq) < room && at(3 << 20) < room && at(3407872) > room);
  assert.ok(longest[0]!.maxSeq > o.seq);
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
  const c = weftH200FixedChecks().find((x) => x.group === 'weft H200 1M causal Hkv 8 (e4fbcd6c)')!;
  const ctx = buildContext(cfg), l = completeLayout({ ring: 2, shard: 'zigzag' }, cfg);
  assert.equal(evaluateLayout(ctx, l).timing!.breakdown.host, 0);
  const bwdModel = phasesMs(ctx, layerSchedule(ctx, l).bwd, emptyBreakdown(), 1);
  const bwd = Math.max(...WEFT_CP_1M_E4FBCD6C.backwardMs);
  t.diagnostic(`predicted ${c.predictedMs.toFixed(0)} ms, measured ${c.measuredMs.toFixed(0)} (${pct(relErr(c))}); backward: model ${bwdModel.toFixed(0)} ms, measured ${WEFT_CP_1M_E4FBCD6C.backwardMs.join(' / ')}; forward: model ${(c.predictedMs - bwdModel).toFixed(0)} ms, measured ${WEFT_CP_1M_E4FBCD6C.forwardMs.join(' / ')}`);
  assert.ok(Math.abs(bwdModel / bwd - 1) < 0.02);
});
