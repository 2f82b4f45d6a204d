// What a strategy sees: a Comm, a block kernel, a device for allocation and copies, the lowered
// mask and the shard map — nothing backend-specific, so the same code runs on worker threads and
// on GPUs with NCCL. Tensors are device tensors, touched only through Device ops and the kernel.
import type { Comm } from '../comm/comm.js';
import type { Device } from '../device/device.js';
import type { AttnGrads, AttnKernel } from '../kernel/kernel.js';
import type { MaskGrid } from '../mask/grid.js';
import type { ShardMap } from '../shard/shard.js';
import type { Tensor } from '../tensor/host.js';

/** Strategies name the step they are in; the accounting Comm files traffic under that name. */
export interface Trace {
  step(label: string): void;
}

export const NO_TRACE: Trace = { step() {} };

export interface StrategyCtx {
  /** the context-parallel group; rank r holds shard.positions(r) */
  comm: Comm;
  kernel: AttnKernel;
  device: Device;
  mask: MaskGrid;
  shard: ShardMap;
  scale: number;
  trace?: Trace;
}

export interface StrategyResult {
  /** [T_local, H, D] in the input dtype */
  out: Tensor;
  /** [H, T_local] in the accumulation type */
  lse: Tensor;
  /** gradients of the local shards, in the input dtype */
  backward(dout: Tensor): Promise<AttnGrads>;
}

/** q [T_local, H, D], k/v [T_local, Hkv, D]: the rank's shards. Collective: every rank calls it. */
export type Strategy = (ctx: StrategyCtx, q: Tensor, k: Tensor, v: Tensor) => Promise<StrategyResult>;
