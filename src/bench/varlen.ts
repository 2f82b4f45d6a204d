// `weft bench varlen`: the dispatcher and sparse K/V executor against weft's static layouts on the
// same packed batches, written as records (bench/results/varlen-*.jsonl):
//   counted   on CPU ranks: every layout runs the same batch forward and backward; bytes sent (all,
//             and the forward's alone), area balance, peak held memory, error against the f64 reference;
//   priced    on 8–1024 H200s with the calibrated model: varlen by priceDispatch (plan/varlen.ts), the
//             static layouts (ring doc-zigzag, Ulysses, USP) and plain causal by the planner, the best
//             static layout also by the event simulator (sim/simulate.ts);
//   validation the planner and the simulator against weft's own measured multi-GPU document runs,
//             the error that every priced figure carries.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { referenceAttention } from '../kernel/reference.js';
import { MaskGrid } from '../mask/grid.js';
import type { PlanConfig } from '../plan/config.js';
import { completeLayout, type PlanLayout, layoutProblem } from '../plan/layout.js';
import { buildContext, evaluate } from '../plan/search.js';
import { dispatchPriced, VARLEN_INTER_NODE, varlenConfig, wholeDocumentsMs } from '../plan/varlen.js';
import { runDistributed } from '../run/run.js';
import { runVarlen } from '../run/varlen.js';
import { simulate } from '../sim/simulate.js';
import { relError } from '../tensor/host.js';
import { randn, Rng } from '../tensor/random.js';
import { batchMaskSpec, type Batch, cuSeqlensOf } from '../varlen/batch.js';
import { dispatch } from '../varlen/dispatch.js';
import { type DistName, fillPack } from '../varlen/distributions.js';
import { table } from '../report/table.js';
import { type BenchRecord, makeRecord, writeRecords } from './record.js';

export interface VarlenBenchOptions {
  outDir: string;
  /** world sizes priced on H200s */
  worlds: number[];
  /** tokens per GPU priced */
  perGpu: number[];
  seeds: number[];
  /** ranks of the counted CPU comparison, and its tokens per rank */
  cpuWorld: number;
  cpuPerRank: number;
  progress?: (line: string) => void;
}

/** MagiAttention's benchmark shape (exps/dist_attn/benchmark_conf.py): GQA 64:8, head dim 128. */
const SHAPE = { H: 64, Hkv: 8, D: 128 } as const;
/**
 * Static layouts on document masks are priced in full up to this many tokens; beyond, only on
 * batches of at most STATIC_MANY_DOCS documents and only USP with Ulysses over a node and over 64
 * ranks (the planner prices a ring over a document mask block by block and document by document:
 * a long-tail batch of thousands of documents on 128+ GPUs takes minutes per layout).
 */
const STATIC_PRICED_UP_TO = 64 * 8192;
const STATIC_MANY_DOCS = 100;

const causalBatch = (lengths: number[]): Batch => ({
  lengths,
  masks: lengths.map(() => ({ kind: 'causal' as const })),
});

/** Static layouts over the whole world: ring, Ulysses, USP with every Ulysses degree the heads allow. */
function staticLayouts(cfg: PlanConfig, shard: PlanLayout['shard']): { name: string; layout: PlanLayout }[] {
  const N = cfg.cluster.world,
    out: { name: string; layout: PlanLayout }[] = [];
  const add = (name: string, c: Parameters<typeof completeLayout>[0]): void => {
    const l = completeLayout(c, cfg);
    if (!layoutProblem(l, cfg)) out.push({ name, layout: l });
  };
  add(`ring ${shard}`, { ring: N, shard });
  if (N > 1) add('ulysses', { ulysses: N, shard });
  for (let u = 2; u < N; u *= 2) if (N % u === 0) add(`usp ${u}x${N / u} ${shard}`, { ulysses: u, ring: N / u, shard });
  return out;
}

