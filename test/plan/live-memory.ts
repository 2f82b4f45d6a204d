// What a CPU rank really holds while it runs a strategy: the bytes of the device tensors it
// allocated that are still reachable and not released, sampled after every allocation with the
// garbage collector run first (node --expose-gc), beside MeteredDevice's count (allocations minus
// releases) of the same run. Run on worker ranks by runRanks; not a test itself.
import type { Comm } from '../../src/comm/comm.js';
import { CpuDevice } from '../../src/backends/cpu/device.js';
import { CpuKernel } from '../../src/backends/cpu/kernel.js';
import type { Box, Device } from '../../src/device/device.js';
import { MaskGrid } from '../../src/mask/grid.js';
import type { MaskSpec } from '../../src/mask/spec.js';
import type { ResolvedLayout } from '../../src/run/layout.js';
import { strategyFor } from '../../src/run/strategies.js';
import { ShardMap } from '../../src/shard/shard.js';
import { MeteredDevice } from '../../src/strategy/accounting.js';
import type { DType } from '../../src/tensor/dtype.js';
import type { HostTensor, Tensor } from '../../src/tensor/host.js';
import { randn, Rng } from '../../src/tensor/random.js';

/** A CPU device that knows which of its tensors are alive: reachable (after a collection) and not released. */
class LiveDevice implements Device {
  readonly kind = 'cpu' as const;
  private readonly inner = new CpuDevice(true);
  private readonly tensors: { ref: WeakRef<HostTensor>; bytes: number }[] = [];
  private readonly released = new WeakSet<object>();
  peak = 0;
  /** the peak also counting released tensors still reachable */
  peakReachable = 0;

  private track(t: HostTensor): HostTensor {
    this.tensors.push({ ref: new WeakRef(t), bytes: t.data.byteLength });
    this.sample();
    return t;
  }
  private sample(): void {
    (globalThis as { gc?: () => void }).gc!();
    let live = 0,
      reachable = 0;
    for (const x of this.tensors) {
      const t = x.ref.deref();
      if (!t) continue;
      reachable += x.bytes;
      if (!this.released.has(t)) live += x.bytes;
    }
    this.peak = Math.max(this.peak, live);
    this.peakReachable = Math.max(this.peakReachable, reachable);
  }
  zeros(dtype: DType, shape: readonly number[]): Tensor {
    return this.track(this.inner.zeros(dtype, shape));
  }
  empty(dtype: DType, shape: readonly number[]): Tensor {
    return this.track(this.inner.empty(dtype, shape));
  }
  full(dtype: DType, shape: readonly number[], value: number): Tensor {
    return this.track(this.inner.full(dtype, shape, value));
  }
  cast(src: Tensor, dtype: DType): Tensor {
    return this.track(this.inner.cast(src, dtype));
  }
  copyBox(src: Tensor, dst: Tensor, box: Box): void {
    this.inner.copyBox(src, dst, box);
  }
  add(dst: Tensor, src: Tensor): void {
    this.inner.add(dst, src);
  }
  upload(t: HostTensor): Tensor {
    return this.inner.upload(t);
  }
  download(t: Tensor): Promise<HostTensor> {
    return this.inner.download(t);
  }
  synchronize(): Promise<void> {
    return this.inner.synchronize();
  }
  release(t: Tensor): void {
    this.released.add(t);
    this.inner.release(t);
  }
}

export interface LiveTask {
  layout: ResolvedLayout;
  S: number;
  H: number;
  Hkv: number;
  D: number;
  dtype: 'f32' | 'f64';
  mask: MaskSpec;
}

/** One rank's peaks, bytes: alive (reachable, not released), reachable, and MeteredDevice's count. */
export interface LivePeaks {
  live: number;
  reachable: number;
  metered: number;
}

export async function liveRank(comm: Comm, tasks: readonly LiveTask[]): Promise<LivePeaks[]> {
  const out: LivePeaks[] = [];
  for (const t of tasks) {
    const live = new LiveDevice(),
      device = new MeteredDevice(live);
    const shard = ShardMap.build(t.layout.shard, t.S, comm.size);
    const T = shard.length(comm.rank),
      rng = new Rng(5 + comm.rank);
    const x = (h: number) => randn(rng, t.dtype, [T, h, t.D], 1, true);
    const q = x(t.H),
      k = x(t.Hkv),
      v = x(t.Hkv),
      dout = x(t.H);
    const ctx = { comm, kernel: new CpuKernel(), device, mask: MaskGrid.build(t.mask, t.S), shard, scale: 0.5 };
    const res = await strategyFor(t.layout)(ctx, q, k, v);
    await res.backward(dout);
    out.push({ live: live.peak, reachable: live.peakReachable, metered: device.peak });
  }
  return out;
}
