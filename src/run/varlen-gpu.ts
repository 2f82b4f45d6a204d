// One GPU rank of a varlen run (`weft run --strategy varlen --backend cuda`): alone on one GPU (a
// world of one rank: every document local), or one process per GPU under `weft launch` (NCCL). The
// rank program is the CPU ranks' (rank.ts) on the GPU seams: the dispatcher's placement through
// the sparse K/V executor with CudaDevice, CudaKernel and NcclComm, counted by the same wrappers
// (area, bytes per step, held bytes), then timed with CUDA events. Every rank computes the same
// plan (the dispatcher is deterministic) and draws its own rows of the random inputs on its GPU,
// keyed by global position (gpu.ts' seeds), so no rank holds the whole batch; rank 0 gathers the
// counts, the timings and, with a check, the outputs, and compares them with the f64 reference.
import { CudaKernel } from '../backends/cuda/kernel/kernel.js';
import { DeviceRandom } from '../backends/cuda/kernel/random.js';
import type { HalfType } from '../backends/cuda/kernel/source.js';
import { Nccl } from '../backends/cuda/nccl/bindings.js';
import { NcclComm } from '../backends/cuda/nccl/comm.js';
import { reclaimDeviceMemory } from '../backends/cuda/runtime/reclaim.js';
import { type CudaRuntime, openCuda } from '../backends/cuda/runtime/runtime.js';
import type { CudaTensor } from '../backends/cuda/runtime/tensor.js';
import type { Comm } from '../comm/comm.js';
import { UserError } from '../errors.js';
import { attentionFlops } from '../kernel/flops.js';
import { referenceAttention } from '../kernel/reference.js';
import { distEnv } from '../launch/env.js';
import { MaskGrid } from '../mask/grid.js';
import { ShardMap } from '../shard/shard.js';
import { CommLog, CountingComm, CountingKernel, MeteredDevice } from '../strategy/accounting.js';
import type { StrategyCtx } from '../strategy/types.js';
import { asF64, type HostTensor, norm, relError, type Tensor } from '../tensor/host.js';
import { type DispatchPlan, rankPositions, routesOf } from '../varlen/dispatch.js';
import { routedKV } from '../varlen/execute.js';
import { GpuRank, type GpuShape, SEEDS } from './gpu.js';
import { checkWorld } from '../launch/cluster.js';
import type { RankOutput } from './rank.js';
import { type RankStats, statsOf, type RunStats } from './run.js';
import { varlenStats } from './varlen.js';

/** What a varlen rank needs of its GPU and its world: a launched GpuRank, or one GPU alone. */
export interface GpuWorld {
  readonly rank: number;
  readonly size: number;
  readonly rt: CudaRuntime;
  readonly comm: Comm;
  readonly kernel: CudaKernel;
  readonly random: DeviceRandom;
  /** rank 0 gets every rank's rows of `t` (dimension `axis`) at their global positions (collective) */
  gatherRows(shard: ShardMap, t: CudaTensor, axis: 0 | 1): Promise<HostTensor | undefined>;
  /** rank 0 gets every rank's value (collective) */
  gatherJson<T>(what: string, value: T): Promise<T[] | undefined>;
  close(): Promise<void>;
}

/** One GPU without a launcher: a one-rank NCCL communicator (the executor sends nothing on it). */
class OneGpu implements GpuWorld {
  readonly rank = 0;
  readonly size = 1;
  readonly kernel: CudaKernel;
  readonly random: DeviceRandom;

  private constructor(
    readonly rt: CudaRuntime,
    readonly comm: NcclComm,
  ) {
    this.kernel = new CudaKernel(rt);
    this.random = new DeviceRandom(rt);
  }

  static async open(): Promise<OneGpu> {
    const rt = await openCuda({ device: 0 });
    const nccl = await Nccl.open();
    return new OneGpu(rt, await NcclComm.init(rt, nccl, 0, 1, nccl.uniqueId()));
  }

  async gatherRows(shard: ShardMap, t: CudaTensor, axis: 0 | 1): Promise<HostTensor> {
    return shard.gather([await this.rt.device.download(t)], axis);
  }

  async gatherJson<T>(_what: string, value: T): Promise<T[]> {
    return [value];
  }

  async close(): Promise<void> {
    await this.comm.destroy();
  }
}

function launchedWorld(g: GpuRank): GpuWorld {
  return {
    rank: g.rank,
    size: g.size,
    rt: g.world.rt,
    comm: g.comm,
    kernel: g.kernel,
    random: g.random,
    gatherRows: (shard, t, axis) => g.gatherRows(shard, t, axis),
    gatherJson: (what, value) => g.gatherJson(what, value),
    close: async () => {
      await g.comm.destroy();
      g.world.store.close();
    },
  };
}

