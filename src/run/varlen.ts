// The host-side runner for a dispatch plan: shard the global inputs by the plan's placement, run
// the sparse K/V executor on N worker ranks, gather and count (the same rank program and counts as
// runDistributed, with each rank's tokens and the plan's figures beside what the ranks counted).
import { runRanks } from '../backends/cpu/comm/launch.js';
import { MaskGrid } from '../mask/grid.js';
import { ShardMap } from '../shard/shard.js';
import { castHost, type HostTensor } from '../tensor/host.js';
import { type DispatchPlan, rankPositions, relaySpans } from '../varlen/dispatch.js';
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

export async function runVarlen(problem: Problem, plan: DispatchPlan, options: RunOptions = {}): Promise<VarlenResult> {
  const { S } = checkProblem(problem);
  if (S !== plan.S) throw new Error(`runVarlen: the problem has ${S} tokens, the plan ${plan.S}`);
  MaskGrid.build(problem.mask, S);
  const positions = rankPositions(plan);
  const shard = ShardMap.fromPositions(S, positions);
  const cast = (t: HostTensor): HostTensor => castHost(t, problem.dtype);
  const g = { q: cast(problem.q), k: cast(problem.k), v: cast(problem.v), dout: problem.dout && cast(problem.dout) };
  const tasks: RankTask[] = positions.map((_, r) => ({
    layout: { strategy: 'varlen', positions, relay: relaySpans(plan), chunks: plan.chunks },
    S,
    mask: problem.mask,
    scale: problem.scale,
    q: shard.scatter(g.q, r, 0, true),
    k: shard.scatter(g.k, r, 0, true),
    v: shard.scatter(g.v, r, 0, true),
    dout: g.dout && shard.scatter(g.dout, r, 0, true),
  }));
  const outs = (await runRanks<RankOutput[]>(plan.world, RANK_PROGRAM, (r) => [tasks[r]!], options)).map((o) => o[0]!);
  const base = statsOf(outs);
  const perRank = base.perRank.map((s, r) => ({
    ...s,
    tokens: positions[r]!.length,
    recvRows: plan.ranks[r]!.recvRows,
  }));
  const toks = perRank.map((r) => r.tokens),
    mean = S / plan.world;
  const res: VarlenResult = {
    out: shard.gather(outs.map((o) => o.out)),
    lse: shard.gather(
      outs.map((o) => o.lse),
      1,
    ),
    stats: { ...base, perRank, tokenBalance: Math.max(...toks) / mean },
  };
  if (problem.dout) {
    res.dq = shard.gather(outs.map((o) => o.dq!));
    res.dk = shard.gather(outs.map((o) => o.dk!));
    res.dv = shard.gather(outs.map((o) => o.dv!));
  }
  return res;
}
