// CPU ranks as processes: one rank per process started by a launcher (weft launch, torchrun,
// srun, mpirun), over the TCP wire. Every process holds the global problem (weft run draws the
// same inputs everywhere from its seed), takes its own shard, runs the strategy exactly as a
// worker-thread rank does (rankMain), and sends its outputs to rank 0, which gathers them; the
// counts travel through the job's store.
import type { Comm } from '../comm/comm.js';
import { runTcpRank } from '../backends/cpu/tcp/wire.js';
import { checkWorld, type DistEnv } from '../launch/cluster.js';
import type { StoreClient } from '../launch/store.js';
import { MaskGrid } from '../mask/grid.js';
import type { MaskSpec } from '../mask/spec.js';
import { ShardMap } from '../shard/shard.js';
import { castHost, hostZeros, type HostTensor } from '../tensor/host.js';
import { type Layout, resolveLayout } from './layout.js';
import { documentsOf, rankMain, type RankOutput, type RankTask } from './rank.js';
import { type Problem, type RunResult, statsOf } from './run.js';

const OUTPUTS = ['out', 'lse', 'dq', 'dk', 'dv'] as const;

interface GatherTask {
  task: RankTask;
  lengths: number[];
  H: number;
  Hkv: number;
  D: number;
}

/** The rank program: run the task, then every rank's outputs go to rank 0 (which returns them all). */
export async function gatherMain(
  comm: Comm,
  a: GatherTask,
): Promise<{ mine: RankOutput; all?: Partial<Record<(typeof OUTPUTS)[number], HostTensor>>[] }> {
  const [mine] = await rankMain(comm, [a.task]);
  const present = OUTPUTS.filter((n) => mine![n] !== undefined);
  const stripped = { ...mine! };
  for (const n of OUTPUTS) delete stripped[n];
  if (comm.rank !== 0) {
    await comm.sendRecv(present.map((n) => ({ send: { buf: mine![n]!, peer: 0 } }))).wait();
    return { mine: stripped as RankOutput };
  }
  const all = [Object.fromEntries(present.map((n) => [n, mine![n]!]))];
  for (let r = 1; r < comm.size; r++) {
    const len = a.lengths[r]!;
    const parts = Object.fromEntries(
      present.map((n) => {
        const like = mine![n]!;
        const shape = n === 'lse' ? [a.H, len] : [len, n === 'dk' || n === 'dv' ? a.Hkv : a.H, a.D];
        return [n, hostZeros(like.dtype, shape)];
      }),
    );
    await comm.sendRecv(present.map((n) => ({ recv: { buf: parts[n]!, peer: r } }))).wait();
    all.push(parts);
  }
  return { mine: stripped as RankOutput, all };
}

const PROGRAM = { module: new URL('./launched.js', import.meta.url), fn: 'gatherMain' };
let runs = 0;

/**
 * This process's rank of a launched CPU run; rank 0 gets the gathered result, the others
 * undefined. Every rank of the job calls it with the same problem and layout.
 */
export async function runLaunched(
  problem: Problem,
  layout: Layout,
  d: DistEnv,
  store: StoreClient,
  o: { timeoutMs?: number } = {},
): Promise<RunResult | undefined> {
  checkWorld(layout, d);
  const [S, H, D] = problem.q.shape as [number, number, number];
  const Hkv = problem.k.shape[1]!;
  const resolved = resolveLayout(layout, { S, H, Hkv }, problem.mask);
  MaskGrid.build(problem.mask, S);
  const shard = ShardMap.build(resolved.shard, S, d.worldSize, documentsOf(problem.mask));
  const mine = (t: HostTensor): HostTensor => shard.scatter(t, d.rank, 0);
  const local = {
    q: mine(problem.q),
    k: mine(problem.k),
    v: mine(problem.v),
    dout: problem.dout && mine(problem.dout),
  };
  return runRankShards(
    local,
    { S, H, Hkv, D, mask: problem.mask, scale: problem.scale, dtype: problem.dtype, layout: resolved, shard },
    d,
    store,
    o,
  );
}

export interface ShardRun {
  S: number;
  H: number;
  Hkv: number;
  D: number;
  mask: MaskSpec;
  scale: number;
  dtype: 'f64' | 'f32';
  layout: RankTask['layout'];
  shard: ShardMap;
}

/**
 * Run this rank's rows (any dtype; cast to the run's) and gather every rank's outputs on rank 0,
 * which gets the global result; the others get undefined.
 */
export async function runRankShards(
  local: { q: HostTensor; k: HostTensor; v: HostTensor; dout?: HostTensor | undefined },
  m: ShardRun,
  d: DistEnv,
  store: StoreClient,
  o: { timeoutMs?: number } = {},
): Promise<RunResult | undefined> {
  const cast = (t: HostTensor): HostTensor => castHost(t, m.dtype, true);
  const task: RankTask = {
    layout: m.layout,
    S: m.S,
    mask: m.mask,
    scale: m.scale,
    q: cast(local.q),
    k: cast(local.k),
    v: cast(local.v),
    dout: local.dout && cast(local.dout),
  };
  const { shard } = m,
    r = d.rank;
  const lengths = Array.from({ length: d.worldSize }, (_, j) => shard.length(j));
  const tag = String(runs++);
  const res = await runTcpRank<Awaited<ReturnType<typeof gatherMain>>>(
    PROGRAM,
    { task, lengths, H: m.H, Hkv: m.Hkv, D: m.D } satisfies GatherTask,
    { rank: r, size: d.worldSize, store, token: d.token, tag, timeoutMs: o.timeoutMs },
  );
  await store.set(`weft/cpu/${tag}/stats/${r}`, JSON.stringify(res.mine));
  if (r !== 0) return undefined;
  const outs: RankOutput[] = [];
  for (let j = 0; j < d.worldSize; j++)
    outs.push({ ...(JSON.parse(await store.getString(`weft/cpu/${tag}/stats/${j}`)) as RankOutput), ...res.all![j]! });
  const result: RunResult = {
    out: shard.gather(outs.map((x) => x.out)),
    lse: shard.gather(
      outs.map((x) => x.lse),
      1,
    ),
    stats: statsOf(outs),
  };
  if (local.dout) {
    result.dq = shard.gather(outs.map((x) => x.dq!));
    result.dk = shard.gather(outs.map((x) => x.dk!));
    result.dv = shard.gather(outs.map((x) => x.dv!));
  }
  return result;
}
