// A user's tensors on GPUs: `weft attn --backend cuda` on one GPU and under a launcher (each rank
// reads only its rows; rank 0 writes), checked file against file with the CPU kernel on the same
// inputs; and the ranks started as srun starts them (the Slurm environment only, no weft launch).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { attention, readSafetensors, type StTensor, writeSafetensors } from '../../src/index.js';
import { castHost, relError, type HostTensor } from '../../src/tensor/host.js';
import { randn, Rng } from '../../src/tensor/random.js';
import { gpuCount } from '../job.js';

const WEFT = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const dir = mkdtempSync(path.join(os.tmpdir(), 'weft-gpu-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const gpus = gpuCount();
const skip = gpus < 1 ? 'needs a GPU' : false;

function run(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [WEFT, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    c.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    c.stderr.on('data', (d: Buffer) => {
      stderr += d;
      process.stdout.write(`# ${d}`);
    });
    const t = setTimeout(() => c.kill('SIGKILL'), 240_000);
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** q, k, v, dout in `dtype` ([S,H,D] or [B,S,H,D]) and optional cu_seqlens, written to a file. */
function problem(
  name: string,
  dtype: 'bf16' | 'f32',
  lead: number[],
  H: number,
  Hkv: number,
  D: number,
  cu?: number[],
): string {
  const rng = new Rng(7);
  const t = (heads: number): StTensor => {
    const h = randn(rng, dtype, [...lead, heads, D]);
    return { dtype: dtype === 'bf16' ? 'BF16' : 'F32', shape: [...h.shape], data: h.data as StTensor['data'] };
  };
  const m = new Map<string, StTensor>([
    ['q', t(H)],
    ['k', t(Hkv)],
    ['v', t(Hkv)],
    ['dout', t(H)],
  ]);
  if (cu) m.set('cu_seqlens', { dtype: 'I32', shape: [cu.length], data: Int32Array.from(cu) });
  const file = path.join(dir, `${name}.safetensors`);
  writeSafetensors(file, m);
  return file;
}

/** The GPU's file against the CPU kernel (f32 arithmetic) on the inputs as the GPU took them (bf16). */
async function compare(input: string, output: string, mask: string): Promise<Record<string, number>> {
  const t = readSafetensors(input),
    g = readSafetensors(output);
  const asBf16 = (n: string): StTensor | undefined => {
    const x = t.get(n);
    if (!x) return undefined;
    if (x.dtype === 'BF16') return x;
    const h = castHost({ dtype: 'f32', shape: x.shape, data: x.data as Float32Array }, 'bf16');
    return { dtype: 'BF16', shape: [...h.shape], data: h.data as Uint16Array };
  };
  const cu = t.get('cu_seqlens');
  const cpu = await attention({
    q: asBf16('q')!,
    k: asBf16('k')!,
    v: asBf16('v')!,
    dout: asBf16('dout'),
    mask,
    dtype: 'f32',
    ...(cu ? { cuSeqlens: cu.data as Int32Array } : {}),
  });
  const errs: Record<string, number> = {};
  for (const n of ['out', 'lse', 'dq', 'dk', 'dv'] as const) {
    const x = g.get(n)!;
    assert.deepEqual(x.shape, cpu[n]!.shape, n);
    assert.equal(x.dtype, n === 'lse' ? 'F32' : 'BF16', n);
    const h: HostTensor = { dtype: n === 'lse' ? 'f32' : 'bf16', shape: x.shape, data: x.data as HostTensor['data'] };
    errs[n] = relError(castHost(h, 'f64'), castHost(cpu[n]!, 'f64'));
  }
  return errs;
}

// bf16 outputs carry their own rounding on top of the kernel's error (≤ 4.5e-3 against f64, test-gpu/kernel)
const BOUND = { out: 8e-3, lse: 2e-3, dq: 1e-2, dk: 1e-2, dv: 1e-2 };
const within = (e: Record<string, number>, what: string): void => {
  for (const [n, b] of Object.entries(BOUND)) assert.ok(e[n]! <= b, `${what}: ${n} error ${e[n]} > ${b}`);
};

test(
  'weft attn --backend cuda on one GPU: bf16 used as is, f32 cast with a note; every mask family, GQA, a batch',
  { skip, timeout: 600_000 },
  async () => {
    const cases: [string, 'bf16' | 'f32', number[], number, number, number, string, number[]?][] = [
      ['causal-gqa', 'bf16', [1000], 8, 2, 128, 'causal'],
      ['docs', 'bf16', [777], 4, 4, 64, 'document-causal', [0, 100, 101, 500, 777]],
      ['sliding-batch', 'bf16', [2, 300], 4, 1, 64, 'sliding:64,0'],
      ['f32', 'f32', [512], 4, 2, 128, 'full'],
    ];
    for (const [name, dtype, lead, H, Hkv, D, mask, cu] of cases) {
      const input = problem(name, dtype, lead, H, Hkv, D, cu),
        output = path.join(dir, `${name}-gpu.safetensors`);
      const r = await run(['attn', '--backend', 'cuda', '--in', input, '--out', output, '--mask', mask, '--json']);
      assert.equal(r.code, 0, r.stderr);
      if (dtype === 'f32') assert.match(r.stderr, /cast to bf16/);
      else assert.doesNotMatch(r.stderr, /cast/);
      const e = await compare(input, output, mask);
      console.log(`# ${name}: ${JSON.stringify(e)}`);
      within(e, name);
    }
  },
);

test(
  `weft launch -n ${gpus} -- attn --backend cuda --strategy ring: each rank's rows, rank 0 writes`,
  { skip, timeout: 300_000 },
  async () => {
    const input = problem('launch', 'bf16', [1537], 8, 2, 128, [0, 600, 1537]),
      output = path.join(dir, 'launch-gpu.safetensors');
    const r = await run([
      'launch',
      '-n',
      String(gpus),
      '--',
      'attn',
      '--backend',
      'cuda',
      '--strategy',
      'ring',
      '--world',
      String(gpus),
      '--in',
      input,
      '--out',
      output,
      '--mask',
      'document-causal',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const e = await compare(input, output, 'document-causal');
    console.log(`# launch ${gpus}: ${JSON.stringify(e)}`);
    within(e, 'launch');
  },
);

test('srun-style start of a 1-GPU run (SLURM_* only): weft run and weft attn', { skip, timeout: 300_000 }, async () => {
  const free = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SLURM_PROCID: '0',
    SLURM_NTASKS: '1',
    SLURM_LOCALID: '0',
    SLURM_NODEID: '0',
    SLURM_JOB_ID: '12',
    SLURM_STEP_ID: '0',
    SLURM_STEP_NODELIST: '127.0.0.[1-2]',
    SLURM_STEP_TASKS_PER_NODE: '1',
    WEFT_STORE_PORT: String(free),
  };
  for (const k of ['RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'WEFT_STORE_TOKEN']) delete env[k];
  const r = await run(
    [
      'run',
      '--backend',
      'cuda',
      '--strategy',
      'ring',
      '--world',
      '1',
      '--seq',
      '4096',
      '--heads',
      '8',
      '--kv-heads',
      '2',
      '--dim',
      '128',
      '--check',
      '--json',
      '--iters',
      '2',
      '--warmup',
      '1',
    ],
    env,
  );
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { checkOk: boolean; tflopsPerGpu: number };
  console.log(`# srun-style weft run: ${r.stdout.trim()}`);
  assert.equal(j.checkOk, true);
  const input = problem('srun', 'bf16', [1024], 4, 2, 64),
    output = path.join(dir, 'srun-gpu.safetensors');
  const a = await run(
    [
      'attn',
      '--backend',
      'cuda',
      '--strategy',
      'ring',
      '--world',
      '1',
      '--in',
      input,
      '--out',
      output,
      '--mask',
      'causal',
      '--json',
    ],
    env,
  );
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, /"where":"ring on 1 GPUs \(slurm\)"/);
  within(await compare(input, output, 'causal'), 'srun attn');
});
