// The planner's inference modes over a KV cache sharded by sequence (src/infer): what a decode step
// costs (time per output token) and what a prefill onto a cached context costs (time to first
// token), with the choice between pass-KV and pass-Q, for every (tensor-parallel × cache-parallel)
// split of the cluster. The rates are the planner's own (rates.ts: the calibrated HBM rate, the
// kernel curves, the GEMM rate; links.ts: transfers and collectives), so a calibration from weft's
// records moves these predictions as it moves the training ones.
//
// Decode, per layer and rank (memory-bound):
//   read    the rank's K/V rows the new queries see: B·keys/cp·2·Hkv/tp·D·e bytes ÷ the streaming
//           rate (streamMs), and the split-K kernel's fixed cost (launch, pipeline fill, the last
//           CTA's merge of the splits), fitted to weft's decode record (the weft profile's decodeFixedUs)
//   gather  one all-gather of the partial (out, lse) in f32 over the cache-parallel group
//   merge   cp partials folded in f32: mergeBytesPerElement · (cp−1) · B·T·H/tp·D ÷ the HBM rate
//   weights the layer's weights read once (GEMV): params/tp · e ÷ the HBM rate, and the tensor-
//           parallel all-reduces of the linear layers
// Prefill of T new tokens onto P cached ones, per layer and rank (ring-pass.ts's schedule):
//   each of cp steps computes ≈ 1/cp of the rank's attention while the next block travels:
//   time = (cp−1)·max(step compute, step transfer) + step compute
//   pass-KV moves B·(P+T)/cp·2·Hkv/tp·D·e bytes a step; pass-Q moves B·T/cp·H/tp·D·e bytes a step
//   and then returns (cp−1) partials of B·T/cp·H/tp·(D+1)·4 bytes by one all-to-all, and merges.
// The faster pass is chosen (arXiv 2411.01783's rule falls out: pass-Q wins when T/(T+P) is below
// about 2·Hkv/H and the K/V transfers do not hide behind compute); their rule is reported beside.
import type { PassKind } from '../infer/attend.js';
import { attentionFlops } from '../kernel/flops.js';
import { UserError } from '../errors.js';
import { lower, sliceRow } from '../mask/spec.js';
import { MaskAreas } from '../mask/area.js';
import { elemBytes, parseConfig, type PlanConfig } from './config.js';
import { collectiveMs, type GroupShape, p2pMs } from './links.js';
import { layerParams } from './model.js';
import type { Rates } from './rates.js';
import type { Network } from './links.js';

export type InferenceMode = 'decode' | 'prefill';

export interface InferenceConfig {
  /** the shared planner fields: model, cluster, precision, mask over the whole sequence (cached + new) */
  base: PlanConfig;
  mode: InferenceMode;
  /** cached tokens per request (P) */
  context: number;
  /** new tokens per request (T): 1 for plain decode, k for speculative decoding, the prompt for prefill */
  newTokens: number;
  /** requests in the batch (B) */
  batch: number;
}

export interface InferenceLayout {
  tp: number;
  cp: number;
}

export interface InferencePlan {
  layout: InferenceLayout & { pass?: PassKind };
  feasible: boolean;
  reason: string | null;
  predicted: {
    /** decode: one step (every request gets newTokens tokens); prefill: time to first token */
    stepMs: number;
    /** decode: output tokens per second over the batch */
    tokensPerSecond?: number;
    /** decode: bytes of K/V one rank reads per step, all layers; and that ÷ the attention time */
    kvBytesPerRank?: number;
    achievedTBs?: number;
    /** prefill: both passes' time to first token, and arXiv 2411.01783's rule */
    passKvMs?: number;
    passQMs?: number;
    paperRule?: PassKind;
  } | null;
  /** ms per step, all layers, by term */
  breakdown: Record<string, number>;
  memory: { kvCacheGiB: number; weightsGiB: number; totalGiB: number } | null;
}

const GiB = 1024 ** 3;

/** Keys the new rows P … P+T−1 see together (the K/V a decode step reads), per request. */
export function keysRead(cfg: InferenceConfig): number {
  const S = cfg.context + cfg.newTokens,
    iv: [number, number][] = [];
  for (const s of lower(cfg.base.mask, S)) {
    for (let q = Math.max(cfg.context, s.q[0]); q < Math.min(S, s.q[1]); q++) {
      const [lo, hi] = sliceRow(s, q);
      if (lo < hi) iv.push([lo, hi]);
    }
  }
  iv.sort((a, b) => a[0] - b[0]);
  let n = 0,
    end = -Infinity;
  for (const [lo, hi] of iv) {
    if (hi <= end) continue;
    n += hi - Math.max(lo, end);
    end = hi;
  }
  return n;
}

