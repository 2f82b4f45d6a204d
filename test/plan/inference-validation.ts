// The inference planner (src/plan/inference.ts) against measurements: weft's own one-GPU records
// (`weft bench decode`, `weft bench prefill`) and the published rows of inference-published.ts.
// Each record is priced with a one-layer model of the record's heads and head dim on one H200, and
// only the attention terms are compared: the decode step's K/V read (`kv read`: the bytes at the
// streaming rate plus the kernel's fixed cost), the prefill's attention under its pass (ring of one rank: the
// forward kernel curve at the rows' mean key count plus a step overhead).
import { readFileSync } from 'node:fs';
import { choosePass, inferenceConfig, type InferenceConfig, planInference } from '../../src/plan/inference.js';
import { DECODE_FIXED_US } from '../../src/plan/calibration/types.js';
import { buildContext } from '../../src/plan/search.js';
import { CP_INFERENCE_TTFT, LLAMA3_405B, SDPA_DECODE_H200 } from './inference-published.js';
import { type ValidationCheck, repoFile } from './validation.js';

/**
 * weft's one-GPU decode records: the split-K kernel alone (`weft`, B × P × T on one H200) and the
 * sharded cache's decode step on a world of one (`weft-cache`).
 */
export const DECODE_RECORDS = [
  'bench/results/decode-2026-12-04-19-18-55-f50e34d.jsonl',
  'bench/results/decode-2026-12-04-17-24-59-a33aa6b.jsonl',
] as const;
/** weft's one-GPU prefill records: 1K and 8K new tokens onto 120K cached ones, both passes. */
export const PREFILL_RECORDS = ['bench/results/prefill-2026-12-04-18-42-21-ab9f734.jsonl'] as const;

interface Rec {
  name: string;
  config: { B: number; P: number; T: number; H: number; Hkv: number; D: number; world?: number };
  summary: { median: number };
}

function records(file: string): Rec[] {
  return readFileSync(repoFile(file), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Rec);
}

/** One layer of the record's attention shape on `gpus` H200s of one node. */
function config(mode: 'decode' | 'prefill', c: Rec['config'], gpus = 1): InferenceConfig {
  return inferenceConfig({
    model: {
      name: 'attn',
      layers: 1,
      hidden: c.H * c.D,
      heads: c.H,
      kvHeads: c.Hkv,
      headDim: c.D,
      ffnHidden: 1,
      vocab: 1,
    },
    mode,
    seqLen: c.P,
    newTokens: c.T,
    batchSeqs: c.B,
    cluster: { nodes: 1, gpusPerNode: gpus, gpu: 'h200' },
  })!;
}

const k = (n: number): string => (n >= 1 << 20 ? `${n / (1 << 20)}M` : `${n / 1024}K`);

/** The K/V read of one decode step on one GPU (ms), as the planner prices it. */
export function decodeReadMs(c: Rec['config']): number {
  const cfg = config('decode', c);
  const ctx = buildContext(cfg.base);
  return planInference(cfg, ctx.rates, ctx.net, [{ tp: 1, cp: 1 }])[0]!.breakdown['kv read']!;
}

/**
 * The kernel's fixed cost per step (µs) that minimises the largest relative error over the kernel
 * rows of the first decode record, the stream priced at the fill rate: DECODE_FIXED_US's source.
 * The error's largest magnitude is convex in the cost, so a ternary search finds it.
 */
export function decodeFixedFit(): number {
  const rows = records(DECODE_RECORDS[0]).filter((r) => r.name === 'weft');
  const stream = rows.map((r) => decodeReadMs(r.config) - DECODE_FIXED_US / 1000);
  const worst = (us: number): number =>
    Math.max(...rows.map((r, i) => Math.abs((stream[i]! + us / 1000) / r.summary.median - 1)));
  let lo = 0,
    hi = 200;
  for (let i = 0; i < 100; i++) {
    const a = lo + (hi - lo) / 3,
      b = hi - (hi - lo) / 3;
    if (worst(a) < worst(b)) hi = b;
    else lo = a;
  }
  return (lo + hi) / 2;
}

