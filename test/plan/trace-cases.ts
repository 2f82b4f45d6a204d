// The worker rank test/plan/trace.test.ts runs: a strategy's forward and backward on CPU ranks
// with its transfers and kernel calls recorded into a RunTrace (TraceComm around the worker
// Comm, a kernel wrapper that records each call before the CPU kernel computes it), returned in
// the form trace.test.ts compares with the dry run's. Not a test itself.
import type { Comm } from '../../src/comm/comm.js';
import { RunTrace, TraceComm, type TraceEvent } from '../../src/backends/dry/index.js';
import { CpuDevice } from '../../src/backends/cpu/device.js';
import { CpuKernel } from '../../src/backends/cpu/kernel.js';
import type { AttnGrads, AttnKernel, AttnState, BackwardArgs, ForwardArgs } from '../../src/kernel/kernel.js';
import { MaskGrid } from '../../src/mask/grid.js';
import type { MaskSpec } from '../../src/mask/spec.js';
import { resolveLayout } from '../../src/run/layout.js';
import { strategyFor } from '../../src/run/strategies.js';
import { ShardMap } from '../../src/shard/shard.js';
import { randn, Rng } from '../../src/tensor/random.js';

/** A traced event as compared: transfers (operation, peer, bytes), kernel calls (pass, area), merges (elements). */
export type Seen = [label: string, what: string, a: number, b: number];

/** Transfers, calls and kernel merges of a trace, in order (Device adds are the dry device's alone). */
export function seen(events: readonly TraceEvent[]): Seen[] {
  const out: Seen[] = [];
  for (const e of events) {
    if (e.kind === 'transfer') out.push([e.label, e.op, e.peer, e.bytes]);
    else if (e.kind === 'call') out.push([e.label, e.pass, e.area, 0]);
    else if (e.kind === 'fold' && e.how === 'merge') out.push([e.label, 'merge', e.elems, 0]);
  }
  return out;
}

class TracingKernel implements AttnKernel {
  constructor(
    readonly inner: AttnKernel,
    readonly trace: RunTrace,
  ) {}
  forward(a: ForwardArgs): AttnState {
    this.trace.call('fwd', a.view, a.q.shape[1]!, []);
    return this.inner.forward(a);
  }
  backward(a: BackwardArgs): AttnGrads {
    this.trace.call('bwd', a.view, a.q.shape[1]!, []);
    return this.inner.backward(a);
  }
  merge(state: AttnState, part: AttnState): void {
    this.trace.fold('merge', part.out);
    this.inner.merge(state, part);
  }
}

export interface TraceTask {
  layout: ReturnType<typeof resolveLayout>;
  S: number;
  H: number;
  Hkv: number;
  D: number;
  mask: MaskSpec;
}

export async function tracedRank(comm: Comm, tasks: readonly TraceTask[]): Promise<Seen[][]> {
  const out: Seen[][] = [];
  for (const t of tasks) {
    const trace = new RunTrace(true);
    const device = new CpuDevice(true);
    const shard = ShardMap.build(t.layout.shard, t.S, comm.size);
    const T = shard.length(comm.rank),
      rng = new Rng(5 + comm.rank);
    const x = (h: number) => randn(rng, 'f32', [T, h, t.D], 1, true);
    const ctx = {
      comm: new TraceComm(comm, trace),
      kernel: new TracingKernel(new CpuKernel(), trace),
      device,
      mask: MaskGrid.build(t.mask, t.S),
      shard,
      scale: 0.5,
      trace,
    };
    const res = await strategyFor(t.layout)(ctx, x(t.H), x(t.Hkv), x(t.Hkv));
    await res.backward(x(t.H));
    out.push(seen(trace.events));
  }
  return out;
}