/** (tp, cp) splits of the cluster: tp a power of two within a node dividing the KV heads, cp any count of what is left. */
function inferenceLayouts(cfg: InferenceConfig): InferenceLayout[] {
  const cl = cfg.base.cluster,
    m = cfg.base.model,
    out: InferenceLayout[] = [];
  for (let tp = 1; tp <= cl.gpusPerNode && tp <= m.kvHeads; tp *= 2) {
    if (m.kvHeads % tp !== 0 || cl.world % tp !== 0) continue;
    const cps = new Set<number>();
    for (let cp = 1; cp <= cl.world / tp; cp *= 2) cps.add(cp);
    cps.add(cl.world / tp);
    for (const cp of [...cps].sort((a, b) => a - b)) out.push({ tp, cp });
  }
  return out;
}

/** How a group of `size` ranks lies when each member spans `stride` consecutive GPUs (tp inside). */
function shape(cfg: InferenceConfig, size: number, stride: number): GroupShape {
  const perNode = Math.max(1, Math.min(size, Math.floor(cfg.base.cluster.gpusPerNode / stride)));
  return { size, perNode, nodes: Math.ceil(size / perNode) };
}

interface Env {
  cfg: InferenceConfig;
  rates: Rates;
  net: Network;
}

function hbmMs(rates: Rates, bytes: number): number {
  return bytes / (rates.hbmGBps * 1e6);
}

/**
 * A decode step's K/V read: a pure stream, priced at the fill rate `weft bench ops` measured (its
 * memset, the one streaming operation the Device has; the calibrated elementwise rate where the
 * implementation has no measured operations), plus the kernel's fixed cost: weft's measured one
 * (the profile's decodeFixedUs), two step overheads where none is measured. docs/validation.md holds this
 * against weft's decode records and PyTorch SDPA's decode reads on one H200.
 */
function streamMs(rates: Rates, bytes: number): number {
  const eff = rates.impl.deviceOps?.ops.zeros.hbmEfficiency ?? rates.hbmGBps / (rates.gpu.hbmTBs * 1000);
  const fixedUs = rates.impl.decodeFixedUs ?? 2 * rates.impl.stepOverheadUs;
  return bytes / (eff * rates.gpu.hbmTBs * 1e9) + fixedUs / 1000;
}

/** The layer's linear work outside attention, per rank: weights (decode reads them) and tensor-parallel all-reduces. */
function linearTerms(
  env: Env,
  l: InferenceLayout,
  tokensPerRank: number,
): { gemmMs: number; weightsMs: number; allReduceMs: number } {
  const { cfg, rates, net } = env,
    m = cfg.base.model,
    e = elemBytes(cfg.base);
  const params = (layerParams(m) - 2 * m.hidden) / l.tp;
  const gemmMs = (2 * params * tokensPerRank) / (rates.gemmTflops * 1e9);
  const weightsMs = hbmMs(rates, params * e);
  // attention output and MLP output projections each end in an all-reduce over the tp group
  const allReduceMs =
    l.tp > 1 ? 2 * collectiveMs(net, 'all-reduce', tokensPerRank * m.hidden * e, shape(cfg, l.tp, 1)) : 0;
  return { gemmMs, weightsMs, allReduceMs };
}

function memory(env: Env, l: InferenceLayout): InferencePlan['memory'] {
  const { cfg } = env,
    m = cfg.base.model,
    e = elemBytes(cfg.base);
  const rows = (cfg.batch * (cfg.context + cfg.newTokens)) / l.cp;
  const kvCacheGiB = (m.layers * rows * 2 * (m.kvHeads / l.tp) * m.headDim * e) / GiB;
  const weightsGiB = (((m.layers * layerParams(m) + 2 * m.vocab * m.hidden) / l.tp) * e) / GiB;
  return { kvCacheGiB, weightsGiB, totalGiB: kvCacheGiB + weightsGiB + 1.5 };
}