/** That a `world`-rank GPU run can start here: alone only world 1, under a launcher its size (before any GPU is touched). */
export function checkGpuWorld(world: number): void {
  const d = distEnv();
  if (!d && world !== 1)
    throw new UserError(
      `--backend cuda runs one process per GPU: weft launch -n ${world} -- run --strategy varlen --backend cuda --world ${world} … (alone, only --world 1)`,
    );
  if (d) checkWorld({ world }, d);
}

/** This process's GPU of a `world`-rank run: under a launcher its rank (collective), else one GPU for world 1. */
export async function openGpuWorld(world: number): Promise<GpuWorld> {
  checkGpuWorld(world);
  return distEnv() ? launchedWorld(await GpuRank.open()) : OneGpu.open();
}

/** `mask` is the batch's document mask (batchMaskSpec). */
export interface VarlenGpuRun extends GpuShape {
  plan: DispatchPlan;
  backward: boolean;
  check: boolean;
  warmup: number;
  iters: number;
  /** called on every rank after each timed iteration (0-based, warm-ups first) with its milliseconds */
  progress?: (iteration: number, ms: number) => void;
}

export interface VarlenGpuRankStats extends Omit<RankStats, 'computeMs'> {
  tokens: number;
  recvRows: number;
  /** medians over the timed iterations, CUDA events on this rank's compute stream */
  forwardMs: number;
  backwardMs: number;
  /** the caching allocator's peak of live device memory over the timed iterations */
  peakDeviceBytes: number;
}

export interface VarlenGpuStats extends Omit<RunStats, 'perRank'> {
  perRank: VarlenGpuRankStats[];
  tokenBalance: number;
  iters: number;
  /** attention FLOPs (unmasked area; backward 2.5×) per GPU per second at the median wall time, in T */
  tflopsPerGpu: number;
}

export interface GpuVarlenCheck {
  /** relative error against the f64 reference per output (absolute norm where the reference is exactly zero) */
  errors: Record<string, number>;
  tolerance: number;
  ok: boolean;
  /** outputs the reference gives as exactly zero (every row of the batch sees one key: dq and dk) */
  zeroRef?: string[];
}

/**
 * Against the f64 reference, over every output: the GPU kernels' bounds (twice PyTorch SDPA's error
 * on such inputs, test-gpu/kernel) with the outputs' rounding to the input type on top, as the GPU
 * file tests bound them (bf16: out 8e-3, gradients 1e-2; f16 about a fifth of that).
 */
export const GPU_TOLERANCE: Record<HalfType, number> = { bf16: 1e-2, f16: 2e-3 };

interface RankRecord extends Omit<RankOutput, 'out' | 'lse' | 'dq' | 'dk' | 'dv' | 'forwardMs' | 'backwardMs'> {
  forwardMs: number[];
  backwardMs: number[];
  peakDeviceBytes: number;
}

const OUTPUTS = ['out', 'lse', 'dq', 'dk', 'dv'] as const;

