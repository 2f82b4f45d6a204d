// Per-rank timelines of a GPU run: CUDA events around every kernel call (compute stream) and
// every communication (comm stream), turned into spans in milliseconds from the iteration start,
// and written as Chrome trace event JSON (io/trace.ts): one process per rank, one thread per stream.
import type { Comm, P2POp, Work } from '../comm/comm.js';
import { type ChromeTrace, chromeTrace } from '../io/trace.js';
import type { CudaRuntime } from '../backends/cuda/runtime/runtime.js';
import type { CudaEvent } from '../backends/cuda/runtime/stream.js';
import type { AttnGrads, AttnKernel, AttnState, BackwardArgs, ForwardArgs } from '../kernel/kernel.js';
import type { Tensor } from '../tensor/host.js';
import type { Trace } from '../strategy/types.js';

export interface StreamSpan {
  stream: 'compute' | 'comm';
  label: string;
  start: number;
  end: number;
}

/** The trace of one iteration: each rank's spans as a process with a compute and a comm thread. */
export function runTrace(
  ranks: readonly { rank: number; spans: readonly StreamSpan[] }[],
  about?: Record<string, unknown>,
): ChromeTrace {
  const spans = ranks.flatMap((r) =>
    r.spans.map((s) => ({ pid: r.rank, stream: s.stream, name: s.label || s.stream, startMs: s.start, endMs: s.end })),
  );
  return chromeTrace(
    ranks.map((r) => ({ pid: r.rank, name: `rank ${r.rank}` })),
    ['compute', 'comm'],
    spans,
    about,
  );
}

interface Pending {
  stream: 'compute' | 'comm';
  label: string;
  s: CudaEvent;
  e: CudaEvent;
}

/** Collects spans while `on`; `label` is the strategy's current step (it calls step()). */
export class Timeline implements Trace {
  on = false;
  private label = '';
  private pending: Pending[] = [];
  constructor(private readonly rt: CudaRuntime) {}

  step(label: string): void {
    this.label = label;
  }

  /** Bracket `body` with timing events on `stream` (for comm: after the comm stream has caught up with compute, as NCCL calls do). */
  around<T>(stream: 'compute' | 'comm', label: string, body: () => T): T {
    if (!this.on) return body();
    const rt = this.rt,
      st = stream === 'compute' ? rt.compute : rt.comm;
    if (stream === 'comm') {
      const ready = rt.borrowEvent().record(rt.compute);
      rt.comm.wait(ready);
      rt.releaseEvent(ready);
    }
    const s = rt.event(true).record(st);
    const out = body();
    this.pending.push({ stream, label: label || this.label, s, e: rt.event(true).record(st) });
    return out;
  }

  /** Spans relative to `origin` (recorded on the compute stream); call after the work is done. */
  collect(origin: CudaEvent): StreamSpan[] {
    const spans = this.pending.map((p) => ({
      stream: p.stream,
      label: p.label,
      start: p.s.since(origin),
      end: p.e.since(origin),
    }));
    for (const p of this.pending) {
      p.s.destroy();
      p.e.destroy();
    }
    this.pending = [];
    return spans;
  }
}

export class TimedKernel implements AttnKernel {
  constructor(
    private readonly inner: AttnKernel,
    private readonly tl: Timeline,
  ) {}
  forward(a: ForwardArgs): AttnState {
    return this.tl.around('compute', '', () => this.inner.forward(a));
  }
  backward(a: BackwardArgs): AttnGrads {
    return this.tl.around('compute', '', () => this.inner.backward(a));
  }
  merge(state: AttnState, part: AttnState): void {
    this.tl.around('compute', 'merge', () => this.inner.merge(state, part));
  }
}

export class TimedComm implements Comm {
  constructor(
    private readonly inner: Comm,
    private readonly tl: Timeline,
  ) {}
  get rank(): number {
    return this.inner.rank;
  }
  get size(): number {
    return this.inner.size;
  }
  sendRecv(ops: readonly P2POp[]): Work {
    return this.tl.around('comm', '', () => this.inner.sendRecv(ops));
  }
  allToAll(send: readonly Tensor[], recv: readonly Tensor[]): Work {
    return this.tl.around('comm', '', () => this.inner.allToAll(send, recv));
  }
  allGather(send: Tensor, recv: Tensor): Work {
    return this.tl.around('comm', '', () => this.inner.allGather(send, recv));
  }
  reduceScatter(send: Tensor, recv: Tensor): Work {
    return this.tl.around('comm', '', () => this.inner.reduceScatter(send, recv));
  }
  allReduce(buf: Tensor): Work {
    return this.tl.around('comm', '', () => this.inner.allReduce(buf));
  }
  barrier(): Promise<void> {
    return this.inner.barrier();
  }
  split(color: number, key?: number): Comm {
    return new TimedComm(this.inner.split(color, key), this.tl);
  }
}
