// The split-K decode kernel (decode.cu) behind CudaKernel.forward: few query rows per sequence
// against a long key/value block, where time is the K/V read. CudaKernel hands a forward here when
// the view is decode-shaped (decodePlan): the query rows fall into runs that share keys — the T new
// tokens of one sequence — and a run's rows × the GQA group's query heads fit one CTA (≤ 64
// vectors). A batch of sequences is one packed block with a document-style view; runs of
// different sequences are packed into row blocks, each of which reads only the key tiles its rows see.
//
// Per mask view (memoized like CudaKernel's block lists): the row-block table, per 64-key tile the
// range of positions, and per row block the ordered list of tiles it may see — three small
// kernels, then every call only launches the decode.
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import type { CudaModule, Kernel } from '../runtime/module.js';
import type { CudaRuntime } from '../runtime/runtime.js';
import { asCuda, type CudaTensor } from '../runtime/tensor.js';
import { positionEdit, type MaskView, type QueryRows } from '../../../mask/view.js';
import type { AttnState } from '../../../kernel/kernel.js';
import type { HalfType } from './source.js';

export const DECODE_SOURCE_PATH = fileURLToPath(
  new URL('../../../../../src/backends/cuda/kernel/decode.cu', import.meta.url),
);

/** Query vectors (row, head of a GQA group) one CTA holds: 16 per m-tile, at most 4 m-tiles. */
const DECODE_MAX_VECTORS = 64;
const KT = 64;
const THREADS = 128;
/** tiles per CTA of the list kernels */
const LIST_CHUNK = 2048;

/** How the query rows of a view are cut into row blocks for a GQA group of `group` heads. */
export interface DecodePlan {
  /** m-tiles per CTA (1, 2, 4) */
  wm: 1 | 2 | 4;
  /** row blocks as [start, end) pairs */
  blocks: Int32Array;
  /** the longest run of rows that share keys */
  run: number;
}

/** The key hull [lo, hi) of row r, or undefined when it sees nothing. */
function hull(q: QueryRows, r: number): [number, number] | undefined {
  let lo = Infinity,
    hi = -Infinity;
  for (let i = 0; i < q.m; i++) {
    const a = q.lo[r * q.m + i]!,
      b = q.hi[r * q.m + i]!;
    if (a < b) {
      lo = Math.min(lo, a);
      hi = Math.max(hi, b);
    }
  }
  return lo < hi ? [lo, hi] : undefined;
}

/**
 * Row blocks for the decode kernel, or undefined when the view is not decode-shaped. A run is a
 * stretch of consecutive rows whose key hulls overlap their predecessor's (the new tokens of one
 * sequence; rows that see nothing join any run). With `separate`, every run is a row block of its
 * own; else runs go whole into blocks of ⌊16·wm / group⌋ rows.
 */
export function decodePlan(q: QueryRows, group: number, separate = false): DecodePlan | undefined {
  const rows = q.lo.length / q.m;
  if (rows === 0 || group > DECODE_MAX_VECTORS) return undefined;
  const runs: [number, number][] = [];
  let start = 0,
    prev: [number, number] | undefined;
  for (let r = 0; r < rows; r++) {
    const h = hull(q, r);
    if (!h) continue;
    if (prev && !(h[0] < prev[1] && prev[0] < h[1])) {
      runs.push([start, r]);
      start = r;
    }
    prev = h;
  }
  runs.push([start, rows]);
  const run = Math.max(...runs.map(([a, b]) => b - a));
  if (run * group > DECODE_MAX_VECTORS) return undefined;
  const wm = run * group <= 16 ? 1 : run * group <= 32 ? 2 : 4;
  const cap = Math.floor((16 * wm) / group);
  const blocks: number[] = [];
  let b0 = 0;
  for (const [a, b] of runs) {
    if (a > b0 && (separate || b - b0 > cap)) {
      blocks.push(b0, a);
      b0 = a;
    }
  }
  blocks.push(b0, rows);
  return { wm, blocks: Int32Array.from(blocks), run };
}

const ascend = new WeakMap<Int32Array, boolean>();

/**
 * Whether the key positions ascend with the slots, padding (−1) anywhere: a batch packed sequence
 * after sequence. Then the runs of different sequences read disjoint key tiles (but one at each
 * boundary), and a row block per run costs no extra reads. An array made by editPositions from
 * one already judged inherits its verdict, with its edited rows checked against their nearest
 * keys within a tile on either side (a sharded cache's decode step: no scan of the whole cache).
 * The answer only steers the packing: any packing is exact.
 */
