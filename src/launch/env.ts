// The environment contract between a launcher and weft's ranks (which launchers, and how their
// variables are read: cluster.ts), the variables weft launch sets (torchrun's plus the store's
// token, WEFT_STORE_TOKEN), and joining the job's rendezvous store. NVLink multicast is kept off
// in every rank.
import net from 'node:net';
import type { DistEnv } from './cluster.js';
import { StoreClient, StoreServer } from './store.js';
import { UserError } from '../errors.js';

export { type DistEnv, detectLaunch as distEnv, firstHost, LaunchEnvError, type LauncherName } from './cluster.js';

/** Variables that must stay set in every process weft starts (multicast can take shared GPUs down). */
const SAFE_GPU_ENV: Readonly<Record<string, string>> = {
  NCCL_NVLS_ENABLE: '0',
  TORCH_SYMM_MEM_DISABLE_MULTICAST: '1',
  NVSHMEM_DISABLE_NVLS: '1',
};

/** What weft launch gives each rank. */
export function rankEnv(d: Omit<DistEnv, 'launcher' | 'hostsStore'>): Record<string, string> {
  return {
    RANK: String(d.rank),
    WORLD_SIZE: String(d.worldSize),
    LOCAL_RANK: String(d.localRank),
    LOCAL_WORLD_SIZE: String(d.localWorldSize),
    GROUP_RANK: String(d.nodeRank),
    NODE_RANK: String(d.nodeRank),
    MASTER_ADDR: d.masterAddr,
    MASTER_PORT: String(d.masterPort),
    WEFT_STORE_TOKEN: d.token,
    ...SAFE_GPU_ENV,
  };
}

let hosted: Promise<StoreServer> | undefined;

/**
 * Rank 0 of a job whose launcher hosts no weft store starts one. It lives as long as rank 0's
 * process (unreferenced: it never keeps the process up), so the other ranks' store calls fail
 * once rank 0 is gone — fail-fast, as under weft launch.
 */
function hostStore(d: DistEnv): Promise<StoreServer> {
  const loopback = net.isIP(d.masterAddr) ? /^127\.|^::1$/.test(d.masterAddr) : d.masterAddr === 'localhost';
  hosted ??= StoreServer.listen(loopback ? d.masterAddr : '0.0.0.0', d.masterPort, d.token).then(
    (s) => {
      s.unref();
      return s;
    },
    (e: NodeJS.ErrnoException) => {
      hosted = undefined;
      throw new UserError(
        `rank 0 cannot host weft's store on ${d.masterAddr}:${d.masterPort} (${e.code ?? e.message}; ${d.launcher}): set WEFT_STORE_PORT to a free port`,
      );
    },
  );
  return hosted;
}

/** Connect to the job's rendezvous store (rank 0 starts it first where the launcher has none). */
export async function connectStore(d: DistEnv, timeoutMs?: number): Promise<StoreClient> {
  if (d.hostsStore && d.rank === 0) await hostStore(d);
  return StoreClient.connect({
    host: d.masterAddr,
    port: d.masterPort,
    token: d.token,
    ...(timeoutMs ? { timeoutMs } : {}),
  });
}
