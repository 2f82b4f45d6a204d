// One GPU of an inference run (`weft launch -n N -- run --mode prefill|decode --backend cuda …`):
// the same cache and schedules as the CPU ranks (src/infer), over NCCL and the CUDA kernel, whose
// forward takes decode-shaped views to the split-K decode kernel and prefill blocks to the flash
// kernel. Every rank reserves its part of the KV cache on its GPU and draws the cached K/V there,
// keyed by global position (DeviceRandom), so no rank holds more than its shard; the timed step
// writes the new tokens' K/V into the cache and attends them. A check gathers the step's rows on
// rank 0 and compares them with one kernel call over each request's whole sequence and, when the
// host can afford it, with the f64 reference.
import type { CudaTensor } from '../backends/cuda/runtime/tensor.js';
import { CudaKernel } from '../backends/cuda/kernel/kernel.js';
import { DeviceRandom } from '../backends/cuda/kernel/random.js';
import { ncclWorld, type World } from '../backends/cuda/nccl/world.js';
import { decode, type PassKind, prefill } from '../infer/attend.js';
import { CacheMap, cacheBytes, KvCache, type TokenPlacement } from '../infer/cache.js';
import type { AttnState } from '../kernel/kernel.js';
import { referenceAttention } from '../kernel/reference.js';
import { MaskGrid } from '../mask/grid.js';
import { maskView } from '../mask/view.js';
import type { Env } from '../strategy/common.js';
import { NO_TRACE } from '../strategy/types.js';
import { asF64, relError } from '../tensor/host.js';
import { checkPasses, type GpuCheck, type GpuShape } from './gpu.js';

/** `mask` is each request's mask over its P + T tokens. */
export interface GpuInferProblem extends GpuShape {
  mode: 'decode' | 'prefill';
  /** prefill only */
  pass: PassKind;
  /** cached tokens, new tokens, requests */
  P: number;
  T: number;
  B: number;
}

export interface GpuInferCheck {
  /** the step's rows against the f64 reference (or, past what the host can afford, against one kernel call) */
  errors: { out: number; lse: number };
  against: 'f64 reference' | 'one kernel call over the whole sequence';
  /** one kernel call over each request's whole sequence against the f64 reference */
  singleVsRef?: { out: number; lse: number };
  /** the step against that kernel call */
  vsSingle: { out: number; lse: number };
  tolerance: number;
  ok: boolean;
}

export interface GpuInferResult {
  world: number;
  capacity: number;
  cacheBytesPerRank: number;
  /** per timed iteration: the slowest rank's step, ms */
  stepMs: number[];
  perRank: { rank: number; stepMs: number[]; peakBytes: number }[];
  check?: GpuInferCheck;
}

/** Seeds of the global q, k, v tensors (the cache rows and the new rows are rows of them). */
const SEEDS = { q: 1, k: 2, v: 3 } as const;
/** The f64 reference runs on the host in JS over whole [S, H, D] arrays: only where that takes seconds and a few hundred MB. */
const REFERENCE_FLOP_LIMIT = 2e10;
const REFERENCE_ELEMENT_LIMIT = 2 ** 24;
/** Where no reference is affordable: the step against one kernel call (the GPU runs' vsSingle bound). */
const VS_SINGLE = 2e-2;

const iota = (n: number, from = 0): Int32Array => Int32Array.from({ length: n }, (_, i) => from + i);

/** Rows every rank reserves: each request stays balanced within one row per rank (CacheMap.place). */
function inferCapacity(world: number, B: number, S: number): number {
  return B * Math.ceil(S / world);
}

class InferRank {
  readonly kernel: CudaKernel;
  readonly random: DeviceRandom;
  readonly map: CacheMap;
  readonly step: TokenPlacement;
  readonly cache: KvCache;
  private readonly q: CudaTensor;
  private readonly k: CudaTensor;
  private readonly v: CudaTensor;
  private readonly env: Env;
  private exchanges = 0;

