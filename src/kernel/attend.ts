// Attention over a whole sequence on one rank: one kernel call for the forward, one for the
// backward, with every token at its own position.
import { MaskGrid } from '../mask/grid.js';
import type { MaskSpec } from '../mask/spec.js';
import { maskView } from '../mask/view.js';
import type { HostTensor } from '../tensor/host.js';
import { checkFinite, type NonFinite } from './finite.js';
import type { AttnKernel } from './kernel.js';

export interface Attended {
  out: HostTensor;
  lse: HostTensor;
  dq?: HostTensor;
  dk?: HostTensor;
  dv?: HostTensor;
}

export interface AttendOptions {
  /** what a NaN or ±∞ among the inputs does (finite.ts); default 'error' */
  nonFinite?: NonFinite;
}

export function attendSingle(
  kernel: AttnKernel,
  q: HostTensor,
  k: HostTensor,
  v: HostTensor,
  mask: MaskSpec | MaskGrid,
  scale: number,
  dout?: HostTensor,
  opts: AttendOptions = {},
): Attended {
  if ((opts.nonFinite ?? 'error') === 'error') {
    for (const [name, t] of [
      ['q', q],
      ['k', k],
      ['v', v],
      ['dout', dout],
    ] as const)
      if (t) checkFinite(name, t);
  }
  const T = q.shape[0]!;
  const grid = mask instanceof MaskGrid ? mask : MaskGrid.build(mask, T);
  const pos = Int32Array.from({ length: T }, (_, i) => i);
  const view = maskView(grid, pos, pos);
  const { out, lse } = kernel.forward({ q, k, v, view, scale });
  const r: Attended = { out: out as HostTensor, lse: lse as HostTensor };
  if (dout) {
    const g = kernel.backward({ q, k, v, out, lse, dout, view, scale });
    r.dq = g.dq as HostTensor;
    r.dk = g.dk as HostTensor;
    r.dv = g.dv as HostTensor;
  }
  return r;
}
