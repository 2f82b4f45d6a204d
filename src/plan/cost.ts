// The analytical model: a layout's step time, broken into terms, its memory per GPU, and its model
// FLOPs. Ring phases run in lock step — each step takes the slowest position's
// max(compute, transfer) — and collectives are exposed (nothing overlaps them).
import { attentionFlops } from '../kernel/flops.js';
import { elemBytes, type PlanConfig } from './config.js';
import type { PlanLayout, RingPattern } from './layout.js';
import { collectiveMs, type LinkClass, p2pMs } from './links.js';
import type { CountCase } from './counts.js';
import { weftFootprint, weftLayerMemory } from './footprint.js';
import { activationBytesPerTokenLayer, headFlopsPerToken, layerLinearFlopsPerToken, totalParams } from './model.js';
import type { Context, Phase, RingGrid, RingPhase, Term } from './schedule.js';
import {
  deviceOpsCase,
  exchangeCase,
  headsOf,
  layerSchedule,
  microbatches,
  ringCase,
  savedBytesPerToken,
  seqsAtOnce,
  stepPhases,
} from './schedule.js';

export type Breakdown = Record<Term, number>;

export function emptyBreakdown(): Breakdown {
  return {
    gemm: 0,
    elementwise: 0,
    attention: 0,
    imbalance: 0,
    'ring-comm': 0,
    'all-to-all': 0,
    gather: 0,
    'tp-comm': 0,
    'grad-sync': 0,
    optimizer: 0,
  };
}

/** Which link classes a set of hops uses. */
interface Classes {
  intra: boolean;
  inter: boolean;
}

function classesOf(hops: readonly LinkClass[]): Classes {
  return { intra: hops.includes('intra'), inter: hops.includes('inter') };
}

/** The slowest of the hops' transfers of `bytes`; intra-node hops get `share` of their link. */
function worstHop(ctx: Context, bytes: number, c: Classes, share = 1): number {
  if (bytes <= 0) return 0;
  return Math.max(c.intra ? p2pMs(ctx.net, bytes, 'intra', share) : 0, c.inter ? p2pMs(ctx.net, bytes, 'inter') : 0);
}

const SAME_INTRA = 1,
  SAME_INTER = 2,
  INTRA_INTER = 4,
  INTER_INTRA = 8;
const partialMemo = new WeakMap<RingGrid, WeakMap<RingPattern, Uint8Array>>();

/**
 * Per step s ≥ 1 of a ring with partial results (TokenRing), which pairs of link classes its
 * sampled positions use: the hop forward (f) and the hop of the partial of step s − 1 to the
 * owner of the queries computed then (b), as bits (SAME_INTRA: both intra, … INTER_INTRA: f inter, b intra).
 */
function partialClasses(grid: RingGrid, pat: RingPattern): Uint8Array {
  let byPat = partialMemo.get(grid);
  if (!byPat) partialMemo.set(grid, (byPat = new WeakMap()));
  let m = byPat.get(pat);
  if (m) return m;
  m = new Uint8Array(grid.r);
  for (let s = 1; s < grid.r; s++)
    for (const i of grid.sample) {
      const f = pat.hops[i]!,
        b: LinkClass = pat.nodes[i] === pat.nodes[grid.queries(s - 1, i)] ? 'intra' : 'inter';
      m[s]! |= f === b ? (f === 'intra' ? SAME_INTRA : SAME_INTER) : f === 'intra' ? INTRA_INTER : INTER_INTRA;
    }
  byPat.set(pat, m);
  return m;
}

/**
 * A ring phase in lock step: total ms, and the compute of the slowest and of the mean position.
 */
