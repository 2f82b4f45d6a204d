// Predictions for every published measurement in published.ts, with the configs that describe
// each published setup. Shared by the validation tests and
// by tools/validation-table.ts, which writes docs/validation.md.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADA_ATTENTION_REFERENCE, AMPERE_GEMM_REFERENCE } from '../../src/plan/calibration/classes.js';
import { L20_BOX_REFERENCE } from '../../src/plan/hardware.js';
import { parseConfig, type PlanConfig } from '../../src/plan/config.js';
import { completeLayout, type PlanLayout } from '../../src/plan/layout.js';
import { buildContext, evaluate, maxSeqLen, type PlanResult } from '../../src/plan/search.js';
import { RING_ATTENTION_MAX, RING_FLASH_ATTN, TORCH_CP_H200, USP_ATTENTION, USP_TRAINING } from './published.js';

export interface ValidationCheck {
  source: string;
  label: string;
  group: string;
  published: number;
  predicted: number;
  unit: string;
}

export const relErr = (c: ValidationCheck): number => (c.predicted - c.published) / c.published;

const A800_NODES = (nodes: number): Record<string, unknown> => ({
  nodes,
  gpusPerNode: 8,
  gpu: 'a800',
  // USP §5.2: nodes joined by 1.6 Tbps RDMA = 200 GB/s per node = 25 GB/s per GPU per direction
  ...(nodes > 1 ? { interNode: { GBps: 25, latencyUs: 10 } } : {}),
});

export function uspTrainingConfig(model: string, nodes: number, seqK: number, batch: number): PlanConfig {
  // Megatron-LM's context parallel and yunchang merge partial results with PyTorch operations;
  // the A800 runs FlashAttention-2
  return parseConfig({
    model,
    mode: 'training',
    seqLen: seqK * 1024,
    batchSeqs: batch,
    mask: 'causal',
    implementation: 'pytorch',
    kernel: 'fa2',
    cluster: A800_NODES(nodes),
  });
}

export function layoutFor(
  cfg: PlanConfig,
  c: { tp?: number; ulysses?: number; ring?: number; shard?: PlanLayout['shard']; dp?: number },
): PlanLayout {
  return completeLayout({ ...c, placement: 'head-first' }, cfg);
}

/** `f` of every row, in order (the counts each prediction needs are run once, cached). */
async function each<T, U>(rows: readonly T[], f: (row: T) => Promise<U>): Promise<U[]> {
  const out: U[] = [];
  for (const r of rows) out.push(await f(r));
  return out;
}

function predictOne(cfg: PlanConfig, l: PlanLayout): Promise<PlanResult> {
  return evaluate(buildContext(cfg), l);
}

/** USP Tables 5–7: predicted vs published TFLOP/s per GPU (causal counts half). */
export function uspTrainingChecks(): Promise<ValidationCheck[]> {
  return each(USP_TRAINING, async (row) => {
    const cfg = uspTrainingConfig(row.model, row.nodes, row.seqK, row.batch);
    const res = await predictOne(cfg, layoutFor(cfg, row));
    return {
      source: row.table,
      group: `${row.table} ${row.seqK}K bs${row.batch}`,
      label: `${row.model} ${row.seqK}K bs${row.batch} tp${row.tp} u${row.ulysses} r${row.ring}`,
      published: row.tflops,
      predicted: res.prediction!.tflopsPerGpu,
      unit: 'TFLOP/s/GPU',
    };
  });
}

/** The L20 server of USP Table 3: one node of 8 PCIe cards; the l20 preset carries its PCIe tree (hardware.ts L20_BOX). */
const L20_BOX = { nodes: 1, gpusPerNode: 8, gpu: 'l20' };
const A100_BOX = { nodes: 1, gpusPerNode: 8, gpu: 'a100-80g' };

export function uspAttentionConfig(gpu: 'l20' | 'a100-80g', seqK: number): PlanConfig {
  return parseConfig({
    model: 'llama3-8b',
    mode: 'attention-forward',
    seqLen: seqK * 1024,
    mask: 'causal',
    implementation: 'pytorch',
    kernel: 'fa2',
    cluster: gpu === 'l20' ? L20_BOX : A100_BOX,
  });
}

