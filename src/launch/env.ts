// The environment contract between `weft launch` and its ranks: torchrun's variables (RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, GROUP_RANK) plus the
// store's token, WEFT_STORE_TOKEN. NVLink multicast is kept off in every rank.
import { StoreClient } from './store.js';

export interface DistEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  token: string;
}

/** Variables that must stay set in every process weft starts (multicast can take shared GPUs down). */
const SAFE_GPU_ENV: Readonly<Record<string, string>> = {
  NCCL_NVLS_ENABLE: '0',
  TORCH_SYMM_MEM_DISABLE_MULTICAST: '1',
  NVSHMEM_DISABLE_NVLS: '1',
};

export function rankEnv(d: DistEnv): Record<string, string> {
  return {
    RANK: String(d.rank), WORLD_SIZE: String(d.worldSize), LOCAL_RANK: String(d.localRank),
    LOCAL_WORLD_SIZE: String(d.localWorldSize), GROUP_RANK: String(d.nodeRank), NODE_RANK: String(d.nodeRank),
    MASTER_ADDR: d.masterAddr, MASTER_PORT: String(d.masterPort), WEFT_STORE_TOKEN: d.token,
    ...SAFE_GPU_ENV,
  };
}

function int(env: NodeJS.ProcessEnv, name: string, min: number): number {
  const v = env[name];
  const n = Number(v);
  if (v === undefined || v === '' || !Number.isInteger(n) || n < min) throw new Error(`${name}=${v ?? '(unset)'} is not an integer ≥ ${min} (run under weft launch)`);
  return n;
}

/** The launch environment of this process, or undefined when it was not started by a launcher. */
export function distEnv(env: NodeJS.ProcessEnv = process.env): DistEnv | undefined {
  if (env.RANK === undefined && env.WORLD_SIZE === undefined) return undefined;
  const d: DistEnv = {
    rank: int(env, 'RANK', 0), worldSize: int(env, 'WORLD_SIZE', 1),
    localRank: env.LOCAL_RANK === undefined ? int(env, 'RANK', 0) : int(env, 'LOCAL_RANK', 0),
    localWorldSize: env.LOCAL_WORLD_SIZE === undefined ? int(env, 'WORLD_SIZE', 1) : int(env, 'LOCAL_WORLD_SIZE', 1),
    nodeRank: env.GROUP_RANK === undefined ? 0 : int(env, 'GROUP_RANK', 0),
    masterAddr: env.MASTER_ADDR ?? '127.0.0.1', masterPort: int(env, 'MASTER_PORT', 1),
    token: env.WEFT_STORE_TOKEN ?? '',
  };
  if (d.rank >= d.worldSize) throw new Error(`RANK=${d.rank} is not below WORLD_SIZE=${d.worldSize}`);
  return d;
}

/** Connect to the job's rendezvous store. */
export function connectStore(d: DistEnv, timeoutMs?: number): Promise<StoreClient> {
  return StoreClient.connect({ host: d.masterAddr, port: d.masterPort, token: d.token, ...(timeoutMs ? { timeoutMs } : {}) });
}
