// GPU tests of the split-K decode kernel (decode.cu), reached as strategies reach it: through
// CudaKernel.forward on decode-shaped views. Against the CPU kernel (f64 arithmetic): one and
// several new tokens, causal over cache + new tokens, sliding windows, attention sinks (two
// intervals a row), a batch of sequences of different lengths packed with a document mask,
// GQA and MQA, bf16 and f16, D 64 and 128, key blocks merged into a running fp32 state, rows that
// see nothing. Outputs are poisoned (NaN) first. Bounds: the attention kernels' (twice PyTorch
// SDPA's usual error) and, where python3 with torch is at hand, twice SDPA's error on the same
// inputs and mask (tools/kernel-dev/sdpa_error.py).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, after } from 'node:test';
import { openCuda } from '../../src/backends/cuda/runtime/runtime.js';
import type { CudaTensor } from '../../src/backends/cuda/runtime/tensor.js';
import { CpuKernel } from '../../src/backends/cpu/kernel.js';
import { CudaKernel } from '../../src/backends/cuda/kernel/kernel.js';
import { decodePlan, DecodeKernel, keysAscend } from '../../src/backends/cuda/kernel/decode.js';
import { CacheMap } from '../../src/infer/cache.js';
import { type AttnState, defaultScale } from '../../src/kernel/kernel.js';
import { MaskGrid } from '../../src/mask/grid.js';
import type { MaskSpec } from '../../src/mask/spec.js';
import { type MaskView, maskView, queryRows, sees } from '../../src/mask/view.js';
import type { DType } from '../../src/tensor/dtype.js';
import { asF64, type HostTensor, relError } from '../../src/tensor/host.js';
import { randn, Rng } from '../../src/tensor/random.js';

const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'weft-decode-cubin-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));
const rt = await openCuda({ device: 0, cacheDir });
const dev = rt.device;
const gpu = new CudaKernel(rt);
const cpu = new CpuKernel();
const BOUND: Record<string, number> = { bf16: 4.5e-3, f16: 7e-4 };
const SDPA_ERROR = fileURLToPath(new URL('../../../tools/kernel-dev/sdpa_error.py', import.meta.url));
const torchAt =
  spawnSync('python3', ['-c', 'import torch; assert torch.cuda.is_available()'], { stdio: 'ignore' }).status === 0;

function poison(...shapes: number[][]): void {
  for (const s of shapes) (dev.full('f32', s, NaN) as CudaTensor).release();
}

function lseError(a: HostTensor, b: HostTensor): number {
  const x = asF64(a),
    y = asF64(b);
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(x[i]!)) return NaN;
    if (x[i] === y[i]) continue;
    m = Math.max(m, Math.abs(x[i]! - y[i]!));
  }
  return m;
}