/** USP Tables 3–4: predicted vs published iterations per second (forward only). */
export function uspAttentionChecks(): Promise<ValidationCheck[]> {
  return each(USP_ATTENTION, async (row) => {
    const cfg = uspAttentionConfig(row.gpu, row.seqK);
    const res = await predictOne(
      cfg,
      layoutFor(cfg, { ulysses: row.ulysses, ring: 8 / row.ulysses, shard: row.shard }),
    );
    return {
      source: row.table,
      group: `${row.table} ${row.seqK}K`,
      label: `${row.gpu} ${row.seqK}K u${row.ulysses} r${8 / row.ulysses} ${row.shard}`,
      published: row.itersPerSec,
      predicted: 1000 / res.prediction!.stepMs,
      unit: 'iter/s',
    };
  });
}

/**
 * USP Table 4's A100 128K rows priced under readings other than the printed one (published.ts):
 * `as printed` (128K, forward), `256K forward` (a global sequence of 8 × 32768, as the repository's
 * benchmark script would run it), `128K forward+backward`. The published iterations per second
 * are compared with each; nothing is fitted.
 */
export async function uspTable4Readings(): Promise<
  { label: string; published: number; readings: Record<string, number> }[]
> {
  const cfg = (seqK: number, mode: string): PlanConfig =>
    parseConfig({
      model: 'llama3-8b',
      mode,
      seqLen: seqK * 1024,
      mask: 'causal',
      implementation: 'pytorch',
      kernel: 'fa2',
      cluster: A100_BOX,
    });
  const readings: Record<string, PlanConfig> = {
    'as printed (128K fwd)': cfg(128, 'attention-forward'),
    '256K fwd': cfg(256, 'attention-forward'),
    '128K fwd+bwd': cfg(128, 'attention'),
  };
  const ctxs = Object.entries(readings).map(([k, c]) => ({ k, c, ctx: buildContext(c) }));
  return each(
    USP_ATTENTION.filter((r) => r.gpu === 'a100-80g' && r.seqK === 128),
    async (row) => {
      const got: Record<string, number> = {};
      for (const { k, c, ctx } of ctxs) {
        const l = layoutFor(c, { ulysses: row.ulysses, ring: 8 / row.ulysses, shard: row.shard });
        got[k] = 1000 / (await evaluate(ctx, l)).prediction!.stepMs;
      }
      return {
        label: `a100-80g 128K u${row.ulysses} r${8 / row.ulysses} ${row.shard}`,
        published: row.itersPerSec,
        readings: got,
      };
    },
  );
}

export function rfaConfig(gpu: 'h800' | 'a100-80g', pass: 'fwd' | 'fwd+bwd', seqLen = 65536, gpus = 8): PlanConfig {
  return parseConfig({
    model: 'llama3-8b',
    mode: pass === 'fwd' ? 'attention-forward' : 'attention',
    seqLen,
    mask: 'causal',
    implementation: 'pytorch',
    kernel: 'fa2',
    cluster: { nodes: 1, gpusPerNode: gpus, gpu },
  });
}

/** ring-flash-attention README: predicted vs published iterations per second. */
export function rfaChecks(): Promise<ValidationCheck[]> {
  return each(RING_FLASH_ATTN, async (row) => {
    const cfg = rfaConfig(row.gpu, row.pass);
    const res = await predictOne(cfg, layoutFor(cfg, { ring: 8, shard: row.shard }));
    return {
      source: 'ring-flash-attention README',
      group: `RFA ${row.gpu} ${row.pass}`,
      label: `${row.gpu} ${row.pass} ring 8 ${row.shard}`,
      published: row.itersPerSec,
      predicted: 1000 / res.prediction!.stepMs,
      unit: 'iter/s',
    };
  });
}

/** The README's efficiency: ring throughput over (single-GPU flash_attn on 8K) / 8, both predicted. */
export async function rfaEfficiency(
  gpu: 'h800' | 'a100-80g',
  pass: 'fwd' | 'fwd+bwd',
  shard: PlanLayout['shard'],
): Promise<number> {
  const ringCfg = rfaConfig(gpu, pass);
  const ring = await predictOne(ringCfg, layoutFor(ringCfg, { ring: 8, shard }));
  const oneCfg = rfaConfig(gpu, pass, 8192, 1);
  const one = await predictOne(oneCfg, layoutFor(oneCfg, {}));
  return (8 * one.prediction!.stepMs) / ring.prediction!.stepMs;
}

export function torchCpConfig(seqK: number, gpus = 2): PlanConfig {
  return parseConfig({
    model: 'llama2-7b',
    mode: 'attention',
    seqLen: seqK * 1024,
    mask: 'causal',
    implementation: 'pytorch',
    kernel: 'cudnn',
    cluster: { nodes: 1, gpusPerNode: gpus, gpu: 'h200' },
  });
}