export function keysAscend(kPos: Int32Array): boolean {
  let v = ascend.get(kPos);
  if (v !== undefined) return v;
  const e = positionEdit(kPos),
    base = e?.base.deref(),
    was = base && base.length === kPos.length ? ascend.get(base) : undefined;
  if (e && was !== undefined) {
    v = was;
    for (let i = 0; v && i < e.rows.length; i++) {
      const s = e.rows[i]!,
        p = e.values[i]!;
      if (p < 0) continue;
      for (let j = s - 1; j >= Math.max(0, s - KT); j--)
        if (kPos[j]! >= 0) {
          v = kPos[j]! < p;
          break;
        }
      for (let j = s + 1; v && j < Math.min(kPos.length, s + KT + 1); j++)
        if (kPos[j]! >= 0) {
          v = kPos[j]! > p;
          break;
        }
    }
  } else {
    v = true;
    let last = -1;
    for (let i = 0; v && i < kPos.length; i++) {
      const p = kPos[i]!;
      if (p < 0) continue;
      v = p > last;
      last = p;
    }
  }
  ascend.set(kPos, v);
  return v;
}

/** How one decode launch uses the GPU. */
export interface DecodeLaunch {
  /** K/V pipeline stages: 32 KiB of shared memory each at D = 128 */
  stages: number;
  /** resident CTAs per SM the split count aims at */
  ctasPerSm: number;
  /** CTAs per resident slot: more, shorter splits, which the GPU hands to SMs as others finish */
  waves: number;
}

/**
 * Three stages at one CTA per SM, one wave: two 32 KiB stages in flight while one is computed on,
 * 8 MiB over 132 SMs, more than the memory's rate × latency needs. Four stages were 1.1% slower
 * (geometric mean over the bench's shapes, the same runs; docs/decode.md): once the read is at the
 * memory's rate, more bytes in flight only add contention. Two or three CTAs per SM and more,
 * shorter splits than resident CTAs were slower still.
 */
const DECODE_LAUNCH: DecodeLaunch = { stages: 3, ctasPerSm: 1, waves: 1 };

/** Other launch settings, for development sweeps (tools/kernel-dev/decode-dev.mjs); default DECODE_LAUNCH. */
export interface DecodeOptions extends Partial<DecodeLaunch> {
  /** the CUDA source to compile (default decode.cu) */
  source?: string;
}

interface Kernels {
  decode: Kernel;
  tiles: Kernel;
  count: Kernel;
  list: Kernel;
  scatter: Kernel;
  shared: number;
}

/** A view prepared for one GQA group size: the row-block table and each block's list of key tiles. */
interface Prepared {
  plan: DecodePlan;
  nb: number;
  rows: CudaTensor;
  list: CudaTensor;
  total: CudaTensor;
  stride: number;
}

export interface DecodeDims {
  tq: number;
  tk: number;
  h: number;
  hkv: number;
  d: 64 | 128;
  dtype: HalfType;
}

export class DecodeKernel {
  private readonly modules = new Map<string, Kernels>();
  private readonly plans = new WeakMap<QueryRows, Map<string, DecodePlan | null>>();
  private readonly views = new WeakMap<QueryRows, WeakMap<Int32Array, Map<number, Prepared>>>();
  private readonly arrays = new WeakMap<Int32Array, CudaTensor>();
  private counters: CudaTensor | undefined;
  private source: string | undefined;
  private uploaded = 0;
  private readonly launch: DecodeLaunch;

  constructor(
    readonly rt: CudaRuntime,
    fixed: DecodeOptions = {},
  ) {
    this.source = fixed.source;
    this.launch = {
      stages: fixed.stages ?? DECODE_LAUNCH.stages,
      ctasPerSm: fixed.ctasPerSm ?? DECODE_LAUNCH.ctasPerSm,
      waves: fixed.waves ?? DECODE_LAUNCH.waves,
    };
  }

  /** Bytes copied host → device so far (mask views: query intervals, key positions, row blocks). */
  get uploadBytes(): number {
    return this.uploaded;
  }

