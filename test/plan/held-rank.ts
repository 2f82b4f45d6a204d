// A worker rank for test/plan/held.test.ts: runs a strategy's forward and backward on a CPU
// device metered by MeteredDevice, with inputs of any dtype (bf16 too, which runBatch refuses:
// its casts to and from the f32 accumulation type are the GPU's path), and returns the peak of
// the bytes held after the forward and after the backward, and what is held at the end. Not a
// test itself.
import type { Comm } from '../../src/comm/comm.js';
import { CpuDevice } from '../../src/device/cpu.js';
import { CpuKernel } from '../../src/kernel/cpu.js';
import { MaskGrid } from '../../src/mask/grid.js';
import type { MaskSpec } from '../../src/mask/spec.js';
import type { ResolvedLayout } from '../../src/run/layout.js';
import { strategyFor } from '../../src/run/strategies.js';
import { ShardMap } from '../../src/shard/shard.js';
import { type DeviceTraffic, MeteredDevice } from '../../src/strategy/accounting.js';
import type { DType } from '../../src/tensor/dtype.js';
import { randn, Rng } from '../../src/tensor/random.js';

export interface HeldTask { layout: ResolvedLayout; S: number; H: number; Hkv: number; D: number; dtype: DType; mask: MaskSpec }

export interface HeldCount { forward: number; peak: number; end: number }

export async function heldRank(comm: Comm, tasks: readonly HeldTask[]): Promise<HeldCount[]> {
  const counts: HeldCount[] = [];
  for (const t of tasks) {
    const device = new MeteredDevice(new CpuDevice(true));
    const shard = ShardMap.build(t.layout.shard, t.S, comm.size);
    const T = shard.length(comm.rank), rng = new Rng(17 + comm.rank);
    const x = (h: number) => randn(rng, t.dtype, [T, h, t.D], 1, true);
    const q = x(t.H), k = x(t.Hkv), v = x(t.Hkv), dout = x(t.H);
    const ctx = { comm, kernel: new CpuKernel(), device, mask: MaskGrid.build(t.mask, t.S), shard, scale: 0.5 };
    const res = await strategyFor(t.layout)(ctx, q, k, v);
    const forward = device.peak;
    await res.backward(dout);
    counts.push({ forward, peak: device.peak, end: device.held });
  }
  return counts;
}

/** The device traffic (MeteredDevice.traffic) after the forward and after the backward, per task (test/plan/elementwise.test.ts). */
export interface TrafficCount { forward: DeviceTraffic; total: DeviceTraffic }

export async function trafficRank(comm: Comm, tasks: readonly HeldTask[]): Promise<TrafficCount[]> {
  const counts: TrafficCount[] = [];
  for (const t of tasks) {
    const device = new MeteredDevice(new CpuDevice(true));
    const shard = ShardMap.build(t.layout.shard, t.S, comm.size);
    const T = shard.length(comm.rank), rng = new Rng(17 + comm.rank);
    const x = (h: number) => randn(rng, t.dtype, [T, h, t.D], 1, true);
    const q = x(t.H), k = x(t.Hkv), v = x(t.Hkv), dout = x(t.H);
    const ctx = { comm, kernel: new CpuKernel(), device, mask: MaskGrid.build(t.mask, t.S), shard, scale: 0.5 };
    const res = await strategyFor(t.layout)(ctx, q, k, v);
    const forward = structuredClone(device.traffic);
    await res.backward(dout);
    counts.push({ forward, total: device.traffic });
  }
  return counts;
}
