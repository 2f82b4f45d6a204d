// Validation against published measurements (sources in published.ts; each check names its table):
//  - USP, arXiv 2405.07719: Tables 5–7 (LLaMA2-7B / LLaMA3-8B training on A800 nodes), Tables 3–4
//    (attention alone on 8 × L20 PCIe and 8 × A100 NVLink), and its out-of-memory statements;
//  - zhuzilin/ring-flash-attention README: 8-GPU ring / zigzag / stripe throughput and efficiency;
//  - Ring Attention, arXiv 2310.01889, Table 3: maximum context lengths;
//  - this project's 2 × H200 measurement of PyTorch's context parallel;
//  - the newest `weft bench cp` records of the current code (validation.ts WEFT_RECORDS).
// The rows each calibration was fitted on are excluded from the error statistics: the Ampere GEMM
// row, the Ada attention row, and the two L20 rows of the root complex's all-to-all rate.
// docs/validation.md prints these checks (tools/validation-table.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADA_ATTENTION_REFERENCE, AMPERE, AMPERE_GEMM_REFERENCE } from '../../src/plan/calibration/classes.js';
import { L20_BOX, L20_BOX_REFERENCE } from '../../src/plan/hardware.js';
import { completeLayout } from '../../src/plan/layout.js';
import { buildContext, evaluate } from '../../src/plan/search.js';
import { USP_ATTENTION, USP_OOM, USP_TRAINING } from './published.js';
import {
  layoutFor,
  median,
  relErr,
  repeatSpread,
  rfaEfficiency,
  ringAttentionChecks,
  uspAttentionConfig,
  uspTable4Readings,
  rankGroups,
  uspTrainingConfig,
  validationChecks,
  weftMemoryChecks,
} from './validation.js';

const l20Ref = L20_BOX_REFERENCE;
const checks = await validationChecks();
const all = Object.values(checks).flat();
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

test('report: predicted vs published throughput, every check', (t) => {
  for (const [source, cs] of Object.entries(checks)) {
    t.diagnostic(`${source}: median |error| ${pct(median(cs.map((c) => Math.abs(relErr(c)))))} over ${cs.length}`);
    for (const c of cs)
      t.diagnostic(
        `  ${c.label.padEnd(46)} published ${c.published.toFixed(2).padStart(8)}  predicted ${c.predicted.toFixed(2).padStart(8)} ${c.unit}  ${pct(relErr(c)).padStart(7)}`,
      );
  }
  t.diagnostic(`all ${all.length} checks: median |error| ${pct(median(all.map((c) => Math.abs(relErr(c)))))}`);
});

test("median error of predicted throughput ≤ 10% (the issue's target), overall and for every source", () => {
  assert.ok(median(all.map((c) => Math.abs(relErr(c)))) <= 0.1);
  for (const [source, cs] of Object.entries(checks)) {
    const m = median(cs.map((c) => Math.abs(relErr(c))));
    assert.ok(m <= 0.1, `${source}: median |error| ${pct(m)}`);
  }
});

/**
 * Groups whose measured margin exceeds σ and whose winner the model does not put first — misses
 * the model makes, not ties — with what the records show. Each is
 * reported and asserted to still be a miss (when the model gets one right, take it off this
 * list); a miss not listed here fails the test.
 */
const KNOWN_MISSES: Record<string, string> = {};

/**
 * The measured winner ranks first. The rule for near ties: a single measurement cannot order two
 * layouts whose published (or measured) margin is below the run-to-run spread of repeated
 * measurements — σ, the median over 40 configurations of how much the identical PyTorch SDPA
 * benchmarks repeated on this project's H200 differ (max/min − 1; repeatSpread(), from
 * bench/results/kernel-2026-11-28-*.jsonl; the published sources give single numbers without a
 * spread, so ours stands in). Where the margin exceeds σ, the exact winner must be predicted
 * first (asserted; the groups of KNOWN_MISSES are the stated exceptions). Where it does not, the group counts as a tie when the model puts the measured
 * winner within σ of its own first choice, and as a miss otherwise (reported, not asserted).
 */