  /**
   * The decode plan of a view for `group` query heads per key head (memoized), or undefined when
   * the flash forward suits it better: rows that do not fall into short runs, or keys fewer than
   * four times the rows (then tiles would be read by many row blocks). A row block per run when
   * the keys ascend with the slots (keysAscend): each block's split merge is then over its own
   * sequence's vectors only (a quarter of them at one new token and GQA 4); when the slots
   * interleave sequences (generated tokens in the sharded cache), runs are packed, so a tile
   * they share is read once per block.
   */
  plan(view: MaskView, group: number): DecodePlan | undefined {
    if (view.kPos.length < 4 * (view.q.lo.length / view.q.m)) return undefined;
    let byGroup = this.plans.get(view.q);
    if (!byGroup) {
      byGroup = new Map();
      this.plans.set(view.q, byGroup);
    }
    const separate = keysAscend(view.kPos),
      key = `${group}/${separate}`;
    let p = byGroup.get(key);
    if (p === undefined) {
      p = decodePlan(view.q, group, separate) ?? null;
      byGroup.set(key, p);
    }
    return p ?? undefined;
  }

  private kernels(d: 64 | 128, dtype: HalfType, m: number, wm: number, launch: DecodeLaunch): Kernels {
    const { stages, ctasPerSm } = launch;
    const key = `${d}/${dtype}/${m}/${wm}/${stages}/${ctasPerSm}`;
    let k = this.modules.get(key);
    if (!k) {
      this.source ??= readFileSync(DECODE_SOURCE_PATH, 'utf8');
      const options = [
        '-std=c++17',
        `-DWEFT_D=${d}`,
        `-DWEFT_F16=${dtype === 'f16' ? 1 : 0}`,
        `-DWEFT_M=${m}`,
        `-DWEFT_WM=${wm}`,
        `-DWEFT_STAGES=${stages}`,
        `-DWEFT_MINB=${ctasPerSm}`,
      ];
      const mod: CudaModule = this.rt.compile(this.source, { name: 'decode.cu', options });
      const P = 'ptr' as const,
        I = 'i32' as const,
        F = 'f32' as const;
      const shared = stages * (2 * KT * d * 2 + KT * 4);
      k = {
        decode: mod.kernel('weft_decode', [P, P, P, P, P, P, P, P, P, I, P, P, P, P, P, I, I, I, I, F, I]),
        tiles: mod.kernel('weft_decode_tiles', [P, I, I, P]),
        count: mod.kernel('weft_decode_count', [P, P, P, P, I, P]),
        list: mod.kernel('weft_decode_list', [P, P, P, P, I, P, P, P, I]),
        scatter: mod.kernel('weft_decode_scatter', [P, P, I]),
        shared,
      };
      k.decode.setMaxDynamicSharedMemory(shared);
      this.modules.set(key, k);
    }
    return k;
  }

  private ints(a: Int32Array): CudaTensor {
    let t = this.arrays.get(a);
    if (!t) {
      t = this.rt.device.uploadInt32(a);
      this.uploaded += 4 * a.length;
      this.arrays.set(a, t);
    }
    return t;
  }

  /**
   * Key positions on the device. A decode loop makes a new positions array every step
   * (editPositions: the appended rows); when this kernel holds the array it was made from, that
   * device copy moves on to the new array and only the edited rows are uploaded and scattered.
   * Calls enqueued before read the old rows (one stream); a later call with the old array
   * uploads it afresh.
   */
  private keyPositions(kPos: Int32Array, ks: Kernels): CudaTensor {
    const had = this.arrays.get(kPos);
    if (had) return had;
    const e = positionEdit(kPos),
      base = e?.base.deref(),
      t = base && base.length === kPos.length ? this.arrays.get(base) : undefined;
    if (!e || !base || !t || 2 * e.rows.length > kPos.length) return this.ints(kPos);
    this.arrays.delete(base);
    this.arrays.set(kPos, t);
    const n = e.rows.length;
    if (n > 0) {
      const edit = new Int32Array(2 * n);
      edit.set(e.rows);
      edit.set(e.values, n);
      const up = this.rt.device.uploadInt32(edit);
      this.uploaded += 8 * n;
      ks.scatter.launch({ grid: Math.ceil(n / 256), block: 256 }, t, up, n);
      up.release();
    }
    return t;
  }

