// One GPU of a context-parallel run (`weft launch -n N -- run --backend cuda …`): the same
// strategy code as the CPU ranks, over NCCL and the flash kernels. Every rank draws its own shard
// of the random inputs on its GPU, keyed by global position, so no rank ever holds the whole
// sequence; a check gathers the outputs on rank 0 and compares them with one GPU's kernel over
// the whole sequence and, when small enough, with the f64 reference.
import type { CudaTensor } from '../backends/cuda/runtime/tensor.js';
import { reclaimDeviceMemory } from '../backends/cuda/runtime/reclaim.js';
import { CudaKernel } from '../backends/cuda/kernel/kernel.js';
import { DeviceRandom } from '../backends/cuda/kernel/random.js';
import type { HalfType } from '../backends/cuda/kernel/source.js';
import type { AttnKernel } from '../kernel/kernel.js';
import { referenceAttention } from '../kernel/reference.js';
import { attentionFlops } from '../kernel/flops.js';
import { MaskGrid } from '../mask/grid.js';
import type { MaskSpec } from '../mask/spec.js';
import { maskView } from '../mask/view.js';
import { ncclWorld, type World } from '../backends/cuda/nccl/world.js';
import type { NcclComm } from '../backends/cuda/nccl/comm.js';
import { ShardMap } from '../shard/shard.js';
import { asF64, type HostTensor, norm, relError, type Tensor } from '../tensor/host.js';
import type { ResolvedLayout } from './layout.js';
import { strategyFor } from './strategies.js';
import { type StreamSpan, TimedComm, TimedKernel, Timeline } from './timeline.js';

/** The attention shape every GPU run takes (the kernels' head dims and half types). */
export interface GpuShape {
  H: number;
  Hkv: number;
  D: 64 | 128;
  mask: MaskSpec;
  dtype: HalfType;
  scale: number;
}

export interface GpuProblem extends GpuShape {
  S: number;
  seed: number;
}
export interface GpuTiming {
  warmup: number;
  iters: number;
  backward: boolean;
  timeline: boolean;
  /** called on every rank after each iteration (0-based, warm-ups first) with its milliseconds */
  progress?: (iteration: number, ms: number) => void;
}

export interface RankTiming {
  rank: number;
  forwardMs: number[];
  backwardMs: number[];
  /** spans of the last iteration (with `timeline`) */
  spans?: StreamSpan[];
  /** the caching allocator's peak of live device memory over the timed run, bytes */
  peakBytes: number;
}

export interface GpuCheck {
  /** ‖CP − one GPU‖/‖one GPU‖ and, when computed, ‖· − f64 reference‖/‖reference‖ per output */
  vsSingle: Record<string, number>;
  cpVsRef?: Record<string, number>;
  singleVsRef?: Record<string, number>;
  /**
   * Outputs the f64 reference gives as exactly zero (dq and dk when every row sees one key: the
   * softmax is 1 and its gradient 0). Their cpVsRef/singleVsRef are absolute norms, and one GPU's
   * values are rounding noise, so vsSingle is not judged for them.
   */
  zeroRef?: string[];
}

/** Tolerances of the check: the CP result may be a little further from the reference than one GPU's (more merges, more rounding of transfers). */
const CHECK = { vsSingle: 2e-2, refFactor: 1.5, refSlack: 1e-3 };

/** Whether a check holds: every output within CHECK.vsSingle of one GPU's, and about as close to the f64 reference as one GPU. */
export function checkPasses(c: GpuCheck): boolean {
  if (!Object.entries(c.vsSingle).every(([n, e]) => e <= CHECK.vsSingle || c.zeroRef?.includes(n))) return false;
  return (
    !c.cpVsRef ||
    Object.entries(c.cpVsRef).every(([n, e]) => e <= CHECK.refFactor * c.singleVsRef![n]! + CHECK.refSlack)
  );
}

/** The seeds of the random q, k, v, dout (DeviceRandom): every GPU run of one problem draws the same tensors. */
export const SEEDS = { q: 1, k: 2, v: 3, dout: 4 } as const;
/** The f64 reference runs on the host in JS: only for problems that take it seconds. */
const REFERENCE_FLOP_LIMIT = 2e10;

function cudaOf(t: Tensor): CudaTensor {
  return t as CudaTensor;
}

