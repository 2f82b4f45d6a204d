// The varlen executor on GPUs, forward and backward, against the CPU f64 reference within the GPU
// tolerances (GPU_TOLERANCE; and, as every GPU check, at most 1.5× one GPU's error + 1e-3):
// - ranks in one process on one GPU: the dispatcher's plan for worlds 1–4 through the executor with
//   CudaDevice and CudaKernel, the ranks' transfers device copies on the one stream (a loopback
//   Comm: NCCL cannot run two ranks on one GPU) — the exchange, the merges and the returned dK/dV
//   on the GPU; causal, sliding and full documents, one-token documents, a document longer than a
//   rank's share, bf16 and f16, GQA; visiting queries and head-parallel documents (Ulysses on
//   sub-groups, over the same loopback transfers); the counted traffic and area equal to the plan's;
// - `weft run --strategy varlen --backend cuda` alone on one GPU and under `weft launch -n 1`, and
//   under `weft launch -n N` when there are N GPUs (NCCL between processes).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CudaKernel } from '../../src/backends/cuda/kernel/kernel.js';
import { openCuda } from '../../src/backends/cuda/runtime/runtime.js';
import type { CudaTensor } from '../../src/backends/cuda/runtime/tensor.js';
import type { Comm, P2POp, Work } from '../../src/comm/comm.js';
import type { Device } from '../../src/device/device.js';
import { referenceAttention } from '../../src/kernel/reference.js';
import { MaskGrid } from '../../src/mask/grid.js';
import { maskView } from '../../src/mask/view.js';
import { GPU_TOLERANCE } from '../../src/run/varlen-gpu.js';
import { ShardMap } from '../../src/shard/shard.js';
import { CommLog, CountingComm, CountingKernel } from '../../src/strategy/accounting.js';
import { asF64, type HostTensor, norm, relError, type Tensor } from '../../src/tensor/host.js';
import { randn, Rng } from '../../src/tensor/random.js';
import { type Batch, batchMaskSpec, type DocMask } from '../../src/varlen/batch.js';
import {
  dispatch,
  type DispatchOptions,
  type DispatchPlan,
  rankPositions,
  routesOf,
} from '../../src/varlen/dispatch.js';
import { routedKV, sparseKV } from '../../src/varlen/execute.js';
import { gpuCount, runJob } from '../job.js';

const WEFT = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const gpus = gpuCount();
const needs = (n: number): string | false => (gpus < n ? `needs ${n} GPUs, found ${gpus}` : false);
const OUTPUTS = ['out', 'lse', 'dq', 'dk', 'dv'] as const;

/**
 * The ranks of one process exchanging on one GPU: a send and the matching receive (the same pair of
 * ranks, in posting order, as NCCL matches them) become one device copy on the compute stream,
 * enqueued when both are posted; a Work resolves once all its copies are enqueued. Only sendRecv:
 * the executor uses nothing else.
 */
class Loopback {
  private readonly pending = new Map<string, { buf: Tensor; done: () => void }[]>();
  constructor(private readonly device: Device) {}

  post(kind: 'send' | 'recv', from: number, to: number, buf: Tensor): Promise<void> {
    return new Promise((done, fail) => {
      const key = `${from}>${to}`,
        mine = `${kind}:${key}`,
        theirs = `${kind === 'send' ? 'recv' : 'send'}:${key}`;
      const other = this.pending.get(theirs)?.shift();
      if (!other) {
        const q = this.pending.get(mine) ?? [];
        q.push({ buf, done });
        this.pending.set(mine, q);
        return;
      }
      const [src, dst] = kind === 'send' ? [buf, other.buf] : [other.buf, buf];
      if (src.dtype !== dst.dtype || src.shape.join() !== dst.shape.join())
        return fail(new Error(`loopback ${key}: ${src.dtype} [${src.shape}] into ${dst.dtype} [${dst.shape}]`));
      if (src.shape[0])
        this.device.copyBox(src, dst, { src: [0, 0], dst: [0, 0], size: [src.shape[0], src.shape[1]!] });
      other.done();
      done();
    });
  }

  comm(rank: number, size: number): Comm {
    const hub = this;
    const no = (op: string) => () => {
      throw new Error(`loopback comm: ${op} is not used by the executor`);
    };
    return {
      rank,
      size,
      sendRecv(ops: readonly P2POp[]): Work {
        const all = Promise.all(
          ops.flatMap((o) => [
            ...(o.send ? [hub.post('send', rank, o.send.peer, o.send.buf)] : []),
            ...(o.recv ? [hub.post('recv', o.recv.peer, rank, o.recv.buf)] : []),
          ]),
        );
        all.catch(() => {});
        return {
          wait: () =>
            Promise.race([
              all.then(() => {}),
              new Promise<void>((_, fail) =>
                setTimeout(() => fail(new Error(`rank ${rank}: a transfer was never matched`)), 20_000).unref(),
              ),
            ]),
        };
      },
      allToAll: no('allToAll'),
      allGather: no('allGather'),
      reduceScatter: no('reduceScatter'),
      allReduce: no('allReduce'),
      barrier: async () => {},
      split: no('split'),
    };
  }
}