  constructor(
    readonly world: World,
    readonly p: GpuInferProblem,
  ) {
    const { rt } = world,
      N = world.dist.worldSize,
      me = world.dist.rank,
      S = p.P + p.T;
    this.kernel = new CudaKernel(rt);
    this.random = new DeviceRandom(rt);
    this.map = new CacheMap(N, inferCapacity(N, p.B, S));
    for (let b = 0; b < p.B; b++) this.map.open(S, p.mask);
    if (p.P > 0) this.map.commit(this.map.place(new Array<number>(p.B).fill(p.P)));
    const cached = this.map.positions(me); // the slots an earlier prefill left, before this step's
    this.step = this.map.place(new Array<number>(p.B).fill(p.T));
    this.map.commit(this.step);
    this.cache = new KvCache(rt.device, this.map, me, 1, p.Hkv, p.D, p.dtype);
    // the cached rows by position; the step's slots (still free in `cached`) get theirs from the step's own write
    this.random.rowsInto(this.cache.k[0] as CudaTensor, cached, SEEDS.k);
    this.random.rowsInto(this.cache.v[0] as CudaTensor, cached, SEEDS.v);
    // decode: every rank holds the whole batch's new rows; prefill: its placed rows
    const rows = p.mode === 'decode' ? this.step.pos : this.step.posByRank[me]!;
    this.q = this.random.rows(p.dtype, rows, [p.H, p.D], SEEDS.q);
    this.k = this.random.rows(p.dtype, rows, [p.Hkv, p.D], SEEDS.k);
    this.v = this.random.rows(p.dtype, rows, [p.Hkv, p.D], SEEDS.v);
    this.env = { kernel: this.kernel, device: rt.device, mask: this.map.grid(), scale: p.scale, trace: NO_TRACE };
  }

  get rank(): number {
    return this.world.dist.rank;
  }

  /** The step: write the new K/V into the cache, attend (collective). */
  async once(): Promise<AttnState> {
    const { p, step, cache, env } = this,
      comm = this.world.comm;
    cache.write(0, step, this.k, this.v, p.mode === 'prefill');
    return p.mode === 'decode'
      ? decode(env, comm, cache, 0, this.q, step.pos)
      : prefill(p.pass, env, comm, cache, 0, this.q, step);
  }

  /** Milliseconds of each timed step on this rank's compute stream, after a barrier. */
  async time(warmup: number, iters: number): Promise<number[]> {
    const rt = this.world.rt;
    const e0 = rt.event(true),
      e1 = rt.event(true),
      ms: number[] = [];
    for (let i = 0; i < warmup + iters; i++) {
      await this.world.comm.barrier();
      e0.record(rt.compute);
      const st = await this.once();
      e1.record(rt.compute);
      await rt.waitEvent(e1);
      if (i >= warmup) ms.push(e1.since(e0));
      for (const t of [st.out, st.lse]) (t as CudaTensor).release();
    }
    e0.destroy();
    e1.destroy();
    return ms;
  }

