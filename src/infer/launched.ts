// Inference on CPU ranks as processes: one rank per process started by a launcher (`weft launch
// -n N -- run --mode … --backend cpu`), over the TCP wire. Every process prepares the same task
// (weft run draws the same inputs everywhere from its seed), runs its rank of it exactly as a
// worker-thread rank does (inferMain), and sends each step's rows to rank 0, which puts them back
// into their requests as runInference does; the timings and counts travel through the job's store.
import { runTcpRank } from '../backends/cpu/tcp/wire.js';
import type { Comm, P2POp } from '../comm/comm.js';
import { checkWorld, type DistEnv } from '../launch/cluster.js';
import type { StoreClient } from '../launch/store.js';
import { hostZeros, type HostTensor } from '../tensor/host.js';
import { CacheMap } from './cache.js';
import { inferMain, type InferRankOutput, type InferTask } from './rank.js';
import { type InferProblem, type InferResult, prepareInference } from './run.js';

type Rows = { out: HostTensor; lse: HostTensor }[];
type Stats = Omit<InferRankOutput, 'steps'> & { steps: Omit<InferRankOutput['steps'][number], 'out' | 'lse'>[] };

/** Rows each rank returns per step: a prefill its own new rows, a decode every new row, a fill none. */
function stepRows(task: InferTask, world: number): number[][] {
  const map = new CacheMap(world, task.capacity);
  for (const r of task.requests) map.open(r.limit, r.mask);
  return task.steps.map((s) => {
    const p = map.place(s.counts);
    map.commit(p);
    return Array.from({ length: world }, (_, r) =>
      s.kind === 'fill' ? 0 : s.kind === 'decode' ? p.pos.length : p.byRank[r]!.length,
    );
  });
}

/** The rank program: run the task, then every rank's step rows go to rank 0 (which returns them all). */
export async function inferGatherMain(comm: Comm, task: InferTask): Promise<{ stats: Stats; all?: Rows[] }> {
  const [mine] = await inferMain(comm, [task]);
  const rows: Rows = mine!.steps.map((s) => ({ out: s.out, lse: s.lse }));
  const stats: Stats = { ...mine!, steps: mine!.steps.map(({ out: _o, lse: _l, ...rest }) => rest) };
  const ops = (parts: Rows, peer: number, dir: 'send' | 'recv'): P2POp[] =>
    parts
      .filter((x) => x.out.data.length > 0)
      .flatMap((x) => [{ [dir]: { buf: x.out, peer } }, { [dir]: { buf: x.lse, peer } }] as P2POp[]);
  if (comm.rank !== 0) {
    await comm.sendRecv(ops(rows, 0, 'send')).wait();
    return { stats };
  }
  const counts = stepRows(task, comm.size);
  const all: Rows[] = [rows];
  for (let r = 1; r < comm.size; r++) {
    const parts = task.steps.map((s, k) => {
      const n = counts[k]![r]!,
        [H, D] = [s.q.shape[1]!, task.headDim];
      return { out: hostZeros(task.dtype, [n, H, D]), lse: hostZeros(task.dtype, [H, n]) };
    });
    await comm.sendRecv(ops(parts, r, 'recv')).wait();
    all.push(parts);
  }
  return { stats, all };
}

const PROGRAM = { module: new URL('./launched.js', import.meta.url), fn: 'inferGatherMain' };
let launches = 0;

/**
 * This process's rank of a launched inference run; rank 0 gets the result, the others undefined.
 * Every rank of the job calls it with the same problem.
 */
export async function runInferenceLaunched(
  problem: InferProblem,
  d: DistEnv,
  store: StoreClient,
  o: { timeoutMs?: number } = {},
): Promise<InferResult | undefined> {
  checkWorld(problem, d);
  const prepared = prepareInference(problem);
  const tag = `infer-${launches++}`;
  const res = await runTcpRank<{ stats: Stats; all?: Rows[] }>(PROGRAM, prepared.task, {
    rank: d.rank,
    size: d.worldSize,
    store,
    token: d.token,
    tag,
    timeoutMs: o.timeoutMs,
  });
  await store.set(`weft/cpu/${tag}/stats/${d.rank}`, JSON.stringify(res.stats));
  if (d.rank !== 0) return undefined;
  const outs: InferRankOutput[] = [];
  for (let j = 0; j < d.worldSize; j++) {
    const s = JSON.parse(await store.getString(`weft/cpu/${tag}/stats/${j}`)) as Stats;
    outs.push({ ...s, steps: s.steps.map((x, k) => ({ ...x, ...res.all![j]![k]! })) });
  }
  return prepared.finish(outs);
}
