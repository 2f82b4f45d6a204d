// The schedule of one layer on one GPU, as phases: plain compute, collectives (exposed), and ring
// phases (per step and ring position: compute, and transfers to the neighbours). The analytical
// model (cost.ts) and the event-driven simulator (src/sim) read the same phases, so they differ
// only in how they run them: the model in lock step (each step takes its slowest rank's
// max(compute, transfer)), the simulator with real dependencies, FIFO streams and shared ports.
// What a ring phase moves and whose blocks meet at each step is read from the strategy code run
// dry (counts.ts: RingSchedule); the areas of those blocks come from the mask at the real size
// (work.ts); this file prices them with the calibration.
import { attentionFlops } from '../kernel/flops.js';
import type { BlockArea, MaskAreas } from '../mask/area.js';
import { ShardMap } from '../shard/shard.js';
import { elemBytes, type PlanConfig } from './config.js';
import type { PlanLayout, RingPattern } from './layout.js';
import { dataGroup, ringGroup, ringPatterns, tpGroup, ulyssesGroup } from './layout.js';
import type { CollectiveOp, GroupShape, Network } from './links.js';
import {
  activationBytesPerTokenLayer,
  elementwiseBytesPerTokenLayer,
  headFlopsPerToken,
  layerLinearFlopsPerToken,
  totalParams,
} from './model.js';
import type { Rates } from './rates.js';
import {
  type CountCase,
  ELEMENTWISE_OPS,
  type Exchanges,
  preparedCounts,
  preparedExchanges,
  preparedRing,
  type Walk,
  walkAt,
} from './counts.js';
import { RingWork } from './work.js';

/** The terms a step time is broken into (the explanation names the largest). */
export type Term =
  | 'gemm'
  | 'elementwise'
  | 'attention'
  | 'imbalance'
  | 'ring-comm'
  | 'all-to-all'
  | 'gather'
  | 'tp-comm'
  | 'grad-sync'
  | 'optimizer';

interface ComputePhase {
  kind: 'compute';
  name: string;
  term: Term;
  ms: number;
}
interface CollectivePhase {
  kind: 'collective';
  name: string;
  term: Term;
  op: CollectiveOp;
  bytes: number;
  group: GroupShape;
}
export interface RingPhase {
  kind: 'ring';
  name: string;
  r: number;
  /** ranks of an inner ring (r unless a double ring) */
  inner: number;
  units: RingUnits;
  /** compute ms = scale × unit + overhead when the unit has work */
  scale: number;
  overheadMs: number;
  /** bytes of the travelling block sent at the start of a step to the next position (K,V — or Q and what travels with it for TokenRing) */
  preBytes: number;
  /** bytes sent after a step's compute to the next position (dK,dV sums) */
  postBytes: number;
  /**
   * A backward turned back (weft's code, read from its trace: RingPass.back; the units on its
   * walks): K,V and the dK,dV sums go to the previous position, step s holds position i+1+s's
   * block, K,V move only before steps 1..inner−2 of a pass, each sum moves under the next step
   * and completes at its owner on the last one — no hop home. Otherwise (the implementation's
   * `ringBackward` 'home-hop': PyTorch's) they follow the forward's rotation and a final hop
   * brings the sums home.
   */
  turned: boolean;
  /** turned back: each inner pass fetches its first block and waits for it (a double ring's: they keep none from the forward) */
  fetchFirst: boolean;
  /** bytes sent after a step's compute to the owner of the queries (TokenRing partial results) */
  backBytes: number;
  /** the first step under which a partial result travels (as the code sends them: RingPass.partialsFrom); the last one after the last step */
  backFrom: number;
  /** ms after the last step on each position (the fold of the last partial returned) */
  tailMs: number;
  patterns: RingPattern[];
}

/** ms of ring position i at step s. */
export function ringCompute(p: RingPhase, s: number, i: number): number {
  const u = p.units.at(s, i);
  return u > 0 ? p.scale * u + p.overheadMs : 0;
}

/** Plain rings longer than this are priced on an even sample of their steps. */
const STEP_LIMIT = 2048;

/** Does the walk's block change from step to step? */
function moves(w: Walk): boolean {
  return w.inner[1] !== 0 || w.outer[1] !== 0;
}