/** PyTorch SDPA's relative error against f64 on these inputs and this view, or undefined without torch. */
function sdpaError(q: HostTensor, k: HostTensor, v: HostTensor, view: MaskView): number | undefined {
  if (!torchAt || (q.dtype !== 'bf16' && q.dtype !== 'f16')) return undefined;
  const [tq, h, d] = q.shape as [number, number, number];
  const [tk, hkv] = k.shape as [number, number];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'weft-decode-sdpa-'));
  try {
    for (const [name, t] of [
      ['q', q],
      ['k', k],
      ['v', v],
    ] as const)
      writeFileSync(path.join(dir, `${name}.bin`), t.data as Uint16Array);
    const mask = new Uint8Array(tq * tk);
    for (let r = 0; r < tq; r++) for (let c = 0; c < tk; c++) mask[r * tk + c] = sees(view.q, r, view.kPos[c]!) ? 1 : 0;
    writeFileSync(path.join(dir, 'mask.bin'), mask);
    const res = spawnSync(
      'python3',
      [SDPA_ERROR, dir, String(tq), String(tk), String(h), String(hkv), String(d), q.dtype],
      { encoding: 'utf8' },
    );
    if (res.status !== 0) throw new Error(`sdpa_error.py failed: ${res.stderr.slice(-400)}`);
    return (JSON.parse(res.stdout.trim().split('\n').pop()!) as { sdpa: number }).sdpa;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Case {
  name: string;
  dtype: DType;
  d: number;
  h: number;
  hkv: number;
  view: MaskView;
  tq: number;
  tk: number;
  /** key blocks merged into a running state, as a ring over cache shards does */
  blocks?: [number, number][];
  /** expected m-tiles per CTA (which kernel variant runs) */
  wm?: number;
  /** also hold it to twice PyTorch SDPA's error on the same inputs (a python3 start each) */
  sdpa?: boolean;
}

/** forward through CudaKernel, or straight through one DecodeKernel (fixed launch settings) */
type Forward = (a: {
  q: CudaTensor;
  k: CudaTensor;
  v: CudaTensor;
  view: MaskView;
  scale: number;
  state?: AttnState;
}) => AttnState;
const viaCuda: Forward = (a) => gpu.forward(a);
function via(dk: DecodeKernel): Forward {
  return (a) => {
    const [tq, h, d] = a.q.shape as [number, number, 64 | 128];
    const [tk, hkv] = a.k.shape as [number, number];
    return dk.forward(
      a.q,
      a.k,
      a.v,
      a.view,
      a.scale,
      { tq, tk, h, hkv, d, dtype: a.q.dtype as 'bf16' | 'f16' },
      a.state,
    );
  };
}

async function check(c: Case, seed: number, forward: Forward = viaCuda): Promise<void> {
  const plan = decodePlan(c.view.q, c.h / c.hkv, keysAscend(c.view.kPos)); // as DecodeKernel.plan
  assert.ok(plan, `${c.name}: the view should be decode-shaped`);
  if (c.wm) assert.equal(plan.wm, c.wm, `${c.name}: m-tiles per CTA`);
  const rng = new Rng(seed);
  const q = randn(rng, c.dtype, [c.tq, c.h, c.d]),
    k = randn(rng, c.dtype, [c.tk, c.hkv, c.d]),
    v = randn(rng, c.dtype, [c.tk, c.hkv, c.d]);
  const scale = defaultScale(c.d);
  const ref = cpu.forward({ q, k, v, view: c.view, scale });
  const gq = dev.upload(q),
    gk = dev.upload(k),
    gv = dev.upload(v);
  poison([c.tq, c.h, c.d], [c.h, c.tq]);
  let state;
  for (const [a, b] of c.blocks ?? [[0, c.tk]]) {
    const kb = gk.view(a * c.hkv * c.d, [b - a, c.hkv, c.d]),
      vb = gv.view(a * c.hkv * c.d, [b - a, c.hkv, c.d]);
    state = forward({
      q: gq,
      k: kb,
      v: vb,
      view: { q: c.view.q, kPos: c.view.kPos.subarray(a, b) },
      scale,
      ...(state ? { state } : {}),
    });
  }
  const out = await dev.download(state!.out),
    lse = await dev.download(state!.lse);
  const eo = relError(out, ref.out as HostTensor),
    el = lseError(lse, ref.lse as HostTensor);
  const es = c.sdpa ? sdpaError(q, k, v, c.view) : undefined;
  console.log(
    `# ${c.name}: out ${eo.toExponential(2)} lse ${el.toExponential(1)}${es === undefined ? '' : ` (SDPA ${es.toExponential(2)})`} wm ${plan.wm} blocks ${plan.blocks.length / 2}`,
  );
  assert.ok(eo <= BOUND[c.dtype]!, `${c.name}: out error ${eo}`);
  if (es !== undefined) assert.ok(eo <= 2 * es, `${c.name}: out error ${eo} above twice SDPA's ${es}`);
  assert.ok(el <= 2e-3, `${c.name}: lse error ${el}`);
  for (const t of [gq, gk, gv]) t.release();
}

const iota = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i);

/** T new tokens at the end of one sequence of S tokens, keys = every position. */
function tail(name: string, spec: MaskSpec, S: number, T: number, o: Partial<Case> = {}): Case {
  const qPos = Int32Array.from(iota(S - T, S)),
    kPos = Int32Array.from(iota(0, S));
  return {
    name,
    dtype: 'bf16',
    d: 128,
    h: 8,
    hkv: 2,
    view: maskView(MaskGrid.build(spec, S), qPos, kPos),
    tq: T,
    tk: S,
    ...o,
  };
}

/** A batch: sequences of these lengths packed (document-causal), the last T tokens of each are new. */
function batch(name: string, lens: number[], T: number, o: Partial<Case> = {}): Case {
  const cu = [0];
  for (const l of lens) cu.push(cu[cu.length - 1]! + l);
  const S = cu[cu.length - 1]!;
  const qPos = Int32Array.from(lens.flatMap((_, i) => iota(cu[i + 1]! - T, cu[i + 1]!))),
    kPos = Int32Array.from(iota(0, S));
  const grid = MaskGrid.build({ kind: 'document', cuSeqlens: cu, inner: { kind: 'causal' } }, S);
  return { name, dtype: 'bf16', d: 128, h: 8, hkv: 2, view: maskView(grid, qPos, kPos), tq: qPos.length, tk: S, ...o };
}