function median(xs: readonly number[]): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** The run on this rank (collective): rank 0 gets the stats and the check, the others undefined. */
export async function runVarlenGpu(
  g: GpuWorld,
  r: VarlenGpuRun,
): Promise<{ stats: VarlenGpuStats; check?: GpuVarlenCheck } | undefined> {
  const { plan } = r,
    S = plan.S;
  if (g.size !== plan.world) throw new Error(`runVarlenGpu: a plan for ${plan.world} ranks on ${g.size}`);
  const grid = MaskGrid.build(r.mask, S);
  const positions = rankPositions(plan);
  const strategy = routedKV(routesOf(plan));
  const shard = ShardMap.fromPositions(S, positions);
  const rows = (pos: Int32Array, heads: number, seed: number): CudaTensor =>
    g.random.rows(r.dtype, pos, [heads, r.D], seed);
  const mine = positions[g.rank]!;
  const x = {
    q: rows(mine, r.H, SEEDS.q),
    k: rows(mine, r.Hkv, SEEDS.k),
    v: rows(mine, r.Hkv, SEEDS.v),
    dout: r.backward ? rows(mine, r.H, SEEDS.dout) : undefined,
  };
  const rt = g.rt,
    dev = rt.device;
  const ctx = (comm: Comm, kernel: StrategyCtx['kernel'], device: StrategyCtx['device'], trace?: CommLog) => ({
    comm,
    kernel,
    device,
    mask: grid,
    shard,
    scale: r.scale,
    ...(trace ? { trace } : {}),
  });

  // one counted run (the CPU ranks' wrappers): area, bytes per step, held bytes; its outputs are the check's
  const log = new CommLog(),
    kernel = new CountingKernel(g.kernel),
    metered = new MeteredDevice(dev);
  const res = await strategy(ctx(new CountingComm(g.comm, log), kernel, metered, log), x.q, x.k, x.v);
  const grads = x.dout ? await res.backward(x.dout) : undefined;
  const parts: Partial<Record<(typeof OUTPUTS)[number], Tensor>> = { out: res.out, lse: res.lse, ...grads };
  const gathered: Partial<Record<(typeof OUTPUTS)[number], HostTensor>> = {};
  if (r.check)
    for (const n of OUTPUTS) {
      const t = parts[n];
      if (!t) continue;
      const whole = await g.gatherRows(shard, t as CudaTensor, n === 'lse' ? 1 : 0);
      if (whole) gathered[n] = whole;
    }
  for (const t of Object.values(parts)) dev.release(t);
  await rt.synchronize();

  // timed iterations, uncounted
  const times = { forwardMs: [] as number[], backwardMs: [] as number[] };
  rt.allocator.resetPeak();
  for (let i = 0; i < r.warmup + r.iters; i++) {
    await g.comm.barrier();
    const e0 = rt.event(true).record(rt.compute);
    const it = await strategy(ctx(g.comm, g.kernel, dev), x.q, x.k, x.v);
    const e1 = rt.event(true).record(rt.compute);
    const gr = x.dout ? await it.backward(x.dout) : undefined;
    const e2 = rt.event(true).record(rt.compute);
    await rt.waitEvent(e2);
    const f = e1.since(e0),
      b = e2.since(e1);
    for (const e of [e0, e1, e2]) e.destroy();
    for (const t of [it.out, it.lse, ...(gr ? [gr.dq, gr.dk, gr.dv] : [])]) dev.release(t);
    if (i >= r.warmup) {
      times.forwardMs.push(f);
      if (gr) times.backwardMs.push(b);
    }
    r.progress?.(i, f + b);
    await reclaimDeviceMemory();
  }
  const record: RankRecord = {
    computeMs: 0,
    area: kernel.count.area,
    forwardCalls: kernel.count.forwardCalls,
    backwardCalls: kernel.count.backwardCalls,
    steps: log.list(),
    peakHeldBytes: metered.peak,
    elementwise: metered.traffic,
    ...times,
    peakDeviceBytes: rt.allocator.stats().peakAllocated,
  };
  for (const t of Object.values(x)) if (t) t.release();
  const all = await g.gatherJson('varlen', record);
  if (!all) return undefined;
  const stats = gpuStats(all, r);
  return r.check ? { stats, check: await checkOnRank0(g, r, grid, gathered) } : { stats };
}

function gpuStats(all: RankRecord[], r: VarlenGpuRun): VarlenGpuStats {
  const base = statsOf(all.map((a) => ({ ...a, forwardMs: median(a.forwardMs), backwardMs: median(a.backwardMs) })));
  const v = varlenStats(base, r.plan);
  // an iteration lasts as long as its slowest rank
  const wall = median(
    all[0]!.forwardMs.map((_, i) => Math.max(...all.map((a) => a.forwardMs[i]! + (a.backwardMs[i] ?? 0)))),
  );
  const area = MaskGrid.build(r.mask, r.plan.S).area();
  const flops = attentionFlops(area, r.H, r.D, r.backward ? 'fwd+bwd' : 'fwd');
  return {
    ...v,
    wallMs: wall,
    perRank: v.perRank.map(({ computeMs: _c, ...s }, i) => ({
      ...s,
      forwardMs: median(all[i]!.forwardMs),
      backwardMs: median(all[i]!.backwardMs),
      peakDeviceBytes: all[i]!.peakDeviceBytes,
    })),
    iters: r.iters,
    tflopsPerGpu: wall > 0 ? flops / r.plan.world / (wall * 1e-3) / 1e12 : 0,
  };
}

/** Rank 0: the whole inputs (the same draws as the ranks' rows) through the f64 reference on the host. */
async function checkOnRank0(
  g: GpuWorld,
  r: VarlenGpuRun,
  grid: MaskGrid,
  got: Partial<Record<(typeof OUTPUTS)[number], HostTensor>>,
): Promise<GpuVarlenCheck> {
  const dev = g.rt.device,
    S = r.plan.S;
  const whole = async (heads: number, seed: number): Promise<HostTensor> => {
    const t = g.random.tensor(r.dtype, [S, heads, r.D], seed);
    const h = await dev.download(t);
    t.release();
    return h;
  };
  const ref = referenceAttention(
    await whole(r.H, SEEDS.q),
    await whole(r.Hkv, SEEDS.k),
    await whole(r.Hkv, SEEDS.v),
    grid,
    r.scale,
    r.backward ? await whole(r.H, SEEDS.dout) : undefined,
  );
  const errors: Record<string, number> = {},
    zeroRef: string[] = [];
  for (const n of OUTPUTS) {
    const a = got[n],
      b = ref[n];
    if (!a || !b) continue;
    const zero = asF64(b).every((y) => y === 0);
    if (zero) zeroRef.push(n);
    errors[n] = zero ? norm(a) : relError(a, b);
  }
  const tolerance = GPU_TOLERANCE[r.dtype];
  return {
    errors,
    tolerance,
    ok: Object.values(errors).every((e) => e <= tolerance),
    ...(zeroRef.length ? { zeroRef } : {}),
  };
}