/** Counted on CPU ranks: varlen and the static layouts on one batch, forward and backward. */
async function counted(o: VarlenBenchOptions, dist: DistName, seed: number): Promise<BenchRecord[]> {
  const N = o.cpuWorld;
  // the distribution's shape at CPU size: a pack of N·8K drawn, every length divided by 8K / perRank
  const lengths = fillPack(dist, N * 8192, seed).map((l) => Math.max(1, Math.round((l * o.cpuPerRank) / 8192)));
  const batch = causalBatch(lengths),
    S = lengths.reduce((a, b) => a + b, 0),
    mask = batchMaskSpec(batch);
  const H = 8,
    Hkv = 2,
    D = 16,
    rng = new Rng(seed);
  const q = randn(rng, 'f32', [S, H, D]),
    k = randn(rng, 'f32', [S, Hkv, D]),
    v = randn(rng, 'f32', [S, Hkv, D]),
    dout = randn(rng, 'f32', [S, H, D]);
  const problem = { q, k, v, dout, mask, scale: 1 / Math.sqrt(D), dtype: 'f32' as const };
  const ref = referenceAttention(q, k, v, MaskGrid.build(mask, S), problem.scale, dout);
  const config = {
    dist,
    seed,
    world: N,
    S,
    documents: lengths.length,
    heads: H,
    kvHeads: Hkv,
    dim: D,
    dtype: 'f32',
    mask: 'document-causal',
  };
  const runs: [string, () => ReturnType<typeof runDistributed>][] = [
    ['varlen', () => runVarlen(problem, dispatch(batch, { world: N }))],
    ['ring doc-zigzag', () => runDistributed(problem, { strategy: 'ring', world: N, shard: 'doc-zigzag' })],
    ['ulysses', () => runDistributed(problem, { strategy: 'ulysses', world: N })],
    [
      'usp 2x' + N / 2,
      () => runDistributed(problem, { strategy: 'usp', world: N, ulysses: 2, ring: N / 2, shard: 'doc-zigzag' }),
    ],
  ];
  const out: BenchRecord[] = [];
  for (const [name, go] of runs) {
    o.progress?.(`counted ${dist} seed ${seed}: ${name} on ${N} CPU ranks, ${S} tokens`);
    const r = await go();
    const s = r.stats;
    const bytes = s.perRank.reduce((a, x) => a + x.bytesSent, 0);
    const fwdBytes = s.steps.filter((x) => /fwd/.test(x.label)).reduce((a, x) => a + x.bytesSent, 0);
    const err = Math.max(...(['out', 'lse', 'dq', 'dk', 'dv'] as const).map((n) => relError(r[n]!, ref[n]!)));
    out.push(
      makeRecord(
        'varlen',
        `counted ${name}`,
        config,
        'bytes',
        [bytes],
        {
          bytesSent: bytes,
          fwdBytesSent: fwdBytes,
          areaBalance: s.balance,
          peakHeldBytes: Math.max(...s.perRank.map((x) => x.peakHeldBytes)),
          maxRelError: err,
        },
        {
          perRank: s.perRank.map((x) => ({
            rank: x.rank,
            area: x.area,
            bytesSent: x.bytesSent,
            bytesReceived: x.bytesReceived,
            peakHeldBytes: x.peakHeldBytes,
          })),
        },
      ),
    );
  }
  return out;
}