function decodePlan(env: Env, l: InferenceLayout): InferencePlan {
  const { cfg, rates, net } = env,
    m = cfg.base.model,
    e = elemBytes(cfg.base);
  const B = cfg.batch,
    T = cfg.newTokens,
    H = m.heads / l.tp,
    Hkv = m.kvHeads / l.tp,
    D = m.headDim;
  const step = rates.impl.stepOverheadUs / 1000;
  const kvBytes = ((B * keysRead(cfg)) / l.cp) * 2 * Hkv * D * e;
  const read = streamMs(rates, kvBytes + B * T * H * D * (e + 4));
  const partial = B * T * H * (D + 1) * 4;
  const gather = l.cp > 1 ? collectiveMs(net, 'all-gather', l.cp * partial, shape(cfg, l.cp, l.tp)) : 0;
  const merge = l.cp > 1 ? hbmMs(rates, rates.impl.mergeBytesPerElement * (l.cp - 1) * B * T * H * D) + step : 0;
  const lin = linearTerms(env, l, B * T);
  const layer = {
    'kv read': read,
    'partial gather': gather,
    merge,
    weights: Math.max(lin.weightsMs, lin.gemmMs),
    'tp all-reduce': lin.allReduceMs,
  };
  const head = hbmMs(rates, (m.vocab * m.hidden * e) / l.tp);
  const breakdown = Object.fromEntries(Object.entries(layer).map(([k, v]) => [k, m.layers * v]));
  breakdown['lm head'] = head;
  const stepMs = Object.values(breakdown).reduce((a, b) => a + b, 0);
  return {
    layout: l,
    feasible: true,
    reason: null,
    predicted: {
      stepMs,
      tokensPerSecond: (B * T) / (stepMs / 1000),
      kvBytesPerRank: m.layers * kvBytes,
      achievedTBs: kvBytes / (read * 1e9),
    },
    breakdown,
    memory: memory(env, l),
  };
}

/** One pass's attention time per layer: the ring of ring-pass.ts, then pass-Q's return and merge. */
function passMs(env: Env, l: InferenceLayout, pass: PassKind, attnMs: number): { total: number; exposed: number } {
  const { cfg, rates, net } = env,
    m = cfg.base.model,
    e = elemBytes(cfg.base);
  const B = cfg.batch,
    T = cfg.newTokens,
    P = cfg.context,
    H = m.heads / l.tp,
    Hkv = m.kvHeads / l.tp,
    D = m.headDim;
  const n = l.cp,
    stepOver = rates.impl.stepOverheadUs / 1000;
  if (n === 1) return { total: attnMs + stepOver, exposed: 0 };
  const g = shape(cfg, n, l.tp),
    cls = g.nodes > 1 ? 'inter' : 'intra';
  const msg = pass === 'kv' ? ((B * (P + T)) / n) * 2 * Hkv * D * e : ((B * T) / n) * H * D * e;
  const c = attnMs / n + stepOver,
    x = p2pMs(net, msg, cls);
  let total = (n - 1) * Math.max(c, x) + c;
  if (pass === 'q') {
    const part = ((B * T) / n) * H * (D + 1) * 4;
    total +=
      collectiveMs(net, 'all-to-all', n * part, g) +
      hbmMs(rates, rates.impl.mergeBytesPerElement * (n - 1) * ((B * T) / n) * H * D) +
      stepOver;
  }
  return { total, exposed: total - attnMs };
}

/** arXiv 2411.01783's rule (its section on choosing the pass): pass-KV when the miss rate T/(T+P) ≥ 2·Hkv/H, or when T is large enough for the K/V transfer to hide. */
function paperRule(cfg: InferenceConfig, l: InferenceLayout, env: Env): PassKind {
  const m = cfg.base.model,
    T = cfg.newTokens,
    P = cfg.context,
    e = elemBytes(cfg.base);
  if (T / (T + P) >= (2 * m.kvHeads) / m.heads) return 'kv';
  const link = shape(cfg, l.cp, l.tp).nodes > 1 ? env.net.inter : env.net.intra;
  const C = env.rates.attnTflops('fwd', (T + P) / 2, m.headDim, 'causal') * 1e12,
    BW = link.GBps * 1e9;
  return T >= (l.cp * C * m.kvHeads * e) / (2 * m.heads * BW) ? 'kv' : 'q';
}

export interface PassChoice {
  pass: PassKind;
  /** attention of one layer on one rank, and each pass's time for it (ms) */
  attnMs: number;
  kv: { total: number; exposed: number };
  q: { total: number; exposed: number };
  paperRule: PassKind;
}

