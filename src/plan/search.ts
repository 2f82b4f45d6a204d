// The search: every layout of the config (or exactly its candidates), each priced by the
// analytical model and judged against memory, ranked fastest first with infeasible ones last.
import { MaskAreas } from '../mask/area.js';
import { CLASS_CALIBRATIONS } from './calibration/classes.js';
import { H200 } from './calibration/h200.js';
import { IMPLEMENTATIONS, type Calibration, type Implementation } from './calibration/types.js';
import type { PlanConfig } from './config.js';
import { countCases, fits, memory, predict, type Memory, type Prediction, type Timing } from './cost.js';
import { prepareCounts } from './counts.js';
import type { CandidateSpec } from './types.js';
import { completeLayout, enumerateLayouts, type PlanLayout, layoutProblem } from './layout.js';
import { Progress, type ProgressOptions } from './progress.js';
import type { Network } from './links.js';
import { fitCalibration, Rates } from './rates.js';
import { type Context, makeContext } from './schedule.js';
import { UserError } from '../errors.js';

/**
 * The curve shape (k0) assumed where a calibration has one length only, or lengths that do not
 * rise: the median of the H200 fits that do rise (sensible, and independent of the fallbacks).
 */
function defaultK0(): number {
  const ks = [...fitCalibration(H200, 0).values()]
    .map((c) => c.k0)
    .filter((k) => k > 0)
    .sort((a, b) => a - b);
  return ks.length ? ks[Math.floor(ks.length / 2)]! : 700;
}

/** The calibration for the config's GPU class: the shipped one, or `override` when it is of that class. */
function calibrationFor(cfg: PlanConfig, override?: Calibration): Calibration {
  const cls = cfg.cluster.gpu.class;
  if (override && override.class === cls) return override;
  return CLASS_CALIBRATIONS[cls];
}

/** `impl`: an implementation in place of the config's named one (tests: a profile as the model had it before a change). */
export function buildContext(
  cfg: PlanConfig,
  override?: Calibration,
  impl: Implementation = IMPLEMENTATIONS[cfg.implementation]!,
): Context {
  const cal = calibrationFor(cfg, override);
  const k0 = defaultK0();
  const curves = fitCalibration(cal, k0, fitCalibration(H200, k0));
  const rates = new Rates(
    cfg.cluster.gpu,
    cal,
    cfg.kernel ?? cal.defaultKernel,
    impl,
    curves,
    cfg.precision === 'fp32' ? 0.5 : 1,
  );
  const net: Network = {
    intra: cfg.cluster.intraNode,
    inter: cfg.cluster.interNode,
    p2pEfficiency: cal.links.p2pEfficiency,
    collectiveEfficiency: cal.links.collectiveEfficiency,
  };
  if (cfg.cluster.pcie) net.pcie = cfg.cluster.pcie;
  return makeContext(cfg, rates, net, new MaskAreas(cfg.mask, cfg.seqLen));
}

export interface PlanResult {
  layout: PlanLayout;
  feasible: boolean;
  reason: string | null;
  prediction: Prediction | null;
  timing: Timing | null;
  memory: Memory | null;
  /** per-rank work max / mean of the ring's shard (1 = balanced) */
  balance: number;
}

const GiB = (x: number): string => x.toFixed(1);

/** Run the strategy code the layouts' pricing needs (counts.ts), once per distinct case. */
export async function prepare(ctx: Context, layouts: readonly PlanLayout[], progress?: Progress): Promise<void> {
  for (const l of layouts) {
    await prepareCounts(countCases(ctx, l));
    progress?.tick();
  }
}

/** evaluateLayout with its counts prepared. */
export async function evaluate(ctx: Context, l: PlanLayout): Promise<PlanResult> {
  if (!layoutProblem(l, ctx.cfg)) await prepare(ctx, [l]);
  return evaluateLayout(ctx, l);
}

/** A layout's prediction; its counts must be prepared (prepare, evaluate). */
function evaluateLayout(ctx: Context, l: PlanLayout): PlanResult {
  const problem = layoutProblem(l, ctx.cfg);
  if (problem)
    return { layout: l, feasible: false, reason: problem, prediction: null, timing: null, memory: null, balance: 1 };
  const p = predict(ctx, l);
  const ok = fits(ctx.cfg, p.memory);
  const balance = l.ring > 1 ? ctx.ringWork(l.shard, l.ring).imbalance() : 1;
  return {
    layout: l,
    feasible: ok,
    reason: ok
      ? null
      : `out of memory: needs ${GiB(p.memory.totalGiB)} GiB of ${GiB(ctx.cfg.cluster.gpu.memGiB)} GiB per GPU`,
    prediction: p.prediction,
    timing: p.timing,
    memory: p.memory,
    balance,
  };
}

// among layouts the model cannot tell apart, the simpler data movement first
const SHARD_ORDER = ['doc-zigzag', 'zigzag', 'contiguous', 'striped'];
const STRATEGY_ORDER = ['local', 'ulysses', 'ring', 'usp', 'double-ring', 'allgather', 'tokenring'];