/** PyTorch context parallel on 2 × H200 (published.ts TORCH_CP_H200): predicted vs measured TFLOP/s per GPU. */
export function torchCpChecks(): Promise<ValidationCheck[]> {
  return each(TORCH_CP_H200, async (row) => {
    const cfg = torchCpConfig(row.seqK);
    const res = await predictOne(cfg, layoutFor(cfg, { ring: 2, shard: 'zigzag' }));
    return {
      source: 'PyTorch CP on 2×H200',
      group: `PyTorch CP H200 ${row.seqK}K`,
      label: `h200 ${row.seqK}K ring 2 zigzag (cuDNN)`,
      published: row.tflopsPerGpu,
      predicted: res.prediction!.tflopsPerGpu,
      unit: 'TFLOP/s/GPU',
    };
  });
}

/** The Ring Attention paper's models (LLaMA architecture: OpenLLaMA-3B, LLaMA-7B, LLaMA-13B shapes). */
const RA_MODELS = {
  '3B': {
    name: 'open-llama-3b',
    layers: 26,
    hidden: 3200,
    heads: 32,
    kvHeads: 32,
    headDim: 100,
    ffnHidden: 8640,
    vocab: 32000,
  },
  '7B': 'llama2-7b',
  '13B': 'llama2-13b',
} as const;

export function ringAttentionConfig(model: '3B' | '7B' | '13B', gpus: number): PlanConfig {
  return parseConfig({
    model: RA_MODELS[model],
    mode: 'training',
    seqLen: 4096,
    batchSeqs: gpus,
    mask: 'causal',
    precision: 'fp32',
    recompute: 'full',
    zero: 3,
    cluster:
      gpus <= 8
        ? { nodes: 1, gpusPerNode: gpus, gpu: 'a100-80g' }
        : { nodes: gpus / 8, gpusPerNode: 8, gpu: 'a100-80g', interNode: { GBps: 25, latencyUs: 10 } },
  });
}

/** Ring Attention Table 3: the longest power-of-two context (K tokens) predicted to fit. */
export async function ringAttentionChecks(): Promise<
  (ValidationCheck & { baselinePublished: number; baselinePredicted: number })[]
> {
  const pow2 = (n: number): number => (n <= 0 ? 0 : 2 ** Math.floor(Math.log2(n)));
  return Promise.all(
    RING_ATTENTION_MAX.map(async (row) => {
      const cfg = ringAttentionConfig(row.model, row.gpus);
      // baseline: one sequence per GPU (FSDP over all GPUs); Ring Attention: one sequence over all GPUs
      const base = pow2((await maxSeqLen(cfg, completeLayout({ dp: row.gpus, ring: 1 }, cfg))) / 1024);
      const ringCfg = { ...cfg, batchSeqs: 1 };
      const ring = pow2((await maxSeqLen(ringCfg, completeLayout({ ring: row.gpus, dp: 1 }, ringCfg))) / 1024);
      return {
        source: 'Ring Attention Table 3',
        group: 'Ring Attention max context',
        label: `${row.hardware} ${row.model}`,
        published: row.ringK,
        predicted: ring,
        unit: 'K tokens',
        baselinePublished: row.baselineK,
        baselinePredicted: base,
      };
    }),
  );
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** A file of the repository (tests run compiled from dist/test/plan). */
export function repoFile(rel: string): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..', rel);
}

/**
 * The newest `weft bench cp` records of the current code on H200 (NVLink; B=1, H=32, Hkv=32,
 * D=128, bf16, forward+backward of one attention layer): 4 GPUs at 1M tokens (ring and TokenRing,
 * one iteration without warm-up) and 2 GPUs at 128K (ring, TokenRing, Ulysses; median of 2 after
 * 1 warm-up). Records of older code are not validated against: git keeps them and the checks that
 * priced them (tag `planner-revision-profiles`).
 */
export const WEFT_RECORDS = [
  'bench/results/cp-2026-11-28-19-08-07-b97f63e.jsonl',
  'bench/results/cp-2026-11-28-19-08-51-b97f63e.jsonl',
] as const;

export interface CpRecord {
  name: string;
  config: { seq: number; heads: number; kvHeads: number; dim: number; mask: string; world: number };
  summary: { n: number; median: number };
  derived: { tflopsPerGpu: number };
  extra?: {
    layout?: {
      strategy: PlanLayout['strategy'];
      shard: PlanLayout['shard'];
      ulysses: number;
      ring: number;
      inner?: number;
      placement?: PlanLayout['placement'];
    };
    /** the caching allocator's peak of live device memory per rank, GiB */
    peakGiB?: number[];
  };
}