export class GpuRank {
  readonly kernel: CudaKernel;
  readonly random: DeviceRandom;
  readonly comm: NcclComm;
  private readonly timeline: Timeline;
  private exchanges = 0;

  private constructor(readonly world: World) {
    this.kernel = new CudaKernel(world.rt);
    this.random = new DeviceRandom(world.rt);
    this.comm = world.comm;
    this.timeline = new Timeline(world.rt);
  }

  /** Join the launcher's job (collective). */
  static async open(): Promise<GpuRank> {
    return new GpuRank(await ncclWorld());
  }

  get rank(): number {
    return this.world.dist.rank;
  }
  get size(): number {
    return this.world.dist.worldSize;
  }

  shardOf(p: GpuProblem, l: ResolvedLayout): ShardMap {
    return ShardMap.build(l.shard, p.S, this.size, p.mask.kind === 'document' ? p.mask.cuSeqlens : undefined);
  }

  /** This rank's rows of the global q, k, v, dout. */
  inputs(p: GpuProblem, positions: Int32Array): { q: CudaTensor; k: CudaTensor; v: CudaTensor; dout: CudaTensor } {
    const r = this.random;
    return {
      q: r.rows(p.dtype, positions, [p.H, p.D], SEEDS.q),
      k: r.rows(p.dtype, positions, [p.Hkv, p.D], SEEDS.k),
      v: r.rows(p.dtype, positions, [p.Hkv, p.D], SEEDS.v),
      dout: r.rows(p.dtype, positions, [p.H, p.D], SEEDS.dout),
    };
  }

  private ctx(
    grid: MaskGrid,
    shard: ShardMap,
    scale: number,
    timed: boolean,
  ): Parameters<ReturnType<typeof strategyFor>>[0] {
    const kernel: AttnKernel = timed ? new TimedKernel(this.kernel, this.timeline) : this.kernel;
    return {
      comm: timed ? new TimedComm(this.comm, this.timeline) : this.comm,
      kernel,
      device: this.world.rt.device,
      mask: grid,
      shard,
      scale,
      trace: this.timeline,
    };
  }

  /** Time the strategy (collective). The slowest rank's time is the run's; rank 0 gets every rank's. */
  async time(p: GpuProblem, l: ResolvedLayout, t: GpuTiming): Promise<RankTiming[] | undefined> {
    const grid = MaskGrid.build(p.mask, p.S);
    const shard = this.shardOf(p, l);
    this.world.rt.allocator.resetPeak();
    const x = this.inputs(p, shard.positions(this.rank));
    const strategy = strategyFor(l);
    const mine: RankTiming = { rank: this.rank, forwardMs: [], backwardMs: [], peakBytes: 0 };
    for (let i = 0; i < t.warmup + t.iters; i++) {
      this.timeline.on = t.timeline && i === t.warmup + t.iters - 1;
      await this.comm.barrier();
      // one iteration in its own call, so that everything it allocated is garbage afterwards
      const ms = await this.timed(async () => {
        const res = await strategy(this.ctx(grid, shard, p.scale, this.timeline.on), x.q, x.k, x.v);
        return t.backward
          ? async () => {
              await res.backward(x.dout);
            }
          : undefined;
      });
      if (i >= t.warmup) {
        mine.forwardMs.push(ms.forward);
        if (t.backward) mine.backwardMs.push(ms.backward);
      }
      if (ms.spans) mine.spans = ms.spans;
      t.progress?.(i, ms.forward + ms.backward);
      this.timeline.on = false;
      await reclaimDeviceMemory();
    }
    mine.peakBytes = this.world.rt.allocator.stats().peakAllocated;
    for (const v of Object.values(x)) v.release();
    return this.gatherJson('timing', mine);
  }

  /**
   * Events around a forward (which returns the backward to run, if any) on the compute stream;
   * the host returns as soon as the work is enqueued, the events measure the GPU.
   */
  private async timed(
    forward: () => Promise<(() => Promise<void>) | undefined>,
  ): Promise<{ forward: number; backward: number; spans?: StreamSpan[] }> {
    const rt = this.world.rt;
    const e0 = rt.event(true).record(rt.compute);
    const backward = await forward();
    const e1 = rt.event(true).record(rt.compute);
    if (backward) await backward();
    const e2 = rt.event(true).record(rt.compute);
    await rt.waitEvent(e2);
    const out = {
      forward: e1.since(e0),
      backward: e2.since(e1),
      spans: this.timeline.on ? this.timeline.collect(e0) : undefined,
    };
    for (const e of [e0, e1, e2]) e.destroy();
    return out;
  }