/** Priced on `world` H200s: varlen against the static layouts and plain causal, per-GPU TFLOP/s. */
async function priced(
  world: number,
  perGpu: number,
  dist: DistName,
  seed: number,
  simError: number | undefined,
): Promise<BenchRecord[]> {
  const lengths = fillPack(dist, world * perGpu, seed),
    S = world * perGpu,
    cu = cuSeqlensOf(lengths);
  const docCfg = varlenConfig(world, S, SHAPE, 'document-causal', cu),
    ctx = buildContext(docCfg);
  const t0 = performance.now();
  const { plan, price } = dispatchPriced(
    causalBatch(lengths),
    { world },
    SHAPE,
    ctx.rates,
    ctx.net,
    docCfg.cluster.gpusPerNode,
  );
  // the whole choice: dispatches with and without head-parallel documents, their routes priced
  const dispatchMs = performance.now() - t0;
  const compute = price.ranks.map((r) => r.computeMs);
  const boundMs = wholeDocumentsMs(plan, SHAPE, ctx.rates);
  const config = {
    dist,
    seed,
    world,
    perGpu,
    S,
    documents: lengths.length,
    ...SHAPE,
    gpu: 'h200',
    interNode: VARLEN_INTER_NODE,
    mask: 'document-causal',
  };
  const withErr = (d: Record<string, number>): Record<string, number> =>
    simError === undefined ? d : { ...d, modelErrorOnDocRuns: simError };
  const out: BenchRecord[] = [
    makeRecord(
      'varlen',
      'priced varlen',
      config,
      'ms',
      [price.stepMs],
      withErr({
        tflopsPerGpu: price.tflopsPerGpu,
        areaBalance: plan.balance.area,
        tokenBalance: plan.balance.tokens,
        fwdBytes: price.fwdBytes,
        bwdBytes: price.bwdBytes,
        groups: plan.docs.filter((d) => d.mode === 'group').length,
        relayGroups: plan.docs.filter((d) => d.relay).length,
        headDocs: plan.docs.filter((d) => d.heads).length,
        visits: plan.visits.length,
        chunks: plan.chunks,
        peakRows: Math.max(...plan.ranks.map((r) => r.peakRows)),
        computeMaxMs: Math.max(...compute),
        computeMeanMs: compute.reduce((a, b) => a + b, 0) / compute.length,
        boundMs,
        boundTflopsPerGpu: (price.tflopsPerGpu * price.stepMs) / boundMs,
        dispatchMs,
      }),
    ),
  ];
  let best: { name: string; layout: PlanLayout; tflops: number; ms: number } | undefined;
  // the planner prices a ring over a document mask block by block: minutes beyond 512K tokens
  const statics =
    S <= STATIC_PRICED_UP_TO
      ? staticLayouts(docCfg, 'doc-zigzag')
      : lengths.length <= STATIC_MANY_DOCS
        ? staticLayouts(docCfg, 'doc-zigzag').filter(({ layout: l }) => l.ulysses === 8 || l.ulysses === 64)
        : [];
  for (const { name, layout } of statics) {
    const p = (await evaluate(ctx, layout)).prediction;
    if (!p) continue;
    out.push(
      makeRecord('varlen', `priced ${name}`, config, 'ms', [p.stepMs], withErr({ tflopsPerGpu: p.tflopsPerGpu })),
    );
    if (!best || p.tflopsPerGpu > best.tflops) best = { name, layout, tflops: p.tflopsPerGpu, ms: p.stepMs };
  }
  // the plan-level choice: the dispatch, or the whole world as one static layout where that prices faster
  out.push(
    makeRecord(
      'varlen',
      'priced varlen chosen',
      config,
      'ms',
      [best && best.ms < price.stepMs ? best.ms : price.stepMs],
      withErr({ tflopsPerGpu: Math.max(price.tflopsPerGpu, best?.tflops ?? 0) }),
      { chosen: best && best.ms < price.stepMs ? best.name : 'dispatch' },
    ),
  );
  if (best) {
    const sim = simulate(ctx, best.layout);
    out.push(
      makeRecord(
        'varlen',
        `simulated ${best.name}`,
        config,
        'ms',
        [sim.stepMs],
        withErr({ tflopsPerGpu: (best.tflops * (await evaluate(ctx, best.layout)).prediction!.stepMs) / sim.stepMs }),
      ),
    );
  }
  const causalCfg = varlenConfig(world, S, SHAPE),
    cctx = buildContext(causalCfg);
  let plain: { name: string; tflops: number; ms: number } | undefined;
  for (const { name, layout } of staticLayouts(causalCfg, 'zigzag')) {
    const p = (await evaluate(cctx, layout)).prediction;
    if (p && (!plain || p.tflopsPerGpu > plain.tflops)) plain = { name, tflops: p.tflopsPerGpu, ms: p.stepMs };
  }
  if (plain)
    out.push(
      makeRecord(
        'varlen',
        `priced plain causal (${plain.name})`,
        { ...config, mask: 'causal' },
        'ms',
        [plain.ms],
        withErr({ tflopsPerGpu: plain.tflops }),
      ),
    );
  return out;
}

interface CpRecord {
  name: string;
  config: { seq: number; heads: number; kvHeads: number; dim: number; mask: string; world: number };
  summary: { median: number };
  env: { gitRevision?: string };
  extra?: {
    layout?: {
      strategy: PlanLayout['strategy'];
      shard: PlanLayout['shard'];
      ulysses: number;
      ring: number;
      placement?: PlanLayout['placement'];
    };
  };
}

/** The document boundaries `weft bench cp --masks document-causal:N` draws (src/cli/commands/bench.ts). */
function benchDocuments(S: number, n: number): number[] {
  const rng = new Rng(7),
    cuts = new Set<number>();
  while (cuts.size < Math.min(n, S) - 1) cuts.add(rng.int(1, S - 1));
  return [0, ...[...cuts].sort((x, y) => x - y), S];
}