function ringPhaseMs(ctx: Context, p: RingPhase): { total: number; critical: number; mean: number } {
  const u = p.units,
    outerN = p.r / p.inner;
  const stepC = (k: number): number => (u.stepMax[k]! > 0 ? p.scale * u.stepMax[k]! + p.overheadMs : 0);
  let critical = 0,
    mean = 0;
  for (let k = 0; k < u.steps.length; k++) {
    critical += u.weights[k]! * stepC(k);
    mean += u.weights[k]! * (p.scale * u.stepMean[k]! + p.overheadMs * u.stepBusy[k]!);
  }
  let total = 0;
  for (const pat of p.patterns) {
    const hops = classesOf(pat.hops),
      outer = pat.outer ? classesOf(pat.outer) : hops;
    // lock step: every intra-node hop as slow as the most shared one (PCIe uplinks)
    let sh = 1;
    for (let i = 0; i < pat.hops.length; i++) if (pat.hops[i] === 'intra' && pat.share[i]! < sh) sh = pat.share[i]!;
    /**
     * Step s (priced as `k`) of a round: what leaves one GPU's ports meanwhile — the block for the
     * next step (not after a round's last), the previous step's accumulators (over the outer hop
     * at a round's start), TokenRing's partial results going straight to their owners (the
     * previous step's, from the step the code first sends one: backFrom).
     */
    // the transfers' times, the same every step: computed once
    const preMs = worstHop(ctx, p.preBytes, hops, sh),
      postIn = worstHop(ctx, p.postBytes, hops, sh),
      postOuter = worstHop(ctx, p.postBytes, outer, sh);
    const link = (bytes: number, c: LinkClass): number => p2pMs(ctx.net, bytes, c, c === 'intra' ? sh : 1);
    const preBy = { intra: link(p.preBytes, 'intra'), inter: link(p.preBytes, 'inter') },
      backBy = { intra: link(p.backBytes, 'intra'), inter: link(p.backBytes, 'inter') };
    const backClasses = p.backBytes > 0 ? partialClasses(u.grid, pat) : new Uint8Array(0);
    const stepMs = (k: number, s: number, t: number): number => {
      const pre = t < p.inner - 1 ? preMs : 0;
      const post = s > 0 ? (t === 0 ? postOuter : postIn) : 0;
      let out = pre + post;
      if (p.backBytes > 0 && s >= p.backFrom) {
        // the slowest sampled position: its forward hop's class f with its partial's class b
        const m = backClasses[s]!,
          x = t < p.inner - 1 ? preBy : { intra: 0, inter: 0 };
        out = 0;
        if (m & SAME_INTRA) out = Math.max(out, x.intra + backBy.intra);
        if (m & SAME_INTER) out = Math.max(out, x.inter + backBy.inter);
        if (m & INTRA_INTER) out = Math.max(out, Math.max(x.intra, backBy.inter));
        if (m & INTER_INTRA) out = Math.max(out, Math.max(x.inter, backBy.intra));
      }
      return Math.max(stepC(k), out);
    };
    let t = 0;
    if (p.turned) {
      // a backward turned back: during step t of a pass the K,V for step t+1 (t ≤ inner−3) and the
      // sum of step t−1 (t ≥ 1) leave for the previous position, and nothing follows the last step
      // (the sums complete at home). A double ring keeps the outer pass's first block from the
      // forward and fetches each inner pass's first, exposed, at the start of every round; the outer K,V for the next round
      // (o ≤ outer−3) and the previous round's outer sum (o ≥ 1) travel under the whole round.
      const kvMs = preMs;
      const step = (k: number, tt: number): number =>
        Math.max(stepC(k), (tt <= p.inner - 3 ? kvMs : 0) + (tt >= 1 ? postIn : 0));
      const run = (k: number, tt: number): void => {
        t += u.weights[k]! * step(k, tt);
      };
      const first = p.fetchFirst ? kvMs : 0;
      if (outerN === 1) {
        if (first > 0) t += first;
        for (let k = 0; k < u.steps.length; k++) run(k, u.steps[k]!);
      } else {
        for (let o = 0; o < outerN; o++) {
          const r0 = t;
          if (first > 0) t += first;
          for (let k = 0; k < p.inner; k++) run(o * p.inner + k, k);
          const outerMs =
            (o <= outerN - 3 ? worstHop(ctx, p.preBytes, outer, sh) : 0) +
            (o >= 1 ? worstHop(ctx, p.postBytes, outer, sh) : 0);
          t = Math.max(t, r0 + outerMs);
        }
      }
    } else {
      if (outerN === 1) {
        for (let k = 0; k < u.steps.length; k++) t += u.weights[k]! * stepMs(k, u.steps[k]!, u.steps[k]!);
      } else {
        for (let o = 0; o < outerN; o++) {
          const r0 = t;
          for (let k = 0; k < p.inner; k++) t += stepMs(o * p.inner + k, o * p.inner + k, k);
          // the block for the next round crosses to the next inner ring while this round computes
          if (o < outerN - 1) t = Math.max(t, r0 + worstHop(ctx, p.preBytes, outer, sh));
        }
      }
      // accumulators go home, the last partial results come back and are merged
      const spansNodes = pat.nodes.some((n) => n !== pat.nodes[0]);
      t +=
        worstHop(ctx, p.postBytes, hops, sh) +
        (p.backBytes > 0 ? worstHop(ctx, p.backBytes, { intra: !spansNodes, inter: spansNodes }, sh) + p.tailMs : 0);
    }
    if (t > total) total = t;
  }
  return { total, critical, mean };
}

