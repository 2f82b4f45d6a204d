// The host-side runner for inference on CPU ranks: whole request sequences in, a script of prefill
// and decode steps, every token's output out. The host keeps its own copy of the CacheMap (the
// same deterministic placement the ranks compute), so a step that does not fit fails here, before
// any rank starts, and the ranks' rows go back to their requests by position.
import { runRanks, type RanksOptions } from '../backends/cpu/comm/launch.js';
import { UserError } from '../errors.js';
import type { MaskSpec } from '../mask/spec.js';
import { castHost, fmtShape, type HostTensor, hostZeros } from '../tensor/host.js';
import { CacheMap, cacheBytes, type TokenPlacement } from './cache.js';
import type { InferRankOutput, InferStep, InferTask, StepInputs } from './rank.js';

export interface InferRequestInput {
  mask: MaskSpec;
  /** the request's whole sequence: q [L, H, D], k/v [L, Hkv, D]; the script feeds its rows in order */
  q: HostTensor;
  k: HostTensor;
  v: HostTensor;
}

export interface InferProblem {
  world: number;
  /** rows each rank reserves; default: the most any rank needs for this script */
  capacity?: number;
  dtype: 'f64' | 'f32';
  scale: number;
  requests: InferRequestInput[];
  steps: InferStep[];
}

export interface InferStepStats {
  kind: InferStep['kind'];
  pass?: InferStep['pass'];
  counts: number[];
  /** the slowest rank (after a barrier) */
  ms: number;
  perRank: { rank: number; area: number; messages: number; bytesSent: number; bytesReceived: number }[];
}

export interface InferResult {
  /** per request: out [L, H, D] and lse [H, L] for every token a prefill or decode step attended (in the run's dtype; rows of fill steps stay 0 and −∞) */
  outs: { out: HostTensor; lse: HostTensor }[];
  steps: InferStepStats[];
  /** every rank returned bit-identical decode results */
  decodeAgree: boolean;
  capacity: number;
  cacheBytesPerRank: number;
  peakHeldBytes: number[];
}

const PROGRAM = { module: new URL('./rank.js', import.meta.url), fn: 'inferMain' };

function dims(p: InferProblem): { H: number; Hkv: number; D: number } {
  const r0 = p.requests[0];
  if (!r0) throw new UserError('no requests');
  const [, H, D] = r0.q.shape as [number, number, number];
  const Hkv = r0.k.shape[1]!;
  p.requests.forEach((r, b) => {
    const L = r.q.shape[0]!;
    const bad = (t: HostTensor, want: number[]): boolean => fmtShape(t.shape) !== fmtShape(want);
    if (bad(r.q, [L, H, D]) || bad(r.k, [L, Hkv, D]) || bad(r.v, [L, Hkv, D]))
      throw new UserError(
        `request ${b}: q ${fmtShape(r.q.shape)}, k ${fmtShape(r.k.shape)}, v ${fmtShape(r.v.shape)} do not match [L, ${H}, ${D}] and [L, ${Hkv}, ${D}]`,
      );
  });
  if (H % Hkv !== 0) throw new UserError(`heads ${H} must be a multiple of kv heads ${Hkv}`);
  return { H, Hkv, D };
}

/** Placements of the whole script on a map of the given capacity (throws the cache's UserError when it does not fit). */
function planScript(
  world: number,
  capacity: number,
  problem: InferProblem,
  limits: number[],
): { map: CacheMap; placements: TokenPlacement[] } {
  const map = new CacheMap(world, capacity);
  problem.requests.forEach((r, b) => map.open(limits[b]!, r.mask));
  const placements = problem.steps.map((s) => {
    const p = map.place(s.counts);
    map.commit(p);
    return p;
  });
  return { map, placements };
}

/** The most rows any rank holds at the end of the script, placed on an unbounded cache. */
function rowsNeeded(world: number, problem: InferProblem, limits: number[]): number {
  const total = limits.reduce((a, b) => a + b, 0);
  const { map } = planScript(world, Math.max(1, total), problem, limits);
  return Math.max(1, ...Array.from({ length: world }, (_, r) => map.usedRows(r)));
}

/** One problem on `problem.world` CPU ranks. */
export async function runInference(problem: InferProblem, options: RanksOptions = {}): Promise<InferResult> {
  return (await runInferenceBatch([problem], options))[0]!;
}

/** Several problems of one world size on one launch of the ranks. */
export async function runInferenceBatch(
  problems: readonly InferProblem[],
  options: RanksOptions = {},
): Promise<InferResult[]> {
  if (problems.length === 0) return [];
  const world = problems[0]!.world;
  if (problems.some((p) => p.world !== world)) throw new Error('runInferenceBatch: one world size per batch');
  const prepared = problems.map(prepareInference);
  const perRank = await runRanks<InferRankOutput[]>(world, PROGRAM, () => prepared.map((p) => p.task), options);
  return prepared.map((p, i) => p.finish(perRank.map((o) => o[i]!)));
}

export interface Prepared {
  task: InferTask;
  finish(outs: InferRankOutput[]): InferResult;
}

