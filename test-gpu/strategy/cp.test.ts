// Every strategy on 2 GPUs (under weft launch), forward and backward, for every mask family:
// the gathered result must match one GPU's kernel over the whole sequence and stay as close to
// the f64 reference as one GPU does (weft run --check decides; see run-gpu.ts).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startLaunch } from '../../src/launch/launcher.js';

const WEFT = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function gpuCount(): number {
  try { return execFileSync('nvidia-smi', ['-L'], { encoding: 'utf8' }).trim().split('\n').length; } catch { return 0; }
}

const gpus = gpuCount();
const skip = gpus < 2 ? `needs 2 GPUs, found ${gpus}` : false;
const skip4 = gpus < 4 ? `needs 4 GPUs, found ${gpus}` : false;

interface Summary { checkOk: boolean; check: { vsSingle: Record<string, number>; cpVsRef?: Record<string, number>; singleVsRef?: Record<string, number> }; tflopsPerGpu: number }

/**
 * `weft launch -n world -- run --backend cuda --check --json …`, with the launcher in this process
 * (as test-gpu/runtime does: a job under spawnSync from a test file hung twice), stopped after 90 s.
 */
async function run(args: string[], world = 2): Promise<Summary> {
  const n = String(world);
  const out = new PassThrough(), err = new PassThrough();
  let o = '', e = '';
  out.on('data', (d: Buffer) => { o += d; });
  err.on('data', (d: Buffer) => { e += d; process.stdout.write(`# ${d}`); });
  const job = await startLaunch({
    nprocs: world, stdout: out, stderr: err,
    env: { ...process.env, WEFT_NCCL_TIMEOUT: '30' }, // a stuck collective becomes an error before the job's limit
    command: [process.execPath, WEFT, 'run', '--backend', 'cuda', '--world', n, '--check', '--json', '--iters', '1', '--warmup', '0', ...args],
  });
  const timer = setTimeout(() => job.stop('the job ran past 90 s'), 90_000);
  const r = await job.result.finally(() => clearTimeout(timer));
  const line = o.split('\n').map((l) => l.replace(/^\[rank \d\] /, '')).find((l) => l.startsWith('{'));
  assert.ok(line, `no JSON from weft run (exit ${r.code}${r.message ? `: ${r.message}` : ''}): ${e.slice(-2000)}${o.slice(-1000)}`);
  return JSON.parse(line) as Summary;
}

describe('context parallelism on 2 GPUs matches one GPU and the f64 reference', { skip }, () => {
  const base = ['--seq', '1000', '--heads', '4', '--kv-heads', '2', '--dim', '64'];
  const cases: [string, string[]][] = [
    ['ring zigzag causal', ['--strategy', 'ring', '--mask', 'causal']],
    ['ring contiguous full', ['--strategy', 'ring', '--shard', 'contiguous', '--mask', 'full']],
    ['ring striped sliding', ['--strategy', 'ring', '--shard', 'striped', '--mask', 'sliding:100,0']],
    ['allgather prefix', ['--strategy', 'allgather', '--mask', 'prefix:300']],
    ['ulysses document-causal', ['--strategy', 'ulysses', '--mask', 'document-causal', '--docs', '5']],
    ['usp 2x1 causal', ['--strategy', 'usp', '--ulysses', '2', '--ring', '1', '--mask', 'causal']],
    ['usp 1x2 context-first causal', ['--strategy', 'usp', '--ulysses', '1', '--ring', '2', '--placement', 'context-first', '--mask', 'causal']],
    ['double-ring document', ['--strategy', 'double-ring', '--inner', '1', '--mask', 'document', '--docs', '3']],
    ['tokenring causal', ['--strategy', 'tokenring', '--mask', 'causal']],
    ['ring D=128 GQA causal', ['--strategy', 'ring', '--mask', 'causal', '--dim', '128', '--heads', '8', '--kv-heads', '2']],
  ];
  for (const [name, args] of cases) test(name, { timeout: 120_000 }, async () => {
    const s = await run([...base, ...args]);
    assert.ok(s.checkOk, `${name}: ${JSON.stringify(s.check)}`);
    assert.ok(s.check.cpVsRef, 'the f64 reference ran');
  });
});

describe('context parallelism on 4 GPUs: the two-dimensional layouts', { skip: skip4 }, () => {
  const base = ['--seq', '1000', '--heads', '4', '--kv-heads', '2', '--dim', '64'];
  const cases: [string, string[]][] = [
    ['ring zigzag causal', ['--strategy', 'ring', '--mask', 'causal']],
    ['usp 2x2 head-first causal', ['--strategy', 'usp', '--ulysses', '2', '--ring', '2', '--mask', 'causal']],
    ['usp 2x2 context-first document-causal', ['--strategy', 'usp', '--ulysses', '2', '--ring', '2', '--placement', 'context-first', '--mask', 'document-causal', '--docs', '4']],
    ['double-ring 2 sliding', ['--strategy', 'double-ring', '--inner', '2', '--mask', 'sliding:200,0']],
    ['tokenring document-causal', ['--strategy', 'tokenring', '--mask', 'document-causal', '--docs', '3']],
    ['ulysses full', ['--strategy', 'ulysses', '--mask', 'full']],
  ];
  for (const [name, args] of cases) test(name, { timeout: 120_000 }, async () => {
    const s = await run([...base, ...args], 4);
    assert.ok(s.checkOk, `${name}: ${JSON.stringify(s.check)}`);
    assert.ok(s.check.cpVsRef, 'the f64 reference ran');
  });
});