/** Milliseconds of a list of phases, adding each phase's share to `acc` scaled by `times`. */
export function phasesMs(ctx: Context, phases: readonly Phase[], acc: Breakdown, times: number): number {
  let ms = 0;
  for (const p of phases) {
    if (p.kind === 'compute') {
      ms += p.ms;
      acc[p.term] += p.ms * times;
      continue;
    }
    if (p.kind === 'collective') {
      const t = collectiveMs(ctx.net, p.op, p.bytes, p.group);
      ms += t;
      acc[p.term] += t * times;
      continue;
    }
    const r = ringPhaseMs(ctx, p);
    ms += r.total;
    acc.attention += r.mean * times;
    acc.imbalance += (r.critical - r.mean) * times;
    acc['ring-comm'] += (r.total - r.critical) * times;
  }
  return ms;
}

export interface Timing {
  stepMs: number;
  layerMs: number;
  breakdown: Breakdown;
}

export function timing(ctx: Context, l: PlanLayout): Timing {
  const cfg = ctx.cfg,
    breakdown = emptyBreakdown();
  const layers = cfg.mode === 'training' || cfg.mode === 'prefill' ? cfg.model.layers : 1;
  const micro = microbatches(cfg, l);
  const sched = layerSchedule(ctx, l);
  const steps = stepPhases(ctx, l);
  const layerMs =
    phasesMs(ctx, sched.fwd, breakdown, layers * micro) + phasesMs(ctx, sched.bwd, breakdown, layers * micro);
  const microMs = phasesMs(ctx, steps.perMicro, breakdown, micro);
  const stepOnly = phasesMs(ctx, steps.perStep, breakdown, 1);
  return { stepMs: micro * (layers * layerMs + microMs) + stepOnly, layerMs, breakdown };
}

/** Model FLOPs of one step (training: backward = 2 × forward; attention modes: backward = 2.5 × forward). */
function stepFlops(ctx: Context): number {
  const cfg = ctx.cfg,
    m = cfg.model,
    S = cfg.seqLen,
    n = cfg.batchSeqs;
  const attnFwd = attentionFlops(ctx.areas.total, m.heads, m.headDim, 'fwd'); // per sequence per layer; the mask decides: causal counts half
  switch (cfg.mode) {
    case 'attention-forward':
      return n * attnFwd;
    case 'attention':
      return n * attentionFlops(ctx.areas.total, m.heads, m.headDim, 'fwd+bwd');
    case 'prefill':
      return n * (S * m.layers * (layerLinearFlopsPerToken(m) / 3) + m.layers * attnFwd + 2 * m.vocab * m.hidden);
    case 'training':
      return n * (S * (m.layers * layerLinearFlopsPerToken(m) + headFlopsPerToken(m)) + m.layers * 3 * attnFwd);
  }
}

export interface Memory {
  totalGiB: number;
  parts: Record<string, number>;
}