  /** The step's rows on rank 0, per request: out [T, H, D] and lse [H, T] in f64 (collective). */
  async gathered(): Promise<{ out: Float64Array; lse: Float64Array }[] | undefined> {
    const { p, step } = this,
      rt = this.world.rt,
      comm = this.world.comm,
      N = this.world.dist.worldSize;
    const st = await this.once();
    // decode: every rank holds every row; prefill: rank r holds step.byRank[r]
    const parts: { idx: Int32Array; out: Float64Array; lse: Float64Array }[] = [];
    if (p.mode === 'decode' || N === 1) {
      if (this.rank === 0)
        parts.push({
          idx: p.mode === 'decode' ? iota(step.pos.length) : step.byRank[0]!,
          out: asF64(await rt.device.download(st.out)),
          lse: asF64(await rt.device.download(st.lse)),
        });
    } else if (this.rank !== 0) {
      await comm.sendRecv([{ send: { buf: st.out, peer: 0 } }, { send: { buf: st.lse, peer: 0 } }]).wait();
      await rt.synchronize();
    } else {
      parts.push({
        idx: step.byRank[0]!,
        out: asF64(await rt.device.download(st.out)),
        lse: asF64(await rt.device.download(st.lse)),
      });
      for (let r = 1; r < N; r++) {
        const n = step.byRank[r]!.length;
        const out = rt.device.empty('f32', [n, p.H, p.D]),
          lse = rt.device.empty('f32', [p.H, n]);
        await comm.sendRecv([{ recv: { buf: out, peer: r } }, { recv: { buf: lse, peer: r } }]).wait();
        parts.push({
          idx: step.byRank[r]!,
          out: asF64(await rt.device.download(out)),
          lse: asF64(await rt.device.download(lse)),
        });
        out.release();
        lse.release();
      }
    }
    for (const t of [st.out, st.lse]) (t as CudaTensor).release();
    await comm.barrier();
    if (this.rank !== 0) return undefined;
    const HD = p.H * p.D;
    const res = Array.from({ length: p.B }, () => ({
      out: new Float64Array(p.T * HD),
      lse: new Float64Array(p.H * p.T),
    }));
    for (const part of parts) {
      const n = part.idx.length;
      part.idx.forEach((t, i) => {
        const pos = step.pos[t]!,
          b = this.map.requestOf(pos),
          j = pos - this.map.requests[b]!.base - p.P;
        res[b]!.out.set(part.out.subarray(i * HD, (i + 1) * HD), j * HD);
        for (let h = 0; h < p.H; h++) res[b]!.lse[h * p.T + j] = part.lse[h * n + i]!;
      });
    }
    return res;
  }

  /** Rank 0: the step's rows against one kernel call over each whole request and (small problems) the f64 reference. */
  async check(got: { out: Float64Array; lse: Float64Array }[]): Promise<GpuInferCheck> {
    const { p } = this,
      dev = this.world.rt.device,
      S = p.P + p.T,
      HD = p.H * p.D;
    const grid = MaskGrid.build(p.mask, S);
    const withRef = 4 * p.B * p.T * S * HD <= REFERENCE_FLOP_LIMIT && S * HD <= REFERENCE_ELEMENT_LIMIT;
    const rowsOf = (out: Float64Array, lse: Float64Array): { out: Float64Array; lse: Float64Array } => {
      const l = new Float64Array(p.H * p.T);
      for (let h = 0; h < p.H; h++) l.set(lse.subarray(h * S + p.P, h * S + S), h * p.T);
      return { out: out.slice(p.P * HD, S * HD), lse: l };
    };
    const single: { out: Float64Array; lse: Float64Array }[] = [],
      ref: { out: Float64Array; lse: Float64Array }[] = [];
    for (let b = 0; b < p.B; b++) {
      const pos = iota(S, this.map.requests[b]!.base);
      const q = this.random.rows(p.dtype, pos, [p.H, p.D], SEEDS.q),
        k = this.random.rows(p.dtype, pos, [p.Hkv, p.D], SEEDS.k),
        v = this.random.rows(p.dtype, pos, [p.Hkv, p.D], SEEDS.v);
      const st = this.kernel.forward({ q, k, v, view: maskView(grid, iota(S), iota(S)), scale: p.scale });
      // only the new rows come to the host
      const out = dev.empty('f32', [p.T, p.H, p.D]),
        lse = dev.empty('f32', [p.H, p.T]);
      dev.copyBox(st.out, out, { src: [p.P, 0], dst: [0, 0], size: [p.T, p.H] });
      dev.copyBox(st.lse, lse, { src: [0, p.P], dst: [0, 0], size: [p.H, p.T] });
      single.push({ out: asF64(await dev.download(out)), lse: asF64(await dev.download(lse)) });
      out.release();
      lse.release();
      if (withRef) {
        const r = referenceAttention(
          await dev.download(q),
          await dev.download(k),
          await dev.download(v),
          grid,
          p.scale,
          undefined,
          [p.P, S],
        );
        ref.push(rowsOf(asF64(r.out), asF64(r.lse)));
      }
      for (const t of [q, k, v, st.out, st.lse]) (t as CudaTensor).release();
    }
    const cat = (xs: { out: Float64Array; lse: Float64Array }[], f: 'out' | 'lse'): Float64Array => {
      const all = new Float64Array(xs.reduce((a, x) => a + x[f].length, 0));
      let at = 0;
      for (const x of xs) {
        all.set(x[f], at);
        at += x[f].length;
      }
      return all;
    };
    const err = (
      a: { out: Float64Array; lse: Float64Array }[],
      w: { out: Float64Array; lse: Float64Array }[],
    ): { out: number; lse: number } => ({
      out: relError(cat(a, 'out'), cat(w, 'out')),
      lse: relError(cat(a, 'lse'), cat(w, 'lse')),
    });
    const vsSingle = err(got, single);
    if (!withRef) {
      const ok = vsSingle.out <= VS_SINGLE && vsSingle.lse <= VS_SINGLE;
      return {
        errors: vsSingle,
        against: 'one kernel call over the whole sequence',
        vsSingle,
        tolerance: VS_SINGLE,
        ok,
      };
    }
    const errors = err(got, ref),
      singleVsRef = err(single, ref);
    const c: GpuCheck = { vsSingle, cpVsRef: errors, singleVsRef };
    // the bound of the GPU runs (checkPasses): within 1.5× one kernel call's error + 1e-3 of the reference
    const tolerance = 1.5 * Math.max(singleVsRef.out, singleVsRef.lse) + 1e-3;
    return { errors, against: 'f64 reference', singleVsRef, vsSingle, tolerance, ok: checkPasses(c) };
  }