/**
 * The blocks of a ring pass on its priced (step, position) pairs: whose queries meet whose keys
 * at each step (the walks the strategy code ran: counts.ts), and the areas. Shared by every layout
 * with the same shard, ring size and walks.
 */
export class RingGrid {
  /** the steps priced: all of them, or for plain rings above STEP_LIMIT an even sample */
  readonly steps: Int32Array;
  /** how many steps each priced step stands for */
  readonly weights: Float64Array;
  readonly sample: readonly number[];
  /** area and rows of the block at (priced step k, sample index j): [k * sample.length + j] */
  readonly area: Float64Array;
  readonly rows: Float64Array;
  readonly full: Uint8Array;
  /** the queries travel (TokenRing), not the keys */
  readonly token: boolean;

  /**
   * `walks.back`: a backward turned back (RingPhase.turned): no K,V move during its last two steps.
   */
  constructor(
    readonly work: RingWork,
    readonly r: number,
    readonly inner: number,
    readonly walks: { q: Walk; k: Walk; back: boolean },
  ) {
    const sample = work.rankSample;
    this.sample = sample;
    this.token = moves(walks.q);
    if (r <= STEP_LIMIT || inner !== r || this.token) {
      this.steps = Int32Array.from({ length: r }, (_, s) => s);
      this.weights = new Float64Array(r).fill(1);
    } else {
      // first and last steps exactly (no transfer before / after them), the middle by stride;
      // turned, the last two (no K,V transfer during either)
      const tail = walks.back ? 2 : 1;
      const mid = STEP_LIMIT - 1 - tail,
        span = r - 1 - tail;
      const steps = [0],
        weights = [1];
      for (let k = 0; k < mid; k++) {
        const a = 1 + Math.floor((k * span) / mid),
          b = 1 + Math.floor(((k + 1) * span) / mid);
        if (b > a) {
          steps.push(a);
          weights.push(b - a);
        }
      }
      for (let s = r - tail; s < r; s++) {
        steps.push(s);
        weights.push(1);
      }
      this.steps = Int32Array.from(steps);
      this.weights = Float64Array.from(weights);
    }
    const n = this.steps.length,
      m = sample.length;
    this.area = new Float64Array(n * m);
    this.rows = new Float64Array(n * m);
    this.full = new Uint8Array(n * m);
    for (let k = 0; k < n; k++) {
      for (let j = 0; j < m; j++) {
        const s = this.steps[k]!,
          i = sample[j]!;
        const b = work.block(walkAt(walks.q, r, inner, s, i), walkAt(walks.k, r, inner, s, i));
        this.area[k * m + j] = b.area;
        this.rows[k * m + j] = b.rows;
        this.full[k * m + j] = b.full ? 1 : 0;
      }
    }
  }

  /** Whose queries meet whose keys at step s on position i. */
  owners(s: number, i: number): [number, number] {
    return [walkAt(this.walks.q, this.r, this.inner, s, i), walkAt(this.walks.k, this.r, this.inner, s, i)];
  }

  /** The block that moves around the ring: K,V (its key owner), or Q for TokenRing (its query owner). */
  moving(s: number, i: number): number {
    return walkAt(this.token ? this.walks.q : this.walks.k, this.r, this.inner, s, i);
  }

  /** Whose queries position i computes at step s. */
  queries(s: number, i: number): number {
    return walkAt(this.walks.q, this.r, this.inner, s, i);
  }
}

/**
 * Per-head, per-sequence compute of every (step, position) of a ring — kernel time and merge —
 * which every layout with the same shard, ring size and schedule shares: the layouts differ only
 * by a scale (heads × sequences per GPU) and a per-step overhead. Per-step maxima and means over
 * the priced positions are kept for the analytical model.
 */
class RingUnits {
  readonly stepMax: Float64Array;
  readonly stepMean: Float64Array;
  readonly stepBusy: Float64Array; // fraction of priced positions with work