test('the measured winner ranks first wherever its margin exceeds the run-to-run spread; near ties are counted apart', (t) => {
  const sigma = repeatSpread().median;
  const ranks = rankGroups(all, sigma);
  const known: string[] = [];
  for (const { group: g, winner, margin, first, behind, verdict } of ranks) {
    t.diagnostic(
      `${g.padEnd(26)} winner ${winner.label} by ${pct(margin)}: ${verdict}${verdict === 'first' ? '' : ` (model: ${first.label} first, the winner ${pct(behind)} behind)`}`,
    );
    if (KNOWN_MISSES[g] !== undefined) {
      assert.ok(
        verdict !== 'first' && margin > sigma,
        `${g} is listed as a known miss but is ${verdict === 'first' ? 'now predicted first' : 'a near tie'}: take it off KNOWN_MISSES`,
      );
      known.push(g);
      t.diagnostic(`  known miss: ${KNOWN_MISSES[g]}`);
    } else if (margin > sigma)
      assert.equal(
        verdict,
        'first',
        `${g}: the measured winner ${winner.label} (by ${pct(margin)} > σ ${pct(sigma)}) is not predicted first`,
      );
  }
  const n = (v: string): number => ranks.filter((r) => r.verdict === v).length;
  assert.deepEqual(known.sort(), Object.keys(KNOWN_MISSES).sort());
  t.diagnostic(
    `σ = ${pct(sigma)}: winner predicted first in ${n('first')} of ${ranks.length} groups, ${n('tie')} near ties within σ, ${n('miss')} misses (${known.length} of them with margins above σ, listed)`,
  );
});

test('layouts the USP paper ran fit in memory; those it reports out of memory are flagged', async () => {
  for (const row of USP_TRAINING) {
    const cfg = uspTrainingConfig(row.model, row.nodes, row.seqK, row.batch);
    const r = await evaluate(buildContext(cfg), layoutFor(cfg, row));
    assert.ok(r.feasible, `${row.table} ${row.seqK}K tp${row.tp} u${row.ulysses} r${row.ring}: ${r.reason}`);
  }
  for (const o of USP_OOM) {
    const cfg = uspTrainingConfig(o.model, o.nodes, o.seqK, o.batch);
    const world = cfg.cluster.world;
    // SP-only: no tensor parallelism, every Ulysses × ring split of the sequence-parallel ranks
    for (const ulysses of [1, 2, 4, 8, 16].filter((u) => u <= world / o.batch && cfg.model.heads % u === 0)) {
      const l = completeLayout({ tp: 1, ulysses, ring: world / o.batch / ulysses, dp: o.batch }, cfg);
      const r = await evaluate(buildContext(cfg), l);
      assert.ok(
        !r.feasible && /^out of memory/.test(r.reason!),
        `${o.note}: ${o.seqK}K u${ulysses} predicted to fit (${r.prediction?.memGiB.toFixed(1)} GiB)`,
      );
    }
  }
});

test('Ring Attention, Table 3: the maximum context grows with the device count as published', async (t) => {
  for (const c of await ringAttentionChecks()) {
    t.diagnostic(
      `${c.label.padEnd(26)} one sequence per GPU: published ${c.baselinePublished}K predicted ${c.baselinePredicted}K; ring over all GPUs: published ${c.published}K predicted ${c.predicted}K`,
    );
    const gpus = Number(c.label.split('x')[0]);
    // the paper's claim: ring attention trains sequences device-count times longer than the baseline
    assert.equal(c.published / c.baselinePublished, gpus);
    assert.equal(
      c.predicted / c.baselinePredicted,
      gpus,
      `${c.label}: predicted ring/baseline ${c.predicted}/${c.baselinePredicted}`,
    );
    // absolute lengths: within a factor 4 (powers of two; the paper's JAX memory use is not modelled in detail)
    assert.ok(
      c.predicted >= c.published / 4 && c.predicted <= c.published * 4,
      `${c.label}: ${c.predicted}K vs ${c.published}K`,
    );
  }
});

