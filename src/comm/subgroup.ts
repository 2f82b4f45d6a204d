// A sub-group named by its members, run on the parent group's point-to-point transfers — as JAX's
// axis_index_groups run a collective over given groups of one communicator. A mesh knows its
// groups without asking anyone, so no communicator has to be formed: nothing to negotiate, no
// NCCL split (whose children hung on the H200 machine, docs/decisions.md), the same on every backend.
// Two ranks share at most one group of a mesh, so their transfers cannot be confused with
// another group's. Collectives are direct exchanges with every member; sums are taken in member
// order, so every member ends with the same bits.
import type { Device } from '../device/device.js';
import type { Tensor } from '../tensor/host.js';
import { type Comm, DONE, type P2POp, type Work } from './comm.js';

/** Copy all of src into dst at row `at` (first dimension; shapes otherwise equal). */
function copyRows(device: Device, src: Tensor, dst: Tensor, srcRow: number, dstRow: number, rows: number): void {
  device.copyBox(src, dst, { src: [srcRow, 0], dst: [dstRow, 0], size: [rows, src.shape[1] ?? 1] });
}

export class SubgroupComm implements Comm {
  readonly rank: number;
  readonly size: number;

  /** `members`: parent ranks in group-rank order; the parent's rank must be one of them. */
  constructor(
    readonly parent: Comm,
    readonly members: readonly number[],
    private readonly device: Device,
  ) {
    this.rank = members.indexOf(parent.rank);
    this.size = members.length;
    if (this.rank < 0) throw new Error(`subgroup [${members.join(', ')}] does not contain rank ${parent.rank}`);
    if (new Set(members).size !== members.length) throw new Error(`subgroup [${members.join(', ')}] repeats a rank`);
  }

  private peer(p: number): number {
    const r = this.members[p];
    if (r === undefined) throw new Error(`subgroup of ${this.size}: peer ${p} outside 0..${this.size - 1}`);
    return r;
  }

  sendRecv(ops: readonly P2POp[]): Work {
    return this.parent.sendRecv(
      ops.map((o) => ({
        send: o.send && { buf: o.send.buf, peer: this.peer(o.send.peer) },
        recv: o.recv && { buf: o.recv.buf, peer: this.peer(o.recv.peer) },
      })),
    );
  }

  /** Every other member's `outgoing(j)` into `incoming(j)`, as one batch; the own part is left to the caller. */
  private exchange(outgoing: (j: number) => Tensor, incoming: (j: number) => Tensor): Work {
    const ops: P2POp[] = [];
    for (let j = 0; j < this.size; j++)
      if (j !== this.rank) ops.push({ send: { buf: outgoing(j), peer: j }, recv: { buf: incoming(j), peer: j } });
    return ops.length ? this.sendRecv(ops) : DONE;
  }

  allToAll(send: readonly Tensor[], recv: readonly Tensor[]): Work {
    const me = send[this.rank]!;
    copyRows(this.device, me, recv[this.rank]!, 0, 0, me.shape[0]!);
    return this.exchange(
      (j) => send[j]!,
      (j) => recv[j]!,
    );
  }

  allGather(send: Tensor, recv: Tensor): Work {
    const n = send.shape[0]!;
    const parts = Array.from({ length: this.size }, (_, j) =>
      j === this.rank ? send : this.device.empty(send.dtype, send.shape),
    );
    const work = this.exchange(
      () => send,
      (j) => parts[j]!,
    );
    return {
      wait: async () => {
        await work.wait();
        parts.forEach((p, j) => copyRows(this.device, p, recv, 0, j * n, n));
      },
    };
  }

  reduceScatter(send: Tensor, recv: Tensor): Work {
    const n = recv.shape[0]!;
    const block = (j: number): Tensor => {
      const b = this.device.empty(send.dtype, recv.shape);
      copyRows(this.device, send, b, j * n, 0, n);
      return b;
    };
    const out = Array.from({ length: this.size }, (_, j) => (j === this.rank ? null : block(j)));
    const parts = Array.from({ length: this.size }, (_, j) =>
      j === this.rank ? block(j) : this.device.empty(send.dtype, recv.shape),
    );
    const work = this.exchange(
      (j) => out[j]!,
      (j) => parts[j]!,
    );
    return {
      wait: async () => {
        await work.wait();
        this.sumInto(recv, parts);
      },
    };
  }

  allReduce(buf: Tensor): Work {
    const mine = this.device.empty(buf.dtype, buf.shape);
    copyRows(this.device, buf, mine, 0, 0, buf.shape[0]!);
    const parts = Array.from({ length: this.size }, (_, j) =>
      j === this.rank ? mine : this.device.empty(buf.dtype, buf.shape),
    );
    const work = this.exchange(
      () => mine,
      (j) => parts[j]!,
    );
    return {
      wait: async () => {
        await work.wait();
        this.sumInto(buf, parts);
      },
    };
  }

  /** dst ← parts[0] + parts[1] + …, in member order. */
  private sumInto(dst: Tensor, parts: readonly Tensor[]): void {
    copyRows(this.device, parts[0]!, dst, 0, 0, dst.shape[0]!);
    for (const p of parts.slice(1)) this.device.add(dst, p);
  }

  async barrier(): Promise<void> {
    await this.allReduce(this.device.zeros('f32', [1])).wait();
    await this.device.synchronize();
  }

  split(): Comm {
    throw new Error('a subgroup cannot be split further: make the group from the mesh over the parent instead');
  }
}
