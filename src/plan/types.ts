// The planner's shared types: what a config says (model, workload, cluster, candidates) and the
// hardware it names (and the list of modes). Nothing here imports a planner module but model.ts, so every planner module can import them without a cycle.
import type { Placement } from '../mesh/mesh.js';
import type { MaskSpec } from '../mask/spec.js';
import type { ShardKind } from '../shard/shard.js';
import type { StrategyName } from '../strategy/names.js';
import type { ModelSpec } from './model.js';

export type { Placement } from '../mesh/mesh.js';

export type Mode = 'training' | 'attention' | 'attention-forward' | 'prefill';
export const MODES: readonly Mode[] = ['training', 'attention', 'attention-forward', 'prefill'];

/**
 * What a layout runs: one of the strategies (strategy/names.ts), or `local` — no context
 * parallelism, each rank (or data-parallel replica) attending its whole sequence with the kernel
 * alone, the baseline the context-parallel layouts are compared with.
 */
export type PlanStrategy = StrategyName | 'local';

export type GpuClass = 'hopper' | 'ampere' | 'ada';

export interface LinkSpec {
  /** nominal bandwidth per GPU per direction, GB/s (1e9 bytes) */
  GBps: number;
  latencyUs: number;
}

export interface GpuSpec {
  name: string;
  class: GpuClass;
  /** dense bf16 tensor-core peak, TFLOP/s */
  bf16Tflops: number;
  /** memory a process can allocate, GiB */
  memGiB: number;
  hbmTBs: number;
  /** the GPU-to-GPU link inside a node (NVLink, or PCIe for PCIe cards) */
  intraNode: LinkSpec;
  /** PCIe cards: the tree of switches and sockets inside a node (NVLink parts reach every peer directly) */
  pcie?: PcieTree;
}

export interface PcieTree {
  gpusPerSwitch: number;
  switchesPerSocket: number;
  /** a switch's uplink to the root complex, GB/s per direction (nominal) */
  uplinkGBps: number;
  /** bytes per second a socket's root complex forwards of all-to-all traffic between its switches and to the other socket, GB/s in all */
  rootComplexGBps: number;
  source: string;
}

export interface Cluster {
  nodes: number;
  gpusPerNode: number;
  world: number;
  gpu: GpuSpec;
  intraNode: LinkSpec;
  interNode: LinkSpec;
  /** PCIe cards: the switches and sockets inside a node (docs/plan.md) */
  pcie?: PcieTree;
}

/** A layout as the user may write it: unset fields are derived (dp fills the world, strategy from degrees). */
export interface CandidateSpec {
  tp?: number;
  ulysses?: number;
  ring?: number;
  dp?: number;
  strategy?: PlanStrategy;
  placement?: Placement;
  shard?: ShardKind;
  inner?: number;
}

export interface PlanConfig {
  model: ModelSpec;
  mode: Mode;
  seqLen: number;
  batchSeqs: number;
  microBatchSeqs: number;
  maskText: string;
  mask: MaskSpec;
  cuSeqlens?: number[];
  cluster: Cluster;
  candidates?: CandidateSpec[];
  /** ZeRO stage over data × sequence ranks: 1 shards optimizer state, 2 also gradients, 3 also weights */
  zero: 0 | 1 | 2 | 3;
  recompute: 'none' | 'full';
  /** bf16 mixed precision (bf16 weights and activations, f32 master weights and Adam state), or fp32 throughout */
  precision: 'bf16' | 'fp32';
  kernel?: string;
  implementation: string;
}
