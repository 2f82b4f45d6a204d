// Pricing a dispatch plan (src/varlen) with the calibrated model: per rank, the forward starts the
// K/V exchange, computes its own block meanwhile, then the received blocks (each merged into the
// running state); the backward computes the received blocks' gradients, returns them (f32) while
// its own block's backward runs, and adds them in. Kernel times come from the fitted curves
// (Rates.attnMs: keys per query row, block mask), transfers from the link model (links.ts): a
// rank's transfers share its port in each direction, NVLink inside a node, the network across.
// The layer ends when the slowest rank does, forward and backward alike.
import { bytesPerElement } from '../tensor/dtype.js';
import type { DispatchPlan } from '../varlen/dispatch.js';
import { type LinkClass, type Network, p2pMs } from './links.js';
import type { BlockMask, Rates } from './rates.js';

export interface VarlenDims {
  H: number;
  Hkv: number;
  D: number;
  dtype?: 'bf16' | 'f16';
}

export interface VarlenRankPrice {
  rank: number;
  fwdMs: number;
  bwdMs: number;
  computeMs: number;
  commMs: number;
  recvBytes: number;
  sendBytes: number;
}

export interface VarlenPrice {
  /** forward + backward of one attention layer, ms (slowest rank of each pass) */
  stepMs: number;
  fwdMs: number;
  bwdMs: number;
  /** forward + backward FLOPs (4·pairs·D·H forward, 2.5 × that backward) per GPU per second */
  tflopsPerGpu: number;
  /** bytes of K/V the forward moves, and of dK/dV the backward returns */
  fwdBytes: number;
  bwdBytes: number;
  ranks: VarlenRankPrice[];
}

/** Transfers of one rank in one direction, by link class: latency once, bytes at the port's rate. */
function portMs(net: Network, byClass: Record<LinkClass, number>): number {
  return Math.max(
    byClass.intra > 0 ? p2pMs(net, byClass.intra, 'intra') : 0,
    byClass.inter > 0 ? p2pMs(net, byClass.inter, 'inter') : 0,
  );
}

export function priceDispatch(
  plan: DispatchPlan,
  dims: VarlenDims,
  rates: Rates,
  net: Network,
  gpusPerNode: number,
): VarlenPrice {
  const { H, Hkv, D } = dims,
    e = bytesPerElement(dims.dtype ?? 'bf16');
  const N = plan.world,
    kvRow = 2 * Hkv * D * e,
    gradRow = 2 * Hkv * D * 4;
  const flops = (area: number): number => 4 * area * D * H;
  const mask: BlockMask = plan.masks.every((m) => m.kind === 'full') ? 'full' : 'causal';
  const cls = (a: number, b: number): LinkClass =>
    Math.floor(a / gpusPerNode) === Math.floor(b / gpusPerNode) ? 'intra' : 'inter';
  const zero = (): Record<LinkClass, number> => ({ intra: 0, inter: 0 });
  const fwdIn = Array.from({ length: N }, zero),
    fwdOut = Array.from({ length: N }, zero);
  const bwdIn = Array.from({ length: N }, zero),
    bwdOut = Array.from({ length: N }, zero);
  const remote = Array.from({ length: N }, () => ({ fwd: 0, bwd: 0 }));
  const senders: number[][] = Array.from({ length: N }, () => []);
  for (const t of plan.transfers) {
    const c = cls(t.from, t.to);
    fwdOut[t.from]![c] += t.rows * kvRow;
    fwdIn[t.to]![c] += t.rows * kvRow;
    bwdOut[t.to]![c] += t.rows * gradRow;
    bwdIn[t.from]![c] += t.rows * gradRow;
    const kbar = Math.max(1, Math.min(t.rows, t.area));
    // the merge touches the rows that see the block: at least area / keys of them
    const rows = Math.min(plan.ranks[t.to]!.tokens, Math.ceil(t.area / kbar));
    remote[t.to]!.fwd +=
      rates.attnMs('fwd', flops(t.area), kbar, D, mask) + rates.mergeMs(rows * H * D) + rates.stepOverheadMs();
    remote[t.to]!.bwd += rates.attnMs('bwd', flops(t.area), kbar, D, mask) + rates.stepOverheadMs();
    senders[t.to]!.push(t.from);
  }
  const sum = (r: Record<LinkClass, number>): number => r.intra + r.inter;
  const returnsTo: number[][] = Array.from({ length: N }, () => []);
  for (const t of plan.transfers) returnsTo[t.from]!.push(t.to);
  const ranks: VarlenRankPrice[] = plan.ranks.map((r) => {
    const kbar = r.tokens > 0 ? Math.max(1, r.localArea / r.tokens) : 1;
    const localFwd = rates.attnMs('fwd', flops(r.localArea), kbar, D, mask) + rates.stepOverheadMs();
    const localBwd = rates.attnMs('bwd', flops(r.localArea), kbar, D, mask) + rates.stepOverheadMs();
    const me = remote[r.rank]!;
    // a transfer ends when both ports are through: this rank's receiving one and its senders' sending ones
    const fwdComm = Math.max(0, portMs(net, fwdIn[r.rank]!), ...senders[r.rank]!.map((s) => portMs(net, fwdOut[s]!)));
    // the gradients of a rank's rows come back once each receiver has finished its received blocks
    const back = Math.max(
      0,
      portMs(net, bwdIn[r.rank]!),
      ...returnsTo[r.rank]!.map((to) => remote[to]!.bwd + portMs(net, bwdOut[to]!)),
    );
    return {
      rank: r.rank,
      fwdMs: Math.max(localFwd, fwdComm) + me.fwd,
      bwdMs: Math.max(me.bwd + localBwd, back) + rates.hbmMs(3 * sum(bwdIn[r.rank]!)), // spread, read and add the returned rows
      computeMs: localFwd + localBwd + me.fwd + me.bwd,
      commMs: fwdComm + back,
      recvBytes: sum(fwdIn[r.rank]!),
      sendBytes: sum(fwdOut[r.rank]!),
    };
  });
  const fwdMs = Math.max(...ranks.map((x) => x.fwdMs)),
    bwdMs = Math.max(...ranks.map((x) => x.bwdMs)),
    stepMs = fwdMs + bwdMs;
  const totalFlops = 3.5 * flops(plan.ranks.reduce((s, r) => s + r.area, 0));
  return {
    stepMs,
    fwdMs,
    bwdMs,
    tflopsPerGpu: totalFlops / (stepMs * 1e-3) / N / 1e12,
    fwdBytes: plan.transfers.reduce((s, t) => s + t.rows, 0) * kvRow,
    bwdBytes: plan.transfers.reduce((s, t) => s + t.rows, 0) * gradRow,
    ranks,
  };
}
