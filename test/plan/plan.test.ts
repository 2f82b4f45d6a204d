// weft plan end to end: the JSON the issue specifies, ranking, exact candidates, memory verdicts,
// the explanation, calibration updates from bench records, and speed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { H200 } from '../../src/plan/calibration/h200.js';
import { applyRecords } from '../../src/plan/calibration/records.js';
import { type Calibration, IMPLEMENTATIONS } from '../../src/plan/calibration/types.js';
import { parseConfig } from '../../src/plan/config.js';
import { explain, FLOP_CONVENTION } from '../../src/plan/explain.js';
import { completeLayout, describeLayout } from '../../src/plan/layout.js';
import { countStats } from '../../src/plan/counts.js';
import { buildContext, evaluate, maxSeqLen, plan } from '../../src/plan/search.js';
import { UserError } from '../../src/errors.js';
import { tempDir } from '../helpers/temp.js';

const main = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const cluster = { nodes: 2, gpusPerNode: 8, gpu: 'h200', interNode: { GBps: 25, latencyUs: 10 } };
const base = { model: 'llama3-8b', mode: 'training', seqLen: 131072, batchSeqs: 1, mask: 'causal', cluster };

function writeConfig(body: unknown): string {
  const file = path.join(tempDir('weft-plan-'), 'config.json');
  writeFileSync(file, JSON.stringify(body));
  return file;
}

