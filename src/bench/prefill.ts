// `weft bench prefill`: a prefill of T new tokens onto P cached ones on one GPU, against the
// causal rate of weft's own flash kernel measured in the same run. Three timings per shape:
//   causal    one forward over the whole causal square of P + T tokens: the kernel's causal rate
//   rows      one forward of the last T rows of that square against all P + T keys (the same
//             kernel on the prefill's area, without the cache)
//   pass-kv, pass-q
//             the prefill step of src/infer on a cache of one rank: the new K/V written into the
//             cache, then the new rows attended to it (a group of one sends nothing, so both
//             passes are one kernel call; they differ in the state they start from)
// The target is the step's time over the prefill area priced at the causal rate: ratio =
// t_step / (t_causal · area_prefill / area_causal). The cache's K/V and the new rows are random
// rows drawn on the GPU by global position, so the rows call and the step see the same numbers.
import { DryComm } from '../backends/dry/comm.js';
import { CudaKernel } from '../backends/cuda/kernel/kernel.js';
import { DeviceRandom } from '../backends/cuda/kernel/random.js';
import { openCuda } from '../backends/cuda/runtime/runtime.js';
import type { CudaTensor } from '../backends/cuda/runtime/tensor.js';
import { type PassKind, prefill } from '../infer/attend.js';
import { CacheMap, KvCache } from '../infer/cache.js';
import { attentionFlops } from '../kernel/flops.js';
import { type AttnState, defaultScale } from '../kernel/kernel.js';
import { MaskGrid } from '../mask/grid.js';
import { maskView } from '../mask/view.js';
import type { Env } from '../strategy/common.js';
import { NO_TRACE } from '../strategy/types.js';
import { type BenchRecord, makeRecord, summarize, writeRecords } from './record.js';

export interface PrefillBenchOptions {
  /** cached tokens (default 122880 = 120K) and new tokens (default 8192) */
  contexts?: readonly number[];
  newTokens?: readonly number[];
  heads?: number;
  kvHeads?: number;
  headDim?: 64 | 128;
  dtype?: 'bf16' | 'f16';
  iters?: number;
  warmup?: number;
  /** default 'bench/results'; null: do not write */
  outDir?: string | null;
  log?: (line: string) => void;
}

const iota = (n: number, from = 0): Int32Array => Int32Array.from({ length: n }, (_, i) => from + i);
const SEEDS = { q: 1, k: 2, v: 3 } as const;