const GiB = 1024 ** 3;
/** CUDA context, cuBLAS/cuDNN workspaces and NCCL buffers: an assumption, not measured. */
const WORKSPACE_GIB = 1.5;
/** allocator fragmentation, as a share of the dynamic (activation and buffer) memory: an assumption */
const FRAGMENTATION = 0.05;

/**
 * The generic model of a context-parallel implementation's attention buffers (the larger of
 * forward and backward: K,V blocks in flight, f32 accumulators, gathered K,V, the Ulysses
 * send-side copy). It describes code that is not weft's strategy code: the PyTorch peers'.
 * weft's own memory is counted by running its code (footprint.ts), in every mode.
 */
function genericBuffers(cfg: PlanConfig, l: PlanLayout): number {
  const m = cfg.model,
    D = m.headDim,
    S = cfg.seqLen;
  const B = seqsAtOnce(cfg, l),
    h = headsOf(cfg, l),
    e = elemBytes(cfg);
  const T = (B * S) / l.ring,
    localTokens = (B * S) / (l.ulysses * l.ring);
  const bwd = cfg.mode === 'training' || cfg.mode === 'attention';
  const kvBlock = T * 2 * h.kv * D;
  let buffers = 0;
  switch (l.strategy) {
    case 'ring':
    case 'usp':
    case 'double-ring': {
      const extra = l.strategy === 'double-ring' ? 1 : 0;
      const fwd = (2 + extra) * kvBlock * e + T * h.q * (D + 1) * 4;
      const back = (2 + extra) * kvBlock * (e + 4) + T * h.q * D * 4;
      buffers = Math.max(fwd, bwd ? back : 0);
      break;
    }
    case 'tokenring': {
      const fwd = 2 * T * h.q * D * e + 2 * T * h.q * (D + 1) * 4;
      const back = 2 * T * h.q * (2 * D * e + 8) + 2 * T * h.q * D * 4;
      buffers = Math.max(fwd, bwd ? back : 0);
      break;
    }
    case 'allgather':
      buffers = B * S * 2 * h.kv * D * (e + (bwd ? 4 : 0));
      break;
    default:
      buffers = 0;
  }
  if (l.ulysses > 1) buffers += localTokens * (m.heads / l.tp + 2 * h.kvMoved) * D * e; // send-side copy of q,k,v
  return buffers;
}