  constructor(
    readonly grid: RingGrid,
    private readonly cost: (b: BlockArea, merge: boolean) => number,
  ) {
    const n = grid.steps.length,
      m = grid.sample.length;
    this.stepMax = new Float64Array(n);
    this.stepMean = new Float64Array(n);
    this.stepBusy = new Float64Array(n);
    const b = { area: 0, rows: 0, full: false };
    for (let k = 0; k < n; k++) {
      let mx = 0,
        sum = 0,
        busy = 0;
      for (let j = 0; j < m; j++) {
        b.area = grid.area[k * m + j]!;
        b.rows = grid.rows[k * m + j]!;
        b.full = grid.full[k * m + j] === 1;
        // ring: the block's result merges into the running output; TokenRing: the owner merges
        // the partial that came back (priced on the computing rank: each rank merges one a step)
        const u = cost(b, grid.steps[k]! > 0);
        mx = Math.max(mx, u);
        sum += u;
        if (u > 0) busy++;
      }
      this.stepMax[k] = mx;
      this.stepMean[k] = sum / m;
      this.stepBusy[k] = busy / m;
    }
  }

  get token(): boolean {
    return this.grid.token;
  }
  get steps(): Int32Array {
    return this.grid.steps;
  }
  get weights(): Float64Array {
    return this.grid.weights;
  }

  /** Any (step, position), priced or not (the simulator runs them all). */
  at(s: number, i: number): number {
    const [q, k] = this.grid.owners(s, i);
    return this.cost(this.grid.work.block(q, k), s > 0);
  }

  moving(s: number, i: number): number {
    return this.grid.moving(s, i);
  }
}

export type Phase = ComputePhase | CollectivePhase | RingPhase;

interface LayerSchedule {
  fwd: Phase[];
  bwd: Phase[];
}

/** Everything the schedule needs besides the layout. */
export interface Context {
  cfg: PlanConfig;
  rates: Rates;
  net: Network;
  areas: MaskAreas;
  ringWork(shard: PlanLayout['shard'], r: number): RingWork;
  /** `walks`: the pass's (RingGrid) */
  ringUnits(
    shard: PlanLayout['shard'],
    r: number,
    inner: number,
    pass: 'fwd' | 'bwd',
    walks: RingGrid['walks'],
  ): RingUnits;
  patterns(l: PlanLayout): RingPattern[];
}

export function makeContext(cfg: PlanConfig, rates: Rates, net: Network, areas: MaskAreas): Context {
  const works = new Map<string, RingWork>();
  const grids = new Map<string, RingGrid>();
  const units = new Map<string, RingUnits>();
  const pats = new Map<string, RingPattern[]>();
  const D = cfg.model.headDim;
  const ctx: Context = {
    cfg,
    rates,
    net,
    areas,
    ringWork(shard, r) {
      const key = `${shard}/${r}`;
      let w = works.get(key);
      if (!w) {
        w = new RingWork(areas, ShardMap.build(shard, areas.S, r, cfg.cuSeqlens));
        works.set(key, w);
      }
      return w;
    },
    ringUnits(shard, r, inner, pass, walks) {
      const wk = (w: RingGrid['walks']): string => JSON.stringify([w.q, w.k, w.back]);
      const key = `${shard}/${r}/${inner}/${pass}/${wk(walks)}`;
      let u = units.get(key);
      if (!u) {
        // the backward's adds of arriving sums are Device operations where those are counted (deviceOps)
        const merges = pass === 'fwd' || !rates.impl.deviceOps;
        const cost = (b: BlockArea, merge: boolean): number =>
          b.area <= 0
            ? 0
            : rates.attnMs(
                pass,
                attentionFlops(b.area, 1, D, 'fwd'),
                b.area / Math.max(1, b.rows),
                D,
                b.full ? 'full' : 'causal',
              ) + (merge && merges ? rates.mergeMs(b.rows * D) : 0);
        const gk = `${shard}/${r}/${inner}/${wk(walks)}`;
        let g = grids.get(gk);
        if (!g) {
          g = new RingGrid(ctx.ringWork(shard, r), r, inner, walks);
          grids.set(gk, g);
        }
        u = new RingUnits(g, cost);
        units.set(key, u);
      }
      return u;
    },
    patterns(l) {
      const key = `${l.tp}/${l.ulysses}/${l.ring}/${l.dp}/${l.placement}/${l.strategy === 'double-ring' ? l.inner : 0}`;
      let p = pats.get(key);
      if (!p) {
        p = ringPatterns(l, cfg.cluster);
        pats.set(key, p);
      }
      return p;
    },
  };
  return ctx;
}