  /** Upload a view and list each row block's key tiles (once per view and group size). */
  prepare(view: MaskView, group: number, ks: Kernels): Prepared {
    const plan = this.plan(view, group);
    if (!plan) throw new Error('decode kernel: the mask view is not decode-shaped');
    let byKeys = this.views.get(view.q);
    if (!byKeys) {
      byKeys = new WeakMap();
      this.views.set(view.q, byKeys);
    }
    let byGroup = byKeys.get(view.kPos);
    if (!byGroup) {
      byGroup = new Map();
      byKeys.set(view.kPos, byGroup);
    }
    let p = byGroup.get(group);
    if (!p) {
      const dev = this.rt.device,
        tk = view.kPos.length,
        ntiles = Math.ceil(tk / KT),
        nb = plan.blocks.length / 2;
      const rows = this.ints(plan.blocks),
        tiles = dev.empty('f32', [ntiles, 2]);
      const qlo = this.ints(view.q.lo),
        qhi = this.ints(view.q.hi),
        kpos = this.keyPositions(view.kPos, ks);
      const chunks = Math.ceil(ntiles / LIST_CHUNK),
        counts = dev.empty('f32', [nb, chunks]);
      // int32 contents in f32-typed buffers, as CudaKernel's block lists
      const list = dev.empty('f32', [nb, ntiles]),
        total = dev.empty('f32', [nb]);
      ks.tiles.launch({ grid: Math.ceil(ntiles / 8), block: 256 }, kpos, tk, ntiles, tiles);
      ks.count.launch({ grid: [nb, chunks], block: 256 }, qlo, qhi, rows, tiles, ntiles, counts);
      ks.list.launch({ grid: [nb, chunks], block: 256 }, qlo, qhi, rows, tiles, ntiles, counts, list, total, ntiles);
      tiles.release();
      counts.release();
      p = { plan, nb, rows, list, total, stride: ntiles };
      byGroup.set(group, p);
    }
    return p;
  }

  /** Splits per (row block, kv head): `waves` CTAs per resident slot over the GPU, at least two tiles each. */
  splits(nb: number, hkv: number, tk: number, l: DecodeLaunch): number {
    const fill = Math.floor((this.rt.info.sms * l.ctasPerSm * l.waves) / (nb * hkv));
    const tilesPerBlock = Math.ceil(tk / KT) / nb;
    return Math.max(1, Math.min(fill, Math.floor(tilesPerBlock / 2), 4096));
  }

  /** out, lse of the view's queries over these keys, or merged into `state` (f32, checked by the caller). */
  forward(
    q: CudaTensor,
    k: CudaTensor,
    v: CudaTensor,
    view: MaskView,
    scale: number,
    dims: DecodeDims,
    state?: AttnState,
  ): AttnState {
    const { tq, tk, h, hkv, d, dtype } = dims;
    const group = h / hkv;
    const plan = this.plan(view, group);
    if (!plan) throw new Error('decode kernel: the mask view is not decode-shaped');
    const nb = plan.blocks.length / 2,
      launch = this.launch;
    const ks = this.kernels(d, dtype, view.q.m, plan.wm, launch);
    const p = this.prepare(view, group, ks);
    const dev = this.rt.device;
    const splits = this.splits(nb, hkv, tk, launch),
      vb = 16 * plan.wm,
      groups = p.nb * hkv;
    if (!this.counters || this.counters.numel < groups) {
      this.counters?.release();
      this.counters = dev.zeros('f32', [Math.max(groups, 256)]); // int 0 bits; the kernel leaves them 0
    }
    const po = dev.empty('f32', [groups * splits * vb * d]),
      pl = dev.empty('f32', [groups * splits * vb]);
    const merge = state !== undefined;
    state ??= { out: dev.empty('f32', [tq, h, d]), lse: dev.empty('f32', [h, tq]) };
    ks.decode.launch(
      { grid: [splits, p.nb, hkv], block: THREADS, shared: ks.shared },
      q,
      k,
      v,
      this.ints(view.q.lo),
      this.ints(view.q.hi),
      this.keyPositions(view.kPos, ks),
      p.rows,
      p.list,
      p.total,
      p.stride,
      po,
      pl,
      this.counters,
      asCuda(state.out, 'decode'),
      asCuda(state.lse, 'decode'),
      tq,
      tk,
      h,
      hkv,
      scale,
      merge ? 1 : 0,
    );
    po.release();
    pl.release();
    return state;
  }
}
