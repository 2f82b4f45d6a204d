// Rank programs the Comm tests run on worker threads (imported by the workers, so no tests here).
import type { Comm } from '../../src/comm/comm.js';
import { CpuDevice } from '../../src/backends/cpu/device.js';
import { Mesh } from '../../src/mesh/mesh.js';
import { CommLog, CountingComm } from '../../src/strategy/accounting.js';
import type { DType } from '../../src/tensor/dtype.js';
import { getter, type HostTensor, hostZeros, setter } from '../../src/tensor/host.js';

function filled(dtype: DType, n: number, f: (i: number) => number, shared = true): HostTensor {
  const t = hostZeros(dtype, [n], shared);
  const set = setter(t);
  for (let i = 0; i < n; i++) set(i, f(i));
  return t;
}
const values = (t: HostTensor): number[] => {
  const g = getter(t);
  return Array.from({ length: t.data.length }, (_, i) => g(i));
};

/** Ring exchange plus three back-to-back messages to the same peer (FIFO matching). */
export async function exchange(
  comm: Comm,
  a: { dtype: DType; shared: boolean },
): Promise<{ ring: number[]; fifo: number[][] }> {
  const n = comm.size,
    me = comm.rank,
    next = (me + 1) % n,
    prev = (me + n - 1) % n;
  const send = filled(a.dtype, 3, (i) => me * 10 + i, a.shared),
    recv = hostZeros(a.dtype, [3], a.shared);
  const w = comm.sendRecv([{ send: { buf: send, peer: next }, recv: { buf: recv, peer: prev } }]);
  await w.wait();
  const outs = [0, 1, 2].map((j) => filled(a.dtype, 2, () => me * 16 + j, a.shared));
  const ins = [0, 1, 2].map(() => hostZeros(a.dtype, [2], a.shared));
  // three separate batches, waited in reverse order: matching must still be first-in first-out
  const works = outs.map((o, j) =>
    comm.sendRecv([{ send: { buf: o, peer: next } }, { recv: { buf: ins[j]!, peer: prev } }]),
  );
  for (const wk of [...works].reverse()) await wk.wait();
  return { ring: values(recv), fifo: ins.map(values) };
}

/** Every collective once, with rank-dependent (and uneven) data. */
export async function collectives(comm: Comm, a: { dtype: DType }): Promise<Record<string, number[] | number[][]>> {
  const n = comm.size,
    me = comm.rank;
  // all-to-all: rank me sends j + 1 copies of (me·10 + j) to rank j
  const send = Array.from({ length: n }, (_, j) => filled(a.dtype, j + 1, () => me * 10 + j));
  const recv = Array.from({ length: n }, () => hostZeros(a.dtype, [me + 1], true));
  await comm.allToAll(send, recv).wait();
  const g = hostZeros(a.dtype, [2 * n], true);
  await comm
    .allGather(
      filled(a.dtype, 2, (i) => me + i / 4),
      g,
    )
    .wait();
  const rsIn = filled(a.dtype, 3 * n, (i) => me + i),
    rsOut = hostZeros(a.dtype, [3], true);
  await comm.reduceScatter(rsIn, rsOut).wait();
  const ar = filled(a.dtype, 7, (i) => ((me + 1) * (i + 1)) / 8);
  await comm.allReduce(ar).wait();
  await comm.barrier();
  return { allToAll: recv.map(values), allGather: values(g), reduceScatter: values(rsOut), allReduce: values(ar) };
}

/** Nested splits; each sub-group sums its members' world ranks and reports its shape. */
export async function splits(
  comm: Comm,
): Promise<{ half: [number, number, number]; quarter: [number, number, number]; rev: [number, number] }> {
  const half = comm.split(comm.rank % 2);
  const x = filled('f64', 1, () => comm.rank);
  await half.allReduce(x).wait();
  const quarter = half.split(half.rank < half.size / 2 ? 0 : 1);
  const y = filled('f64', 1, () => comm.rank);
  await quarter.allReduce(y).wait();
  // one group, ordered by descending key: group rank = size − 1 − world rank
  const rev = comm.split(7, -comm.rank);
  const z = hostZeros('f64', [1], true);
  const peer = (rev.rank + 1) % rev.size;
  await rev
    .sendRecv([
      {
        send: { buf: filled('f64', 1, () => comm.rank), peer },
        recv: { buf: z, peer: (rev.rank + rev.size - 1) % rev.size },
      },
    ])
    .wait();
  return {
    half: [half.rank, half.size, x.data[0]!],
    quarter: [quarter.rank, quarter.size, y.data[0]!],
    rev: [rev.rank, z.data[0]!],
  };
}