  /** The single-GPU kernel over the whole sequence: forward and backward milliseconds (rank 0 only; others wait). */
  async timeSingle(p: GpuProblem, t: GpuTiming): Promise<{ forwardMs: number[]; backwardMs: number[] } | undefined> {
    let out: { forwardMs: number[]; backwardMs: number[] } | undefined;
    if (this.rank === 0) {
      const grid = MaskGrid.build(p.mask, p.S);
      const pos = Int32Array.from({ length: p.S }, (_, i) => i);
      const view = maskView(grid, pos, pos);
      const x = this.wholeInputs(p);
      out = { forwardMs: [], backwardMs: [] };
      for (let i = 0; i < t.warmup + t.iters; i++) {
        const ms = await this.timed(async () => {
          const st = this.kernel.forward({ q: x.q, k: x.k, v: x.v, view, scale: p.scale });
          return t.backward
            ? async () => {
                this.kernel.backward({
                  q: x.q,
                  k: x.k,
                  v: x.v,
                  out: st.out,
                  lse: st.lse,
                  dout: x.dout,
                  view,
                  scale: p.scale,
                });
              }
            : undefined;
        });
        if (i >= t.warmup) {
          out.forwardMs.push(ms.forward);
          if (t.backward) out.backwardMs.push(ms.backward);
        }
        await reclaimDeviceMemory();
      }
      for (const v of Object.values(x)) v.release();
    }
    await this.comm.barrier();
    await this.world.rt.synchronize();
    return out;
  }

  private wholeInputs(p: GpuProblem): { q: CudaTensor; k: CudaTensor; v: CudaTensor; dout: CudaTensor } {
    const r = this.random;
    return {
      q: r.tensor(p.dtype, [p.S, p.H, p.D], SEEDS.q),
      k: r.tensor(p.dtype, [p.S, p.Hkv, p.D], SEEDS.k),
      v: r.tensor(p.dtype, [p.S, p.Hkv, p.D], SEEDS.v),
      dout: r.tensor(p.dtype, [p.S, p.H, p.D], SEEDS.dout),
    };
  }

  /** Run once, gather every output on rank 0, compare with one GPU and (small problems) the f64 reference. */
  async check(p: GpuProblem, l: ResolvedLayout): Promise<GpuCheck | undefined> {
    const grid = MaskGrid.build(p.mask, p.S);
    const shard = this.shardOf(p, l);
    const x = this.inputs(p, shard.positions(this.rank));
    const res = await strategyFor(l)(this.ctx(grid, shard, p.scale, false), x.q, x.k, x.v);
    const g = await res.backward(x.dout);
    const parts = { out: res.out, lse: res.lse, dq: g.dq, dk: g.dk, dv: g.dv };
    const gathered: Partial<Record<keyof typeof parts, HostTensor>> = {};
    for (const [name, t] of Object.entries(parts) as [keyof typeof parts, Tensor][]) {
      const whole = await this.gatherRows(shard, cudaOf(t), name === 'lse' ? 1 : 0);
      if (whole) gathered[name] = whole;
    }
    if (this.rank !== 0) {
      await this.comm.barrier();
      return undefined;
    }
    const pos = Int32Array.from({ length: p.S }, (_, i) => i);
    const view = maskView(grid, pos, pos);
    const w = this.wholeInputs(p);
    const st = this.kernel.forward({ q: w.q, k: w.k, v: w.v, view, scale: p.scale });
    const sg = this.kernel.backward({
      q: w.q,
      k: w.k,
      v: w.v,
      out: st.out,
      lse: st.lse,
      dout: w.dout,
      view,
      scale: p.scale,
    });
    const dev = this.world.rt.device;
    // rounded to the input type like the strategy's outputs, so the two compare alike
    const single: Record<string, HostTensor> = {
      out: await dev.download(dev.cast(st.out, p.dtype)),
      lse: await dev.download(st.lse),
      dq: await dev.download(dev.cast(sg.dq, p.dtype)),
      dk: await dev.download(dev.cast(sg.dk, p.dtype)),
      dv: await dev.download(dev.cast(sg.dv, p.dtype)),
    };
    const names = ['out', 'lse', 'dq', 'dk', 'dv'] as const;
    const result: GpuCheck = {
      vsSingle: Object.fromEntries(names.map((n) => [n, relError(gathered[n]!, single[n]!)])),
    };
    if (attentionFlops(grid.area(), p.H, p.D, 'fwd+bwd') <= REFERENCE_FLOP_LIMIT) {
      const host = {
        q: await dev.download(w.q),
        k: await dev.download(w.k),
        v: await dev.download(w.v),
        dout: await dev.download(w.dout),
      };
      const ref = referenceAttention(host.q, host.k, host.v, grid, p.scale, host.dout);
      const zero = names.filter((n) => asF64(ref[n]!).every((x) => x === 0));
      const err = (a: HostTensor, n: (typeof names)[number]): number =>
        zero.includes(n) ? norm(a) : relError(a, ref[n]!);
      result.cpVsRef = Object.fromEntries(names.map((n) => [n, err(gathered[n]!, n)]));
      result.singleVsRef = Object.fromEntries(names.map((n) => [n, err(single[n]!, n)]));
      if (zero.length) result.zeroRef = zero;
    }
    await this.comm.barrier();
    return result;
  }

