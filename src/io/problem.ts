// The file-in/file-out contract of `weft attn`: read q, k, v (optionally dout, cu_seqlens) from
// a safetensors file, check every shape, and give back one packed problem of T tokens. A leading
// batch dimension B becomes B documents of S tokens each, so kernels and strategies only ever
// see [T, H, D] with a mask over global positions — no padding anywhere. NaN and infinite inputs
// are refused here, before any work (kernel/finite.ts), and so are values the arithmetic type
// cannot hold; a tensor the problem does not use is named, never dropped without a word.
import { UserError } from '../errors.js';
import { checkFinite, firstNonFinite, indexIn } from '../kernel/finite.js';
import { checkCuSeqlens, type MaskSpec, parseMask } from '../mask/spec.js';
import { castHost, fmtShape, type HostTensor } from '../tensor/host.js';
import type { OutputTarget } from './output.js';
import { fromHost, readSafetensors, type StTensor, toHost, toInts, writeSafetensors } from './safetensors.js';

export interface AttnProblem {
  q: HostTensor; k: HostTensor; v: HostTensor; dout?: HostTensor; // [T, H, D], [T, Hkv, D]
  mask: MaskSpec;
  batch: number; // B (1 when the inputs had no batch dimension)
  batched: boolean; // the inputs had a batch dimension
  S: number; H: number; Hkv: number; D: number;
  /** tensors in the file that this problem does not use, each with the reason (for a warning) */
  ignored: string[];
}

const USED = new Set(['q', 'k', 'v', 'dout', 'cu_seqlens']);

function need(ts: Map<string, StTensor>, name: string, path: string): StTensor {
  const t = ts.get(name);
  if (!t) throw new UserError(`${path}: missing tensor '${name}' (found: ${[...ts.keys()].join(', ') || 'none'})`);
  return t;
}

/** Load and validate; tensors come back in `dtype` (the arithmetic type). */
export function loadProblem(path: string, maskText: string, dtype: 'f64' | 'f32'): AttnProblem {
  const ts = readSafetensors(path);
  const q = toHost(need(ts, 'q', path), 'q'), k = toHost(need(ts, 'k', path), 'k'), v = toHost(need(ts, 'v', path), 'v');
  const qType = need(ts, 'q', path).dtype;
  for (const n of ['k', 'v', 'dout'])
    if (ts.has(n) && ts.get(n)!.dtype !== qType) throw new UserError(`${n} is ${ts.get(n)!.dtype} but q is ${qType}: q, k, v and dout must share one dtype`);
  const rank = q.shape.length;
  if (rank !== 3 && rank !== 4) throw new UserError(`q must be [S,H,D] or [B,S,H,D], not ${fmtShape(q.shape)}`);
  for (const [n, t] of [['k', k], ['v', v]] as const)
    if (t.shape.length !== rank) throw new UserError(`${n} ${fmtShape(t.shape)} must have as many dimensions as q ${fmtShape(q.shape)}`);
  const [B, S, H, D] = (rank === 4 ? q.shape : [1, ...q.shape]) as [number, number, number, number];
  const [Bk, Sk, Hkv, Dk] = (rank === 4 ? k.shape : [1, ...k.shape]) as [number, number, number, number];
  if (B < 1 || S < 1 || H < 1 || D < 1) throw new UserError(`q ${fmtShape(q.shape)} has an empty dimension`);
  if (Bk !== B || Sk !== S) throw new UserError(`k ${fmtShape(k.shape)} does not match q ${fmtShape(q.shape)} in batch or sequence length`);
  if (Dk !== D) throw new UserError(`k head dim ${Dk} differs from q head dim ${D}`);
  if (Hkv < 1 || H % Hkv !== 0) throw new UserError(`q has ${H} heads, not a multiple of the ${Hkv} key/value heads`);
  if (v.shape.join() !== k.shape.join()) throw new UserError(`v ${fmtShape(v.shape)} must have the shape of k ${fmtShape(k.shape)}`);
  let dout: HostTensor | undefined;
  if (ts.has('dout')) {
    dout = toHost(ts.get('dout')!, 'dout');
    if (dout.shape.join() !== q.shape.join()) throw new UserError(`dout ${fmtShape(dout.shape)} must have the shape of q ${fmtShape(q.shape)}`);
  }
  let cu: number[] | undefined;
  if (ts.has('cu_seqlens')) {
    const c = ts.get('cu_seqlens')!;
    if (c.shape.length !== 1) throw new UserError(`cu_seqlens must be one-dimensional, not ${fmtShape(c.shape)}`);
    cu = toInts(c, 'cu_seqlens');
    checkCuSeqlens(cu, S);
  }
  const inner = parseMask(maskText, cu);
  if (inner.kind === 'document' && B > 1) throw new UserError('document masks take unbatched inputs: pack the batch into cu_seqlens instead');
  const ignored = [...ts.keys()].filter((n) => !USED.has(n)).map((n) => `'${n}' (weft reads q, k, v, dout and cu_seqlens)`);
  if (cu && inner.kind !== 'document') ignored.push(`'cu_seqlens' (mask '${maskText}' is not a document mask)`);
  for (const [n, t] of [['q', q], ['k', k], ['v', v], ['dout', dout]] as const) if (t) checkFinite(n, t);
  const T = B * S;
  const pack = (t: HostTensor, heads: number, n: string): HostTensor => {
    const c = castHost({ ...t, shape: [T, heads, D] }, dtype);
    const i = firstNonFinite(c); // finite in the file, so only an overflow of the narrower type
    if (i >= 0) throw new UserError(`${n} holds ${asF64At(t, i)} at [${indexIn(i, t.shape).join(', ')}], beyond the range of ${dtype}: use --dtype f64`);
    return c;
  };
  const mask: MaskSpec = B > 1 ? { kind: 'document', cuSeqlens: Array.from({ length: B + 1 }, (_, i) => i * S), inner } : inner;
  const problem: AttnProblem = { q: pack(q, H, 'q'), k: pack(k, Hkv, 'k'), v: pack(v, Hkv, 'v'), mask, batch: B, batched: rank === 4, S, H, Hkv, D, ignored };
  if (dout) problem.dout = pack(dout, H, 'dout');
  return problem;
}