const rt = gpus ? await openCuda({ device: 0 }) : undefined; // the cubin cache of WEFT_CACHE_DIR: the CLI runs below reuse it

describe('the varlen executor on one GPU, ranks in one process', { skip: needs(1) }, () => {
  const C = (m: DocMask['kind'], left = 0, right = 0): DocMask =>
    m === 'sliding' ? { kind: 'sliding', left, right } : ({ kind: m } as DocMask);
  const batches: [string, number[], DocMask[]][] = [
    ['causal, one-token documents', [1, 2, 190, 1, 60, 1, 90], [C('causal')]],
    ['sliding 7,0 and 3,2', [40, 1, 230, 5, 70], [C('sliding', 7, 0), C('sliding', 3, 2)]],
    ['full', [3, 1, 180, 30, 90], [C('full')]],
    ['mixed per document', [1, 120, 1, 64, 260, 2, 33], [C('causal'), C('full'), C('sliding', 16, 0)]],
  ];
  const shapes = [
    { dtype: 'bf16', H: 8, Hkv: 2, D: 128 },
    { dtype: 'f16', H: 4, Hkv: 4, D: 64 },
  ] as const;
  const batchOf = (lengths: number[], masks: DocMask[]): Batch => ({
    lengths,
    masks: lengths.map((_, i) => masks[i % masks.length]!),
  });
  for (const world of [1, 2, 3, 4])
    for (const [name, lengths, masks] of batches)
      for (const sh of shapes)
        test(`world ${world}, ${name}, ${sh.dtype} H ${sh.H}:${sh.Hkv} D ${sh.D}`, () =>
          exchanged(dispatch(batchOf(lengths, masks), { world }), batchOf(lengths, masks), sh, name));

  // the routes beside the star: visiting queries (the partial (out, lse) and dQ come back) and a
  // head-parallel document (Ulysses over a sub-group run on the same transfers), with relay
  const [, causalLengths, causalMasks] = batches[0]!;
  const routed: [string, number, Omit<DispatchOptions, 'world'>][] = [
    ['every star pair visiting', 2, { visit: 'all' }],
    ['every star pair visiting', 4, { visit: 'all', chunks: 2 }],
    ['the long document head-parallel, Ulysses 2', 2, { heads: [{ doc: 2, ulysses: 2 }], visit: 'all' }],
    [
      'the long document head-parallel, Ulysses 2 × ring 2',
      4,
      { heads: [{ doc: 2, ulysses: 2, ring: 2 }], relay: 'all' },
    ],
    ['the long document head-parallel, Ulysses 4', 4, { heads: [{ doc: 2, ulysses: 4 }], visit: 'all' }],
  ];
  for (const [name, world, options] of routed)
    test(`world ${world}, causal, ${name}, bf16 H 8:2 D 128`, async () => {
      const batch = batchOf(causalLengths, causalMasks),
        plan = dispatch(batch, { world, ...options });
      if (options.heads) assert.equal(plan.docs[2]!.mode, 'heads', 'the document is head-parallel');
      if (options.visit) assert.ok(plan.visits.length > 0, 'queries visit');
      await exchanged(plan, batch, shapes[0], name);
    });

  /** The plan through the executor on one GPU, its ranks in this process: the outputs against the reference, the traffic and area against the plan. */
  async function exchanged(plan: DispatchPlan, batch: Batch, sh: (typeof shapes)[number], name: string): Promise<void> {
    const world = plan.ranks.length,
      dev = rt!.device;
    const S = plan.S,
      mask = batchMaskSpec(batch),
      grid = MaskGrid.build(mask, S),
      scale = 1 / Math.sqrt(sh.D);
    const positions = rankPositions(plan),
      shard = ShardMap.fromPositions(S, positions);
    assert.ok(world === 1 || plan.docs.some((d) => d.mode !== 'local'), 'a document spans ranks: rows travel');
    const rng = new Rng(world * 100 + batch.lengths.length);
    const host = {
      q: randn(rng, sh.dtype, [S, sh.H, sh.D]),
      k: randn(rng, sh.dtype, [S, sh.Hkv, sh.D]),
      v: randn(rng, sh.dtype, [S, sh.Hkv, sh.D]),
      dout: randn(rng, sh.dtype, [S, sh.H, sh.D]),
    };
    const up = (t: HostTensor, r: number): Tensor => dev.upload(shard.scatter(t, r, 0));
    const hub = new Loopback(dev),
      gpu = new CudaKernel(rt!);
    const ranks = positions.map((_, r) => {
      const log = new CommLog(),
        kernel = new CountingKernel(gpu);
      const ctx = { comm: new CountingComm(hub.comm(r, world), log), kernel, device: dev, mask: grid, shard };
      return {
        log,
        kernel,
        ctx: { ...ctx, scale, trace: log },
        x: { q: up(host.q, r), k: up(host.k, r), v: up(host.v, r), dout: up(host.dout, r) },
      };
    });
    const strategy = routedKV(routesOf(plan)),
      fwd = await Promise.all(ranks.map((k) => strategy(k.ctx, k.x.q, k.x.k, k.x.v)));
    const bwd = await Promise.all(ranks.map((k, r) => fwd[r]!.backward(k.x.dout)));
    const got: Record<string, HostTensor> = {};
    for (const n of OUTPUTS) {
      const parts = await Promise.all(
        ranks.map((_, r) => dev.download((n === 'out' || n === 'lse' ? fwd[r]![n] : bwd[r]![n]) as CudaTensor)),
      );
      got[n] = shard.gather(parts, n === 'lse' ? 1 : 0);
    }
    // one GPU's kernel over the whole batch: the error every GPU check measures against
    const all = Int32Array.from({ length: S }, (_, i) => i),
      view = maskView(grid, all, all);
    const whole = {
      q: dev.upload(host.q),
      k: dev.upload(host.k),
      v: dev.upload(host.v),
      dout: dev.upload(host.dout),
    };
    const st = gpu.forward({ ...whole, view, scale });
    const sg = gpu.backward({ ...whole, out: st.out, lse: st.lse, view, scale });
    const single: Record<string, HostTensor> = {
      out: await dev.download(dev.cast(st.out, sh.dtype)),
      lse: await dev.download(st.lse),
      dq: await dev.download(dev.cast(sg.dq, sh.dtype)),
      dk: await dev.download(dev.cast(sg.dk, sh.dtype)),
      dv: await dev.download(dev.cast(sg.dv, sh.dtype)),
    };
    const ref = referenceAttention(host.q, host.k, host.v, grid, scale, host.dout);
    const tol = GPU_TOLERANCE[sh.dtype],
      line: string[] = [];
    for (const n of OUTPUTS) {
      assert.ok(!asF64(ref[n]!).every((y) => y === 0), `${n}: the reference is not all zero`);
      const e = relError(got[n]!, ref[n]!),
        e1 = relError(single[n]!, ref[n]!);
      line.push(`${n} ${e.toExponential(2)} (one GPU ${e1.toExponential(2)})`);
      assert.ok(e <= tol, `${n}: error ${e} > ${tol}`);
      assert.ok(e <= 1.5 * e1 + 1e-3, `${n}: error ${e}, one GPU's ${e1}`);
    }
    console.log(`# world ${world} ${name} ${sh.dtype}: ${line.join(', ')}`);
    // the forward moved exactly the planned rows; the kernels covered exactly the planned area
    const rowBytes = 2 * sh.Hkv * sh.D * 2;
    ranks.forEach((k, r) => {
      const sent = k.log.list().find((s) => s.label === 'varlen fwd kv')?.bytesSent ?? 0;
      assert.equal(sent, plan.ranks[r]!.sendRows * rowBytes, `rank ${r} sent`);
    });
    assert.equal(
      ranks.reduce((a, k) => a + k.kernel.count.area, 0),
      sh.H * plan.ranks.reduce((a, r) => a + r.area, 0),
      'kernel area = planned area',
    );
    for (const t of [...Object.values(whole), ...ranks.flatMap((k) => Object.values(k.x))]) dev.release(t);
  }

  test('every document one token: dq and dk are zero in the reference, and rounding noise here', async () => {
    const dev = rt!.device,
      S = 64;
    const batch: Batch = { lengths: Array(S).fill(1), masks: Array(S).fill({ kind: 'causal' }) };
    const plan = dispatch(batch, { world: 1 }),
      grid = MaskGrid.build(batchMaskSpec(batch), S);
    const shard = ShardMap.fromPositions(S, rankPositions(plan));
    const rng = new Rng(5),
      x = [8, 8, 8, 8].map((h) => randn(rng, 'bf16', [S, h, 64]));
    const ctx = {
      comm: new Loopback(dev).comm(0, 1),
      kernel: new CudaKernel(rt!),
      device: dev,
      mask: grid,
      shard,
      scale: 0.125,
    };
    const [q, k, v, dout] = x.map((t) => dev.upload(t));
    const f = await sparseKV(ctx, q!, k!, v!);
    const g = await f.backward(dout!);
    const ref = referenceAttention(x[0]!, x[1]!, x[2]!, grid, 0.125, x[3]);
    assert.ok(relError(await dev.download(f.out), ref.out) <= GPU_TOLERANCE.bf16);
    assert.ok(relError(await dev.download(g.dv), ref.dv!) <= GPU_TOLERANCE.bf16);
    for (const n of ['dq', 'dk'] as const) {
      assert.ok(asF64(ref[n]!).every((y) => y === 0));
      const rms = norm(await dev.download(g[n])) / Math.sqrt(S * 8 * 64);
      assert.ok(rms <= 1e-3, `${n}: rms ${rms}`);
    }
  });
});

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [WEFT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d));
    c.stderr.on('data', (d: Buffer) => {
      stderr += d;
      process.stdout.write(`# ${d}`);
    });
    const t = setTimeout(() => c.kill('SIGKILL'), 180_000);
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