/** The planner and the simulator against weft's measured multi-GPU document runs: one record each. */
async function validation(
  resultsDir: string,
): Promise<{ records: BenchRecord[]; meanAbs: { analytic: number; simulated: number } }> {
  const records: BenchRecord[] = [];
  const errs = { analytic: [] as number[], simulated: [] as number[] };
  for (const f of readdirSync(resultsDir)
    .filter((x) => /^cp-.*\.jsonl$/.test(x))
    .sort()) {
    for (const line of readFileSync(path.join(resultsDir, f), 'utf8').trim().split('\n')) {
      const r = JSON.parse(line) as CpRecord;
      const l = r.extra?.layout;
      if (!r.config.mask.startsWith('document') || r.config.world < 2 || !l || !r.env.gitRevision) continue;
      // priced with the current model: the strategies' schedules are unchanged since these runs,
      // their memory releases and builtins are not, so the error is the current model's on older code
      const impl = 'weft';
      let cfg: PlanConfig;
      try {
        cfg = varlenConfig(
          r.config.world,
          r.config.seq,
          { H: r.config.heads, Hkv: r.config.kvHeads, D: r.config.dim },
          r.config.mask,
          benchDocuments(r.config.seq, 8),
          impl,
        );
      } catch {
        continue;
      }
      const ctx = buildContext(cfg);
      const layout = completeLayout(
        {
          ulysses: l.ulysses,
          ring: l.ring,
          strategy: l.strategy,
          shard: l.shard,
          ...(l.placement ? { placement: l.placement } : {}),
        },
        cfg,
      );
      const p = (await evaluate(ctx, layout)).prediction;
      if (!p) continue;
      const sim = simulate(ctx, layout).stepMs,
        ms = r.summary.median;
      const ea = (p.stepMs - ms) / ms,
        es = (sim - ms) / ms;
      errs.analytic.push(Math.abs(ea));
      errs.simulated.push(Math.abs(es));
      records.push(
        makeRecord('varlen', `validation ${r.name}`, { file: f, implementation: impl, ...r.config }, 'ms', [ms], {
          measuredMs: ms,
          predictedMs: p.stepMs,
          simulatedMs: sim,
          analyticError: ea,
          simulatedError: es,
        }),
      );
    }
  }
  const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  return { records, meanAbs: { analytic: mean(errs.analytic), simulated: mean(errs.simulated) } };
}

export async function benchVarlen(o: VarlenBenchOptions): Promise<string> {
  const records: BenchRecord[] = [];
  const v = await validation(o.outDir);
  records.push(...v.records);
  o.progress?.(
    `model error on weft's measured document runs (${v.records.length}): analytic ${(100 * v.meanAbs.analytic).toFixed(1)}%, simulated ${(100 * v.meanAbs.simulated).toFixed(1)}% mean |error|`,
  );
  for (const dist of ['longtail', 'magi'] as const)
    for (const seed of o.seeds) records.push(...(await counted(o, dist, seed)));
  for (const dist of ['longtail', 'magi'] as const)
    for (const perGpu of o.perGpu)
      for (const world of o.worlds)
        for (const seed of o.seeds) {
          o.progress?.(`priced ${dist} ${world} × H200, ${perGpu >> 10}K tokens a GPU, seed ${seed}`);
          records.push(...(await priced(world, perGpu, dist, seed, v.meanAbs.simulated)));
        }
  return writeRecords(o.outDir, records);
}

