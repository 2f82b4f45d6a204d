// The file-in/file-out contract of `weft attn`: read q, k, v (optionally dout, cu_seqlens) from
// a safetensors file, check every shape, and give back one packed problem of T tokens. A leading
// batch dimension B becomes B documents of S tokens each, so kernels and strategies only ever
// see [T, H, D] with a mask over global positions — no padding anywhere. NaN and infinite inputs
// are refused here, before any work (kernel/finite.ts), and so are values the arithmetic type
// cannot hold; a tensor the problem does not use is named, never dropped without a word.
import { UserError } from '../errors.js';
import { checkFinite, firstNonFinite, indexIn, type NonFinite } from '../kernel/finite.js';
import { checkCuSeqlens, type MaskSpec, parseMask } from '../mask/spec.js';
import type { DType } from '../tensor/dtype.js';
import { castHost, fmtShape, type HostTensor } from '../tensor/host.js';
import type { OutputTarget } from './output.js';
import {
  fromHost,
  readSafetensors,
  type StDType,
  type StTensor,
  toHost,
  toInts,
  writeSafetensors,
} from './safetensors.js';

export interface AttnProblem {
  q: HostTensor;
  k: HostTensor;
  v: HostTensor;
  dout?: HostTensor; // [T, H, D], [T, Hkv, D]
  mask: MaskSpec;
  batch: number; // B (1 when the inputs had no batch dimension)
  batched: boolean; // the inputs had a batch dimension
  S: number;
  H: number;
  Hkv: number;
  D: number;
  /** tensors in the file that this problem does not use, each with the reason (for a warning) */
  ignored: string[];
}

const USED = new Set(['q', 'k', 'v', 'dout', 'cu_seqlens']);

/** Load and validate; tensors come back in `dtype` (the arithmetic type). */
export function loadProblem(path: string, maskText: string, dtype: 'f64' | 'f32'): AttnProblem {
  return problemFrom(readSafetensors(path), maskText, dtype, path);
}

/** What a problem is without its data: sizes, mask, the inputs' dtype, whether dout is given. */
export type ProblemShape = Omit<AttnProblem, 'q' | 'k' | 'v' | 'dout'> & { dtype: StDType; backward: boolean };

/** A file's tensor as its header describes it (data only where read, as cu_seqlens must be). */
export type TensorEntry = Pick<StTensor, 'dtype' | 'shape'> & { data?: StTensor['data'] };

function need(ts: ReadonlyMap<string, TensorEntry>, name: string, path: string): StTensor {
  const t = ts.get(name);
  if (!t) throw new UserError(`${path}: missing tensor '${name}' (found: ${[...ts.keys()].join(', ') || 'none'})`);
  return t as StTensor;
}

/**
 * Check every shape and dtype of the named tensors (as a file holds them; only cu_seqlens needs
 * its data); `path` names the source in messages.
 */
export function problemShape(ts: ReadonlyMap<string, TensorEntry>, maskText: string, path: string): ProblemShape {
  const q = toHost(need(ts, 'q', path), 'q'),
    k = toHost(need(ts, 'k', path), 'k'),
    v = toHost(need(ts, 'v', path), 'v');
  const qType = need(ts, 'q', path).dtype;
  for (const n of ['k', 'v', 'dout'])
    if (ts.has(n) && ts.get(n)!.dtype !== qType)
      throw new UserError(`${n} is ${ts.get(n)!.dtype} but q is ${qType}: q, k, v and dout must share one dtype`);
  const rank = q.shape.length;
  if (rank !== 3 && rank !== 4) throw new UserError(`q must be [S,H,D] or [B,S,H,D], not ${fmtShape(q.shape)}`);
  for (const [n, t] of [
    ['k', k],
    ['v', v],
  ] as const)
    if (t.shape.length !== rank)
      throw new UserError(`${n} ${fmtShape(t.shape)} must have as many dimensions as q ${fmtShape(q.shape)}`);
  const [B, S, H, D] = (rank === 4 ? q.shape : [1, ...q.shape]) as [number, number, number, number];
  const [Bk, Sk, Hkv, Dk] = (rank === 4 ? k.shape : [1, ...k.shape]) as [number, number, number, number];
  if (B < 1 || S < 1 || H < 1 || D < 1) throw new UserError(`q ${fmtShape(q.shape)} has an empty dimension`);
  if (Bk !== B || Sk !== S)
    throw new UserError(`k ${fmtShape(k.shape)} does not match q ${fmtShape(q.shape)} in batch or sequence length`);
  if (Dk !== D) throw new UserError(`k head dim ${Dk} differs from q head dim ${D}`);
  if (Hkv < 1 || H % Hkv !== 0) throw new UserError(`q has ${H} heads, not a multiple of the ${Hkv} key/value heads`);
  if (v.shape.join() !== k.shape.join())
    throw new UserError(`v ${fmtShape(v.shape)} must have the shape of k ${fmtShape(k.shape)}`);
  if (ts.has('dout')) {
    const dout = toHost(ts.get('dout')! as StTensor, 'dout');
    if (dout.shape.join() !== q.shape.join())
      throw new UserError(`dout ${fmtShape(dout.shape)} must have the shape of q ${fmtShape(q.shape)}`);
  }
  let cu: number[] | undefined;
  if (ts.has('cu_seqlens')) {
    const c = ts.get('cu_seqlens')! as StTensor;
    if (c.shape.length !== 1) throw new UserError(`cu_seqlens must be one-dimensional, not ${fmtShape(c.shape)}`);
    cu = toInts(c, 'cu_seqlens');
    checkCuSeqlens(cu, S);
  }
  const inner = parseMask(maskText, cu);
  if (inner.kind === 'document' && B > 1)
    throw new UserError('document masks take unbatched inputs: pack the batch into cu_seqlens instead');
  const ignored = [...ts.keys()]
    .filter((n) => !USED.has(n))
    .map((n) => `'${n}' (weft reads q, k, v, dout and cu_seqlens)`);
  if (cu && inner.kind !== 'document') ignored.push(`'cu_seqlens' (mask '${maskText}' is not a document mask)`);
  const mask: MaskSpec =
    B > 1 ? { kind: 'document', cuSeqlens: Array.from({ length: B + 1 }, (_, i) => i * S), inner } : inner;
  return { mask, batch: B, batched: rank === 4, S, H, Hkv, D, ignored, dtype: qType, backward: ts.has('dout') };
}