/** Fastest feasible first; infeasible last (those with a prediction by step time, then the rest). */
function rank(a: PlanResult, b: PlanResult): number {
  if (a.feasible !== b.feasible) return a.feasible ? -1 : 1;
  const ta = a.prediction?.stepMs ?? Infinity,
    tb = b.prediction?.stepMs ?? Infinity;
  if (Math.abs(ta - tb) > 1e-9 * Math.max(ta, tb)) return ta - tb;
  return (
    STRATEGY_ORDER.indexOf(a.layout.strategy) - STRATEGY_ORDER.indexOf(b.layout.strategy) ||
    SHARD_ORDER.indexOf(a.layout.shard) - SHARD_ORDER.indexOf(b.layout.shard)
  );
}

/**
 * Every layout of the config (or its candidates), ranked. `progress` (ProgressOptions): a line on
 * stderr past 2 s, counting the layouts whose strategy code has run and the layouts priced.
 */
export async function plan(
  cfg: PlanConfig,
  override?: Calibration,
  progress?: ProgressOptions,
): Promise<{ ctx: Context; results: PlanResult[] }> {
  const ctx = buildContext(cfg, override);
  const layouts = cfg.candidates ? cfg.candidates.map((c, i) => candidateLayout(c, i, cfg)) : enumerateLayouts(cfg);
  if (layouts.length === 0) throw new UserError(noLayoutReason(cfg));
  const valid = layouts.filter((l) => !layoutProblem(l, cfg));
  const tell = progress ? new Progress('layouts run and priced', valid.length + layouts.length, progress) : undefined;
  await prepare(ctx, valid, tell);
  const results = layouts
    .map((l) => {
      tell?.tick();
      return evaluateLayout(ctx, l);
    })
    .sort(rank);
  return { ctx, results };
}

/** A candidate of the config, completed; its degrees must multiply to the GPU count (a UserError naming them otherwise). */
function candidateLayout(c: CandidateSpec, i: number, cfg: PlanConfig): PlanLayout {
  const l = completeLayout(c, cfg),
    world = cfg.cluster.world;
  const prod = l.ulysses * l.ring * l.tp * l.dp;
  if (prod !== world)
    throw new UserError(
      `candidates[${i}]: ulysses ${l.ulysses} × ring ${l.ring} × tp ${l.tp} × dp ${l.dp} = ${prod}, not the ${world} GPUs of the cluster`,
    );
  return l;
}

/** Why no layout of the config can run: the sequence too short to split, or the degrees that do not divide. */
function noLayoutReason(cfg: PlanConfig): string {
  const world = cfg.cluster.world,
    S = cfg.seqLen;
  // the fewest pieces any split of the GPUs cuts a sequence into: the sequence-parallel GPUs left
  // once tensor parallelism (a node at most) and data parallelism (one sequence each) take theirs
  const attentionOnly = cfg.mode.startsWith('attention');
  const tpMax = attentionOnly
    ? 1
    : Math.max(
        ...[...Array(cfg.cluster.gpusPerNode).keys()]
          .map((t) => t + 1)
          .filter((t) => cfg.cluster.gpusPerNode % t === 0 && cfg.model.heads % t === 0 && cfg.model.kvHeads % t === 0),
      );
  const dpMax = Math.max(
    ...[...Array(cfg.batchSeqs).keys()].map((d) => d + 1).filter((d) => cfg.batchSeqs % d === 0 && world % d === 0),
  );
  const fewest = Math.ceil(world / (tpMax * dpMax));
  if (S < fewest) {
    return (
      `the sequence of ${S.toLocaleString('en-US')} tokens is too short to split over ${world.toLocaleString('en-US')} GPUs: ` +
      `with tp ≤ ${tpMax} and dp ≤ ${dpMax} (batchSeqs ${cfg.batchSeqs}), every layout cuts it into at least ${fewest.toLocaleString('en-US')} pieces`
    );
  }
  return `no layout divides ${world.toLocaleString('en-US')} GPUs for ${cfg.model.heads} heads, ${cfg.model.kvHeads} KV heads, batchSeqs ${cfg.batchSeqs} and a sequence of ${S.toLocaleString('en-US')} tokens`;
}

/** The longest sequence (a multiple of `step`) a layout fits in memory, or 0. */
export async function maxSeqLen(
  cfg: PlanConfig,
  l: PlanLayout,
  override?: Calibration,
  step = 1024,
  limit = 1 << 26,
): Promise<number> {
  // the counts scale with the sequence (counts.ts): one run serves every length
  if (!layoutProblem(l, cfg)) await prepare(buildMemoryContext(cfg, override), [l]);
  const okAt = (S: number): boolean => {
    const c = { ...cfg, seqLen: S };
    if (layoutProblem(l, c)) return false;
    return fits(c, memory(buildMemoryContext(c, override), l));
  };
  if (!okAt(step)) return 0;
  let lo = step,
    hi = step * 2;
  while (hi <= limit && okAt(hi)) {
    lo = hi;
    hi *= 2;
  }
  if (hi > limit) return lo;
  while (hi - lo > step) {
    const mid = Math.floor((lo + hi) / 2 / step) * step;
    if (okAt(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** Memory needs no mask areas: a context whose mask is priced lazily would do, but keep one path. */
function buildMemoryContext(cfg: PlanConfig, override?: Calibration): Context {
  const full = { ...cfg, mask: { kind: 'full' as const } };
  return buildContext(full, override);
}