interface RunJson {
  backend: string;
  dtype: string;
  stats: { perRank: Record<string, number>[]; balance: number; tokenBalance: number; tflopsPerGpu: number };
  check: { errors: Record<string, number>; tolerance: number; ok: boolean };
}

function checkJson(text: string, world: number, dtype: string): RunJson {
  const j = JSON.parse(text) as RunJson;
  assert.equal(j.backend, 'cuda');
  assert.equal(j.dtype, dtype);
  assert.equal(j.check.tolerance, GPU_TOLERANCE[dtype as 'bf16']);
  assert.ok(j.check.ok, JSON.stringify(j.check.errors));
  assert.deepEqual(Object.keys(j.check.errors), ['out', 'lse', 'dq', 'dk', 'dv']);
  assert.equal(j.stats.perRank.length, world);
  for (const r of j.stats.perRank)
    for (const f of ['tokens', 'area', 'bytesSent', 'bytesReceived', 'peakHeldBytes', 'forwardMs', 'backwardMs'])
      assert.equal(typeof r[f], 'number', f);
  assert.equal(typeof j.stats.balance, 'number');
  assert.ok(j.stats.tflopsPerGpu > 0);
  return j;
}

const CLI = ['run', '--strategy', 'varlen', '--backend', 'cuda', '--check', '--json', '--iters', '2', '--warmup', '1'];
// small batches: the f64 reference on the host scans every key for every row (O(S²·H·D))
const CASES: [string, string, string[]][] = [
  [
    'bf16',
    'document-causal',
    ['--cu-seqlens', '0,1,2,300,301,700,701', '--heads', '8', '--kv-heads', '2', '--dim', '128'],
  ],
  ['f16', 'document-sliding:64,0', ['--docs', '4', '--dist', 'longtail', '--seed', '5', '--heads', '4', '--dim', '64']],
  ['bf16', 'document', ['--cu-seqlens', '0,1,90,91,400', '--heads', '4', '--kv-heads', '1', '--dim', '64']],
];

