// LocalComm: one process group of worker ranks (the world, or a sub-group from split). Ranks in
// the API are group ranks; the transport speaks global ranks. Collectives are built from the
// transport's point-to-point transfers on their own channel:
//   allToAll / allGather — direct exchange with every peer;
//   reduceScatter        — every rank sends block j to rank j, which sums the blocks in rank order;
//   allReduce            — reduce-scatter then all-gather over evenSplit chunks (the ring volume,
//                          2(n−1)/n of the buffer per rank), summed in rank order, so every rank
//                          ends with bit-identical values.
import type { Comm, P2POp, Work } from '../../../comm/comm.js';
import { evenSplit } from '../../../shard/split.js';
import { getter, type HostData, type HostTensor, hostZeros, setter, type Tensor } from '../../../tensor/host.js';
import { SplitBoard, tagOf } from './board.js';
import { type Channel, type Pending, type Transport, waitFor } from './transport.js';

function data(t: Tensor, op: string): HostData {
  if (!('data' in t)) throw new Error(`${op}: local comm needs host tensors`);
  return (t as HostTensor).data;
}

export class LocalComm implements Comm {
  private splits = 0;

  constructor(
    private readonly t: Transport,
    private readonly board: SplitBoard,
    readonly id: string,
    /** global rank of each group rank */
    readonly members: readonly number[],
    readonly rank: number,
  ) {}

  get size(): number {
    return this.members.length;
  }

  private peer(p: number, op: string): number {
    if (!Number.isInteger(p) || p < 0 || p >= this.size)
      throw new Error(`${op}: peer ${p} outside group ${this.id} of ${this.size} ranks`);
    return this.members[p]!;
  }

  private send(ch: Channel, p: number, d: HostData, op: string): Pending {
    return this.t.send(this.id, ch, this.peer(p, op), d, this.label(op));
  }

  private recv(ch: Channel, p: number, d: HostData, op: string): Pending {
    return this.t.recv(this.id, ch, this.peer(p, op), d, this.label(op));
  }

  private label(op: string): string {
    return this.id === 'world' ? op : `${op} in group ${this.id}`;
  }

  /** A Work over transfers already started. */
  private started(op: string, parts: readonly Pending[]): Work {
    const all = Promise.all(parts.map((p) => p.promise)).then(() => {});
    return { wait: () => waitFor(this.label(op), () => parts, all, this.t.timeoutMs) };
  }

  /** A Work over transfers that a phase function starts (it may start more as it goes). */
  private work(op: string, run: (parts: Pending[]) => Promise<void>): Work {
    const parts: Pending[] = [];
    const all = run(parts);
    all.catch(() => {}); // failures surface through wait(); never as an unhandled rejection
    return { wait: () => waitFor(this.label(op), () => parts, all, this.t.timeoutMs) };
  }

  sendRecv(ops: readonly P2POp[]): Work {
    const parts: Pending[] = [];
    for (const o of ops) {
      if (o.send) parts.push(this.send('p2p', o.send.peer, data(o.send.buf, 'sendRecv'), 'sendRecv'));
      if (o.recv) parts.push(this.recv('p2p', o.recv.peer, data(o.recv.buf, 'sendRecv'), 'sendRecv'));
    }
    return this.started('sendRecv', parts);
  }

  allToAll(send: readonly Tensor[], recv: readonly Tensor[]): Work {
    if (send.length !== this.size || recv.length !== this.size)
      throw new Error(`allToAll: ${send.length} send and ${recv.length} recv buffers for ${this.size} ranks`);
    return this.exchange(
      'allToAll',
      (j) => data(send[j]!, 'allToAll'),
      (j) => data(recv[j]!, 'allToAll'),
    );
  }

  allGather(sendT: Tensor, recvT: Tensor): Work {
    const s = data(sendT, 'allGather'),
      r = data(recvT, 'allGather'),
      n = s.length;
    if (r.length !== n * this.size)
      throw new Error(`allGather: recv holds ${r.length} elements, not ${this.size} × ${n}`);
    return this.exchange(
      'allGather',
      () => s,
      (j) => r.subarray(j * n, (j + 1) * n),
    );
  }

  /** send(j) goes to rank j, recv(j) comes from rank j; the own block is copied locally. */
  private exchange(op: string, send: (j: number) => HostData, recv: (j: number) => HostData): Work {
    const parts: Pending[] = [];
    for (let j = 0; j < this.size; j++) {
      if (j === this.rank) {
        recv(j).set(send(j) as never);
        continue;
      }
      parts.push(this.send('coll', j, send(j), op), this.recv('coll', j, recv(j), op));
    }
    return this.started(op, parts);
  }