const F32 = 4;

/** Sequences one replica pushes through the layer at once. */
export function seqsAtOnce(cfg: PlanConfig, l: PlanLayout): number {
  return cfg.mode === 'training' || cfg.mode === 'prefill' ? cfg.microBatchSeqs : cfg.batchSeqs / l.dp;
}

/** Microbatches per step. */
export function microbatches(cfg: PlanConfig, l: PlanLayout): number {
  return cfg.mode === 'training' || cfg.mode === 'prefill' ? cfg.batchSeqs / (l.dp * cfg.microBatchSeqs) : 1;
}

/** Head counts on one GPU after tensor parallelism and the Ulysses all-to-all. */
export function headsOf(cfg: PlanConfig, l: PlanLayout): { q: number; kv: number; kvMoved: number } {
  const m = cfg.model;
  const q = m.heads / (l.tp * l.ulysses);
  const kvTp = m.kvHeads / l.tp;
  // more Ulysses ranks than KV heads: KV heads are replicated after the all-to-all (issue 3)
  const kv = Math.max(1, kvTp / l.ulysses);
  return { q, kv, kvMoved: Math.max(kvTp, l.ulysses) };
}

function attentionPhases(ctx: Context, l: PlanLayout, pass: 'fwd' | 'bwd'): Phase[] {
  const { cfg, rates } = ctx;
  const BF16 = elemBytes(cfg);
  const D = cfg.model.headDim,
    S = cfg.seqLen,
    B = seqsAtOnce(cfg, l);
  const h = headsOf(cfg, l);
  const cl = cfg.cluster;
  const phases: Phase[] = [];
  const localTokens = (B * S) / (l.ulysses * l.ring);
  const x = l.ulysses > 1 ? exchangeBytes(ctx, l, localTokens) : undefined;
  const uGroup = ulyssesGroup(l, cl);
  const exchange = (name: string, bytes: number): CollectivePhase => ({
    kind: 'collective',
    name,
    term: 'all-to-all',
    op: 'all-to-all',
    bytes,
    group: uGroup,
  });
  if (x) phases.push(pass === 'fwd' ? exchange('all-to-all q,k,v', x.fwdIn) : exchange('all-to-all dO', x.bwdIn));
  const blockMs = (b: BlockArea, merge: boolean): number => {
    if (b.area <= 0) return 0;
    const flops = attentionFlops(b.area, B * h.q, D, 'fwd');
    const kbar = b.area / Math.max(1, b.rows);
    return (
      rates.attnMs(pass, flops, kbar, D, b.full ? 'full' : 'causal') +
      (merge ? rates.mergeMs(B * h.q * b.rows * D) : 0) +
      rates.stepOverheadMs()
    );
  };
  if (l.ring === 1) {
    const total = ctx.areas.total;
    phases.push({
      kind: 'compute',
      name: `attention ${pass}`,
      term: 'attention',
      ms: blockMs({ area: total, rows: S, full: ctx.areas.isFull() }, false),
    });
  } else if (l.strategy === 'allgather') {
    const w = ctx.ringWork(l.shard, l.ring);
    const g = ringGroup(l, cl);
    const kvAll = B * S * 2 * h.kv * D;
    phases.push({
      kind: 'collective',
      name: 'all-gather k,v',
      term: 'gather',
      op: 'all-gather',
      bytes: kvAll * BF16,
      group: g,
    });
    let worst = 0;
    for (const i of w.rankSample) worst = Math.max(worst, blockMs(w.rowTotal(i), false));
    phases.push({ kind: 'compute', name: `attention ${pass}`, term: 'attention', ms: worst });
    if (pass === 'bwd')
      phases.push({
        kind: 'collective',
        name: 'reduce-scatter dk,dv',
        term: 'gather',
        op: 'reduce-scatter',
        bytes: kvAll * F32,
        group: g,
      });
  } else {
    const r = l.ring,
      inner = l.strategy === 'double-ring' ? l.inner! : r;
    // what moves, per token of a position's block, as the strategy code ran it (counts.ts)
    const ring = preparedRing(ringCase(cfg, l));
    const tokens = (B * S) / r; // per ring position (shards may differ by a token; priced at the mean)
    const run = ring[pass];
    // a backward turned back where the implementation is weft's code; PyTorch's (home-hop) rotates
    // K,V the forward's way, the sums following and hopping home at the end
    const turned = pass === 'bwd' && rates.impl.ringBackward === 'turn-back' && run.back;
    const walks = pass === 'fwd' || turned || moves(run.q) ? run : { ...ring.fwd, back: false };
    // folds after the last step: merges, and adds where those are not priced as Device operations
    const tail = run.tail.merge + (rates.impl.deviceOps ? 0 : run.tail.add);
    phases.push({
      kind: 'ring',
      name: `${l.strategy} ${pass}`,
      r,
      inner,
      units: ctx.ringUnits(l.shard, r, inner, pass, walks),
      scale: B * h.q,
      overheadMs: rates.stepOverheadMs(),
      // a backward that moves no block (a ring of 2 turned back) prices the forward's where it moves one
      preBytes: (run.block || ring.fwd.block) * tokens,
      postBytes: run.sums * tokens,
      backBytes: run.partials * tokens,
      backFrom: run.partialsFrom,
      tailMs: tail > 0 ? rates.mergeMs(tail * tokens) : 0,
      turned,
      fetchFirst: turned && run.fetchFirst,
      patterns: ctx.patterns(l),
    });
  }
  if (x) phases.push(pass === 'fwd' ? exchange('all-to-all out', x.fwdOut) : exchange('all-to-all dq,dk,dv', x.bwdOut));
  const ops = deviceOpsMs(ctx, l, pass);
  if (ops > 0) phases.push({ kind: 'compute', name: `device ops ${pass}`, term: 'elementwise', ms: ops });
  return phases;
}

