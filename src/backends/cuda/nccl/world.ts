// The communicator of every rank of a `weft launch` job: rank 0 makes the NCCL unique id and
// publishes it through the rendezvous store; the others read it there.
import { type CudaRuntime, openCuda } from '../runtime/runtime.js';
import { connectStore, type DistEnv, distEnv } from '../../../launch/env.js';
import type { StoreClient } from '../../../launch/store.js';
import { Nccl } from './bindings.js';
import { NcclComm, type NcclOptions, defaultTimeoutMs } from './comm.js';

export interface World {
  rt: CudaRuntime;
  nccl: Nccl;
  comm: NcclComm;
  store: StoreClient;
  dist: DistEnv;
}

let generation = 0;
let ncclLib: Promise<Nccl> | undefined;

function openNccl(): Promise<Nccl> {
  ncclLib ??= Nccl.open().catch((e) => {
    ncclLib = undefined;
    throw e;
  });
  return ncclLib;
}

/** Join the job's world communicator (collective: every rank calls it, in the same order). */
export async function ncclWorld(opts: NcclOptions & { store?: StoreClient } = {}): Promise<World> {
  const dist = distEnv();
  if (!dist) throw new Error('not started by a launcher (RANK and WORLD_SIZE unset): run under weft launch');
  const rt = await openCuda({ device: dist.localRank });
  const nccl = await openNccl();
  const timeoutMs = opts.timeoutMs ?? defaultTimeoutMs();
  const store = opts.store ?? (await connectStore(dist, timeoutMs));
  const key = `weft/nccl/uid/${generation++}`;
  let id: Uint8Array;
  if (dist.rank === 0) {
    id = nccl.uniqueId();
    await store.set(key, id);
  } else {
    id = new Uint8Array(await store.get(key, timeoutMs));
  }
  const comm = await NcclComm.init(rt, nccl, dist.rank, dist.worldSize, id, { ...opts, timeoutMs });
  return { rt, nccl, comm, store, dist };
}
