// The CUDA block kernel: weft's Hopper flash-attention kernels (attn.cu) behind the AttnKernel
// seam. Every call only enqueues work on the runtime's compute stream; results are device
// tensors. The running state and the gradients are fp32, as the seam requires for 16-bit inputs:
// the forward merges a block into a state inside its epilogue (no bf16 rounding between ring
// steps), the backward adds into dq, dk, dv.
//
// A mask view is uploaded once per (query rows, key positions) pair — strategies build a fresh
// MaskView object per ring step from the same two arrays, so the cache keys on those — together with its
// block lists: per 128-row query tile the non-empty 128-key tiles (forward) and per key tile the
// non-empty 64-row query tiles (backward), each marked full or partial, built on the GPU from
// per-tile summaries of the row intervals and key positions.
import { UserError } from '../../../errors.js';
import type { CudaModule, Kernel } from '../runtime/module.js';
import type { CudaRuntime } from '../runtime/runtime.js';
import { asCuda, type CudaTensor } from '../runtime/tensor.js';
import type { MaskView, QueryRows } from '../../../mask/view.js';
import { fmtShape, shapeEq, type Tensor } from '../../../tensor/host.js';
import type { AttnGrads, AttnKernel, AttnState, BackwardArgs, ForwardArgs } from '../../../kernel/kernel.js';
import {
  attnSource,
  BWD_QTILE,
  BWD_THREADS,
  bwdSharedBytes,
  FWD_QTILE,
  FWD_THREADS,
  fwdSharedBytes,
  type HalfType,
  KTILE,
  type Variant,
  variantOptions,
} from './source.js';
import { DecodeKernel } from './decode.js';

interface Kernels {
  fwd: Kernel;
  bwd: Kernel;
  qsum: Kernel;
  ksum: Kernel;
  list: Kernel;
  delta: Kernel;
  merge: Kernel;
}

/** One tile layout's block lists: row r of `list` holds count[r] entries (tile | partial << 30). */
interface Lists {
  list: CudaTensor;
  count: CudaTensor;
  stride: number;
}

/** A mask view on the device. */
interface Prepared {
  m: number;
  tq: number;
  tk: number;
  qlo: CudaTensor;
  qhi: CudaTensor;
  kpos: CudaTensor;
  fwd?: Lists;
  bwd?: Lists;
}

interface Dims {
  tq: number;
  tk: number;
  h: number;
  hkv: number;
  d: 64 | 128;
  dtype: HalfType;
}

const cdiv = (a: number, b: number): number => Math.ceil(a / b);

export class CudaKernel implements AttnKernel {
  private readonly modules = new Map<string, Kernels>();
  /** per query-row intervals, per key-position array: the device copies and block lists (arrays are treated as immutable) */
  private readonly views = new WeakMap<QueryRows, WeakMap<Int32Array, Prepared>>();
  private readonly arrays = new WeakMap<Int32Array, CudaTensor>();

  /** few query rows per sequence against many keys: the split-K decode kernel (decode.ts) */
  private readonly decode: DecodeKernel;

  constructor(readonly rt: CudaRuntime) {
    this.decode = new DecodeKernel(rt);
  }

  private kernels(v: Variant): Kernels {
    const key = `${v.d}/${v.dtype}/${v.m}`;
    let k = this.modules.get(key);
    if (!k) {
      const mod: CudaModule = this.rt.compile(attnSource(), { name: 'attn.cu', options: variantOptions(v) });
      const P = 'ptr' as const,
        I = 'i32' as const,
        F = 'f32' as const;
      k = {
        fwd: mod.kernel('weft_fwd', [P, P, P, P, P, P, P, P, P, P, I, I, I, I, I, F, I]),
        bwd: mod.kernel('weft_bwd', [P, P, P, P, P, P, P, P, P, P, P, P, P, P, I, I, I, I, I, F, 'i64', 'i64']),
        qsum: mod.kernel('weft_mask_qsum', [P, P, I, I, P]),
        ksum: mod.kernel('weft_mask_ksum', [P, I, I, I, P]),
        list: mod.kernel('weft_mask_list', [P, P, I, I, I, P, P]),
        delta: mod.kernel('weft_attn_delta', [P, P, I, I, I, P]),
        merge: mod.kernel('weft_attn_merge', [P, P, P, P, I, I]),
      };
      k.fwd.setMaxDynamicSharedMemory(fwdSharedBytes(v.d));
      k.bwd.setMaxDynamicSharedMemory(bwdSharedBytes(v.d));
      this.modules.set(key, k);
    }
    return k;
  }

