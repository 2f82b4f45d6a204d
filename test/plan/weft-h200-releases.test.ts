// weft's runs of session 4 on 2 and 4 × H200: the strategies releasing per step (cd1042c) and the
// Device's rows kernel (3c19881). The memory the planner predicted for the releasing code before
// any GPU ran it (NEXT_MEMORY_PREDICTIONS) against the allocator's peaks, up to 3M tokens; the
// Device operation rates the planner uses against the `weft bench ops` records they come from;
// and the 4-GPU 1M runs, timed as one cold iteration, ordered from each rank's first kernel on.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { H200 } from '../../src/plan/calibration/h200.js';
import { applyRecords, type RecordLike } from '../../src/plan/calibration/records.js';
import { IMPLEMENTATIONS } from '../../src/plan/calibration/types.js';
import { completeLayout } from '../../src/plan/layout.js';
import { buildContext, evaluateLayout } from '../../src/plan/search.js';
import { NEXT_MEMORY_PREDICTIONS } from './published.js';
import { countedGiB, cpRecords, recordLayout, repeatSpread, repoFile, WEFT_CP_3M_CD1042C, WEFT_CP_SESSION4_RECORDS, weftCpConfig, weftTag } from './validation.js';

const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)}%`;

test('memory: the releasing code\'s count (held.ts) against every allocator peak of cd1042c and 3c19881, and the 3M ring', (t) => {
  let n = 0;
  for (const { file, implementation } of WEFT_CP_SESSION4_RECORDS) {
    for (const r of cpRecords(file).filter((x) => x.extra?.peakGiB)) {
      const measured = Math.max(...r.extra!.peakGiB!);
      const counted = countedGiB(r.config.seq, 'causal', r.config.world, r.config.kvHeads, implementation, recordLayout(r));
      t.diagnostic(`${r.config.world} GPUs ${weftTag(r.config.seq, 'causal').padEnd(11)} Hkv ${String(r.config.kvHeads).padEnd(3)} ${r.name.padEnd(26)} peak ${measured.toFixed(2).padStart(6)} GiB, counted ${counted.toFixed(2).padStart(6)} (${pct(counted / measured - 1)})`);
      // the allocator rounds each block up to 2 MiB: within 0.5% (measured: 0.0–0.2%)
      assert.ok(Math.abs(counted / measured - 1) < 0.005, `${r.name} ${r.config.seq}: counted ${counted} vs ${measured} GiB`);
      n++;
    }
  }
  assert.equal(n, 10 + 3 + 3 + 10 + 10 + 10 + 8 + 2 + 3);
  const m = WEFT_CP_3M_CD1042C, counted = countedGiB(m.seq, 'causal', 2, m.kvHeads, 'weft-cd1042c', { ring: 2, shard: 'zigzag' });
  t.diagnostic(`3M ring of 2: peak ${m.peakGiB} GiB (the log's 0.1 GiB), counted ${counted.toFixed(2)}`);
  assert.ok(Math.abs(counted - m.peakGiB) < 0.1);
});

test('the memory predictions written before any GPU ran the releasing code (NEXT_MEMORY_PREDICTIONS, 90faa7f), measured at cd1042c', (t) => {
  const { peaks } = NEXT_MEMORY_PREDICTIONS;
  const recs = WEFT_CP_SESSION4_RECORDS.filter((x) => x.revision === 'cd1042c').flatMap(({ file }) => cpRecords(file));
  let measured = 0;
  for (const p of peaks) {
    const r = recs.find((x) => x.config.world === p.gpus && x.config.seq === p.seq && x.config.kvHeads === p.kvHeads
      && JSON.stringify(completeLayout(recordLayout(x), weftCpConfig(p.seq, 'causal', p.gpus, p.kvHeads)))
        === JSON.stringify(completeLayout({ shard: 'zigzag', ...p.layout }, weftCpConfig(p.seq, 'causal', p.gpus, p.kvHeads))));
    if (!r) { t.diagnostic(`${p.label.padEnd(34)} predicted ${p.peakGiB.toFixed(2)} GiB: not run`); continue; }
    const peak = Math.max(...r.extra!.peakGiB!);
    t.diagnostic(`${p.label.padEnd(34)} predicted ${p.peakGiB.toFixed(2).padStart(6)} GiB, measured ${peak.toFixed(2).padStart(6)} (${pct(p.peakGiB / peak - 1)}); a57aad4's code would have held ${p.a57aad4GiB.toFixed(2)}`);
    assert.ok(Math.abs(p.peakGiB - peak) < 0.1, p.label);
    measured++;
  }
  assert.equal(measured, 6);
  // "3M fits" (129.75 GiB predicted: the written-down table in docs/plan.md; 3.25M would not)
  const m = WEFT_CP_3M_CD1042C, at3M = countedGiB(m.seq, 'causal', 2, m.kvHeads, 'weft-aa4a388', { ring: 2, shard: 'zigzag' });
  assert.ok(Math.abs(at3M - 129.75) < 0.005 && Math.abs(m.peakGiB - at3M) < 0.1);
  t.diagnostic(`3M ring of 2: predicted 129.75 GiB (fits), measured ${m.peakGiB} GiB in ${(m.ms / 1000).toFixed(1)} s — the longest run so far (2.5M at a57aad4)`);
});

const opsRecords = (file: string): RecordLike[] => readFileSync(repoFile(file), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as RecordLike);