/** Bytes each GPU holds at its peak. */
export function memory(ctx: Context, l: PlanLayout): Memory {
  const cfg = ctx.cfg,
    m = cfg.model,
    S = cfg.seqLen,
    D = m.headDim;
  const B = seqsAtOnce(cfg, l),
    h = headsOf(cfg, l),
    e = elemBytes(cfg);
  const T = (B * S) / l.ring; // tokens per ring position (after the all-to-all, for h.q heads)
  const localTokens = (B * S) / (l.ulysses * l.ring);
  const tokenEquiv = localTokens / l.tp; // activation token-equivalents one GPU keeps
  const parts: Record<string, number> = {};
  const dataN = l.ulysses * l.ring * l.dp;
  const P = totalParams(m) / l.tp;
  const training = cfg.mode === 'training';
  const bwd = cfg.mode === 'training' || cfg.mode === 'attention';

  const weftCounted = ctx.rates.impl.footprint === 'weft';
  let buffers = weftCounted ? 0 : genericBuffers(cfg, l);

  const layerAct = (activationBytesPerTokenLayer(m) * e) / 2;
  if (training) {
    // mixed precision: bf16 weights, f32 gradients, f32 master weights + Adam m, v (12 bytes);
    // fp32: f32 weights and gradients, Adam m, v (8 bytes)
    parts.weights = (P * e) / (cfg.zero >= 3 ? dataN : 1);
    parts.gradients = (P * 4) / (cfg.zero >= 2 ? dataN : 1);
    parts.optimizer = (P * (e === 2 ? 12 : 8)) / (cfg.zero >= 1 ? dataN : 1);
    parts.activations = tokenEquiv * savedBytesPerToken(cfg);
    // the loss keeps the f32 softmax of the logits (vocab-parallel over tp) for the backward; the
    // bf16 logits die at the cast. It peaks at the end of the forward, before the backward's
    // working set exists, so the two are not added: the larger counts
    const logits = (localTokens * m.vocab * 4) / l.tp;
    // one layer's gradients of activations in flight during its backward
    const working = 2 * tokenEquiv * layerAct;
    if (logits >= working) parts.logits = logits;
    else parts.transient = working;
    if (weftCounted) ({ kept: parts.kept, buffers } = weftLayerMemory(cfg, l));
  } else if (cfg.mode === 'prefill') {
    parts.weights = P * e;
    parts.kvCache = m.layers * T * 2 * h.kv * D * e;
    parts.transient = tokenEquiv * layerAct;
    if (weftCounted) buffers = weftLayerMemory(cfg, l).buffers;
  } else if (weftCounted) {
    // weft's own code (footprint.ts): what it holds at its peak
    const f = weftFootprint(cfg, l);
    parts.inputs = f.inputs;
    parts.forward = f.forward;
    parts.backward = f.backward;
    parts.blockLists = f.blockLists;
  } else {
    // the generic model (the PyTorch peers): q, k, v, out (and dO, dq, dk, dv), lse in f32, for the local heads and tokens
    const tensors = T * (2 * h.q + 2 * h.kv) * D * e + T * h.q * 4;
    parts.tensors = tensors * (bwd ? 2 : 1);
  }
  if (parts.inputs === undefined) parts.buffers = buffers;
  const dynamic =
    (parts.activations ?? 0) +
    (parts.kept ?? 0) +
    (parts.logits ?? 0) +
    (parts.transient ?? 0) +
    (parts.tensors ?? 0) +
    (parts.kvCache ?? 0) +
    buffers +
    (parts.inputs ?? 0) +
    (parts.forward ?? 0) +
    (parts.backward ?? 0) +
    (parts.blockLists ?? 0);
  parts.workspace = WORKSPACE_GIB * GiB + FRAGMENTATION * dynamic;
  let total = 0;
  for (const k of Object.keys(parts)) {
    parts[k] = parts[k]! / GiB;
    total += parts[k]!;
  }
  return { totalGiB: total, parts };
}

export interface Prediction {
  stepMs: number;
  tflopsPerGpu: number;
  mfu: number;
  memGiB: number;
}

export function predict(ctx: Context, l: PlanLayout): { prediction: Prediction; timing: Timing; memory: Memory } {
  const t = timing(ctx, l),
    mem = memory(ctx, l);
  const tflops = stepFlops(ctx) / (t.stepMs * 1e-3) / ctx.cfg.cluster.world / 1e12;
  return {
    prediction: {
      stepMs: t.stepMs,
      tflopsPerGpu: tflops,
      mfu: tflops / ctx.cfg.cluster.gpu.bf16Tflops,
      memGiB: mem.totalGiB,
    },
    timing: t,
    memory: mem,
  };
}

/** Does the layout fit in memory? */
export function fits(cfg: PlanConfig, mem: Memory): boolean {
  return mem.totalGiB <= cfg.cluster.gpu.memGiB;
}

/** The strategy-code runs (counts.ts) pricing `l` needs: its ring schedule, its Device operations, and in attention modes its memory. */
export function countCases(ctx: Context, l: PlanLayout): CountCase[] {
  const { cfg, rates } = ctx,
    out: CountCase[] = [];
  if (l.ring > 1 && l.strategy !== 'allgather') out.push(ringCase(cfg, l));
  if (rates.impl.deviceOps && !(l.ring === 1 && l.ulysses === 1)) out.push(deviceOpsCase(cfg, l));
  if (rates.impl.exchanges === 'counted' && l.ulysses > 1) out.push(exchangeCase(cfg, l));
  if (rates.impl.footprint === 'weft') out.push(deviceOpsCase(cfg, l)); // the memory's run
  return out;
}