export function weftDecodeChecks(): ValidationCheck[] {
  return DECODE_RECORDS.flatMap((f) =>
    records(f)
      .filter((r) => r.name === 'weft' || (r.name === 'weft-cache' && r.config.world === 1))
      .map((r) => {
        const c = r.config,
          what = r.name === 'weft' ? 'kernel' : 'cache step';
        return {
          source: "weft's decode records (one H200)",
          label: `${what}: ${c.B} × ${k(c.P)} + ${c.T} new`,
          group: `decode ${what}`,
          published: r.summary.median,
          predicted: decodeReadMs(c),
          unit: 'ms',
        };
      }),
  );
}

export function weftPrefillChecks(): ValidationCheck[] {
  return PREFILL_RECORDS.flatMap((f) =>
    records(f)
      .filter((r) => r.name === 'weft-pass-kv' || r.name === 'weft-pass-q')
      .map((r) => {
        const c = r.config,
          pass = r.name === 'weft-pass-kv' ? 'kv' : 'q';
        const cfg = config('prefill', c);
        const ctx = buildContext(cfg.base);
        const choice = choosePass(cfg, ctx.rates, ctx.net, { tp: 1, cp: 1 });
        return {
          source: "weft's prefill records (one H200)",
          label: `${k(c.T)} new onto ${k(c.P)} cached, pass-${pass.toUpperCase()}`,
          group: 'prefill',
          published: r.summary.median,
          predicted: choice[pass].total,
          unit: 'ms',
        };
      }),
  );
}

/** PyTorch SDPA's decode reads (issue 16's table), as milliseconds of the best backend. */
export function sdpaDecodeChecks(): ValidationCheck[] {
  return SDPA_DECODE_H200.map((r) => {
    const c = { B: r.batch, P: r.context, T: 1, H: 32, Hkv: 8, D: 128 };
    const bytes = r.batch * (r.context + 1) * 2 * 8 * 128 * 2;
    return {
      source: 'PyTorch SDPA decode (one H200, best backend)',
      label: `${r.batch} × ${k(r.context)} + 1 new (${Math.max(r.fa2TBs, r.cudnnTBs).toFixed(1)} TB/s)`,
      group: 'sdpa decode',
      published: bytes / (Math.max(r.fa2TBs, r.cudnnTBs) * 1e9),
      predicted: decodeReadMs(c),
      unit: 'ms',
    };
  });
}

/** arXiv 2411.01783's full-prefill times to first token (Llama3 405B, TP8 per host, CP across hosts). */
export function ttftChecks(): ValidationCheck[] {
  return CP_INFERENCE_TTFT.map((r) => {
    const cfg = inferenceConfig({
      model: LLAMA3_405B,
      mode: 'prefill',
      seqLen: 0,
      newTokens: r.tokens,
      cluster: {
        nodes: r.nodes,
        gpusPerNode: 8,
        gpu: 'h100',
        ...(r.nodes > 1 ? { interNode: { GBps: 50, latencyUs: 10 } } : {}),
      },
    })!;
    const ctx = buildContext(cfg.base);
    const p = planInference(cfg, ctx.rates, ctx.net, [{ tp: 8, cp: r.nodes }])[0]!;
    return {
      source: 'arXiv 2411.01783 (Llama3 405B prefill, H100 hosts)',
      label: `${k(r.tokens)} on ${r.nodes} host${r.nodes > 1 ? 's' : ''}`,
      group: 'ttft',
      published: r.seconds,
      predicted: p.predicted!.stepMs / 1000,
      unit: 's',
    };
  });
}

/** Every inference check by source. */
export function inferenceChecks(): Record<string, ValidationCheck[]> {
  const all = [...weftDecodeChecks(), ...weftPrefillChecks(), ...sdpaDecodeChecks(), ...ttftChecks()];
  const out: Record<string, ValidationCheck[]> = {};
  for (const c of all) (out[c.source] ??= []).push(c);
  return out;
}