  private dims(q: Tensor, k: Tensor, v: Tensor, view: MaskView): Dims {
    if (q.shape.length !== 3 || k.shape.length !== 3)
      throw new Error(`cuda kernel: q ${fmtShape(q.shape)} and k ${fmtShape(k.shape)} must be [T, H, D]`);
    const [tq, h, d] = q.shape as [number, number, number];
    const [tk, hkv, dk] = k.shape as [number, number, number];
    if (!shapeEq(k.shape, v.shape))
      throw new Error(`cuda kernel: v ${fmtShape(v.shape)} differs from k ${fmtShape(k.shape)}`);
    if (q.dtype !== k.dtype || q.dtype !== v.dtype)
      throw new Error(`cuda kernel: q, k, v dtypes differ (${q.dtype}, ${k.dtype}, ${v.dtype})`);
    if (q.dtype !== 'bf16' && q.dtype !== 'f16')
      throw new UserError(`the CUDA attention kernels take bf16 or f16 inputs, not ${q.dtype}`);
    if (dk !== d) throw new Error(`cuda kernel: head dim of q (${d}) and k (${dk}) differ`);
    if (d !== 64 && d !== 128) throw new UserError(`the CUDA attention kernels support head dims 64 and 128, not ${d}`);
    if (hkv === 0 || h % hkv !== 0)
      throw new Error(`cuda kernel: ${h} query heads are not a multiple of ${hkv} key/value heads`);
    if (view.kPos.length !== tk || view.q.lo.length !== tq * view.q.m || view.q.hi.length !== tq * view.q.m)
      throw new Error('cuda kernel: mask view does not match the block');
    return { tq, tk, h, hkv, d, dtype: q.dtype };
  }

  /** 32-bit integers on the device, uploaded once per array. */
  private ints(a: Int32Array): CudaTensor {
    let t = this.arrays.get(a);
    if (!t) {
      t = this.rt.device.uploadInt32(a);
      this.arrays.set(a, t);
    }
    return t;
  }

  private prepare(view: MaskView): Prepared {
    let byKeys = this.views.get(view.q);
    if (!byKeys) {
      byKeys = new WeakMap();
      this.views.set(view.q, byKeys);
    }
    let p = byKeys.get(view.kPos);
    if (!p) {
      p = {
        m: view.q.m,
        tq: view.q.lo.length / view.q.m,
        tk: view.kPos.length,
        qlo: this.ints(view.q.lo),
        qhi: this.ints(view.q.hi),
        kpos: this.ints(view.kPos),
      };
      byKeys.set(view.kPos, p);
    }
    return p;
  }

  private lists(ks: Kernels, p: Prepared, byKey: boolean): Lists {
    const have = byKey ? p.bwd : p.fwd;
    if (have) return have;
    const qtile = byKey ? BWD_QTILE : FWD_QTILE;
    const nq = cdiv(p.tq, qtile),
      nk = cdiv(p.tk, KTILE);
    const dev = this.rt.device;
    const qsum = dev.empty('f32', [nq, p.m, 4]),
      ksum = dev.empty('f32', [nk, 4]);
    ks.qsum.launch({ grid: nq, block: 256 }, p.qlo, p.qhi, p.tq, qtile, qsum);
    ks.ksum.launch({ grid: cdiv(nk, 128), block: 128 }, p.kpos, p.tk, KTILE, nk, ksum);
    const [rows, stride] = byKey ? [nk, nq] : [nq, nk];
    const lists: Lists = { list: dev.empty('f32', [rows, stride]), count: dev.empty('f32', [rows]), stride };
    ks.list.launch({ grid: rows, block: 256 }, qsum, ksum, nq, nk, byKey ? 1 : 0, lists.list, lists.count);
    qsum.release();
    ksum.release();
    if (byKey) p.bwd = lists;
    else p.fwd = lists;
    return lists;
  }

  forward(a: ForwardArgs): AttnState {
    const q = asCuda(a.q, 'forward'),
      k = asCuda(a.k, 'forward'),
      v = asCuda(a.v, 'forward');
    const { tq, tk, h, hkv, d, dtype } = this.dims(q, k, v, a.view);
    const dev = this.rt.device;
    let state = a.state;
    if (state) {
      if (
        state.out.dtype !== 'f32' ||
        state.lse.dtype !== 'f32' ||
        !shapeEq(state.out.shape, [tq, h, d]) ||
        !shapeEq(state.lse.shape, [h, tq])
      )
        throw new Error(
          `cuda kernel: the running state must be f32 out [${tq},${h},${d}] and lse [${h},${tq}], got ${state.out.dtype}${fmtShape(state.out.shape)} and ${state.lse.dtype}${fmtShape(state.lse.shape)}`,
        );
    }
    if (tq === 0) return state ?? { out: dev.empty('f32', [0, h, d]), lse: dev.empty('f32', [h, 0]) };
    if (tk === 0) return state ?? { out: dev.zeros('f32', [tq, h, d]), lse: dev.full('f32', [h, tq], -Infinity) };
    if (this.decode.plan(a.view, h / hkv))
      return this.decode.forward(q, k, v, a.view, a.scale, { tq, tk, h, hkv, d, dtype }, state);
    const ks = this.kernels({ d, dtype, m: a.view.q.m });
    const p = this.prepare(a.view);
    const l = this.lists(ks, p, false);
    const merge = state !== undefined;
    state ??= { out: dev.empty('f32', [tq, h, d]), lse: dev.empty('f32', [h, tq]) };
    ks.fwd.launch(
      { grid: [cdiv(tq, FWD_QTILE), h], block: FWD_THREADS, shared: fwdSharedBytes(d) },
      q,
      k,
      v,
      asCuda(state.out, 'forward'),
      asCuda(state.lse, 'forward'),
      p.qlo,
      p.qhi,
      p.kpos,
      l.list,
      l.count,
      tq,
      tk,
      h,
      hkv,
      l.stride,
      a.scale,
      merge ? 1 : 0,
    );
    return state;
  }