/** The records of one file. */
export function cpRecords(file: string): CpRecord[] {
  return readFileSync(repoFile(file), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as CpRecord);
}

/** One attention layer of weft's benchmark shape on `gpus` H200s, priced as the current code. */
export function weftCpConfig(seq: number, mask: string, gpus: number, kvHeads = 32): PlanConfig {
  return parseConfig({
    model: {
      name: 'attention H32 D128',
      layers: 1,
      hidden: 4096,
      heads: 32,
      kvHeads,
      headDim: 128,
      ffnHidden: 14336,
      vocab: 32000,
    },
    mode: 'attention',
    seqLen: seq,
    mask,
    implementation: 'weft',
    cluster: { nodes: 1, gpusPerNode: gpus, gpu: 'h200' },
  });
}

/** Groups of runs timed as one iteration without warm-up carry this in their name. */
export const COLD = 'one cold iteration';

/**
 * A record as a check: predicted vs measured TFLOP/s per GPU, the measured figure recomputed from
 * the measured milliseconds with the model's FLOP count (one convention). The strategies of one
 * sequence and GPU count compete in a group.
 */
export async function recordCheck(file: string, r: CpRecord): Promise<ValidationCheck> {
  const { seq, mask, world, kvHeads } = r.config;
  const l = r.extra!.layout!;
  const cfg = weftCpConfig(seq, mask, world, kvHeads);
  const p = (
    await evaluate(
      buildContext(cfg),
      completeLayout({ ulysses: l.ulysses, ring: l.ring, strategy: l.strategy, shard: l.shard }, cfg),
    )
  ).prediction!;
  const size = seq >= 1 << 20 ? `${seq / 2 ** 20}M` : `${seq >> 10}K`;
  const cold = r.summary.n === 1 ? `, ${COLD}` : '';
  return {
    source: file,
    unit: 'TFLOP/s/GPU',
    published: (p.tflopsPerGpu * p.stepMs) / r.summary.median,
    predicted: p.tflopsPerGpu,
    label: `${world}×h200 ${size} ${mask} ${l.strategy} ${l.shard}`,
    group: `weft ${world}×H200 ${size} ${mask}${cold}`,
  };
}

/**
 * weft's counted footprint (inputs, the strategy code's peak from the dry run, block lists) against
 * the allocator's peak each record measured (the largest over its ranks), GiB.
 */
export async function weftMemoryChecks(): Promise<ValidationCheck[]> {
  const out: ValidationCheck[] = [];
  for (const f of WEFT_RECORDS) {
    for (const r of cpRecords(f)) {
      const l = r.extra?.layout,
        peaks = r.extra?.peakGiB;
      if (!l || !peaks) continue;
      const { seq, mask, world, kvHeads } = r.config;
      const cfg = weftCpConfig(seq, mask, world, kvHeads);
      const p = (
        await evaluate(
          buildContext(cfg),
          completeLayout({ ulysses: l.ulysses, ring: l.ring, strategy: l.strategy, shard: l.shard }, cfg),
        )
      ).memory!.parts;
      const size = seq >= 1 << 20 ? `${seq / 2 ** 20}M` : `${seq >> 10}K`;
      out.push({
        source: f,
        unit: 'GiB',
        published: Math.max(...peaks),
        predicted: p.inputs! + p.forward! + p.backward! + p.blockLists!,
        label: `${world}×h200 ${size} ${mask} ${l.strategy} ${l.shard}`,
        group: 'weft memory',
      });
    }
  }
  return out;
}

/** Every record of WEFT_RECORDS as a check. */
export function weftRecordChecks(): Promise<ValidationCheck[]> {
  return Promise.all(
    WEFT_RECORDS.flatMap((f) =>
      cpRecords(f)
        .filter((r) => r.extra?.layout)
        .map((r) => recordCheck(f, r)),
    ),
  );
}

/**
 * How much repeated measurements of one thing differ on one machine: the PyTorch SDPA kernels
 * (cuDNN, FlashAttention-2; unchanged between weft revisions) benchmarked again in each kernel
 * record file of 2026-11-28 on this project's H200 (bench/results/kernel-2026-11-28-*.jsonl), per
 * configuration max/min − 1.
 */