/** The ranks' task of a problem (checked; a step that does not fit throws here), and how their outputs become the result. */
export function prepareInference(problem: InferProblem): Prepared {
  const { world } = problem;
  const { H, Hkv, D } = dims(problem);
  const B = problem.requests.length;
  for (const s of problem.steps)
    if (s.counts.length !== B) throw new UserError(`a ${s.kind} step has ${s.counts.length} counts for ${B} requests`);
  const limits = problem.requests.map((_, b) => problem.steps.reduce((a, s) => a + s.counts[b]!, 0));
  limits.forEach((l, b) => {
    const L = problem.requests[b]!.q.shape[0]!;
    if (l > L) throw new UserError(`request ${b}: the script feeds ${l} tokens, its sequence has ${L}`);
    if (l === 0) throw new UserError(`request ${b}: the script feeds it no tokens`);
  });
  const capacity = problem.capacity ?? rowsNeeded(world, problem, limits);
  const { map, placements } = planScript(world, capacity, problem, limits);

  const cast = problem.requests.map((r) => ({
    q: castHost(r.q, problem.dtype),
    k: castHost(r.k, problem.dtype),
    v: castHost(r.v, problem.dtype),
  }));
  const fed = new Array<number>(B).fill(0);
  const steps: StepInputs[] = problem.steps.map((s) => {
    const total = s.counts.reduce((a, b) => a + b, 0);
    const rows = (name: 'q' | 'k' | 'v', heads: number): HostTensor => {
      const t = hostZeros(problem.dtype, [total, heads, D], true);
      let at = 0;
      s.counts.forEach((c, b) => {
        const src = cast[b]![name].data,
          w = heads * D;
        t.data.set(src.subarray(fed[b]! * w, (fed[b]! + c) * w) as never, at * w);
        at += c;
      });
      return t;
    };
    const inputs = { ...s, counts: [...s.counts], q: rows('q', H), k: rows('k', Hkv), v: rows('v', Hkv) };
    s.counts.forEach((c, b) => {
      fed[b] = fed[b]! + c;
    });
    return inputs;
  });
  const task: InferTask = {
    capacity,
    kvHeads: Hkv,
    headDim: D,
    dtype: problem.dtype,
    scale: problem.scale,
    requests: problem.requests.map((r, b) => ({ limit: limits[b]!, mask: r.mask })),
    steps,
  };
  return { task, finish: (outs) => gather(problem, map, placements, limits, capacity, { H, Hkv, D }, outs) };
}

/** Every rank's step results back into per-request outputs, and the step counts. */
function gather(
  problem: InferProblem,
  map: CacheMap,
  placements: TokenPlacement[],
  limits: number[],
  capacity: number,
  { H, Hkv, D }: { H: number; Hkv: number; D: number },
  outs: InferRankOutput[],
): InferResult {
  const result = problem.requests.map((_, b) => ({
    out: hostZeros(problem.dtype, [limits[b]!, H, D]),
    lse: hostZeros(problem.dtype, [H, limits[b]!]),
  }));
  result.forEach((r) => r.lse.data.fill(-Infinity));
  let decodeAgree = true;
  const put = (
    p: TokenPlacement,
    t: number,
    src: { out: HostTensor; lse: HostTensor },
    row: number,
    Tsrc: number,
  ): void => {
    const pos = p.pos[t]!,
      b = map.requestOf(pos),
      i = pos - map.requests[b]!.base,
      L = limits[b]!;
    const dst = result[b]!;
    dst.out.data.set(src.out.data.subarray(row * H * D, (row + 1) * H * D) as never, i * H * D);
    for (let h = 0; h < H; h++) dst.lse.data[h * L + i] = src.lse.data[h * Tsrc + row]!;
  };
  problem.steps.forEach((s, k) => {
    const p = placements[k]!;
    if (s.kind === 'fill') return; // cached without attention: no outputs
    if (s.kind === 'decode') {
      const first = outs[0]!.steps[k]!;
      const same = (a: HostTensor, b: HostTensor): boolean => a.data.every((x, i) => Object.is(x, b.data[i]));
      decodeAgree &&= outs.every((o) => same(o.steps[k]!.out, first.out) && same(o.steps[k]!.lse, first.lse));
      for (let t = 0; t < p.pos.length; t++) put(p, t, first, t, p.pos.length);
    } else {
      outs.forEach((o, r) => {
        const rows = p.byRank[r]!;
        rows.forEach((t, i) => put(p, t, o.steps[k]!, i, rows.length));
      });
    }
  });
  const stepStats: InferStepStats[] = problem.steps.map((s, k) => ({
    kind: s.kind,
    pass: s.kind === 'prefill' ? (s.pass ?? 'kv') : undefined,
    counts: [...s.counts],
    ms: Math.max(...outs.map((o) => o.steps[k]!.ms)),
    perRank: outs.map((o, rank) => {
      const c = o.steps[k]!.comm.reduce(
        (a, x) => ({
          messages: a.messages + x.messages,
          bytesSent: a.bytesSent + x.bytesSent,
          bytesReceived: a.bytesReceived + x.bytesReceived,
        }),
        { messages: 0, bytesSent: 0, bytesReceived: 0 },
      );
      return { rank, area: o.steps[k]!.area, ...c };
    }),
  }));
  return {
    outs: result,
    steps: stepStats,
    decodeAgree,
    capacity,
    cacheBytesPerRank: cacheBytes(capacity, 1, Hkv, D, problem.dtype),
    peakHeldBytes: outs.map((o) => o.peakHeldBytes),
  };
}