  backward(a: BackwardArgs): AttnGrads {
    const q = asCuda(a.q, 'backward'),
      k = asCuda(a.k, 'backward'),
      v = asCuda(a.v, 'backward');
    const { tq, tk, h, hkv, d, dtype } = this.dims(q, k, v, a.view);
    const dev = this.rt.device;
    const grad = (t: Tensor | undefined, shape: number[], what: string): CudaTensor => {
      if (!t) return dev.zeros('f32', shape);
      if (t.dtype !== 'f32' || !shapeEq(t.shape, shape))
        throw new Error(`cuda kernel: ${what} must be f32 ${fmtShape(shape)}, got ${t.dtype}${fmtShape(t.shape)}`);
      return asCuda(t, 'backward');
    };
    const g = {
      dq: grad(a.into?.dq, [tq, h, d], 'dq'),
      dk: grad(a.into?.dk, [tk, hkv, d], 'dk'),
      dv: grad(a.into?.dv, [tk, hkv, d], 'dv'),
    };
    if (tq === 0 || tk === 0) return g;
    if (
      !shapeEq(a.out.shape, [tq, h, d]) ||
      !shapeEq(a.dout.shape, [tq, h, d]) ||
      !shapeEq(a.lse.shape, [h, tq]) ||
      a.lse.dtype !== 'f32'
    )
      throw new Error(
        `cuda kernel: out ${fmtShape(a.out.shape)}, dout ${fmtShape(a.dout.shape)} and f32 lse ${a.lse.dtype}${fmtShape(a.lse.shape)} do not fit q ${fmtShape(q.shape)}`,
      );
    if (a.out.dtype !== 'f32' && a.out.dtype !== dtype)
      throw new Error(`cuda kernel: out must be f32 or ${dtype}, not ${a.out.dtype}`);
    const ks = this.kernels({ d, dtype, m: a.view.q.m });
    const p = this.prepare(a.view);
    const l = this.lists(ks, p, true);
    // the backward reads dO as a matrix operand in the input type
    const dout = a.dout.dtype === dtype ? asCuda(a.dout, 'backward') : dev.cast(a.dout, dtype);
    const delta = dev.empty('f32', [h, tq]);
    ks.delta.launch(
      { grid: cdiv(tq * h, 8), block: 256 },
      dout,
      asCuda(a.out, 'backward'),
      a.out.dtype === 'f32' ? 1 : 0,
      tq,
      h,
      delta,
    );
    // dq [T, H, D]: element strides per head and per row
    ks.bwd.launch(
      { grid: [cdiv(tk, KTILE), h], block: BWD_THREADS, shared: bwdSharedBytes(d) },
      q,
      k,
      v,
      dout,
      asCuda(a.lse, 'backward'),
      delta,
      g.dq,
      g.dk,
      g.dv,
      p.qlo,
      p.qhi,
      p.kpos,
      l.list,
      l.count,
      tq,
      tk,
      h,
      hkv,
      l.stride,
      a.scale,
      d,
      h * d,
    );
    delta.release();
    if (dout !== a.dout) dout.release();
    return g;
  }

  merge(state: AttnState, part: AttnState): void {
    const [t, h, d] = state.out.shape as [number, number, number];
    for (const [x, what] of [
      [state.out, 'state out'],
      [part.out, 'part out'],
      [state.lse, 'state lse'],
      [part.lse, 'part lse'],
    ] as const)
      if (x.dtype !== 'f32') throw new Error(`cuda kernel merge: ${what} must be f32, not ${x.dtype}`);
    if (
      !shapeEq(part.out.shape, state.out.shape) ||
      !shapeEq(state.lse.shape, [h, t]) ||
      !shapeEq(part.lse.shape, [h, t])
    )
      throw new Error(`cuda kernel merge: states ${fmtShape(state.out.shape)} and ${fmtShape(part.out.shape)} differ`);
    if (d !== 64 && d !== 128) throw new UserError(`the CUDA attention kernels support head dims 64 and 128, not ${d}`);
    if (t * h === 0) return;
    this.kernels({ d, dtype: 'bf16', m: 1 }).merge.launch(
      { grid: cdiv(t * h, 8), block: 256 },
      asCuda(state.out, 'merge'),
      asCuda(state.lse, 'merge'),
      asCuda(part.out, 'merge'),
      asCuda(part.lse, 'merge'),
      t,
      h,
    );
  }
}
