// `weft run --mode prefill|decode --backend cuda --check` under weft launch, end to end: the KV
// cache on the GPU, the step through the CUDA kernel (the split-K decode kernel for decode, the
// flash kernel for prefill), every new token's row against the f64 reference, within the bound
// of the other GPU runs (1.5 × one kernel call's own error + 1e-3).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gpuCount, runJob } from '../job.js';

const WEFT = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const gpus = gpuCount();
const needs = (n: number): string | false => (gpus < n ? `needs ${n} GPUs, found ${gpus}` : false);

interface Checked {
  mode: string;
  pass?: string;
  step: { medianMs: number };
  check: { errors: { out: number; lse: number }; against: string; tolerance: number; ok: boolean };
}

async function run(world: number, args: string[]): Promise<Checked> {
  const r = await runJob({
    world,
    command: [
      WEFT,
      'run',
      '--backend',
      'cuda',
      '--world',
      String(world),
      '--check',
      '--json',
      '--iters',
      '2',
      '--warmup',
      '1',
      ...args,
    ],
    limitMs: 120_000,
    env: { ...process.env, WEFT_NCCL_TIMEOUT: '30' },
  });
  assert.equal(
    r.code,
    0,
    `exit ${r.code}${r.message ? `: ${r.message}` : ''}: ${r.err.slice(-2000)}${r.out.slice(-1000)}`,
  );
  const line = r.out
    .split('\n')
    .filter((l) => l.startsWith('[rank 0] {'))
    .map((l) => l.slice('[rank 0] '.length))[0];
  assert.ok(line, `no JSON line from rank 0: ${r.out.slice(-1000)}`);
  return JSON.parse(line) as Checked;
}

const gqa = ['--heads', '8', '--kv-heads', '2', '--dim', '128'];
const cases: [string, string[]][] = [
  ['decode, 1 new token, 3 requests, causal', ['--mode', 'decode', '--context', '1000', '--batch', '3', ...gqa]],
  [
    'decode, 4 new tokens (speculative), sliding window',
    ['--mode', 'decode', '--context', '900', '--new-tokens', '4', '--batch', '2', '--mask', 'sliding:256,0', ...gqa],
  ],
  [
    'decode, 2 new tokens, documents, D=64 MQA',
    [
      '--mode',
      'decode',
      '--context',
      '600',
      '--new-tokens',
      '2',
      '--mask',
      'document-causal',
      '--cu-seqlens',
      '0,250,480,602',
      '--heads',
      '4',
      '--kv-heads',
      '1',
      '--dim',
      '64',
    ],
  ],
  [
    'prefill pass-KV, causal',
    ['--mode', 'prefill', '--context', '700', '--new-tokens', '300', '--batch', '2', '--pass', 'kv', ...gqa],
  ],
  [
    'prefill pass-Q, documents',
    [
      '--mode',
      'prefill',
      '--context',
      '500',
      '--new-tokens',
      '200',
      '--pass',
      'q',
      '--mask',
      'document-causal',
      '--cu-seqlens',
      '0,300,520,700',
      ...gqa,
    ],
  ],
  [
    'prefill from an empty cache, sliding window, pass chosen by the planner',
    ['--mode', 'prefill', '--context', '0', '--new-tokens', '640', '--mask', 'sliding:128,0', ...gqa],
  ],
];

for (const [name, args] of cases)
  test(`weft run --backend cuda on 1 GPU: ${name}`, { skip: needs(1), timeout: 150_000 }, async () => {
    const j = await run(1, args);
    assert.equal(j.check.against, 'f64 reference');
    assert.ok(j.check.ok, JSON.stringify(j.check));
    // bf16 inputs, f32 state: a relative error of a few 1e-3 in out, far less in lse
    assert.ok(j.check.errors.out < 1e-2 && j.check.errors.lse < 1e-3, JSON.stringify(j.check));
    assert.ok(j.step.medianMs > 0);
  });

for (const [name, args] of [cases[1]!, cases[3]!, cases[4]!])
  test(`weft run --backend cuda on 2 GPUs: ${name}`, { skip: needs(2), timeout: 150_000 }, async () => {
    const j = await run(2, args);
    assert.ok(j.check.ok, JSON.stringify(j.check));
  });