/**
 * Bytes of a layout's Ulysses all-to-alls (every send buffer of a GPU, its own included), for
 * `tokens` tokens per GPU: weft's as its exchange code sends them (counted: exchangeCase), the
 * PyTorch peers' from their model (peerExchangeBytes).
 */
function exchangeBytes(ctx: Context, l: PlanLayout, tokens: number): Exchanges {
  if (ctx.rates.impl.exchanges === 'peer') return peerExchangeBytes(ctx.cfg, l, tokens);
  const x = preparedExchanges(exchangeCase(ctx.cfg, l));
  return { fwdIn: x.fwdIn * tokens, fwdOut: x.fwdOut * tokens, bwdIn: x.bwdIn * tokens, bwdOut: x.bwdOut * tokens };
}

/**
 * The PyTorch peers' Ulysses exchanges (yunchang; not weft code, so a model of it): q, k, v with
 * the KV heads repeated up to the degree where it exceeds them, the output without its lse, dO,
 * and dq, dk, dv, all in the input type.
 */
function peerExchangeBytes(cfg: PlanConfig, l: PlanLayout, tokens: number): Exchanges {
  const m = cfg.model,
    D = m.headDim,
    e = elemBytes(cfg);
  const kvMoved = Math.max(m.kvHeads / l.tp, l.ulysses);
  const qkv = tokens * (m.heads / l.tp + 2 * kvMoved) * D * e,
    o = tokens * (m.heads / l.tp) * D * e;
  return { fwdIn: qkv, fwdOut: o, bwdIn: o, bwdOut: qkv };
}

/** The dry run whose all-to-alls a layout's Ulysses exchanges are: Ulysses alone, on the layout's degree and heads (USP runs the same exchange code). */
export function exchangeCase(cfg: PlanConfig, l: PlanLayout): CountCase {
  return { ...deviceOpsCase(cfg, l), strategy: 'ulysses', ring: 1, inner: 1, placement: 'head-first' };
}

/**
 * The strategy code's elementwise Device work of one pass on one GPU (implementations with
 * `deviceOps`): the bytes and calls counts.ts counts by running the strategy code, each class at its measured rate. They run on the
 * compute stream between the kernels, so they add to them. The one-GPU layout is the kernel alone
 * (weft's single-GPU timing runs no strategy code).
 */
