// The dry-run AttnKernel: computes nothing, counts the unmasked area of every call under the step
// the strategy named (Trace), and holds what the GPU kernel holds beside the strategy's tensors:
// its backward's f32 delta [H, Tq] (backends/cuda/kernel: weft_attn_delta), for the call's length.
import type { Device } from '../../device/device.js';
import type { AttnGrads, AttnKernel, AttnState, BackwardArgs, ForwardArgs } from '../../kernel/kernel.js';
import { viewArea } from '../../mask/view.js';
import type { Trace } from '../../strategy/types.js';

export interface DryKernelOptions {
  /** count each call's unmasked area (O(view rows) per call; off where only memory and traffic matter) */
  area?: boolean;
  /** hold the backward's delta while it runs, as the GPU kernel does */
  kernelTemps?: boolean;
}

export class DryKernel implements AttnKernel, Trace {
  /** forward area (query, key, query head triples) per step label, and calls */
  readonly steps = new Map<string, { area: number; forwardCalls: number; backwardCalls: number }>();
  private label = '';
  constructor(
    private readonly device: Device,
    private readonly opts: DryKernelOptions = {},
  ) {}

  step(label: string): void {
    this.label = label;
  }

  private at(): { area: number; forwardCalls: number; backwardCalls: number } {
    let s = this.steps.get(this.label);
    if (!s) this.steps.set(this.label, (s = { area: 0, forwardCalls: 0, backwardCalls: 0 }));
    return s;
  }

  forward(a: ForwardArgs): AttnState {
    if (!a.state) throw new Error('dry kernel: the strategies pass the running state');
    const s = this.at();
    s.forwardCalls++;
    if (this.opts.area) s.area += viewArea(a.view) * a.q.shape[1]!;
    return a.state;
  }

  backward(a: BackwardArgs): AttnGrads {
    const { dq, dk, dv } = a.into ?? {};
    if (!dq || !dk || !dv) throw new Error('dry kernel: the strategies pass dq, dk and dv to accumulate into');
    this.at().backwardCalls++;
    if (this.opts.kernelTemps) this.device.release(this.device.empty('f32', [a.q.shape[1]!, a.q.shape[0]!]));
    return { dq, dk, dv };
  }

  merge(): void {}
}