export async function benchPrefill(o: PrefillBenchOptions = {}): Promise<BenchRecord[]> {
  const log = o.log ?? ((l: string) => process.stdout.write(l + '\n'));
  const H = o.heads ?? 32,
    Hkv = o.kvHeads ?? 8,
    D = o.headDim ?? 128,
    dtype = o.dtype ?? 'bf16',
    scale = defaultScale(D);
  const warmup = o.warmup ?? 2,
    iters = o.iters ?? 5;
  const rt = await openCuda();
  const kernel = new CudaKernel(rt),
    rand = new DeviceRandom(rt);
  log(
    `weft bench prefill on ${rt.info.name} (${rt.info.sms} SMs, NVRTC ${rt.info.nvrtcVersion}): H=${H} Hkv=${Hkv} D=${D} ${dtype}, causal`,
  );
  const e0 = rt.event(true),
    e1 = rt.event(true);
  const time = async (once: () => Promise<AttnState> | AttnState): Promise<number[]> => {
    const ms: number[] = [];
    for (let i = 0; i < warmup + iters; i++) {
      e0.record(rt.compute);
      const st = await once();
      e1.record(rt.compute);
      await rt.waitEvent(e1);
      if (i >= warmup) ms.push(e1.since(e0));
      for (const t of [st.out, st.lse]) (t as CudaTensor).release();
    }
    return ms;
  };
  const records: BenchRecord[] = [];
  for (const P of o.contexts ?? [122880]) {
    for (const T of o.newTokens ?? [8192]) {
      const S = P + T;
      const grid = MaskGrid.build({ kind: 'causal' }, S);
      const causalArea = grid.area(),
        rowsArea = grid.area(P, S, 0, S);
      const config = { P, T, B: 1, H, Hkv, D, dtype, mask: 'causal' };
      const extra = { warmup, gpu: rt.info.name, nvrtc: rt.info.nvrtcVersion };
      const all = iota(S);
      const q = rand.rows(dtype, all, [H, D], SEEDS.q),
        k = rand.rows(dtype, all, [Hkv, D], SEEDS.k),
        v = rand.rows(dtype, all, [Hkv, D], SEEDS.v);
      const causal = await time(() => kernel.forward({ q, k, v, view: maskView(grid, all, all), scale }));
      q.release();
      const tCausal = summarize(causal).median;
      const causalTflops = attentionFlops(causalArea, H, D, 'fwd') / (tCausal * 1e-3) / 1e12;
      /** the prefill area priced at the causal rate (ms) */
      const priced = (tCausal * rowsArea) / causalArea;
      const add = (name: string, samples: number[], more: Record<string, unknown> = {}): void => {
        const med = summarize(samples).median;
        const tflops = attentionFlops(name === 'causal' ? causalArea : rowsArea, H, D, 'fwd') / (med * 1e-3) / 1e12;
        const ratio = name === 'causal' ? 1 : med / priced;
        log(
          `  ${name.padEnd(8)} P=${P} T=${T}: median ${med.toFixed(3)} ms (p10 ${summarize(samples).p10.toFixed(3)}, p90 ${summarize(samples).p90.toFixed(3)}), ${tflops.toFixed(1)} TFLOP/s` +
            (name === 'causal'
              ? ''
              : `, ${ratio.toFixed(3)} × the prefill area at the causal rate (${priced.toFixed(3)} ms)`),
        );
        records.push(
          makeRecord(
            'prefill',
            `weft-${name}`,
            { ...config, ...more },
            'ms',
            samples,
            { tflops, ratioToCausalRate: ratio, pricedMs: priced, causalTflops },
            extra,
          ),
        );
      };
      add('causal', causal, { S });
      // the last T rows of the square: the kernel alone on the prefill's area
      const newPos = iota(T, P);
      const qRows = rand.rows(dtype, newPos, [H, D], SEEDS.q);
      add('rows', await time(() => kernel.forward({ q: qRows, k, v, view: maskView(grid, newPos, all), scale })));
      k.release();
      v.release();
      // the step on a cache of one rank: P cached rows, then T new ones written and attended
      const map = new CacheMap(1, S);
      map.open(S, { kind: 'causal' });
      if (P > 0) map.commit(map.place([P]));
      const cached = map.positions(0);
      const step = map.place([T]);
      map.commit(step);
      const cache = new KvCache(rt.device, map, 0, 1, Hkv, D, dtype);
      rand.rowsInto(cache.k[0] as CudaTensor, cached, SEEDS.k);
      rand.rowsInto(cache.v[0] as CudaTensor, cached, SEEDS.v);
      const kNew = rand.rows(dtype, newPos, [Hkv, D], SEEDS.k),
        vNew = rand.rows(dtype, newPos, [Hkv, D], SEEDS.v);
      const env: Env = { kernel, device: rt.device, mask: map.grid(), scale, trace: NO_TRACE };
      const alone = new DryComm(0, 1); // a group of one: the ring has no hops, nothing is sent
      for (const pass of ['kv', 'q'] as PassKind[]) {
        add(
          `pass-${pass}`,
          await time(() => {
            cache.write(0, step, kNew, vNew, true);
            return prefill(pass, env, alone, cache, 0, qRows, step);
          }),
        );
      }
      for (const t of [qRows, kNew, vNew, cache.k[0]!, cache.v[0]!]) (t as CudaTensor).release();
      rt.allocator.emptyCache();
    }
  }
  e0.destroy();
  e1.destroy();
  if (o.outDir !== null && records.length > 0) log(`records: ${writeRecords(o.outDir ?? 'bench/results', records)}`);
  return records;
}
