// The dry-run AttnKernel: computes nothing; records every call (and every merge of a partial
// result) into a RunTrace when given one, with the call's unmasked area when the trace counts
// it; and holds what the GPU kernel holds beside the strategy's tensors: its backward's f32
// delta [H, Tq] (backends/cuda/kernel: weft_attn_delta), for the call's length.
import type { Device } from '../../device/device.js';
import type { AttnGrads, AttnKernel, AttnState, BackwardArgs, ForwardArgs } from '../../kernel/kernel.js';
import type { RunTrace } from './trace.js';

export interface DryKernelOptions {
  /** where calls are recorded */
  trace?: RunTrace;
  /** hold the backward's delta while it runs, as the GPU kernel does */
  kernelTemps?: boolean;
}

export class DryKernel implements AttnKernel {
  constructor(
    private readonly device: Device,
    private readonly opts: DryKernelOptions = {},
  ) {}

  forward(a: ForwardArgs): AttnState {
    if (!a.state) throw new Error('dry kernel: the strategies pass the running state');
    this.opts.trace?.call('fwd', a.view, a.q.shape[1]!, [a.q, a.k, a.v]);
    return a.state;
  }

  backward(a: BackwardArgs): AttnGrads {
    const { dq, dk, dv } = a.into ?? {};
    if (!dq || !dk || !dv) throw new Error('dry kernel: the strategies pass dq, dk and dv to accumulate into');
    this.opts.trace?.call('bwd', a.view, a.q.shape[1]!, [a.q, a.k, a.v, a.out, a.lse, a.dout]);
    if (this.opts.kernelTemps) this.device.release(this.device.empty('f32', [a.q.shape[1]!, a.q.shape[0]!]));
    return { dq, dk, dv };
  }

  merge(_state: AttnState, part: AttnState): void {
    this.opts.trace?.fold('merge', part.out);
  }
}