/** The dry run deviceOpsMs needs (counts.ts): the layout's strategy on its tensor-parallel share of the heads. */
export function deviceOpsCase(cfg: PlanConfig, l: PlanLayout): CountCase {
  const m = cfg.model;
  return {
    strategy: l.strategy,
    ulysses: l.ulysses,
    ring: l.ring,
    inner: l.strategy === 'double-ring' ? (l.inner ?? l.ring) : l.ring,
    placement: l.placement,
    H: m.heads / l.tp,
    Hkv: Math.max(1, m.kvHeads / l.tp),
    D: m.headDim,
    e: elemBytes(cfg) === 4 ? 4 : 2,
  };
}

/**
 * The dry run whose ring schedule a ring phase prices: the layout's own strategy — USP with its
 * Ulysses members — or, where a layout puts Ulysses around a ring strategy that has no combined
 * code (TokenRing, double ring), that ring alone on one member's heads.
 */
export function ringCase(cfg: PlanConfig, l: PlanLayout): CountCase {
  const c = deviceOpsCase(cfg, l);
  if (l.ulysses === 1 || l.strategy === 'usp') return c;
  const h = headsOf(cfg, l);
  // a fractional share of KV heads rounds up: a member holds whole heads
  return { ...c, ulysses: 1, H: h.q, Hkv: Math.ceil(h.kv) };
}

function deviceOpsMs(ctx: Context, l: PlanLayout, pass: 'fwd' | 'bwd'): number {
  const { cfg, rates } = ctx,
    ops = rates.impl.deviceOps;
  if (!ops || (l.ring === 1 && l.ulysses === 1)) return 0;
  const B = seqsAtOnce(cfg, l);
  const c = preparedCounts(deviceOpsCase(cfg, l), cfg.seqLen / (l.ulysses * l.ring));
  // rates measured on the planned GPU (--calibration with ops records) describe weft's current code
  const table = rates.impl.name === 'weft' && rates.cal.deviceOps ? rates.cal.deviceOps.ops : ops.ops;
  let ms = 0;
  for (const op of ELEMENTWISE_OPS) {
    const x = c.traffic[op],
      f = c.trafficForward[op],
      r = table[op];
    const [bytes, calls] =
      pass === 'fwd'
        ? [f.readBytes + f.writeBytes, f.calls]
        : [x.readBytes + x.writeBytes - f.readBytes - f.writeBytes, x.calls - f.calls];
    ms += bytes / (r.hbmEfficiency * rates.gpu.hbmTBs * 1e9) + (calls * r.callUs) / 1000;
  }
  return B * ms;
}

/** Weight products, elementwise work and tensor-parallel collectives of one layer. */
function denseLayerPhases(ctx: Context, l: PlanLayout, pass: 'fwd' | 'bwd'): Phase[] {
  const { cfg, rates } = ctx,
    m = cfg.model;
  const BF16 = elemBytes(cfg);
  const B = seqsAtOnce(cfg, l);
  const groupTokens = (B * cfg.seqLen) / (l.ulysses * l.ring); // tokens of this tensor-parallel group
  const share = pass === 'fwd' ? 1 / 3 : 2 / 3;
  const phases: Phase[] = [
    {
      kind: 'compute',
      name: `weight products ${pass}`,
      term: 'gemm',
      ms: rates.gemmMs((share * layerLinearFlopsPerToken(m) * groupTokens) / l.tp),
    },
    {
      kind: 'compute',
      name: `norms, RoPE, SwiGLU ${pass}`,
      term: 'elementwise',
      ms: rates.hbmMs((share * elementwiseBytesPerTokenLayer(m) * (BF16 / 2) * groupTokens) / l.tp),
    },
  ];
  if (l.tp > 1) {
    // Megatron sequence parallelism: fwd 2 all-gathers + 2 reduce-scatters, bwd 4 + 2 (USP Table 2: 6 AG + 4 RS)
    const bytes = groupTokens * m.hidden * BF16;
    const g = tpGroup(l, cfg.cluster);
    const ags = pass === 'fwd' ? 2 : 4;
    for (let i = 0; i < ags; i++)
      phases.push({ kind: 'collective', name: 'tp all-gather', term: 'tp-comm', op: 'all-gather', bytes, group: g });
    for (let i = 0; i < 2; i++)
      phases.push({
        kind: 'collective',
        name: 'tp reduce-scatter',
        term: 'tp-comm',
        op: 'reduce-scatter',
        bytes,
        group: g,
      });
  }
  return phases;
}