/** Rank `a.rank` throws after `a.delayMs`; everyone else waits for a message from it. */
export async function throwing(comm: Comm, a: { rank: number; delayMs: number }): Promise<void> {
  if (comm.rank === a.rank) {
    await new Promise((r) => setTimeout(r, a.delayMs));
    throw new Error(`deliberate failure in rank ${comm.rank}`);
  }
  await comm.sendRecv([{ recv: { buf: hostZeros('f64', [1], true), peer: a.rank } }]).wait();
}

/** Rank 0 waits for a message rank 1 never sends. */
export async function neverSent(comm: Comm): Promise<void> {
  if (comm.rank === 0) await comm.sendRecv([{ recv: { buf: hostZeros('f64', [4], true), peer: 1 } }]).wait();
  else await new Promise((r) => setTimeout(r, 2000));
}

/** Rank 1 sends into a void: rank 0 never posts the recv. */
export async function neverReceived(comm: Comm): Promise<void> {
  if (comm.rank === 1) await comm.sendRecv([{ send: { buf: hostZeros('f64', [4], true), peer: 0 } }]).wait();
  else await new Promise((r) => setTimeout(r, 2000));
}

/** Rank 0 sends 4 elements, rank 1 expects 5. */
export async function mismatch(comm: Comm): Promise<void> {
  const w =
    comm.rank === 0
      ? comm.sendRecv([{ send: { buf: hostZeros('f64', [4], true), peer: 1 } }])
      : comm.sendRecv([{ recv: { buf: hostZeros('f64', [5], true), peer: 0 } }]);
  await w.wait();
}

/** Rank 1 never joins the split. */
export async function splitMissing(comm: Comm): Promise<void> {
  if (comm.rank !== 1) comm.split(0);
  else await new Promise((r) => setTimeout(r, 2000));
}

/** A worker that exits without an error. */
export async function exits(comm: Comm): Promise<void> {
  if (comm.rank === 1) process.exit(3);
  await new Promise((r) => setTimeout(r, 2000));
}

/** The accounting wrapper over every operation, with labelled steps. */
export async function counted(comm: Comm): Promise<ReturnType<CommLog['list']>> {
  const log = new CommLog();
  const c = new CountingComm(comm, log);
  const n = c.size,
    me = c.rank;
  log.step('p2p');
  await c
    .sendRecv([
      {
        send: { buf: hostZeros('f64', [5], true), peer: (me + 1) % n },
        recv: { buf: hostZeros('f64', [5], true), peer: (me + n - 1) % n },
      },
    ])
    .wait();
  log.step('a2a');
  await c
    .allToAll(
      Array.from({ length: n }, () => hostZeros('f32', [3], true)),
      Array.from({ length: n }, () => hostZeros('f32', [3], true)),
    )
    .wait();
  log.step('gather');
  await c.allGather(hostZeros('f64', [2], true), hostZeros('f64', [2 * n], true)).wait();
  log.step('rs');
  await c.reduceScatter(hostZeros('f64', [2 * n], true), hostZeros('f64', [2], true)).wait();
  log.step('ar');
  await c.allReduce(hostZeros('f64', [7], true)).wait();
  log.step('sub');
  const sub = c.split(me % 2);
  await sub.allGather(hostZeros('f64', [1], true), hostZeros('f64', [sub.size], true)).wait();
  return log.list();
}

/** `collectives` on the group along axis 'b' of a mesh [a: world / b, b] (a SubgroupComm over the world). */
export async function subgroupCollectives(
  comm: Comm,
  a: { dtype: DType; b: number },
): Promise<{ rank: number; size: number; res: Record<string, number[] | number[][]> }> {
  const mesh = new Mesh([
    { name: 'a', size: comm.size / a.b },
    { name: 'b', size: a.b },
  ]);
  const g = mesh.group(comm, 'b', new CpuDevice());
  const res = await collectives(g, a);
  await g.barrier();
  return { rank: g.rank, size: g.size, res };
}