  /** Every rank's JSON value, on rank 0 (through the rendezvous store). */
  async gatherJson<T>(what: string, value: T): Promise<T[] | undefined> {
    const store = this.world.store,
      key = `weft/infer/${what}/${this.exchanges++}`;
    await store.set(`${key}/${this.rank}`, JSON.stringify(value));
    if (this.rank !== 0) return undefined;
    const out: T[] = [];
    for (let r = 0; r < this.world.dist.worldSize; r++) out.push(JSON.parse(await store.getString(`${key}/${r}`)) as T);
    return out;
  }

  release(): void {
    for (const t of [this.q, this.k, this.v, this.cache.k[0]!, this.cache.v[0]!]) (t as CudaTensor).release();
  }
}

/** This process's rank of the run; rank 0 gets the result, the others undefined (collective). */
export async function runInferGpu(
  p: GpuInferProblem,
  o: { warmup: number; iters: number; check: boolean; log?: (line: string) => void },
): Promise<GpuInferResult | undefined> {
  const world = await ncclWorld();
  const N = world.dist.worldSize,
    lead = world.dist.rank === 0;
  world.rt.allocator.resetPeak();
  const r = new InferRank(world, p);
  let check: GpuInferCheck | undefined;
  if (o.check) {
    const got = await r.gathered();
    if (got) check = await r.check(got);
    await world.comm.barrier();
    if (lead) o.log?.(`check done; timing ${o.warmup} warm-up + ${o.iters} steps`);
  }
  const mine = { rank: r.rank, stepMs: await r.time(o.warmup, o.iters), peakBytes: 0 };
  mine.peakBytes = world.rt.allocator.stats().peakAllocated;
  r.release();
  const all = await r.gatherJson('timing', mine);
  await world.comm.destroy();
  world.store.close();
  if (!all) return undefined;
  return {
    world: N,
    capacity: r.map.capacity,
    cacheBytesPerRank: cacheBytes(r.map.capacity, 1, p.Hkv, p.D, p.dtype),
    stepMs: mine.stepMs.map((_, i) => Math.max(...all.map((x) => x.stepMs[i]!))),
    perRank: all,
    check,
  };
}