/** One layer, one microbatch: forward and backward (backward empty for forward-only modes). */
export function layerSchedule(ctx: Context, l: PlanLayout): LayerSchedule {
  const mode = ctx.cfg.mode;
  if (mode === 'attention' || mode === 'attention-forward') {
    return { fwd: attentionPhases(ctx, l, 'fwd'), bwd: mode === 'attention' ? attentionPhases(ctx, l, 'bwd') : [] };
  }
  const fwd = [...denseLayerPhases(ctx, l, 'fwd'), ...attentionPhases(ctx, l, 'fwd')];
  if (mode === 'prefill') return { fwd, bwd: [] };
  // full recomputation runs the forward again inside the backward
  const bwd = [
    ...(ctx.cfg.recompute === 'full' ? fwd : []),
    ...attentionPhases(ctx, l, 'bwd'),
    ...denseLayerPhases(ctx, l, 'bwd'),
  ];
  return { fwd, bwd };
}

/** Work outside the layers, per microbatch (LM head, loss) and per step (gradient sync, optimizer). */
export function stepPhases(ctx: Context, l: PlanLayout): { perMicro: Phase[]; perStep: Phase[] } {
  const { cfg, rates } = ctx,
    m = cfg.model;
  const BF16 = elemBytes(cfg);
  if (cfg.mode !== 'training' && cfg.mode !== 'prefill') return { perMicro: [], perStep: [] };
  const B = seqsAtOnce(cfg, l);
  const groupTokens = (B * cfg.seqLen) / (l.ulysses * l.ring);
  if (cfg.mode === 'prefill') {
    // logits for the last token of each sequence only
    return {
      perMicro: [
        { kind: 'compute', name: 'LM head', term: 'gemm', ms: rates.gemmMs((2 * m.vocab * m.hidden * B) / l.tp) },
      ],
      perStep: [],
    };
  }
  const perMicro: Phase[] = [
    { kind: 'compute', name: 'LM head', term: 'gemm', ms: rates.gemmMs((headFlopsPerToken(m) * groupTokens) / l.tp) },
    // logits in bf16 and f32 softmax, forward and backward
    {
      kind: 'compute',
      name: 'loss',
      term: 'elementwise',
      ms: rates.hbmMs((groupTokens * m.vocab * 3 * (BF16 + F32)) / l.tp),
    },
  ];
  const P = totalParams(m) / l.tp;
  const g = dataGroup(l, cfg.cluster);
  const perStep: Phase[] = [];
  if (g.size > 1) {
    if (cfg.zero >= 1) {
      perStep.push({
        kind: 'collective',
        name: 'reduce-scatter gradients',
        term: 'grad-sync',
        op: 'reduce-scatter',
        bytes: P * F32,
        group: g,
      });
      perStep.push({
        kind: 'collective',
        name: 'all-gather weights',
        term: 'grad-sync',
        op: 'all-gather',
        bytes: P * BF16,
        group: g,
      });
    } else {
      perStep.push({
        kind: 'collective',
        name: 'all-reduce gradients',
        term: 'grad-sync',
        op: 'all-reduce',
        bytes: P * F32,
        group: g,
      });
    }
  }
  // Adam over the local shard: read master, m, v, grad; write master, m, v (and the bf16 weight)
  const shard = cfg.zero >= 1 ? P / g.size : P;
  perStep.push({
    kind: 'compute',
    name: 'optimizer',
    term: 'optimizer',
    ms: rates.hbmMs(shard * (7 * F32 + (BF16 === 2 ? 2 : 0))),
  });
  return { perMicro, perStep };
}

/** Bytes one GPU holds per token of the layers' saved activations. */
export function savedBytesPerToken(cfg: PlanConfig): number {
  const m = cfg.model,
    e = elemBytes(cfg);
  const layer = (activationBytesPerTokenLayer(m) * e) / 2;
  return cfg.recompute === 'full' ? m.layers * m.hidden * e + layer : m.layers * layer;
}
