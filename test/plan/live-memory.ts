// What a CPU rank really holds while it runs a strategy: the bytes of the device tensors it
// allocated that are still reachable and not released, sampled after every allocation (and when
// each forward returns) with the garbage collector run first, beside
// MeteredDevice's count (allocations minus releases) of the same run. A run is L layers as
// training runs them: every layer's forward, then the backwards in reverse, each layer's result
// kept until its backward. The kernel holds the GPU kernel's backward delta (f32 [H, Tq]) while a
// backward call runs, as the planner's dry run does. Run on worker ranks by runRanks; not a test.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Comm } from '../../src/comm/comm.js';
import { CpuDevice } from '../../src/backends/cpu/device.js';
import { CpuKernel } from '../../src/backends/cpu/kernel.js';
import type { Box, Device } from '../../src/device/device.js';
import type { AttnGrads, AttnKernel, AttnState, BackwardArgs, ForwardArgs } from '../../src/kernel/kernel.js';
import { MaskGrid } from '../../src/mask/grid.js';
import type { MaskSpec } from '../../src/mask/spec.js';
import type { ResolvedLayout } from '../../src/run/layout.js';
import { strategyFor } from '../../src/run/strategies.js';
import { ShardMap } from '../../src/shard/shard.js';
import { MeteredDevice } from '../../src/strategy/accounting.js';
import type { DType } from '../../src/tensor/dtype.js';
import type { HostTensor, Tensor } from '../../src/tensor/host.js';
import { randn, Rng } from '../../src/tensor/random.js';

// the collector, callable without node's --expose-gc (the test runner's workers do not pass it)
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

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
  /** Bytes alive now (after a collection); the peaks follow. */
  sample(): number {
    collect();
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
    return live;
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

/** The CPU kernel, holding the GPU kernel's backward delta while a backward call runs. */
class DeltaKernel implements AttnKernel {
  private readonly inner = new CpuKernel();
  constructor(private readonly device: Device) {}
  forward(a: ForwardArgs): AttnState {
    return this.inner.forward(a);
  }
  backward(a: BackwardArgs): AttnGrads {
    const delta = this.device.empty('f32', [a.q.shape[1]!, a.q.shape[0]!]);
    const g = this.inner.backward(a);
    this.device.release(delta);
    return g;
  }
  merge(state: AttnState, part: AttnState): void {
    this.inner.merge(state, part);
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
  layers: number;
}

/**
 * One rank's bytes: alive (reachable, not released) at the peak and when the first forward
 * returns; reachable at the peak (released tensors still referenced too); MeteredDevice's peak
 * and its count when the first forward returns.
 */
export interface LivePeaks {
  live: number;
  liveKept: number;
  reachable: number;
  metered: number;
  meteredKept: number;
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
    const ctx = { comm, kernel: new DeltaKernel(device), device, mask: MaskGrid.build(t.mask, t.S), shard, scale: 0.5 };
    const results = [];
    let liveKept = 0,
      meteredKept = 0;
    for (let l = 0; l < t.layers; l++) {
      results.push(await strategyFor(t.layout)(ctx, x(t.H), x(t.Hkv), x(t.Hkv)));
      if (l === 0) [liveKept, meteredKept] = [live.sample(), device.held];
    }
    while (results.length > 0) await results.pop()!.backward(x(t.H));
    out.push({ live: live.peak, liveKept, reachable: live.peakReachable, metered: device.peak, meteredKept });
  }
  return out;
}
