// Exact attention on host arrays: the library's `attention` and the `solve` step that `weft attn`
// shares with it. Both validate through problemFrom (the file contract: shapes, GQA, batch,
// cu_seqlens, the mask language), run one rank or a context-parallel layout on CPU ranks, and
// unpack the results to the input's layout, so a call and a file give the same numbers.
import { UserError } from '../errors.js';
import { attendSingle } from '../kernel/attend.js';
import { CpuKernel } from '../backends/cpu/kernel.js';
import { defaultScale } from '../kernel/kernel.js';
import { type AttnOutputs, type AttnProblem, problemFrom, unpackOutputs } from '../io/problem.js';
import type { StData, StDType, StTensor } from '../io/safetensors.js';
import { type Layout, runDistributed, validateLayout } from '../run/index.js';
import type { NonFinite } from '../kernel/finite.js';
import type { HostTensor } from '../tensor/host.js';

/** A tensor given by the caller: row-major data and its shape (a safetensors tensor also fits; integer data is refused). */
export interface InputTensor {
  data: Float64Array | Float32Array | Uint16Array | StData;
  shape: readonly number[];
  /** only for 16-bit data (BF16 or F16), as readSafetensors gives it */
  dtype?: StDType;
}

export interface AttentionInput {
  /** [S,H,D] or [B,S,H,D] */
  q: InputTensor;
  /** [S,Hkv,D] or [B,S,Hkv,D]; H a multiple of Hkv (GQA, MQA) */
  k: InputTensor;
  v: InputTensor;
  /** like q: the gradients dq, dk, dv are computed when given */
  dout?: InputTensor;
  /** document boundaries 0 … S for the document masks */
  cuSeqlens?: readonly number[] | Int32Array;
  /** the mask language: full (default), causal, sliding:L,R, prefix:N, document, document-causal, document-sliding:L,R */
  mask?: string;
  /** softmax scale, default 1/√D */
  scale?: number;
  /** arithmetic and output type, default f32 */
  dtype?: 'f64' | 'f32';
  /** split the work over layout.world CPU ranks with this strategy (default: one rank) */
  layout?: Layout;
  /** NaN or ±∞ in the inputs: 'error' (the default, a UserError naming the first) or 'propagate' (IEEE arithmetic: NaN reaches the outputs it touches) */
  nonFinite?: NonFinite;
  /** the longest any rank waits for another, milliseconds */
  timeoutMs?: number;
}

/** out [S,H,D], lse [H,S] (natural log of the softmax denominator; [B,H,S] with a batch), dq/dk/dv with dout. */
export interface AttentionOutput {
  out: HostTensor;
  lse: HostTensor;
  dq?: HostTensor;
  dk?: HostTensor;
  dv?: HostTensor;
}

export interface SolveOptions {
  scale?: number;
  dtype: 'f64' | 'f32';
  layout?: Layout;
  timeoutMs?: number;
  nonFinite?: NonFinite;
}

/** Run a validated problem on the CPU: one rank, or the layout's ranks (problemFrom has applied the non-finite policy). */
export async function solve(p: AttnProblem, o: SolveOptions): Promise<AttnOutputs> {
  const scale = o.scale ?? defaultScale(p.D);
  if (!(scale > 0) || !Number.isFinite(scale)) throw new UserError(`scale ${scale} must be a positive number`);
  if (!o.layout) return attendSingle(new CpuKernel(), p.q, p.k, p.v, p.mask, scale, p.dout, { nonFinite: 'propagate' });
  validateLayout(o.layout, { S: p.q.shape[0]!, H: p.H, Hkv: p.Hkv }); // before any rank starts
  return runDistributed(
    { q: p.q, k: p.k, v: p.v, dout: p.dout, mask: p.mask, scale, dtype: o.dtype },
    o.layout,
    o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs },
  );
}

const FLOAT: Record<string, StDType> = { Float64Array: 'F64', Float32Array: 'F32' };

function asStTensor(t: InputTensor | undefined, name: string): StTensor | undefined {
  if (t === undefined) return undefined;
  if (typeof t !== 'object' || t === null || !ArrayBuffer.isView(t.data) || !Array.isArray(t.shape)) {
    throw new UserError(`${name} must be { data: Float64Array | Float32Array, shape: number[] }`);
  }
  const dtype = t.data instanceof Uint16Array ? t.dtype : FLOAT[t.data.constructor.name];
  if (dtype === undefined || (t.data instanceof Uint16Array && dtype !== 'BF16' && dtype !== 'F16')) {
    throw new UserError(`${name}: data must be a Float64Array or Float32Array (or 16-bit data with dtype BF16 or F16)`);
  }
  const want = t.shape.reduce((a, b) => a * b, 1);
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || want !== t.data.length) {
    throw new UserError(`${name}: shape [${t.shape.join(', ')}] does not hold the ${t.data.length} values given`);
  }
  return { dtype, shape: [...t.shape], data: t.data };
}

/** Exact attention on host arrays: the numbers `weft attn` writes for the same tensors. */
export async function attention(input: AttentionInput): Promise<AttentionOutput> {
  if (typeof input !== 'object' || input === null) throw new UserError('attention takes { q, k, v, mask, … }');
  const dtype = input.dtype ?? 'f32';
  if (dtype !== 'f64' && dtype !== 'f32') throw new UserError(`dtype must be f64 or f32, not '${String(dtype)}'`);
  const ts = new Map<string, StTensor>();
  for (const n of ['q', 'k', 'v', 'dout'] as const) {
    const t = asStTensor(input[n], n);
    if (t) ts.set(n, t);
  }
  if (input.cuSeqlens !== undefined) {
    const cu = Int32Array.from(input.cuSeqlens as ArrayLike<number>);
    if (cu.some((x, i) => x !== Number(input.cuSeqlens![i])))
      throw new UserError('cuSeqlens must hold 32-bit integers');
    ts.set('cu_seqlens', { dtype: 'I32', shape: [cu.length], data: cu });
  }
  const nonFinite = input.nonFinite ?? 'error';
  if (nonFinite !== 'error' && nonFinite !== 'propagate')
    throw new UserError(`nonFinite must be 'error' or 'propagate', not '${String(nonFinite)}'`);
  const p = problemFrom(ts, input.mask ?? 'full', dtype, 'attention', nonFinite);
  const r = await solve(p, { scale: input.scale, dtype, layout: input.layout, timeoutMs: input.timeoutMs, nonFinite });
  return Object.fromEntries(unpackOutputs(p, r, dtype)) as unknown as AttentionOutput;
}
