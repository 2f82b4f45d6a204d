// `weft launch -n N -- bench decode`: the decode step of the sharded KV cache (src/infer) on the
// job's GPUs. Each rank holds its part of every sequence's cache (CacheMap's balanced placement:
// a prefill of P tokens per sequence, then one step of T new tokens), attends the whole batch's
// new queries to it with the CUDA kernel — the split-K decode kernel for these views — and one
// all-gather of the partial (out, lse) merges them (infer/attend.ts decode). Timed like the
// one-GPU bench: back-to-back steps after warm-up, rank 0's clock after a barrier (the exchange
// waits for the slowest rank); bytes are the K/V of all ranks' caches. The cache's K/V are
// random rows drawn on each GPU by global position; free slots hold finite values.
import { CudaKernel } from '../backends/cuda/kernel/kernel.js';
import { DeviceRandom } from '../backends/cuda/kernel/random.js';
import { ncclWorld } from '../backends/cuda/nccl/world.js';
import type { CudaTensor } from '../backends/cuda/runtime/tensor.js';
import { decode } from '../infer/attend.js';
import { CacheMap, KvCache } from '../infer/cache.js';
import { defaultScale } from '../kernel/kernel.js';
import type { Env } from '../strategy/common.js';
import { NO_TRACE } from '../strategy/types.js';
import { decodeBytes, type DecodeBenchOptions, repsFor } from './decode.js';
import { appendRecords, type BenchRecord, makeRecord, recordFile, summarize } from './record.js';

export async function benchDecodeCache(o: DecodeBenchOptions = {}): Promise<BenchRecord[]> {
  const world = await ncclWorld();
  const { rt, comm } = world,
    N = world.dist.worldSize,
    lead = world.dist.rank === 0;
  const log = (l: string): void => {
    if (lead) (o.log ?? ((x: string) => process.stdout.write(x + '\n')))(l);
  };
  const batches = o.batches ?? [1, 4, 16],
    contexts = o.contexts ?? [32768, 131072, 1048576],
    news = o.newTokens ?? [1, 4, 8];
  const H = o.heads ?? 32,
    Hkv = o.kvHeads ?? 8,
    D = o.headDim ?? 128,
    dtype = o.dtype ?? 'bf16',
    scale = defaultScale(D);
  const warmup = o.warmup ?? 3,
    iters = o.iters ?? 20;
  log(`weft bench decode over the sharded KV cache: ${N} × ${rt.info.name}, H=${H} Hkv=${Hkv} D=${D} ${dtype}`);
  const kernel = new CudaKernel(rt),
    rand = new DeviceRandom(rt);
  const records: BenchRecord[] = [];
  const file = o.outDir === null ? undefined : recordFile(o.outDir ?? 'bench/results', 'decode');
  const t0 = rt.event(true),
    t1 = rt.event(true);
  for (const P of contexts) {
    for (const B of batches) {
      for (const T of news) {
        const capacity = Math.ceil((B * (P + T)) / N) + B * T; // balanced placement, with room for rounding
        const need = 2 * capacity * Hkv * D * 2;
        rt.allocator.emptyCache();
        if (need > 0.9 * rt.memInfo().free) {
          log(
            `  B=${B} P=${P} T=${T}: skipped, a rank's cache (${(need / 2 ** 30).toFixed(1)} GiB) does not fit its GPU's free memory`,
          );
          continue;
        }
        const map = new CacheMap(N, capacity);
        for (let b = 0; b < B; b++) map.open(P + T, { kind: 'causal' });
        map.commit(map.place(new Array<number>(B).fill(P)));
        const step = map.place(new Array<number>(B).fill(T));
        map.commit(step);
        const cache = new KvCache(rt.device, map, world.dist.rank, 1, Hkv, D, dtype);
        rand.rowsInto(cache.k[0] as CudaTensor, cache.positions, 2);
        rand.rowsInto(cache.v[0] as CudaTensor, cache.positions, 3);
        const q = rand.tensor(dtype, [B * T, H, D], 1);
        const env: Env = { kernel, device: rt.device, mask: map.grid(), scale, trace: NO_TRACE };
        const once = async (): Promise<void> => {
          const st = await decode(env, comm, cache, 0, q, step.pos);
          (st.out as CudaTensor).release();
          (st.lse as CudaTensor).release();
        };
        const bytes = decodeBytes({ B, P, T, Hkv, D }),
          reps = repsFor(bytes / N);
        for (let i = 0; i < warmup * reps; i++) await once();
        const samples: number[] = [];
        for (let i = 0; i < iters; i++) {
          await comm.barrier();
          t0.record(rt.compute);
          for (let j = 0; j < reps; j++) await once();
          t1.record(rt.compute);
          await rt.waitEvent(t1);
          samples.push(t1.since(t0) / reps);
        }
        for (const t of [q, cache.k[0]!, cache.v[0]!]) (t as CudaTensor).release();
        const med = summarize(samples).median,
          GBps = bytes / (med * 1e-3) / 1e9;
        log(
          `  weft-cache  B=${B} P=${P} T=${T}: median ${med.toFixed(3)} ms per step, ${(GBps / 1000).toFixed(2)} TB/s over ${N} GPU${N > 1 ? 's' : ''} (${(GBps / N / 1000).toFixed(2)} per GPU)`,
        );
        const r = makeRecord(
          'decode',
          'weft-cache',
          { B, P, T, H, Hkv, D, dtype, world: N },
          'ms',
          samples,
          { GBps, GBpsPerGpu: GBps / N },
          { warmup, reps, capacity, gpu: rt.info.name },
        );
        records.push(r);
        if (lead && file) appendRecords(file, [r]);
      }
    }
  }
  await comm.destroy();
  world.store.close();
  if (lead && file && records.length) log(`records: ${file}`);
  return lead ? records : [];
}
