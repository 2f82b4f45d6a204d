// The launchers a cluster runs weft under, read from the environment each one gives its ranks:
//   weft launch — RANK, WORLD_SIZE, LOCAL_RANK, …, MASTER_ADDR:MASTER_PORT and WEFT_STORE_TOKEN:
//                 the launcher itself hosts weft's store on MASTER_PORT;
//   torchrun    — the same variables without WEFT_STORE_TOKEN (`torchrun --no-python … weft run …`):
//                 torchrun's own TCPStore holds MASTER_PORT, so rank 0 hosts weft's store on
//                 MASTER_PORT + 1;
//   srun        — SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODEID; the store's host is
//                 MASTER_ADDR or the first host of SLURM_STEP_NODELIST (SLURM_JOB_NODELIST,
//                 SLURM_NODELIST), its port MASTER_PORT or one derived from the job and step ids;
//   mpirun      — OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE, _NODE_RANK; the host is
//                 MASTER_ADDR or 127.0.0.1 (one node), the port MASTER_PORT or one derived from
//                 the Open MPI job id.
// WEFT_STORE_PORT overrides the port everywhere. Outside weft launch the store's token is
// WEFT_STORE_TOKEN or, when unset, the job's identity (known to every rank, but not secret: set
// WEFT_STORE_TOKEN on a shared network).
import { UserError } from '../errors.js';

export type LauncherName = 'weft' | 'torchrun' | 'slurm' | 'mpirun';

export interface DistEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  nodeRank: number;
  masterAddr: string;
  /** where weft's rendezvous store listens */
  masterPort: number;
  token: string;
  launcher: LauncherName;
  /** rank 0 hosts the store (every launcher but weft launch, which hosts it itself) */
  hostsStore: boolean;
}

/** That a run asking for `world` ranks runs under a launcher that started that many processes. */
export function checkWorld(run: { world: number }, d: Pick<DistEnv, 'worldSize' | 'launcher'>): void {
  if (run.world !== d.worldSize)
    throw new UserError(
      `--world ${run.world} differs from the ${d.worldSize} processes the launcher (${d.launcher}) started`,
    );
}

/** A bad launch environment: the message names the variable. */
export class LaunchEnvError extends UserError {}

function int(env: NodeJS.ProcessEnv, name: string, min: number, fallback?: number): number {
  const v = env[name];
  if ((v === undefined || v === '') && fallback !== undefined) return fallback;
  const n = Number(v);
  if (v === undefined || v === '' || !Number.isInteger(n) || n < min)
    throw new LaunchEnvError(`${name}=${v ?? '(unset)'} is not an integer ≥ ${min}`);
  return n;
}

function port(env: NodeJS.ProcessEnv, fallback: () => number): number {
  const p = env.WEFT_STORE_PORT ? int(env, 'WEFT_STORE_PORT', 1) : fallback();
  if (p > 65535) throw new LaunchEnvError(`store port ${p} is above 65535 (set WEFT_STORE_PORT)`);
  return p;
}

/** A port in 20000–39999 from a job's identity, the same on every rank. */
function derivedPort(...ids: (string | undefined)[]): number {
  let h = 0x811c9dc5;
  for (const c of ids.join('/')) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return 20000 + ((h >>> 0) % 20000);
}

/** The first host of a Slurm node list: "gpu[07-09,12],cpu3" → "gpu07", "a1,a2" → "a1". */
export function firstHost(nodelist: string): string {
  const m = /^([^,[]+)(?:\[([^\]]+)\])?/.exec(nodelist.trim());
  if (!m) throw new LaunchEnvError(`cannot read a host from the node list '${nodelist}'`);
  if (!m[2]) return m[1]!;
  return m[1]! + m[2].split(',')[0]!.split('-')[0]!;
}

function check(d: DistEnv): DistEnv {
  if (d.rank >= d.worldSize)
    throw new LaunchEnvError(`rank ${d.rank} is not below the world size ${d.worldSize} (${d.launcher})`);
  if (d.localRank >= d.localWorldSize)
    throw new LaunchEnvError(
      `local rank ${d.localRank} is not below the local world size ${d.localWorldSize} (${d.launcher})`,
    );
  return d;
}

function torchLike(env: NodeJS.ProcessEnv): DistEnv {
  const weft = env.WEFT_STORE_TOKEN !== undefined;
  const worldSize = int(env, 'WORLD_SIZE', 1),
    rank = int(env, 'RANK', 0);
  const master = env.MASTER_PORT === undefined && !weft ? undefined : int(env, 'MASTER_PORT', 1);
  return check({
    rank,
    worldSize,
    localRank: int(env, 'LOCAL_RANK', 0, rank),
    localWorldSize: int(env, 'LOCAL_WORLD_SIZE', 1, worldSize),
    nodeRank: int(env, 'GROUP_RANK', 0, 0),
    masterAddr: env.MASTER_ADDR || '127.0.0.1',
    masterPort: weft
      ? master!
      : port(env, () => {
          if (master === undefined)
            throw new LaunchEnvError(
              'MASTER_PORT is unset: start under torchrun or weft launch, or set WEFT_STORE_PORT',
            );
          return master + 1;
        }),
    token:
      env.WEFT_STORE_TOKEN ??
      `torchrun/${env.TORCHELASTIC_RUN_ID ?? ''}/${env.MASTER_ADDR ?? ''}:${env.MASTER_PORT ?? ''}`,
    launcher: weft ? 'weft' : 'torchrun',
    hostsStore: !weft,
  });
}