test('ring-flash-attention efficiencies: zigzag and stripe near 0.8–0.9, the unbalanced ring near one half', async () => {
  for (const gpu of ['h800', 'a100-80g'] as const) {
    for (const pass of ['fwd', 'fwd+bwd'] as const) {
      const ring = await rfaEfficiency(gpu, pass, 'contiguous'),
        zig = await rfaEfficiency(gpu, pass, 'zigzag');
      assert.ok(ring > 0.45 && ring < 0.6, `${gpu} ${pass} ring ${ring}`);
      assert.ok(zig > 0.78 && zig < 0.95, `${gpu} ${pass} zigzag ${zig}`);
      assert.ok(zig > (await rfaEfficiency(gpu, pass, 'striped')));
    }
  }
});

test('the class calibrations reproduce the rows they were fitted on', async () => {
  const pc = uspAttentionConfig(l20Ref.gpu, l20Ref.seqK);
  const pit =
    1000 /
    (
      await evaluate(
        buildContext(pc),
        layoutFor(pc, { ulysses: l20Ref.ulysses, ring: 8 / l20Ref.ulysses, shard: l20Ref.shard }),
      )
    ).prediction!.stepMs;
  assert.ok(
    Math.abs(pit / l20Ref.itersPerSec - 1) < 0.005,
    `L20 root complex reference: ${pit} vs ${l20Ref.itersPerSec} (${L20_BOX.rootComplexGBps} GB/s)`,
  );
  const r = AMPERE_GEMM_REFERENCE;
  const cfg = uspTrainingConfig(r.model, r.nodes, r.seqK, r.batch);
  const got = (await evaluate(buildContext(cfg), layoutFor(cfg, r))).prediction!.tflopsPerGpu;
  assert.ok(
    Math.abs(got / r.tflops - 1) < 0.005,
    `Ampere GEMM reference: ${got} vs ${r.tflops} (gemm ${AMPERE.gemm.tflops})`,
  );
  const a = ADA_ATTENTION_REFERENCE;
  const acfg = uspAttentionConfig(a.gpu, a.seqK);
  const it =
    1000 /
    (await evaluate(buildContext(acfg), layoutFor(acfg, { ulysses: a.ulysses, ring: 8, shard: a.shard }))).prediction!
      .stepMs;
  assert.ok(Math.abs(it / a.itersPerSec - 1) < 0.005, `Ada attention reference: ${it} vs ${a.itersPerSec}`);
});

/**
 * USP Table 4's 128K rows (A100) are 3–4 × slower than the model prices them. From the published
 * numbers alone (no model): a compute-bound attention forward grows at most by the FLOP ratio when
 * the sequence grows (16× from 32K to 128K, causal), since its efficiency rises with length; the
 * L20 rows of Table 3 grow 5.5–13×, the A100 rows 39–53×, for every layout. So the A100 box, faster
 * than the L20 box at 32K by 2–10×, is at 0.5–1.1× of it at 128K, on the same code and workload,
 * with 2.6× its bf16 peak and 2.4× its HBM bandwidth. The model is then priced under two readings
 * of what the 128K runs did (published.ts): each brings the rows to the size of the 32K rows'
 * errors. Reported, not used: the rows stay in the statistics as printed.
 */
