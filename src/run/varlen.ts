// The host-side runners for a dispatch plan: shard the global inputs by the plan's placement, run
// the sparse K/V executor on N worker ranks (runVarlen) or as this process's rank of a launched job
// (runVarlenLaunched, over TCP), gather and count — the same rank program and counts as
// runDistributed and runLaunched, with each rank's tokens and the plan's figures beside what the
// ranks counted.
import { runRanks } from '../backends/cpu/comm/launch.js';
import type { DistEnv } from '../launch/cluster.js';
import type { StoreClient } from '../launch/store.js';
import { MaskGrid } from '../mask/grid.js';
import { ShardMap } from '../shard/shard.js';
import { castHost, type HostTensor } from '../tensor/host.js';
import { type DispatchPlan, rankPositions, routesOf } from '../varlen/dispatch.js';
import { checkWorld } from '../launch/cluster.js';
import { runRankShards } from './launched.js';
import type { RankOutput, RankTask } from './rank.js';
import {
  checkProblem,
  type Problem,
  RANK_PROGRAM,
  type RankStats,
  type RunOptions,
  type RunResult,
  type RunStats,
  statsOf,
} from './run.js';

export interface VarlenRankStats extends RankStats {
  tokens: number;
  /** K/V rows received (kept until the backward) */
  recvRows: number;
}

export interface VarlenStats extends RunStats {
  perRank: VarlenRankStats[];
  /** max / mean of the per-rank tokens */
  tokenBalance: number;
}

export interface VarlenResult extends Omit<RunResult, 'stats'> {
  stats: VarlenStats;
}

/** The rank task's layout of a plan: every rank's positions and the routes its transfers take. */
function varlenLayout(plan: DispatchPlan, positions: Int32Array[]): RankTask['layout'] {
  return { strategy: 'varlen', positions, ...routesOf(plan) };
}

export async function runVarlen(problem: Problem, plan: DispatchPlan, options: RunOptions = {}): Promise<VarlenResult> {
  const { S } = checkProblem(problem);
  if (S !== plan.S) throw new Error(`runVarlen: the problem has ${S} tokens, the plan ${plan.S}`);
  MaskGrid.build(problem.mask, S);
  const positions = rankPositions(plan);
  const shard = ShardMap.fromPositions(S, positions);
  const cast = (t: HostTensor): HostTensor => castHost(t, problem.dtype);
  const g = { q: cast(problem.q), k: cast(problem.k), v: cast(problem.v), dout: problem.dout && cast(problem.dout) };
  const layout = varlenLayout(plan, positions);
  const tasks: RankTask[] = positions.map((_, r) => ({
    layout,
    S,
    mask: problem.mask,
    scale: problem.scale,
    q: shard.scatter(g.q, r, 0, true),
    k: shard.scatter(g.k, r, 0, true),
    v: shard.scatter(g.v, r, 0, true),
    dout: g.dout && shard.scatter(g.dout, r, 0, true),
  }));
  const outs = (await runRanks<RankOutput[]>(plan.world, RANK_PROGRAM, (r) => [tasks[r]!], options)).map((o) => o[0]!);
  const res: VarlenResult = {
    out: shard.gather(outs.map((o) => o.out)),
    lse: shard.gather(
      outs.map((o) => o.lse),
      1,
    ),
    stats: varlenStats(statsOf(outs), plan),
  };
  if (problem.dout) {
    res.dq = shard.gather(outs.map((o) => o.dq!));
    res.dk = shard.gather(outs.map((o) => o.dk!));
    res.dv = shard.gather(outs.map((o) => o.dv!));
  }
  return res;
}

/**
 * This process's rank of a launched varlen run (CPU ranks over TCP): every rank of the job calls it
 * with the same problem and plan (the dispatcher is deterministic, so every rank computes the same
 * one); rank 0 gets the gathered result, the others undefined.
 */
export async function runVarlenLaunched(
  problem: Problem,
  plan: DispatchPlan,
  d: DistEnv,
  store: StoreClient,
  o: { timeoutMs?: number } = {},
): Promise<VarlenResult | undefined> {
  checkWorld(plan, d);
  const { S, H, Hkv, D } = checkProblem(problem);
  if (S !== plan.S) throw new Error(`runVarlenLaunched: the problem has ${S} tokens, the plan ${plan.S}`);
  MaskGrid.build(problem.mask, S);
  const positions = rankPositions(plan);
  const shard = ShardMap.fromPositions(S, positions);
  const mine = (t: HostTensor): HostTensor => shard.scatter(t, d.rank, 0);
  const res = await runRankShards(
    { q: mine(problem.q), k: mine(problem.k), v: mine(problem.v), dout: problem.dout && mine(problem.dout) },
    {
      S,
      H,
      Hkv,
      D,
      mask: problem.mask,
      scale: problem.scale,
      dtype: problem.dtype,
      layout: varlenLayout(plan, positions),
      shard,
    },
    d,
    store,
    o,
  );
  return res && { ...res, stats: varlenStats(res.stats, plan) };
}

/** The ranks' counts with each rank's tokens and received rows (from the plan) and the token balance. */
export function varlenStats<R extends RankStats>(
  base: Omit<RunStats, 'perRank'> & { perRank: R[] },
  plan: DispatchPlan,
): Omit<RunStats, 'perRank'> & { perRank: (R & { tokens: number; recvRows: number })[]; tokenBalance: number } {
  const perRank = base.perRank.map((s, r) => ({
    ...s,
    tokens: plan.ranks[r]!.tokens,
    recvRows: plan.ranks[r]!.recvRows,
  }));
  return { ...base, perRank, tokenBalance: Math.max(...perRank.map((r) => r.tokens)) / (plan.S / plan.world) };
}