function slurm(env: NodeJS.ProcessEnv): DistEnv {
  const worldSize = int(env, 'SLURM_NTASKS', 1, env.SLURM_NPROCS ? int(env, 'SLURM_NPROCS', 1) : undefined);
  const list = env.SLURM_STEP_NODELIST ?? env.SLURM_JOB_NODELIST ?? env.SLURM_NODELIST;
  const host = env.MASTER_ADDR || (list ? firstHost(list) : undefined);
  if (!host)
    throw new LaunchEnvError('neither MASTER_ADDR nor SLURM_STEP_NODELIST is set: cannot tell where rank 0 runs');
  const tasksOnNode = env.SLURM_STEP_TASKS_PER_NODE ?? env.SLURM_TASKS_PER_NODE;
  const nodeRank = int(env, 'SLURM_NODEID', 0, 0);
  return check({
    rank: int(env, 'SLURM_PROCID', 0),
    worldSize,
    localRank: int(env, 'SLURM_LOCALID', 0, 0),
    localWorldSize: tasksOnNode ? tasksPerNode(tasksOnNode, nodeRank) : worldSize,
    nodeRank,
    masterAddr: host,
    masterPort: port(env, () =>
      env.MASTER_PORT ? int(env, 'MASTER_PORT', 1) : derivedPort('slurm', env.SLURM_JOB_ID, env.SLURM_STEP_ID),
    ),
    token: env.WEFT_STORE_TOKEN ?? `slurm/${env.SLURM_JOB_ID ?? ''}.${env.SLURM_STEP_ID ?? ''}`,
    launcher: 'slurm',
    hostsStore: true,
  });
}

/** Slurm's tasks per node, "2(x3),1" → node 0..2 run 2, node 3 runs 1. */
export function tasksPerNode(spec: string, node: number): number {
  let at = 0;
  for (const part of spec.split(',')) {
    const m = /^(\d+)(?:\(x(\d+)\))?$/.exec(part.trim());
    if (!m) throw new LaunchEnvError(`cannot read tasks per node from '${spec}'`);
    at += Number(m[2] ?? 1);
    if (node < at) return Number(m[1]);
  }
  throw new LaunchEnvError(`node ${node} is not in the tasks per node '${spec}'`);
}

function openMpi(env: NodeJS.ProcessEnv): DistEnv {
  const worldSize = int(env, 'OMPI_COMM_WORLD_SIZE', 1),
    localWorldSize = int(env, 'OMPI_COMM_WORLD_LOCAL_SIZE', 1, worldSize);
  if (!env.MASTER_ADDR && localWorldSize !== worldSize)
    throw new LaunchEnvError(
      'mpirun over several nodes: set MASTER_ADDR to the host of rank 0 (mpirun -x MASTER_ADDR=…)',
    );
  const job =
    env.OMPI_MCA_ess_base_jobid ??
    env.OMPI_MCA_orte_ess_jobid ??
    env.PMIX_NAMESPACE ??
    env.OMPI_MCA_orte_hnp_uri?.split(';')[0];
  return check({
    rank: int(env, 'OMPI_COMM_WORLD_RANK', 0),
    worldSize,
    localRank: int(env, 'OMPI_COMM_WORLD_LOCAL_RANK', 0, 0),
    localWorldSize,
    nodeRank: int(env, 'OMPI_COMM_WORLD_NODE_RANK', 0, 0),
    masterAddr: env.MASTER_ADDR || '127.0.0.1',
    masterPort: port(env, () => (env.MASTER_PORT ? int(env, 'MASTER_PORT', 1) : derivedPort('mpirun', job))),
    token: env.WEFT_STORE_TOKEN ?? `mpirun/${job ?? ''}`,
    launcher: 'mpirun',
    hostsStore: true,
  });
}

/**
 * The launch environment of this process, or undefined when no launcher started it. torchrun's
 * variables (weft launch sets them too) come first, then Open MPI's, then a Slurm step's (srun
 * sets SLURM_STEP_ID; a batch script alone is not a step, so it is not taken for one).
 */
export function detectLaunch(env: NodeJS.ProcessEnv = process.env): DistEnv | undefined {
  if (env.RANK !== undefined || env.WORLD_SIZE !== undefined) return torchLike(env);
  if (env.OMPI_COMM_WORLD_RANK !== undefined) return openMpi(env);
  if (env.SLURM_PROCID !== undefined && env.SLURM_STEP_ID !== undefined) return slurm(env);
  return undefined;
}