test('--json prints {"plans": [...]}: best first, every field the issue names, infeasible last', async () => {
  const r = spawnSync(process.execPath, [main, 'plan', '--config', writeConfig(base), '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { plans: Record<string, unknown>[] };
  assert.deepEqual(Object.keys(out), ['plans']);
  assert.ok(out.plans.length > 20);
  for (const p of out.plans) {
    for (const k of [
      'tp',
      'ulysses',
      'ring',
      'dp',
      'strategy',
      'placement',
      'shard',
      'feasible',
      'reason',
      'predicted',
    ])
      assert.ok(k in p, `missing ${k}`);
    assert.equal((p.tp as number) * (p.ulysses as number) * (p.ring as number) * (p.dp as number), 16);
    if (p.predicted) assert.deepEqual(Object.keys(p.predicted as object), ['stepMs', 'tflopsPerGpu', 'mfu', 'memGiB']);
    assert.equal(p.feasible, p.reason === null);
  }
  const feasible = out.plans.filter((p) => p.feasible);
  const firstBad = out.plans.findIndex((p) => !p.feasible);
  assert.ok(firstBad === -1 || out.plans.slice(firstBad).every((p) => !p.feasible), 'infeasible plans come last');
  const times = feasible.map((p) => (p.predicted as { stepMs: number }).stepMs);
  assert.deepEqual(
    times,
    [...times].sort((a, b) => a - b),
    'best first',
  );
});

test('the table and the explanation: winner, dominant term, runner-up, FLOP convention', async () => {
  const r = spawnSync(process.execPath, [main, 'plan', '--config', writeConfig(base)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /TFLOP\/s\/GPU/);
  assert.match(r.stdout, /^Best: /m);
  assert.match(r.stdout, /The dominant term is /);
  assert.match(r.stdout, /It beats #2 /);
  assert.ok(r.stdout.includes('causal counts half'));
  // the longest sequence the winner fits, as maxSeqLen says
  const m = /^Longest sequence (.+) fits here: ([\d,]+) tokens/m.exec(r.stdout);
  assert.ok(m, r.stdout);
  const cfg = parseConfig(base),
    best = (await plan(cfg)).results[0]!;
  assert.equal(m[1], describeLayout(best.layout));
  assert.equal(Number(m[2]!.replaceAll(',', '')), await maxSeqLen(cfg, best.layout));
});

test('with candidates it evaluates exactly those, and says why one cannot run', async () => {
  const cfg = parseConfig({
    ...base,
    candidates: [{ tp: 1, ulysses: 4, ring: 4 }, { ulysses: 16 }, { tp: 16, ring: 1 }],
  });
  const { results } = await plan(cfg);
  assert.equal(results.length, 3);
  const why = results.filter((r) => !r.feasible).map((r) => r.reason!);
  assert.ok(
    why.some((w) => /tp 16 does not divide the 32 heads and 8 KV heads/.test(w)),
    why.join('; '),
  );
  assert.ok(results[0]!.feasible && results[1]!.feasible);
});

test('memory: a layout too big is flagged with its need, and more sequence parallelism fits longer sequences', async () => {
  const cfg = parseConfig({
    ...base,
    seqLen: 1 << 20,
    candidates: [
      { tp: 1, ulysses: 8, ring: 2 },
      { tp: 8, ring: 2 },
    ],
  });
  const { results } = await plan(cfg);
  for (const r of results) {
    assert.equal(r.feasible, r.prediction!.memGiB <= 140.4);
    if (!r.feasible) assert.match(r.reason!, /^out of memory: needs [\d.]+ GiB of 140\.4 GiB per GPU$/);
  }
  const c = parseConfig(base);
  const S8 = await maxSeqLen(c, completeLayout({ ulysses: 8, ring: 1, dp: 2 }, { ...c, batchSeqs: 2 }));
  const S16 = await maxSeqLen(c, completeLayout({ ulysses: 8, ring: 2 }, c));
  assert.ok(S16 > 1.5 * S8, `${S16} vs ${S8}`);
});

test('tensor parallelism and ZeRO stages change memory the documented way', async () => {
  const c = parseConfig({ ...base, seqLen: 8192 });
  const ctx = buildContext(c);
  const one = (await evaluate(ctx, completeLayout({ ulysses: 8, ring: 2 }, c))).memory!.parts;
  const tp8 = (await evaluate(ctx, completeLayout({ tp: 8, ring: 2 }, c))).memory!.parts;
  assert.ok(Math.abs(tp8.weights! * 8 - one.weights!) < 1e-9);
  // ZeRO-1 shards the optimizer state over data × sequence ranks (16 here, 2 with tp 8)
  assert.ok(Math.abs(one.optimizer! * 16 - tp8.optimizer! * 8 * 2) < 1e-9);
  const z3 = (await evaluate(buildContext({ ...c, zero: 3 }), completeLayout({ ulysses: 8, ring: 2 }, c))).memory!
    .parts;
  assert.ok(Math.abs(z3.weights! * 16 - one.weights!) < 1e-9 && Math.abs(z3.gradients! * 16 - one.gradients!) < 1e-9);
});

test('masks: a causal attention layer costs half the FLOPs and about half the time of a full one', async () => {
  // one node: NVLink keeps the ring compute-bound, so the mask's work decides the time
  const node = { nodes: 1, gpusPerNode: 8, gpu: 'h200' };
  const mk = (mask: string) =>
    parseConfig({
      ...base,
      cluster: node,
      mode: 'attention',
      mask,
      candidates: [{ ring: 8, shard: mask === 'full' ? 'contiguous' : 'zigzag' }],
    });
  const full = (await plan(mk('full'))).results[0]!.prediction!,
    causal = (await plan(mk('causal'))).results[0]!.prediction!;
  assert.ok(
    causal.stepMs < 0.6 * full.stepMs && causal.stepMs > 0.45 * full.stepMs,
    `${causal.stepMs} vs ${full.stepMs}`,
  );
  // the same TFLOP/s convention for both: within the kernel-efficiency difference
  assert.ok(Math.abs(causal.tflopsPerGpu / full.tflopsPerGpu - 1) < 0.15);
  // one long document and four short ones: contiguous shards leave the long one's tail heavy
  const cu = [0, 65536, 81920, 98304, 114688, 131072];
  const docs = parseConfig({
    ...base,
    cluster: node,
    mode: 'attention',
    mask: 'document-causal',
    cuSeqlens: cu,
    candidates: [
      { ring: 8, shard: 'doc-zigzag' },
      { ring: 8, shard: 'contiguous' },
    ],
  });
  const [a, b] = (await plan(docs)).results;
  assert.equal(a!.layout.shard, 'doc-zigzag', 'per-document zigzag balances documents');
  assert.ok(b!.balance > a!.balance);
});

test('bench records update the calibration: kernel points, GEMM, link efficiencies', async () => {
  // shaped as the records in bench/results
  const env = { gpus: ['NVIDIA H200', 'NVIDIA H200'] };
  const k = (name: string, pass: string, S: number, mask: string, tflops: number) => ({
    kind: 'kernel',
    name,
    env,
    config: { pass, S, B: 1, H: 32, D: 128, mask },
    derived: { tflops },
  });
  const c = (name: string, op: string, bytes: number, algGBps: number, busGBps: number) => ({
    kind: 'comm',
    name,
    env,
    config: { op, bytes, ranks: 2 },
    derived: { algGBps, busGBps },
  });
  const records = [
    k('weft_fwd', 'fwd', 32768, 'causal', 700),
    k('weft', 'fwd+bwd', 32768, 'causal', 620),
    k('weft_fwd_sync', 'fwd', 32768, 'causal', 1),
    k('weft_bwd-abl1', 'bwd', 32768, 'causal', 1),
    k('weft_bwd', 'bwd', 32768, 'causal', 1),
    k('sdpa-flash', 'fwd', 65536, 'causal', 340),
    { kind: 'kernel', name: 'gemm-bf16', env, config: { op: 'gemm' }, derived: { tflops: 800 } },
    c('weft-nccl-sendrecv', 'sendrecv', 1 << 20, 5.3, 5.3),
    c('weft-nccl-sendrecv', 'sendrecv', 1 << 30, 378, 378),
    c('torch-nccl-alltoall', 'alltoall', 1 << 30, 661.8, 350),
    { kind: 'kernel', name: 'odd', env: { gpus: ['NVIDIA A100-SXM4-80GB'] }, config: {}, derived: { tflops: 1 } },
    { kind: 'cp', name: 'weft-ring', env, config: {}, derived: {} },
  ];
  const { calibration, used, skipped } = applyRecords(H200, records);
  assert.equal(used, 7);
  assert.equal(skipped.length, 5);
  assert.ok(
    calibration.attention.some(
      (p) => p.kernel === 'weft' && p.pass === 'fwd' && p.seqLen === 32768 && p.mask === 'causal' && p.tflops === 700,
    ),
  );
  assert.ok(calibration.attention.some((p) => p.kernel === 'fa2' && p.seqLen === 65536 && p.tflops === 340));
  assert.ok(!calibration.attention.some((p) => p.tflops === 1), 'variants and backward-only records are not used');
  assert.equal(calibration.gemm.tflops, 800);
  assert.equal(calibration.links.p2pEfficiency, 378 / 450, 'the best message size counts');
  assert.equal(calibration.links.collectiveEfficiency, 350 / 450);
  assert.equal(H200.gemm.tflops, 790, 'the shipped calibration is not modified');
  // a faster kernel and GEMM make training faster
  const cfg = parseConfig({ ...base, candidates: [{ ulysses: 8, ring: 2 }] });
  assert.ok(
    (await plan(cfg, calibration)).results[0]!.prediction!.stepMs < (await plan(cfg)).results[0]!.prediction!.stepMs,
  );
  await assert.rejects(plan(parseConfig({ ...base, kernel: 'nope' })), /kernel: 'nope' has no forward/);
});

test("--calibration with `weft bench ops` records: weft's Device operation rates as measured, used for the current code", async () => {
  const read = (f: string) =>
    readFileSync(new URL(`../../../${f}`, import.meta.url), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const now = applyRecords(H200, read('bench/results/ops-2026-11-28-18-38-42-3c19881.jsonl'));
  // 8 fits and 8 calls of 4 KiB used, the other sizes skipped silently (they are in the fits)
  assert.equal(now.used, 16);
  assert.deepEqual(now.skipped, []);
  const shipped = IMPLEMENTATIONS.weft!.deviceOps!.ops;
  for (const [op, r] of Object.entries(now.calibration.deviceOps!.ops)) {
    const s = shipped[op as keyof typeof shipped];
    assert.ok(
      Math.abs(r.hbmEfficiency - s.hbmEfficiency) < 0.006 && Math.abs(r.callUs - s.callUs) < 0.06,
      `${op}: ${JSON.stringify(r)} vs shipped ${JSON.stringify(s)}`,
    );
  }
  // the old builtins' rates (casts at 0.26 of HBM) make weft's ring slower; other profiles keep theirs
  const old = applyRecords(H200, read('bench/results/ops-2026-11-28-18-17-10-cd1042c.jsonl')).calibration;
  const attn = (implementation: string) =>
    parseConfig({
      model: 'llama3-8b',
      mode: 'attention',
      seqLen: 131072,
      mask: 'causal',
      implementation,
      cluster: { nodes: 1, gpusPerNode: 2, gpu: 'h200' },
      candidates: [{ ring: 2 }],
    });
  const ms = async (implementation: string, cal?: Calibration) =>
    (await plan(attn(implementation), cal)).results[0]!.prediction!.stepMs;
  assert.ok((await ms('weft', old)) > (await ms('weft', now.calibration)) + 1);
  assert.equal(await ms('pytorch', now.calibration), await ms('pytorch'));
  // only complete sets are used
  assert.equal(
    applyRecords(
      H200,
      read('bench/results/ops-2026-11-28-18-38-42-3c19881.jsonl').filter((r) => r.name !== 'cast-fit'),
    ).calibration.deviceOps,
    undefined,
  );
});

test('explain says so when nothing fits', async () => {
  const c = parseConfig({ ...base, seqLen: 1 << 23 });
  const { results } = await plan(c);
  assert.ok(results.every((r) => !r.feasible));
  assert.match(explain(c, results), /^No layout fits/);
  assert.ok(FLOP_CONVENTION.includes('causal counts half'));
});

test('work, counted: a 16,384-GPU search prices each layout once and runs the strategy code once per distinct case, long rings at three lengths shared by every length', async () => {
  const before = { ...countStats };
  const big = await plan(
    parseConfig({ ...base, model: 'llama3-70b', seqLen: 1 << 20, batchSeqs: 16, cluster: { ...cluster, nodes: 2048 } }),
  );
  assert.ok(big.results.length > 500);
  const runs = countStats.runs - before.runs,
    steps = countStats.steps - before.steps;
  // a case runs one member of each kind at no more than three ring lengths of at most 10, and
  // long rings of every length share those runs: fewer rank runs than layouts, and far fewer
  // traced steps than the layouts' rings have steps
  const ringSteps = big.results.reduce((s, r) => s + r.layout.ring, 0);
  assert.ok(runs < big.results.length, `${runs} rank runs for ${big.results.length} layouts`);
  assert.ok(steps < ringSteps, `${steps} steps traced for rings of ${ringSteps} steps in all`);
});

test('candidates whose degrees do not multiply to the GPU count: an error naming the degrees (plan and the CLI, exit 2, one line)', async () => {
  const body = {
    ...base,
    candidates: [
      { ulysses: 8, ring: 2 },
      { ulysses: 4, ring: 3 },
    ],
  };
  const want = /^candidates\[1\]: ulysses 4 × ring 3 × tp 1 × dp 1 = 12, not the 16 GPUs of the cluster$/;
  await assert.rejects(plan(parseConfig(body)), (e: unknown) => e instanceof UserError && want.test(e.message));
  for (const cmd of ['plan', 'simulate']) {
    const r = spawnSync(process.execPath, [main, cmd, '--config', writeConfig(body)], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^weft: candidates\[1\]: ulysses 4 × ring 3 × tp 1 × dp 1 = 12, not the 16 GPUs/);
  }
  const flags = spawnSync(
    process.execPath,
    [main, 'simulate', '--config', writeConfig(base), '--ulysses', '4', '--ring', '3'],
    { encoding: 'utf8' },
  );
  assert.equal(flags.status, 2, flags.stderr);
  assert.match(flags.stderr, /ulysses 4 × ring 3 × tp 1 × dp 1 = 12, not the 16 GPUs of the cluster/);
});

test('a sequence too short to split over the GPUs: the error says so, not that no layout divides them', async () => {
  const big = { nodes: 128, gpusPerNode: 8, gpu: 'h200', interNode: { GBps: 25, latencyUs: 10 } };
  const cfg = parseConfig({ model: 'llama3-8b', mode: 'attention', seqLen: 256, mask: 'causal', cluster: big });
  await assert.rejects(
    plan(cfg),
    (e: unknown) =>
      e instanceof UserError &&
      /^the sequence of 256 tokens is too short to split over 1,024 GPUs: .* at least 1,024 pieces$/.test(e.message) &&
      !/divides/.test(e.message),
  );
  // training: tensor parallelism inside a node takes 8 of them, so 128 pieces are the fewest
  const train = parseConfig({ model: 'llama3-8b', mode: 'training', seqLen: 64, mask: 'causal', cluster: big });
  await assert.rejects(
    plan(train),
    (e: unknown) =>
      e instanceof UserError &&
      /64 tokens is too short to split over 1,024 GPUs: with tp ≤ 8 .* at least 128 pieces/.test(e.message),
  );
});

test('infeasible rows are sorted by their predicted time too, those without a prediction last', async () => {
  const cfg = parseConfig({ ...base, seqLen: 1 << 21 });
  const { results } = await plan(cfg);
  const bad = results.filter((r) => !r.feasible);
  const timed = bad.filter((r) => r.prediction).map((r) => r.prediction!.stepMs);
  assert.ok(timed.length > 10, `${timed.length} infeasible rows with a prediction`);
  assert.deepEqual(
    timed,
    [...timed].sort((a, b) => a - b),
  );
  const firstUntimed = bad.findIndex((r) => !r.prediction);
  assert.ok(firstUntimed === -1 || bad.slice(firstUntimed).every((r) => !r.prediction));
});

test('progress: silent below the threshold, then lines counting the layouts run and priced (the clock injected)', async () => {
  const cfg = parseConfig(base);
  const quiet: string[] = [];
  const { results } = await plan(cfg, undefined, { now: () => 0, write: (l) => quiet.push(l) });
  assert.deepEqual(quiet, [], 'a search that takes no time says nothing');
  // a clock that advances one unit per reading: past `afterMs` readings, a line each `everyMs`
  const lines: string[] = [];
  let t = 0;
  await plan(cfg, undefined, { afterMs: 10, everyMs: 1, now: () => t++, write: (l) => lines.push(l) });
  const total = 2 * results.length; // every layout is valid here: run once, priced once
  assert.equal(lines.length, total - 9); // readings 10, 11, ... of the ticks; reading 0 started it
  assert.equal(lines.at(-1), `weft: ${total} of ${total} layouts run and priced (100%)`);
  assert.match(lines[0]!, /^weft: 10 of \d+ layouts run and priced \(\d+%\)$/);
});