  reduceScatter(sendT: Tensor, recvT: Tensor): Work {
    const s = data(sendT, 'reduceScatter'),
      r = data(recvT, 'reduceScatter'),
      n = r.length;
    if (s.length !== n * this.size)
      throw new Error(`reduceScatter: send holds ${s.length} elements, not ${this.size} × ${n}`);
    const bounds = Int32Array.from({ length: this.size + 1 }, (_, j) => j * n);
    return this.work('reduceScatter', (parts) => this.reduceChunks('reduceScatter', recvT.dtype, s, bounds, r, parts));
  }

  allReduce(bufT: Tensor): Work {
    const b = data(bufT, 'allReduce');
    const bounds = evenSplit(b.length, this.size);
    const chunk = (j: number): HostData => b.subarray(bounds[j]!, bounds[j + 1]!);
    return this.work('allReduce', async (parts) => {
      const mine = hostZeros(bufT.dtype, [bounds[this.rank + 1]! - bounds[this.rank]!]);
      await this.reduceChunks('allReduce', bufT.dtype, b, bounds, mine.data, parts);
      chunk(this.rank).set(mine.data as never);
      const gather: Pending[] = [];
      for (let j = 0; j < this.size; j++) {
        if (j === this.rank) continue;
        gather.push(this.send('coll', j, chunk(this.rank), 'allReduce'), this.recv('coll', j, chunk(j), 'allReduce'));
      }
      parts.push(...gather);
      await Promise.all(gather.map((p) => p.promise));
    });
  }

  /**
   * Send chunk j of `src` to rank j; sum the chunks every rank sends here, in rank order, into
   * `dst`. Resolves once the sum is written and every own send has been taken.
   */
  private async reduceChunks(
    op: string,
    dtype: HostTensor['dtype'],
    src: HostData,
    bounds: Int32Array,
    dst: HostData,
    parts: Pending[],
  ): Promise<void> {
    const me = this.rank,
      len = bounds[me + 1]! - bounds[me]!;
    const blocks: HostTensor[] = [];
    const mine: Pending[] = [];
    for (let j = 0; j < this.size; j++) {
      if (j === me) {
        blocks.push({ dtype, shape: [len], data: src.subarray(bounds[me]!, bounds[me + 1]!) });
        continue;
      }
      const blk = hostZeros(dtype, [len]);
      blocks.push(blk);
      mine.push(this.send('coll', j, src.subarray(bounds[j]!, bounds[j + 1]!), op), this.recv('coll', j, blk.data, op));
    }
    parts.push(...mine);
    await Promise.all(mine.map((p) => p.promise));
    const sum = new Float64Array(len);
    for (const blk of blocks) {
      const get = getter(blk);
      for (let i = 0; i < len; i++) sum[i] = sum[i]! + get(i);
    }
    const set = setter({ dtype, shape: [len], data: dst });
    for (let i = 0; i < len; i++) set(i, sum[i]!);
  }

  async barrier(): Promise<void> {
    const none = new Float64Array(0);
    const parts: Pending[] = [];
    for (let j = 0; j < this.size; j++) {
      if (j !== this.rank)
        parts.push(this.send('coll', j, none, 'barrier'), this.recv('coll', j, new Float64Array(0), 'barrier'));
    }
    await this.started('barrier', parts).wait();
  }

  split(color: number, key: number = this.rank): Comm {
    if (
      !Number.isInteger(color) ||
      !Number.isInteger(key) ||
      Math.abs(color) > 2 ** 31 - 1 ||
      Math.abs(key) > 2 ** 31 - 1
    ) {
      throw new Error(`split: color ${color} and key ${key} must be 32-bit integers`);
    }
    const seq = this.splits++;
    const tag = tagOf(`${this.id}#${seq}`);
    this.board.publish(this.members[this.rank]!, tag, color, key);
    const mates: { rank: number; key: number }[] = [];
    for (let j = 0; j < this.size; j++) {
      const [c, k] = j === this.rank ? [color, key] : this.board.lookup(this.members[j]!, tag, this.label('split'));
      if (c === color) mates.push({ rank: j, key: k });
    }
    mates.sort((a, b) => a.key - b.key || a.rank - b.rank);
    const id = `${this.id === 'world' ? '' : `${this.id}/`}${seq}:${color}`;
    return new LocalComm(
      this.t,
      this.board,
      id,
      mates.map((m) => this.members[m.rank]!),
      mates.findIndex((m) => m.rank === this.rank),
    );
  }
}