const CASES: Case[] = [
  tail('1 new token onto 6000, causal, GQA 8/2', { kind: 'causal' }, 6001, 1, { wm: 1, sdpa: true }),
  tail('4 new tokens, causal', { kind: 'causal' }, 5000, 4, { wm: 1 }),
  tail('8 new tokens, causal (2 m-tiles)', { kind: 'causal' }, 4100, 8, { wm: 2, sdpa: true }),
  tail('16 new tokens, causal (4 m-tiles)', { kind: 'causal' }, 4096, 16, { wm: 4 }),
  tail('3 new tokens, sliding 1000,0', { kind: 'sliding', left: 1000, right: 0 }, 7000, 3),
  tail(
    '2 new tokens, sliding window + 16 sink tokens (m = 2)',
    {
      kind: 'slices',
      slices: [
        { q: [0, 6000], k: [0, 6000], left: 700, right: 0 },
        { q: [0, 6000], k: [0, 16], left: Infinity, right: Infinity },
      ],
    },
    6000,
    2,
  ),
  tail('1 new token, f16, D 64, MQA 8/1', { kind: 'causal' }, 3000, 1, { dtype: 'f16', d: 64, hkv: 1 }),
  tail('4 new tokens, H 32 / Hkv 8', { kind: 'causal' }, 3000, 4, { h: 32, hkv: 8, sdpa: true }),
  batch('batch of 5 lengths 3000..9001, 1 new token each', [3000, 9001, 65, 4500, 1200], 1, { sdpa: true }),
  batch('batch of 3, 4 new tokens each, f16', [2500, 6100, 777], 4, { dtype: 'f16' }),
  tail('ring over three cache shards into a running state', { kind: 'causal' }, 6000, 2, {
    blocks: [
      [0, 1999],
      [1999, 4100],
      [4100, 6000],
    ],
  }),
];

// a zigzag shard of the cache (4 ranks, rank 1's two chunks) with padding key rows; the new tokens
// live on the last rank, so every cached key here is visible
{
  const S = 8192,
    N = 4,
    c = S / (2 * N);
  const kPos = Int32Array.from([-1, ...iota(c, 2 * c), -1, ...iota((2 * N - 2) * c, (2 * N - 1) * c), -1, -1]);
  const qPos = Int32Array.from([S - 3, S - 2, S - 1]);
  CASES.push({
    name: 'zigzag cache shard with padding, 3 new tokens',
    dtype: 'bf16',
    d: 128,
    h: 8,
    hkv: 2,
    view: maskView(MaskGrid.build({ kind: 'causal' }, S), qPos, kPos),
    tq: 3,
    tk: kPos.length,
  });
}

// a cache as the sharded KV cache lays a batch out after some decode steps: each sequence's
// prefill contiguous, then the generated tokens of all sequences interleaved
{
  const lens = [2100, 3000, 1500],
    gen = 150,
    T = 2;
  const cu = [0];
  for (const l of lens) cu.push(cu[cu.length - 1]! + l + gen);
  const S = cu[cu.length - 1]!;
  const k: number[] = lens.flatMap((l, b) => iota(cu[b]!, cu[b]! + l));
  for (let g = 0; g < gen; g++) lens.forEach((l, b) => k.push(cu[b]! + l + g));
  const qPos = Int32Array.from(lens.flatMap((_, b) => iota(cu[b + 1]! - T, cu[b + 1]!)));
  const grid = MaskGrid.build({ kind: 'document', cuSeqlens: cu, inner: { kind: 'causal' } }, S);
  CASES.push({
    name: 'batch of 3 in a cache with interleaved generated tokens, 2 new each',
    dtype: 'bf16',
    d: 128,
    h: 8,
    hkv: 2,
    view: maskView(grid, qPos, Int32Array.from(k)),
    tq: qPos.length,
    tk: k.length,
    sdpa: true,
  });
}

for (const [i, c] of CASES.entries()) test(`decode kernel matches the CPU kernel: ${c.name}`, () => check(c, 200 + i));

