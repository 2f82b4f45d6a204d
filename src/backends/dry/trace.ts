// What a run did, in the order it did it, under the step the strategy named (Trace): every
// transfer a rank started (operation, peer, bytes, the tensor), every kernel call (pass, view,
// area) and every fold of a partial result (kernel merge, Device add). The dry-run backend
// records into it, and TraceComm records any Comm's transfers the same way, so a run on CPU
// ranks and a dry run compare step by step; the planner reads its ring schedules from it.
import type { Comm, P2POp, Work } from '../../comm/comm.js';
import { type MaskView, viewArea } from '../../mask/view.js';
import type { Trace } from '../../strategy/types.js';
import { bytesPerElement } from '../../tensor/dtype.js';
import { numel, type Tensor } from '../../tensor/host.js';

export type TraceOp = 'send' | 'recv' | 'all-to-all' | 'all-gather' | 'reduce-scatter' | 'all-reduce';

export type TraceEvent =
  /**
   * `peer`: a rank of the comm traced (−1 for collectives); `bytes`: of the tensor (collectives:
   * each send buffer); `batch`: the call it was started by, whose wait is recorded
   */
  | { kind: 'transfer'; label: string; op: TraceOp; peer: number; bytes: number; tensor: Tensor; batch: number }
  /** the strategy waits for a batch of transfers */
  | { kind: 'wait'; label: string; batch: number }
  /** `area`: unmasked (query, key, query head) triples, when counted (NaN otherwise) */
  | { kind: 'call'; label: string; pass: 'fwd' | 'bwd'; view: MaskView; area: number }
  /** a partial result folded in: `elems` of the output */
  | { kind: 'fold'; label: string; how: 'merge' | 'add'; elems: number };

function tensorBytes(t: Tensor): number {
  return numel(t.shape) * bytesPerElement(t.dtype);
}

export class RunTrace implements Trace {
  readonly events: TraceEvent[] = [];
  /** tensors a kernel read as q, k, v, out, lse or dout (not a state or gradient it wrote) */
  readonly operands = new Set<Tensor>();
  private label = '';
  private batches = 0;
  constructor(readonly countArea = false) {}

  step(label: string): void {
    this.label = label;
  }
  /** A batch of transfers started together: its Work records when it is waited for. */
  batch(record: (add: (op: TraceOp, peer: number, tensor: Tensor) => void) => void, work: Work): Work {
    const batch = this.batches++,
      label = this.label;
    record((op, peer, tensor) =>
      this.events.push({ kind: 'transfer', label, op, peer, bytes: tensorBytes(tensor), tensor, batch }),
    );
    return {
      wait: () => {
        this.events.push({ kind: 'wait', label: this.label, batch });
        return work.wait();
      },
    };
  }
  call(pass: 'fwd' | 'bwd', view: MaskView, heads: number, operands: readonly Tensor[]): void {
    for (const t of operands) this.operands.add(t);
    const area = this.countArea ? viewArea(view) * heads : NaN;
    this.events.push({ kind: 'call', label: this.label, pass, view, area });
  }
  fold(how: 'merge' | 'add', out: Tensor): void {
    this.events.push({ kind: 'fold', label: this.label, how, elems: numel(out.shape) });
  }
}

/** A Comm that records every transfer it starts into a RunTrace, then hands it on. */
export class TraceComm implements Comm {
  constructor(
    readonly inner: Comm,
    readonly trace: RunTrace,
  ) {}
  get rank(): number {
    return this.inner.rank;
  }
  get size(): number {
    return this.inner.size;
  }
  sendRecv(ops: readonly P2POp[]): Work {
    return this.trace.batch((add) => {
      for (const o of ops) {
        if (o.send) add('send', o.send.peer, o.send.buf);
        if (o.recv) add('recv', o.recv.peer, o.recv.buf);
      }
    }, this.inner.sendRecv(ops));
  }
  allToAll(send: readonly Tensor[], recv: readonly Tensor[]): Work {
    return this.trace.batch((add) => send.forEach((t) => add('all-to-all', -1, t)), this.inner.allToAll(send, recv));
  }
  allGather(send: Tensor, recv: Tensor): Work {
    return this.trace.batch((add) => add('all-gather', -1, send), this.inner.allGather(send, recv));
  }
  reduceScatter(send: Tensor, recv: Tensor): Work {
    return this.trace.batch((add) => add('reduce-scatter', -1, send), this.inner.reduceScatter(send, recv));
  }
  allReduce(buf: Tensor): Work {
    return this.trace.batch((add) => add('all-reduce', -1, buf), this.inner.allReduce(buf));
  }
  barrier(): Promise<void> {
    return this.inner.barrier();
  }
  split(color: number, key?: number): Comm {
    return new TraceComm(this.inner.split(color, key), this.trace);
  }
}
