// The program every worker rank runs for runInference: build the CPU kernel and device, open the
// requests in a replicated CacheMap, reserve this rank's cache, then play the script of prefill
// and decode steps, handing back each step's results (prefill: this rank's rows; decode: every
// row, the same on every rank) and the counts.
import type { Comm } from '../comm/comm.js';
import { CpuDevice } from '../backends/cpu/device.js';
import { CpuKernel } from '../backends/cpu/kernel.js';
import type { MaskSpec } from '../mask/spec.js';
import { CommLog, CountingComm, CountingKernel, MeteredDevice, type StepCount } from '../strategy/accounting.js';
import type { Env } from '../strategy/common.js';
import type { HostTensor } from '../tensor/host.js';
import { decode, type PassKind, pickRows, prefill } from './attend.js';
import { CacheMap, KvCache } from './cache.js';

/** fill: write cached K/V without attending (a context cached earlier); prefill; decode */
export type StepKind = 'fill' | 'prefill' | 'decode';

export interface InferStep {
  kind: StepKind;
  /** prefill: which pass */
  pass?: PassKind;
  /** new tokens per request */
  counts: number[];
}

/** A step with its inputs: the new rows of every request, request after request ([Tstep, …], shared memory). */
export interface StepInputs extends InferStep {
  q: HostTensor;
  k: HostTensor;
  v: HostTensor;
}

export interface InferTask {
  capacity: number;
  kvHeads: number;
  headDim: number;
  dtype: 'f64' | 'f32';
  scale: number;
  requests: { limit: number; mask: MaskSpec }[];
  steps: StepInputs[];
}

export interface InferRankOutput {
  steps: { out: HostTensor; lse: HostTensor; ms: number; area: number; comm: StepCount[] }[];
  computeMs: number;
  peakHeldBytes: number;
}

/** Several tasks on one launch (starting workers costs more than a small task). */
export async function inferMain(comm: Comm, tasks: readonly InferTask[]): Promise<InferRankOutput[]> {
  const outputs: InferRankOutput[] = [];
  for (const t of tasks) outputs.push(await runTask(comm, t));
  return outputs;
}

async function runTask(comm: Comm, task: InferTask): Promise<InferRankOutput> {
  const device = new MeteredDevice(new CpuDevice(true));
  const kernel = new CountingKernel(new CpuKernel());
  const me = comm.rank;
  const map = new CacheMap(comm.size, task.capacity);
  for (const r of task.requests) map.open(r.limit, r.mask);
  const cache = new KvCache(device, map, me, 1, task.kvHeads, task.headDim, task.dtype);
  const steps: InferRankOutput['steps'] = [];
  for (const s of task.steps) {
    const p = map.place(s.counts);
    map.commit(p);
    const log = new CommLog();
    const env: Env = { kernel, device, mask: map.grid(), scale: task.scale, trace: log };
    const cc = new CountingComm(comm, log);
    const area0 = kernel.count.area;
    await comm.barrier();
    const t0 = performance.now();
    let state;
    if (s.kind === 'fill') {
      const mine = p.byRank[me]!,
        k = pickRows(device, s.k, mine),
        v = pickRows(device, s.v, mine);
      cache.write(0, p, k, v, true);
      device.release(k);
      device.release(v);
      const H = s.q.shape[1]!;
      state = { out: device.zeros(task.dtype, [0, H, task.headDim]), lse: device.zeros(task.dtype, [H, 0]) };
    } else if (s.kind === 'decode') {
      cache.write(0, p, s.k, s.v);
      state = await decode(env, cc, cache, 0, s.q, p.pos);
    } else {
      const mine = p.byRank[me]!;
      const k = pickRows(device, s.k, mine),
        v = pickRows(device, s.v, mine),
        q = pickRows(device, s.q, mine);
      cache.write(0, p, k, v, true);
      device.release(k);
      device.release(v);
      state = await prefill(s.pass ?? 'kv', env, cc, cache, 0, q, p);
    }
    const ms = performance.now() - t0;
    steps.push({
      out: await device.download(state.out),
      lse: await device.download(state.lse),
      ms,
      area: kernel.count.area - area0,
      comm: log.list(),
    });
  }
  return { steps, computeMs: kernel.count.ms, peakHeldBytes: device.peak };
}