test('decode rows that see nothing: out 0 and lse −∞, no NaN; merging them leaves a state unchanged', async () => {
  const S = 4096,
    T = 4;
  // rows: a padding row, a row before every key, two real rows
  const qPos = Int32Array.from([-1, 3, S - 2, S - 1]),
    kPos = Int32Array.from(iota(1000, S));
  const view = maskView(MaskGrid.build({ kind: 'causal' }, S), qPos, kPos);
  assert.ok(decodePlan(view.q, 4));
  const rng = new Rng(5);
  const q = randn(rng, 'bf16', [T, 8, 128]),
    k = randn(rng, 'bf16', [kPos.length, 2, 128]),
    v = randn(rng, 'bf16', [kPos.length, 2, 128]);
  const gq = dev.upload(q),
    gk = dev.upload(k),
    gv = dev.upload(v);
  poison([T, 8, 128], [8, T]);
  const st = gpu.forward({ q: gq, k: gk, v: gv, view, scale: 0.088 });
  const out = (await dev.download(st.out)).data,
    lse = (await dev.download(st.lse)).data;
  for (let r = 0; r < 2; r++) {
    for (let h = 0; h < 8; h++) {
      assert.equal(lse[h * T + r], -Infinity);
      for (let d = 0; d < 128; d++) assert.equal(out[(r * 8 + h) * 128 + d], 0);
    }
  }
  assert.ok(out.every((x) => !Number.isNaN(x)) && lse.every((x) => !Number.isNaN(x)));
  // a block no row sees, merged into the state: nothing changes
  const none = Int32Array.from(kPos, () => -1);
  const before = [...out];
  gpu.forward({ q: gq, k: gk, v: gv, view: { q: view.q, kPos: none }, scale: 0.088, state: st });
  assert.deepEqual([...(await dev.download(st.out)).data], before);
});

// other launch settings than the default (fewer stages at two CTAs per SM, twice the splits of
// the resident CTAs), on cases that take each m-tile variant and the merge into a running state
for (const [i, launch] of [{ stages: 3, ctasPerSm: 2, waves: 2 }].entries()) {
  const dk = new DecodeKernel(rt, launch);
  for (const j of [1, 2, 8, 10])
    test(`decode launch ${JSON.stringify(launch)}: ${CASES[j]!.name}`, () =>
      check({ ...CASES[j]!, sdpa: false }, 500 + 10 * i + j, via(dk)));
}

test('a decode loop over a KV cache keeps the key positions on the device: a step uploads its new rows only', async () => {
  const H = 32,
    Hkv = 8,
    D = 128,
    capacity = 20000,
    steps = 4;
  const map = new CacheMap(1, capacity);
  const lens = [3000, 9001, 2500];
  for (const l of lens) map.open(l + steps, { kind: 'causal' });
  map.commit(map.place(lens));
  const rng = new Rng(77);
  const k = randn(rng, 'bf16', [capacity, Hkv, D]),
    v = randn(rng, 'bf16', [capacity, Hkv, D]);
  const gk = dev.upload(k),
    gv = dev.upload(v);
  const dk = new DecodeKernel(rt);
  const scale = defaultScale(D);
  for (let s = 0; s < steps; s++) {
    const p = map.place(lens.map(() => 1));
    map.commit(p);
    const view: MaskView = { q: queryRows(map.grid(), p.pos), kPos: map.positions(0) };
    const q = randn(rng, 'bf16', [p.pos.length, H, D]);
    const gq = dev.upload(q);
    const before = dk.uploadBytes;
    const st = via(dk)({ q: gq, k: gk, v: gv, view, scale });
    const up = dk.uploadBytes - before;
    const ref = cpu.forward({ q, k, v, view, scale });
    const eo = relError(await dev.download(st.out), ref.out as HostTensor);
    const rows = p.pos.length,
      plan = decodePlan(view.q, H / Hkv, keysAscend(view.kPos))!;
    // the new rows' slots and positions, the query rows' intervals, the row-block table
    const small = 8 * rows + 8 * rows * view.q.m + 4 * plan.blocks.length;
    console.log(`# decode step ${s}: ${up} bytes uploaded (cache of ${capacity} rows), out ${eo.toExponential(2)}`);
    assert.ok(eo <= BOUND.bf16!, `step ${s}: out error ${eo}`);
    if (s === 0) assert.ok(up >= 4 * capacity, `step ${s}: the first step uploads the positions once (${up} bytes)`);
    else assert.equal(up, small, `step ${s}: ${up} bytes uploaded, expected ${small}`);
    (st.out as CudaTensor).release();
    (st.lse as CudaTensor).release();
    gq.release();
  }
  gk.release();
  gv.release();
});