/**
 * Validate named tensors (as a file holds them) into one packed problem in `dtype`; `path` names
 * the source in messages. Non-finite inputs are refused, and so are values `dtype` cannot hold.
 */
export function problemFrom(
  ts: ReadonlyMap<string, StTensor>,
  maskText: string,
  dtype: DType,
  path: string,
  nonFinite: NonFinite = 'error',
): AttnProblem {
  const { mask, batch, batched, S, H, Hkv, D, ignored, backward } = problemShape(ts, maskText, path);
  const T = batch * S;
  const pack = (n: string, heads: number): HostTensor => {
    const t = toHost(ts.get(n)!, n);
    if (nonFinite === 'error') checkFinite(n, t);
    const c = castHost({ ...t, shape: [T, heads, D] }, dtype);
    const i = nonFinite === 'error' ? firstNonFinite(c) : -1; // finite in the file, so only an overflow of the narrower type
    if (i >= 0)
      throw new UserError(
        `${n} holds ${asF64At(t, i)} at [${indexIn(i, t.shape).join(', ')}], beyond the range of ${dtype}: use --dtype f64`,
      );
    return c;
  };
  const problem: AttnProblem = {
    q: pack('q', H),
    k: pack('k', Hkv),
    v: pack('v', Hkv),
    mask,
    batch,
    batched,
    S,
    H,
    Hkv,
    D,
    ignored,
  };
  if (backward) problem.dout = pack('dout', H);
  return problem;
}

function asF64At(t: HostTensor, i: number): number {
  return castHost({ ...t, data: t.data.subarray(i, i + 1) as never, shape: [1] }, 'f64').data[0] as number;
}

export interface AttnOutputs {
  out: HostTensor;
  lse: HostTensor;
  dq?: HostTensor;
  dk?: HostTensor;
  dv?: HostTensor;
}

/** Unpack to the input's layout (batch restored; lse [H,S] or [B,H,S]) and write (output.ts). */
export function saveOutputs(
  path: OutputTarget | string,
  p: Pick<AttnProblem, 'batched' | 'batch' | 'S' | 'H' | 'Hkv' | 'D'>,
  r: AttnOutputs,
  dtype: DType,
  metadata: Record<string, string>,
  lseDtype: DType = dtype,
): void {
  writeSafetensors(
    path,
    new Map([...unpackOutputs(p, r, dtype, lseDtype)].map(([n, t]) => [n, fromHost(t)])),
    metadata,
  );
}

/** The outputs in the input's layout (batch restored; lse [H,S] or [B,H,S]), in `dtype`, in file order. */
export function unpackOutputs(
  p: Pick<AttnProblem, 'batched' | 'batch' | 'S' | 'H' | 'Hkv' | 'D'>,
  r: AttnOutputs,
  dtype: DType,
  lseDtype: DType = dtype,
): Map<string, HostTensor> {
  const lead = p.batched ? [p.batch, p.S] : [p.S];
  const shaped = (t: HostTensor, heads: number): HostTensor => ({
    ...castHost(t, dtype),
    shape: [...lead, heads, p.D],
  });
  const lseT = castHost(r.lse, lseDtype); // [H, B*S] → [B, H, S]
  let lse: HostTensor = { ...lseT, shape: [p.H, p.S] };
  if (p.batched) {
    const moved = castHost(lseT, lseDtype);
    for (let b = 0; b < p.batch; b++)
      for (let h = 0; h < p.H; h++)
        moved.data.set(
          lseT.data.subarray(h * p.batch * p.S + b * p.S, h * p.batch * p.S + (b + 1) * p.S) as never,
          (b * p.H + h) * p.S,
        );
    lse = { ...moved, shape: [p.batch, p.H, p.S] };
  }
  const out = new Map<string, HostTensor>([
    ['out', shaped(r.out, p.H)],
    ['lse', lse],
  ]);
  if (r.dq && r.dk && r.dv) {
    out.set('dq', shaped(r.dq, p.H));
    out.set('dk', shaped(r.dk, p.Hkv));
    out.set('dv', shaped(r.dv, p.Hkv));
  }
  return out;
}
