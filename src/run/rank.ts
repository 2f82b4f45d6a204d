// The program every worker rank runs for runDistributed: build the CPU kernel, device, mask
// grid and shard map, wrap Comm and kernel for accounting, run the strategy forward (and
// backward), and hand back the local results and counts. Several tasks may share one launch.
import type { Comm } from '../comm/comm.js';
import { CpuDevice } from '../backends/cpu/device.js';
import { CpuKernel } from '../backends/cpu/kernel.js';
import { MaskGrid } from '../mask/grid.js';
import type { MaskSpec } from '../mask/spec.js';
import { ShardMap } from '../shard/shard.js';
import {
  CommLog,
  CountingComm,
  CountingKernel,
  type DeviceTraffic,
  MeteredDevice,
  type StepCount,
} from '../strategy/accounting.js';
import type { HostTensor } from '../tensor/host.js';
import type { ResolvedLayout } from './layout.js';
import { strategyFor } from './strategies.js';
import { routedKV } from '../varlen/execute.js';
import type { HeadGroup } from '../varlen/heads.js';

export interface RankTask {
  /** a layout, or a dispatcher's placement run by the sparse K/V executor (src/varlen) */
  layout:
    | ResolvedLayout
    | {
        strategy: 'varlen';
        positions: Int32Array[];
        relay?: [number, number][];
        chunks?: number;
        visits?: [number, number][];
        heads?: HeadGroup[];
      };
  S: number;
  mask: MaskSpec;
  scale: number;
  /** this rank's shards, already in the run's dtype */
  q: HostTensor;
  k: HostTensor;
  v: HostTensor;
  dout?: HostTensor;
}

export interface RankOutput {
  out: HostTensor;
  lse: HostTensor;
  dq?: HostTensor;
  dk?: HostTensor;
  dv?: HostTensor;
  forwardMs: number;
  backwardMs: number;
  computeMs: number;
  area: number;
  forwardCalls: number;
  backwardCalls: number;
  steps: StepCount[];
  /** the most bytes the strategy held at once (allocated, not released) over forward and backward */
  peakHeldBytes: number;
  /** device memory traffic of the Device's elementwise operations (zeros, full, copyBox, add, cast), forward and backward */
  elementwise: DeviceTraffic;
}

export function documentsOf(mask: MaskSpec): readonly number[] | undefined {
  return mask.kind === 'document' ? mask.cuSeqlens : undefined;
}

export async function rankMain(comm: Comm, tasks: readonly RankTask[]): Promise<RankOutput[]> {
  const outputs: RankOutput[] = [];
  for (const task of tasks) outputs.push(await runTask(comm, task));
  return outputs;
}

async function runTask(comm: Comm, t: RankTask): Promise<RankOutput> {
  const device = new MeteredDevice(new CpuDevice(true));
  const log = new CommLog();
  const kernel = new CountingKernel(new CpuKernel());
  const ctx = {
    comm: new CountingComm(comm, log),
    kernel,
    device,
    trace: log,
    scale: t.scale,
    mask: MaskGrid.build(t.mask, t.S),
    shard:
      t.layout.strategy === 'varlen'
        ? ShardMap.fromPositions(t.S, t.layout.positions)
        : ShardMap.build(t.layout.shard, t.S, comm.size, documentsOf(t.mask)),
  };
  const strategy = t.layout.strategy === 'varlen' ? routedKV(t.layout) : strategyFor(t.layout);
  await comm.barrier();
  const t0 = performance.now();
  const res = await strategy(ctx, t.q, t.k, t.v);
  const t1 = performance.now();
  let grads,
    t2 = t1;
  if (t.dout) {
    await comm.barrier();
    const tb = performance.now();
    grads = await res.backward(t.dout);
    t2 = t1 + performance.now() - tb;
  }
  const dl = (x: Parameters<typeof device.download>[0]): Promise<HostTensor> => device.download(x);
  const out: RankOutput = {
    out: await dl(res.out),
    lse: await dl(res.lse),
    forwardMs: t1 - t0,
    backwardMs: t2 - t1,
    computeMs: kernel.count.ms,
    area: kernel.count.area,
    forwardCalls: kernel.count.forwardCalls,
    backwardCalls: kernel.count.backwardCalls,
    steps: log.list(),
    peakHeldBytes: device.peak,
    elementwise: device.traffic,
  };
  if (grads) {
    out.dq = await dl(grads.dq);
    out.dk = await dl(grads.dk);
    out.dv = await dl(grads.dv);
  }
  return out;
}