export function repeatSpread(): { median: number; max: number; configs: number } {
  const dir = repoFile('bench/results');
  const byConfig = new Map<string, number[]>();
  for (const f of readdirSync(dir).filter((n) => /^kernel-2026-11-28-.*\.jsonl$/.test(n))) {
    for (const line of readFileSync(path.join(dir, f), 'utf8').trim().split('\n')) {
      const r = JSON.parse(line) as { name?: string; config?: Record<string, unknown>; derived?: { tflops?: number } };
      if ((r.name !== 'sdpa-cudnn' && r.name !== 'sdpa-flash') || !r.derived?.tflops) continue;
      const c = r.config ?? {};
      const key = `${r.name} ${String(c.S)} ${String(c.mask)} ${String(c.pass)} ${String(c.harness ?? '')}`;
      byConfig.set(key, [...(byConfig.get(key) ?? []), r.derived.tflops]);
    }
  }
  const spreads = [...byConfig.values()].filter((v) => v.length > 1).map((v) => Math.max(...v) / Math.min(...v) - 1);
  return { median: median(spreads), max: Math.max(...spreads), configs: spreads.length };
}

/** The rows a calibration was fitted on: left out of the error statistics. */
function isCalibrationRow(c: ValidationCheck): boolean {
  const g = AMPERE_GEMM_REFERENCE,
    a = ADA_ATTENTION_REFERENCE,
    l = L20_BOX_REFERENCE;
  // the L20 root complex was calibrated on the basic-ring row; the lb-ring row of the same
  // Ulysses 4 × ring 2 at 8K measures the same all-to-all, so it is left out too
  return (
    c.label === `${g.model} ${g.seqK}K bs${g.batch} tp${g.tp} u${g.ulysses} r${g.ring}` ||
    c.label === `${a.gpu} ${a.seqK}K u${a.ulysses} r8 ${a.shard}` ||
    c.label.startsWith(`${l.gpu} ${l.seqK}K u${l.ulysses} r${8 / l.ulysses} `)
  );
}

/** Every throughput check by source, calibration rows left out. */
export async function validationChecks(): Promise<Record<string, ValidationCheck[]>> {
  return {
    'USP Tables 5–7 (training, A800)': (await uspTrainingChecks()).filter((c) => !isCalibrationRow(c)),
    'USP Tables 3–4 (attention, L20 / A100)': (await uspAttentionChecks()).filter((c) => !isCalibrationRow(c)),
    'ring-flash-attention README (8 GPUs)': await rfaChecks(),
    'PyTorch CP on 2×H200': await torchCpChecks(),
    'weft bench cp records (H200)': await weftRecordChecks(),
  };
}

export interface GroupRank {
  group: string;
  winner: ValidationCheck;
  /** the measured winner's margin over the runner-up */
  margin: number;
  /** the model's first choice */
  first: ValidationCheck;
  /** how far behind the model's first choice it puts the measured winner */
  behind: number;
  verdict: 'first' | 'tie' | 'miss';
}

/**
 * Each group of competing layouts (two or more, timed warm): does the model put the measured
 * winner first? Within σ both ways (the run-to-run spread) the group is a near tie, else a miss.
 */
export function rankGroups(checks: readonly ValidationCheck[], sigma: number): GroupRank[] {
  const groups = new Map<string, ValidationCheck[]>();
  for (const c of checks) groups.set(c.group, [...(groups.get(c.group) ?? []), c]);
  const out: GroupRank[] = [];
  for (const [group, cs] of groups) {
    // a cold iteration's time includes each layout's first use, which a warm model leaves out
    if (cs.length < 2 || group.includes(COLD)) continue;
    const pub = [...cs].sort((a, b) => b.published - a.published);
    const best = Math.max(...cs.map((c) => c.predicted));
    const first = cs.filter((c) => c.predicted >= best * (1 - 1e-9)); // equal predictions share first place
    const winner = pub[0]!;
    // Ulysses-only rows of USP Table 3/4 are listed once per shard, the same layout: either counts
    const stem = (c: ValidationCheck): string => c.label.split(' ').slice(0, -1).join(' ');
    const same = (c: ValidationCheck): boolean =>
      c === winner || (winner.label.includes(' r1 ') && stem(c) === stem(winner));
    const exact = first.some(same);
    const margin = (winner.published - pub[1]!.published) / pub[1]!.published;
    const behind = 1 - Math.max(...cs.filter(same).map((c) => c.predicted)) / best;
    out.push({
      group,
      winner,
      margin,
      first: first[0]!,
      behind,
      verdict: exact ? 'first' : margin <= sigma && behind <= sigma ? 'tie' : 'miss',
    });
  }
  return out;
}