function asF64At(t: HostTensor, i: number): number {
  return castHost({ ...t, data: t.data.subarray(i, i + 1) as never, shape: [1] }, 'f64').data[0] as number;
}

export interface AttnOutputs { out: HostTensor; lse: HostTensor; dq?: HostTensor; dk?: HostTensor; dv?: HostTensor }

/** Unpack to the input's layout (batch restored; lse [H,S] or [B,H,S]) and write (output.ts). */
export function saveOutputs(path: OutputTarget | string, p: AttnProblem, r: AttnOutputs, dtype: 'f64' | 'f32', metadata: Record<string, string>): void {
  const lead = p.batched ? [p.batch, p.S] : [p.S];
  const shaped = (t: HostTensor, heads: number): HostTensor => ({ ...castHost(t, dtype), shape: [...lead, heads, p.D] });
  const lseT = castHost(r.lse, dtype); // [H, B*S] → [B, H, S]
  let lse: HostTensor = { ...lseT, shape: [p.H, p.S] };
  if (p.batched) {
    const moved = castHost(lseT, dtype);
    for (let b = 0; b < p.batch; b++)
      for (let h = 0; h < p.H; h++)
        moved.data.set(lseT.data.subarray(h * p.batch * p.S + b * p.S, h * p.batch * p.S + (b + 1) * p.S) as never, (b * p.H + h) * p.S);
    lse = { ...moved, shape: [p.batch, p.H, p.S] };
  }
  const out = new Map<string, StTensor>([['out', fromHost(shaped(r.out, p.H))], ['lse', fromHost(lse)]]);
  if (r.dq && r.dk && r.dv) {
    out.set('dq', fromHost(shaped(r.dq, p.H)));
    out.set('dk', fromHost(shaped(r.dk, p.Hkv)));
    out.set('dv', fromHost(shaped(r.dv, p.Hkv)));
  }
  writeSafetensors(path, out, metadata);
}