/** The pass a prefill of this layout should use: the one the model prices faster. */
export function choosePass(cfg: InferenceConfig, rates: Rates, net: Network, l: InferenceLayout): PassChoice {
  const env: Env = { cfg, rates, net },
    m = cfg.base.model;
  const B = cfg.batch,
    T = cfg.newTokens,
    P = cfg.context,
    S = P + T,
    H = m.heads / l.tp,
    D = m.headDim;
  const area = new MaskAreas(cfg.base.mask, S).area(P, S, 0, S);
  const kbar = Math.max(1, area / T);
  const attnMs = attentionFlops(area, B * H, D, 'fwd') / l.cp / (rates.attnTflops('fwd', kbar, D, 'causal') * 1e9);
  const kv = passMs(env, l, 'kv', attnMs),
    q = passMs(env, l, 'q', attnMs);
  return { pass: q.total < kv.total ? 'q' : 'kv', attnMs, kv, q, paperRule: paperRule(cfg, l, env) };
}

function prefillPlan(env: Env, l: InferenceLayout): InferencePlan {
  const { cfg, rates } = env,
    m = cfg.base.model;
  const B = cfg.batch,
    T = cfg.newTokens;
  const { pass, attnMs, kv, q, paperRule: rule } = choosePass(cfg, rates, env.net, l);
  const lin = linearTerms(env, l, (B * T) / l.cp);
  const layer = {
    attention: attnMs,
    [`pass-${pass} exposed`]: (pass === 'q' ? q : kv).exposed,
    linear: Math.max(lin.gemmMs, lin.weightsMs),
    'tp all-reduce': lin.allReduceMs,
  };
  const breakdown = Object.fromEntries(Object.entries(layer).map(([k, v]) => [k, m.layers * v]));
  // the first token's logits: one row per request through the LM head
  breakdown['lm head'] = Math.max(
    hbmMs(rates, (m.vocab * m.hidden * elemBytes(cfg.base)) / l.tp),
    (2 * B * m.vocab * m.hidden) / l.tp / (rates.gemmTflops * 1e9),
  );
  const stepMs = Object.values(breakdown).reduce((a, b) => a + b, 0);
  const other = stepMs - m.layers * (pass === 'q' ? q.total : kv.total);
  return {
    layout: { ...l, pass },
    feasible: true,
    reason: null,
    predicted: { stepMs, passKvMs: other + m.layers * kv.total, passQMs: other + m.layers * q.total, paperRule: rule },
    breakdown,
    memory: memory(env, l),
  };
}

/** Every layout, fastest feasible first. */
export function planInference(
  cfg: InferenceConfig,
  rates: Rates,
  net: Network,
  layouts = inferenceLayouts(cfg),
): InferencePlan[] {
  if (cfg.newTokens < 1) throw new UserError('newTokens: expected at least 1 new token');
  const env: Env = { cfg, rates, net };
  const plans = layouts.map((l) => {
    const p = cfg.mode === 'decode' ? decodePlan(env, l) : prefillPlan(env, l);
    const mem = p.memory!;
    if (mem.totalGiB > cfg.base.cluster.gpu.memGiB) {
      return {
        ...p,
        feasible: false,
        reason: `needs ${mem.totalGiB.toFixed(1)} GiB per GPU (K/V cache ${mem.kvCacheGiB.toFixed(1)}, weights ${mem.weightsGiB.toFixed(1)}), ${cfg.base.cluster.gpu.memGiB} GiB there`,
      };
    }
    return p;
  });
  return plans.sort((a, b) => Number(b.feasible) - Number(a.feasible) || a.predicted!.stepMs - b.predicted!.stepMs);
}

/**
 * The inference form of a planner config, or undefined for the other modes: `"mode": "decode"`,
 * or `"mode": "prefill"` with `newTokens`. Then `seqLen` is the cached context per request (P, may
 * be 0), `newTokens` the new tokens per request (T; decode default 1), `batchSeqs` the requests;
 * a mask, `cuSeqlens` or `documentLength` apply to the whole sequence, cached and new (P + T).
 * Every other field is read as for the other modes (config.ts).
 */
export function inferenceConfig(json: unknown): InferenceConfig | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const { mode, newTokens, seqLen, ...rest } = json as Record<string, unknown>;
  if (!(mode === 'decode' || (mode === 'prefill' && newTokens !== undefined))) return undefined;
  const whole = (v: unknown, path: string, min: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
      throw new UserError(`${path}: expected an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  const P = whole(seqLen, 'seqLen', 0),
    T = newTokens === undefined ? 1 : whole(newTokens, 'newTokens', 1);
  const base = parseConfig({ ...rest, mode: 'prefill', seqLen: P + T });
  return { base, mode, context: P, newTokens: T, batch: base.batchSeqs };
}
