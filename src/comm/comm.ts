// The communication seam: one process group, on CPU worker threads or on NCCL. Every operation
// starts at once and returns a Work to wait on later, so a strategy overlaps transfers with
// compute: start the ring step, compute on the block in hand, then wait.
import type { Tensor } from '../tensor/host.js';

export interface Work {
  wait(): Promise<void>;
}

/** One entry of a batched point-to-point exchange; peers are ranks of this group. */
export interface P2POp {
  send?: { buf: Tensor; peer: number };
  recv?: { buf: Tensor; peer: number };
}

export interface Comm {
  readonly rank: number;
  readonly size: number;
  /** Batched send/recv, started together (a ring step is one call). */
  sendRecv(ops: readonly P2POp[]): Work;
  /** send[j] goes to rank j; recv[j] comes from rank j. */
  allToAll(send: readonly Tensor[], recv: readonly Tensor[]): Work;
  /** recv is size × send, rank-major along the first dimension. */
  allGather(send: Tensor, recv: Tensor): Work;
  /** send is size × recv along the first dimension; rank r gets the sum of block r. */
  reduceScatter(send: Tensor, recv: Tensor): Work;
  /** buf ← sum over ranks, in place. */
  allReduce(buf: Tensor): Work;
  barrier(): Promise<void>;
  /**
   * A sub-group: ranks with the same `color` form one group, ordered by `key` (default: rank).
   * Collective: every rank of this group must call it, in the same order.
   */
  split(color: number, key?: number): Comm;
}

/** A Work that is already complete. */
export const DONE: Work = { wait: async () => {} };