describe('weft run --strategy varlen --backend cuda --check', () => {
  for (const [dtype, mask, args] of CASES)
    test(`alone on one GPU: ${mask} ${dtype}`, { skip: needs(1), timeout: 200_000 }, async () => {
      const r = await run([...CLI, '--world', '1', '--mask', mask, '--dtype', dtype, ...args]);
      assert.equal(r.code, 0, r.stderr);
      const j = checkJson(r.stdout, 1, dtype);
      assert.equal(j.stats.perRank[0]!.bytesSent, 0, 'world 1: every document local');
      console.log(`# ${mask} ${dtype}: ${JSON.stringify(j.check.errors)}`);
    });

  for (const world of [1, 2, 4])
    test(`under weft launch -n ${world}`, { skip: needs(world), timeout: 200_000 }, async () => {
      const [dtype, mask, args] = CASES[0]!;
      const r = await runJob({
        world,
        limitMs: 180_000,
        env: { ...process.env, WEFT_NCCL_TIMEOUT: '30' },
        command: [WEFT, ...CLI, '--world', String(world), '--mask', mask, '--dtype', dtype, ...args],
      });
      assert.equal(r.code, 0, `${r.message ?? ''} ${r.err.slice(-2000)}`);
      const lines = r.out.trim().split('\n');
      assert.equal(lines.length, 1, 'rank 0 alone reports');
      const j = checkJson(lines[0]!.replace(/^\[rank 0\] /, ''), world, dtype);
      if (world > 1)
        assert.ok(
          j.stats.perRank.some((x) => x.bytesSent! > 0),
          'K/V rows travel over NCCL',
        );
      console.log(`# launched ${world}: ${JSON.stringify(j.check.errors)}`);
    });
});