/** Tables for people from a run's records: the validation, the counted comparison, the priced one. */
export function varlenTables(records: readonly BenchRecord[]): string {
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const out: string[] = [];
  const val = records.filter((r) => r.name.startsWith('validation '));
  if (val.length) {
    const a = val.map((r) => r.derived!.analyticError!),
      s = val.map((r) => r.derived!.simulatedError!);
    const mean = (xs: number[]): number => xs.reduce((p, x) => p + Math.abs(x), 0) / xs.length;
    out.push(
      `model against weft's ${val.length} measured multi-GPU document runs (2–4 × H200): analytic mean |error| ${pct(mean(a))} (${pct(Math.min(...a))} to ${pct(Math.max(...a))}), ` +
        `simulated ${pct(mean(s))} (${pct(Math.min(...s))} to ${pct(Math.max(...s))})\n`,
    );
  }
  const counted = records.filter((r) => r.name.startsWith('counted '));
  for (const key of [...new Set(counted.map((r) => `${r.config.dist} seed ${r.config.seed}`))]) {
    const rows = counted.filter((r) => `${r.config.dist} seed ${r.config.seed}` === key);
    const ring = rows.find((r) => r.name === 'counted ring doc-zigzag');
    const c = rows[0]!.config;
    out.push(
      `counted on ${c.world} CPU ranks, ${key}: ${c.S} tokens in ${c.documents} documents, causal, H ${c.heads}:${c.kvHeads}, D ${c.dim}, ${c.dtype}`,
    );
    out.push(
      table(
        rows.map((r) => ({
          layout: r.name.slice(8),
          'sent KiB': (r.derived!.bytesSent! / 1024).toFixed(0),
          'fwd sent KiB': (r.derived!.fwdBytesSent! / 1024).toFixed(0),
          '÷ ring (fwd)': ring ? (r.derived!.fwdBytesSent! / ring.derived!.fwdBytesSent!).toFixed(3) : '-',
          '÷ ring (all)': ring ? (r.derived!.bytesSent! / ring.derived!.bytesSent!).toFixed(3) : '-',
          'area balance': r.derived!.areaBalance!.toFixed(3),
          'peak held KiB': (r.derived!.peakHeldBytes! / 1024).toFixed(0),
          'max rel error': r.derived!.maxRelError!.toExponential(1),
        })),
      ),
    );
  }
  const priced = records.filter((r) => /^(priced|simulated) /.test(r.name));
  for (const key of [...new Set(priced.map((r) => `${r.config.dist} ${Number(r.config.perGpu) >> 10}K`))]) {
    const rows = priced.filter((r) => `${r.config.dist} ${Number(r.config.perGpu) >> 10}K` === key);
    const err = rows[0]!.derived!.modelErrorOnDocRuns;
    out.push(
      `priced on H200s, ${key} tokens a GPU, document-causal, GQA 64:8, D 128 (TFLOP/s per GPU, fwd+bwd${err !== undefined ? `; the model's mean |error| on measured document runs: ±${pct(err)}` : ''})`,
    );
    out.push(
      table(
        [...new Set(rows.map((r) => Number(r.config.world)))]
          .sort((x, y) => x - y)
          .map((w) => {
            const at = rows.filter((r) => r.config.world === w);
            const v = at.find((r) => r.name === 'priced varlen')!,
              plain = at.find((r) => r.name.startsWith('priced plain causal'));
            const stat = at.filter(
              (r) =>
                r.name.startsWith('priced ') &&
                !r.name.startsWith('priced varlen') &&
                !r.name.startsWith('priced plain'),
            );
            const best = stat.reduce<BenchRecord | undefined>(
              (b, r) => (!b || r.derived!.tflopsPerGpu! > b.derived!.tflopsPerGpu! ? r : b),
              undefined,
            );
            const sim = at.find((r) => r.name.startsWith('simulated '));
            const chosen = at.find((r) => r.name === 'priced varlen chosen');
            const tv = v.derived!.tflopsPerGpu!;
            return {
              GPUs: w,
              docs: Number(v.config.documents),
              varlen: tv.toFixed(0),
              'area bal': v.derived!.areaBalance!.toFixed(3),
              'best static': best ? `${best.name.slice(7)} ${best.derived!.tflopsPerGpu!.toFixed(0)}` : '-',
              simulated: sim ? sim.derived!.tflopsPerGpu!.toFixed(0) : '-',
              '÷ static': best ? (tv / best.derived!.tflopsPerGpu!).toFixed(2) : '-',
              chosen: chosen ? `${chosen.extra?.chosen} ${chosen.derived!.tflopsPerGpu!.toFixed(0)}` : '-',
              'plain causal': plain ? plain.derived!.tflopsPerGpu!.toFixed(0) : '-',
              '÷ causal': plain ? (tv / plain.derived!.tflopsPerGpu!).toFixed(2) : '-',
              ...lossColumns(v),
            };
          }),
      ),
    );
  }
  return out.join('\n');
}

/**
 * Where a priced varlen step goes, from the bound (every document whole, perfectly spread, nothing
 * moved) to the step: cutting documents (mean compute over the bound), imbalance (slowest rank's
 * compute over the mean) and exposed transfers (step over the slowest compute); and the routes chosen.
 */
function lossColumns(v: BenchRecord): Record<string, string> {
  const d = v.derived!;
  if (d.boundMs === undefined) return {};
  const pct = (a: number, b: number): string => `${(100 * (a / b - 1)).toFixed(0)}%`;
  return {
    bound: d.boundTflopsPerGpu!.toFixed(0),
    'cut +': pct(d.computeMeanMs!, d.boundMs),
    'imbal +': pct(d.computeMaxMs!, d.computeMeanMs!),
    'comm +': pct(v.summary.median, d.computeMaxMs!),
    routes: `${d.chunks}×${d.relayGroups ? ` relay ${d.relayGroups}` : ''}`,
  };
}

/** The records of a file written by benchVarlen. */
export function readVarlenRecords(file: string): BenchRecord[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as BenchRecord);
}