test('the Device operation rates the planner uses are those `weft bench ops` measured (cd1042c: weft-a57aad4, weft-cd1042c; 3c19881: weft)', (t) => {
  for (const [file, impls] of [['bench/results/ops-2026-11-28-18-17-10-cd1042c.jsonl', ['weft-a57aad4', 'weft-cd1042c']], ['bench/results/ops-2026-11-28-18-38-42-3c19881.jsonl', ['weft']]] as const) {
    // the records as --calibration reads them (records.ts: box copies the harmonic mean of a contiguous and a strided one)
    const expected = applyRecords(H200, opsRecords(file)).calibration.deviceOps!.ops;
    for (const name of impls) {
      const ops = IMPLEMENTATIONS[name]!.deviceOps!.ops;
      for (const [op, e] of Object.entries(expected)) {
        const got = ops[op as keyof typeof ops];
        assert.ok(Math.abs(got.hbmEfficiency - e.hbmEfficiency) < 0.006 && Math.abs(got.callUs - e.callUs) < 0.06, `${name} ${op}: ${JSON.stringify(got)} vs measured ${JSON.stringify(e)}`);
      }
    }
    t.diagnostic(`${file}: ${Object.entries(expected).map(([op, e]) => `${op} ${e.hbmEfficiency.toFixed(2)} of HBM, ${e.callUs.toFixed(1)} µs`).join('; ')}`);
  }
});

test('4 × H200 at 1M, one cold iteration per layout: the first kernels start late (views prepared once, first use); from them on, the model\'s order', (t) => {
  const sigma = repeatSpread().median;
  for (const { file } of WEFT_CP_SESSION4_RECORDS.filter((x) => x.file.includes('18-21-58') || x.file.includes('18-23-03'))) {
    const rows = cpRecords(file).map((r) => {
      assert.equal(r.summary.n, 1);
      const ranks = r.extra!.timeline!.map((k) => {
        const first = Math.min(...k.spans.filter((s) => s.stream === 'compute').map((s) => s.start));
        return { first, warm: Math.max(...k.spans.map((s) => s.end)) - first };
      });
      const cfg = weftCpConfig(r.config.seq, 'causal', r.config.world, r.config.kvHeads, 'weft-cd1042c');
      const model = evaluateLayout(buildContext(cfg), completeLayout(recordLayout(r), cfg)).prediction!.stepMs;
      return { name: r.name, ms: r.summary.median, first: Math.max(...ranks.map((x) => x.first)), warm: Math.max(...ranks.map((x) => x.warm)), model };
    });
    for (const x of rows) t.diagnostic(`Hkv ${cpRecords(file)[0]!.config.kvHeads} ${x.name.padEnd(28)} ${x.ms.toFixed(0)} ms; first kernel at ${x.first.toFixed(0)} ms; from it to the end ${x.warm.toFixed(0)} ms; model ${x.model.toFixed(0)} ms (${pct(x.model / x.warm - 1)})`);
    // every layout spends 100–900 ms before its first kernel, which a warm iteration does not
    assert.ok(rows.every((x) => x.first > 100 && x.first < 900));
    // from the first kernel on, the model orders every pair whose measured margin exceeds the
    // run-to-run spread σ as measured (Hkv 8: Ulysses, USP, ring; the Hkv 32 three are within 0.2%)
    for (const a of rows) for (const b of rows) {
      if (a.warm * (1 + sigma) < b.warm) assert.ok(a.model < b.model, `${a.name} (${a.warm} ms from its first kernel) before ${b.name} (${b.warm}), the model says otherwise`);
    }
  }
});

test('the backward reading the bf16 output (b97f63e): the peaks written down before the run (NOTES.md), against the f32 output held before', (t) => {
  const recs = WEFT_CP_SESSION4_RECORDS.filter((x) => x.revision === 'b97f63e').flatMap(({ file }) => cpRecords(file));
  const before = WEFT_CP_SESSION4_RECORDS.filter((x) => x.revision === 'cd1042c' || x.revision === 'aa4a388').flatMap(({ file }) => cpRecords(file));
  const rows = [
    { world: 4, seq: 1 << 20, kvHeads: 32, name: 'weft-ring-zigzag', predicted: 46.25 },
    { world: 4, seq: 1 << 20, kvHeads: 32, name: 'weft-tokenring-zigzag', predicted: 46.31 },
    { world: 2, seq: 131072, kvHeads: 32, name: 'weft-ring-zigzag', predicted: 9.52 },
    { world: 2, seq: 131072, kvHeads: 32, name: 'weft-tokenring-zigzag', predicted: 8.03 },
  ];
  for (const p of rows) {
    const find = (rs: typeof recs) => rs.find((r) => r.config.world === p.world && r.config.seq === p.seq && r.config.kvHeads === p.kvHeads && r.name === p.name)!;
    const peak = Math.max(...find(recs).extra!.peakGiB!), old = Math.max(...find(before).extra!.peakGiB!);
    t.diagnostic(`${p.world} GPUs ${weftTag(p.seq, 'causal')} ${p.name}: predicted ${p.predicted} GiB, measured ${peak.toFixed(2)} (with the f32 output held: ${old.toFixed(2)})`);
    assert.ok(Math.abs(peak - p.predicted) < 0.05 && peak < old, p.name);
  }
});