  /**
   * The strategy on this rank's rows (a user's tensors, already on the GPU; released here), forward
   * and, with dout, backward (collective). Rank 0 gets every output gathered to global positions.
   */
  async attendRows(
    shard: ShardMap,
    grid: MaskGrid,
    l: ResolvedLayout,
    scale: number,
    x: { q: CudaTensor; k: CudaTensor; v: CudaTensor; dout?: CudaTensor | undefined },
  ): Promise<{ out: HostTensor; lse: HostTensor; dq?: HostTensor; dk?: HostTensor; dv?: HostTensor } | undefined> {
    const res = await strategyFor(l)(this.ctx(grid, shard, scale, false), x.q, x.k, x.v);
    const g = x.dout ? await res.backward(x.dout) : undefined;
    const parts: [string, Tensor][] = [
      ['out', res.out],
      ['lse', res.lse],
    ];
    if (g) parts.push(['dq', g.dq], ['dk', g.dk], ['dv', g.dv]);
    const gathered: Record<string, HostTensor> = {};
    for (const [name, t] of parts) {
      const whole = await this.gatherRows(shard, cudaOf(t), name === 'lse' ? 1 : 0);
      if (whole) gathered[name] = whole;
    }
    for (const t of Object.values(x)) t?.release();
    await this.comm.barrier();
    return this.rank === 0 ? (gathered as { out: HostTensor; lse: HostTensor }) : undefined;
  }

  /** Rank 0 receives every rank's rows (dimension `axis`) and places them at their global positions. */
  async gatherRows(shard: ShardMap, t: CudaTensor, axis: 0 | 1): Promise<HostTensor | undefined> {
    const dev = this.world.rt.device;
    if (this.rank !== 0) {
      await this.comm.sendRecv([{ send: { buf: t, peer: 0 } }]).wait();
      await this.world.rt.synchronize();
      return undefined;
    }
    const parts: HostTensor[] = [await dev.download(t)];
    for (let r = 1; r < this.size; r++) {
      const shape = [...t.shape];
      shape[axis] = shard.length(r);
      const buf = dev.empty(t.dtype, shape);
      await this.comm.sendRecv([{ recv: { buf, peer: r } }]).wait();
      parts.push(await dev.download(buf));
      buf.release();
    }
    return shard.gather(parts, axis);
  }

  /** Give the caching allocator's free blocks back to the driver (before another program needs the GPU). */
  async releaseMemory(): Promise<void> {
    await reclaimDeviceMemory();
    await this.world.rt.synchronize();
    this.world.rt.allocator.emptyCache();
  }

  /** Every rank's JSON value, on rank 0 (through the rendezvous store). */
  async gatherJson<T>(what: string, value: T): Promise<T[] | undefined> {
    const store = this.world.store;
    const key = `${what}/${this.exchanges++}`; // every rank counts its exchanges alike
    await store.set(`weft/run/${key}/${this.rank}`, JSON.stringify(value));
    if (this.rank !== 0) return undefined;
    const out: T[] = [];
    for (let r = 0; r < this.size; r++) out.push(JSON.parse(await store.getString(`weft/run/${key}/${r}`)) as T);
    return out;
  }
}
