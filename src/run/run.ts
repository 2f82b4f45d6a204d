// The host-side runner: global tensors in, global tensors out. It validates the layout, shards
// the inputs into shared memory, runs N worker ranks, gathers their results and counts.
import { type RanksOptions, runRanks } from '../backends/cpu/comm/launch.js';
import { UserError } from '../errors.js';
import { MaskGrid } from '../mask/grid.js';
import type { MaskSpec } from '../mask/spec.js';
import { ShardMap } from '../shard/shard.js';
import { castHost, fmtShape, type HostTensor } from '../tensor/host.js';
import { type Layout, resolveLayout } from './layout.js';
import { documentsOf, type RankOutput, type RankTask } from './rank.js';
import type { DeviceTraffic } from '../strategy/accounting.js';

/** q [S,H,D], k/v [S,Hkv,D], dout like q (gradients are computed when it is given). */
export interface Problem {
  q: HostTensor;
  k: HostTensor;
  v: HostTensor;
  dout?: HostTensor;
  mask: MaskSpec;
  scale: number;
  dtype: 'f64' | 'f32';
}

export interface RankStats {
  rank: number;
  /** time inside the block kernel (forward and backward) */
  computeMs: number;
  /** unmasked (query, key, query head) triples this rank computed in the forward pass */
  area: number;
  messages: number;
  bytesSent: number;
  bytesReceived: number;
  kernelCalls: number;
  /** the most bytes the strategy held at once (allocations not yet released), forward and backward */
  peakHeldBytes: number;
  /** device memory traffic of the strategy's elementwise Device operations (MeteredDevice.traffic): per operation and in all */
  elementwise: DeviceTraffic;
}

/** Traffic of one rank in one labelled step of the schedule. */
export interface StepStats {
  rank: number;
  label: string;
  messages: number;
  bytesSent: number;
  bytesReceived: number;
}

export interface RunStats {
  /** forward + backward, the slowest rank (after a barrier; excludes starting the workers) */
  wallMs: number;
  forwardMs: number;
  backwardMs: number;
  perRank: RankStats[];
  /** max / mean of the per-rank unmasked area (1 = perfectly balanced) */
  balance: number;
  steps: StepStats[];
}

export interface RunResult {
  out: HostTensor;
  lse: HostTensor;
  dq?: HostTensor;
  dk?: HostTensor;
  dv?: HostTensor;
  stats: RunStats;
}

export type RunOptions = RanksOptions;

export const RANK_PROGRAM = { module: new URL('./rank.js', import.meta.url), fn: 'rankMain' };

export function checkProblem(p: Problem): { S: number; H: number; Hkv: number; D: number } {
  const [S, H, D] = p.q.shape as [number, number, number];
  const want = (t: HostTensor | undefined, name: string, shape: number[]): void => {
    if (t && fmtShape(t.shape) !== fmtShape(shape))
      throw new UserError(`${name} is ${fmtShape(t.shape)}, expected ${fmtShape(shape)}`);
  };
  if (p.q.shape.length !== 3) throw new UserError(`q is ${fmtShape(p.q.shape)}, expected [S, H, D]`);
  const Hkv = p.k.shape[1] ?? 0;
  want(p.k, 'k', [S, Hkv, D]);
  want(p.v, 'v', [S, Hkv, D]);
  want(p.dout, 'dout', [S, H, D]);
  if (p.dtype !== 'f64' && p.dtype !== 'f32')
    throw new UserError(`dtype '${String(p.dtype)}' is not supported on CPU ranks (f64 or f32)`);
  if (!(p.scale > 0) || !Number.isFinite(p.scale)) throw new UserError(`scale ${p.scale} must be a positive number`);
  return { S, H, Hkv, D };
}

/**
 * Several problems on one launch of `world` ranks (all layouts must share the world size):
 * starting workers costs more than a small problem, so tests batch.
 */
