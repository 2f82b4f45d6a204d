// Sub-groups made once: strategies ask for their mesh's groups on every call, which is free on
// worker threads but costs an ncclCommSplit (milliseconds, and a collective) on GPUs. Every rank
// splits in the same order, so caching by (color, key) keeps the ranks consistent.
import type { Comm, P2POp, Work } from './comm.js';
import type { Tensor } from '../tensor/host.js';

export class MemoComm implements Comm {
  private readonly groups = new Map<string, MemoComm>();
  constructor(readonly inner: Comm) {}
  get rank(): number { return this.inner.rank; }
  get size(): number { return this.inner.size; }
  sendRecv(ops: readonly P2POp[]): Work { return this.inner.sendRecv(ops); }
  allToAll(send: readonly Tensor[], recv: readonly Tensor[]): Work { return this.inner.allToAll(send, recv); }
  allGather(send: Tensor, recv: Tensor): Work { return this.inner.allGather(send, recv); }
  reduceScatter(send: Tensor, recv: Tensor): Work { return this.inner.reduceScatter(send, recv); }
  allReduce(buf: Tensor): Work { return this.inner.allReduce(buf); }
  barrier(): Promise<void> { return this.inner.barrier(); }
  split(color: number, key: number = this.rank): Comm {
    const id = `${color}/${key}`;
    let g = this.groups.get(id);
    if (!g) { g = new MemoComm(this.inner.split(color, key)); this.groups.set(id, g); }
    return g;
  }
}