test('USP Table 4 at 128K: the A100 rows contradict the same tables at 32K and the L20 rows; two readings of them', async (t) => {
  const get = (gpu: string, seqK: number, u: number, shard: string): number =>
    USP_ATTENTION.find((r) => r.gpu === gpu && r.seqK === seqK && r.ulysses === u && r.shard === shard)!.itersPerSec;
  const flopRatio = (128 / 32) ** 2;
  for (const u of [8, 4, 2, 1]) {
    for (const shard of ['contiguous', 'zigzag']) {
      const a100 = get('a100-80g', 32, u, shard) / get('a100-80g', 128, u, shard);
      const l20 = get('l20', 32, u, shard) / get('l20', 128, u, shard);
      const vs32 = get('a100-80g', 32, u, shard) / get('l20', 32, u, shard),
        vs128 = get('a100-80g', 128, u, shard) / get('l20', 128, u, shard);
      t.diagnostic(
        `u${u} r${8 / u} ${shard.padEnd(10)} time 128K/32K: A100 ${a100.toFixed(1)}×, L20 ${l20.toFixed(1)}× (FLOPs ${flopRatio}×); A100 ÷ L20 throughput: 32K ${vs32.toFixed(2)}, 128K ${vs128.toFixed(2)}`,
      );
      assert.ok(a100 > 2 * flopRatio, `A100 u${u} ${shard}: 128K/32K time ${a100}`);
      assert.ok(l20 <= flopRatio, `L20 u${u} ${shard}: 128K/32K time ${l20}`);
      assert.ok(vs32 >= 1.9 && vs128 <= 1.1, `u${u} ${shard}: A100/L20 ${vs32} at 32K, ${vs128} at 128K`);
    }
  }
  const rows = await uspTable4Readings();
  for (const reading of Object.keys(rows[0]!.readings)) {
    const errs = rows.map((r) => r.readings[reading]! / r.published - 1);
    t.diagnostic(
      `${reading.padEnd(22)} median |error| ${pct(median(errs.map(Math.abs)))}: ${rows.map((r, i) => `${r.label.slice(14)} ${pct(errs[i]!)}`).join(', ')}`,
    );
    if (reading.startsWith('as printed'))
      assert.ok(
        errs.every((e) => e > 1.5),
        'the printed reading is 2.5× off or more on every row',
      );
    else
      assert.ok(
        median(errs.map(Math.abs)) <= 0.1 && errs.every((e) => Math.abs(e) < 0.15),
        `${reading}: within the 32K rows' errors`,
      );
  }
});

/**
 * USP Table 6, 64K and 80K: Ulysses 4 × ring 4 measured 0.9% / 1.0% ahead of Ulysses 8 × ring 2,
 * the model puts it 2.7% / 2.4% behind. Not the borrowed H200 all-to-all efficiency: both layouts
 * run all-to-alls of nearly the same volume inside a node ((u−1)/u of the same buffer), so even a
 * tenth of it leaves Ulysses 8 ahead. The gap is the per-ring-step work of ring 4.
 */
test('USP Table 6 64K/80K: the Ampere all-to-all efficiency does not decide Ulysses 8 × ring 2 against Ulysses 4 × ring 4', async (t) => {
  for (const eff of [AMPERE.links.collectiveEfficiency, 0.3, 0.15, 0.08]) {
    const cal = { ...AMPERE, links: { ...AMPERE.links, collectiveEfficiency: eff } };
    for (const seqK of [64, 80]) {
      const cfg = uspTrainingConfig('llama3-8b', 2, seqK, 1);
      const ctx = buildContext(cfg, cal);
      const tf = async (u: number): Promise<number> =>
        (await evaluate(ctx, layoutFor(cfg, { tp: 1, ulysses: u, ring: 16 / u }))).prediction!.tflopsPerGpu;
      const u8 = await tf(8),
        u4 = await tf(4);
      t.diagnostic(
        `collective efficiency ${eff.toFixed(2)}, ${seqK}K: u8 r2 ${u8.toFixed(1)}, u4 r4 ${u4.toFixed(1)} TFLOP/s (u8 r2 ahead by ${pct(u8 / u4 - 1)})`,
      );
      assert.ok(u8 > u4);
    }
  }
});

test("weft's counted memory (the strategy code run dry, inputs, block lists) is within 0.5% of every recorded allocator peak", async (t) => {
  const cs = await weftMemoryChecks();
  assert.ok(cs.length >= 5);
  for (const c of cs) {
    t.diagnostic(
      `${c.label.padEnd(40)} measured ${c.published.toFixed(2)} GiB, counted ${c.predicted.toFixed(2)} GiB (${pct(relErr(c))})`,
    );
    assert.ok(Math.abs(relErr(c)) < 0.005, `${c.label}: ${pct(relErr(c))}`);
  }
});