export async function runBatch(
  items: readonly { problem: Problem; layout: Layout }[],
  options: RunOptions = {},
): Promise<RunResult[]> {
  if (items.length === 0) return [];
  const world = items[0]!.layout.world;
  const prepared = items.map(({ problem, layout }) => {
    if (layout.world !== world) throw new Error(`runBatch: world sizes ${world} and ${layout.world} in one batch`);
    const dims = checkProblem(problem);
    const resolved = resolveLayout(layout, dims, problem.mask);
    MaskGrid.build(problem.mask, dims.S); // bad masks fail here, before any rank starts
    const shard = ShardMap.build(resolved.shard, dims.S, world, documentsOf(problem.mask));
    const cast = (t: HostTensor): HostTensor => castHost(t, problem.dtype);
    const g = { q: cast(problem.q), k: cast(problem.k), v: cast(problem.v), dout: problem.dout && cast(problem.dout) };
    const tasks: RankTask[] = Array.from({ length: world }, (_, r) => ({
      layout: resolved,
      S: dims.S,
      mask: problem.mask,
      scale: problem.scale,
      q: shard.scatter(g.q, r, 0, true),
      k: shard.scatter(g.k, r, 0, true),
      v: shard.scatter(g.v, r, 0, true),
      dout: g.dout && shard.scatter(g.dout, r, 0, true),
    }));
    return { shard, tasks, grads: problem.dout !== undefined };
  });
  const perRank = await runRanks<RankOutput[]>(world, RANK_PROGRAM, (r) => prepared.map((p) => p.tasks[r]!), options);
  return prepared.map((p, i) => {
    const outs = perRank.map((o) => o[i]!);
    const res: RunResult = {
      out: p.shard.gather(outs.map((o) => o.out)),
      lse: p.shard.gather(
        outs.map((o) => o.lse),
        1,
      ),
      stats: statsOf(outs),
    };
    if (p.grads) {
      res.dq = p.shard.gather(outs.map((o) => o.dq!));
      res.dk = p.shard.gather(outs.map((o) => o.dk!));
      res.dv = p.shard.gather(outs.map((o) => o.dv!));
    }
    return res;
  });
}

/** Shard, run `layout.world` ranks, gather: global tensors in, global tensors out. */
export async function runDistributed(problem: Problem, layout: Layout, options: RunOptions = {}): Promise<RunResult> {
  return (await runBatch([{ problem, layout }], options))[0]!;
}

/** The run's stats from each rank's counts (the tensors are not read). */
export function statsOf(outs: readonly Omit<RankOutput, 'out' | 'lse' | 'dq' | 'dk' | 'dv'>[]): RunStats {
  const steps: StepStats[] = outs.flatMap((o, rank) => o.steps.map((s) => ({ rank, ...s })));
  const perRank: RankStats[] = outs.map((o, rank) => {
    const t = { messages: 0, bytesSent: 0, bytesReceived: 0 };
    for (const s of o.steps) {
      t.messages += s.messages;
      t.bytesSent += s.bytesSent;
      t.bytesReceived += s.bytesReceived;
    }
    return {
      rank,
      computeMs: o.computeMs,
      area: o.area,
      ...t,
      kernelCalls: o.forwardCalls + o.backwardCalls,
      peakHeldBytes: o.peakHeldBytes,
      elementwise: o.elementwise,
    };
  });
  const areas = perRank.map((r) => r.area),
    mean = areas.reduce((a, b) => a + b, 0) / areas.length;
  const forwardMs = Math.max(...outs.map((o) => o.forwardMs)),
    backwardMs = Math.max(...outs.map((o) => o.backwardMs));
  return {
    wallMs: Math.max(...outs.map((o) => o.forwardMs + o.backwardMs)),
    forwardMs,
    backwardMs,
    perRank,
    balance: mean > 0 ? Math.max(...areas) / mean : 1,
    steps,
  };
}
