// NCCL across two GPUs: every collective's result under `weft launch`, and a killed peer
// turned into an error within the watchdog timeout (ranks started by hand here, since the
// launcher would stop the survivor as soon as its peer died).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gpuCount, type JobResult, runJob } from '../job.js';
import { rankEnv } from '../../src/launch/env.js';
import { StoreServer } from '../../src/launch/store.js';

const CHILD = fileURLToPath(new URL('./nccl-child.js', import.meta.url));
const gpus = gpuCount();
const skip = gpus < 2 ? `needs 2 GPUs, found ${gpus}` : false;

/** Both ranks of nccl-child.js in `mode`; their output is echoed as diagnostics. */
const job = (mode: string, env?: NodeJS.ProcessEnv): Promise<JobResult> =>
  runJob({ world: 2, command: [CHILD, mode], env, limitMs: 170_000, echo: true });

test(
  'every collective gives the right result across 2 GPUs (under weft launch)',
  { skip, timeout: 180_000 },
  async () => {
    const r = await job('collectives');
    assert.equal(r.code, 0, `${r.message}\n${r.err}`);
    for (const name of [
      'sendRecv ring',
      'sendRecv batch',
      'allToAll',
      'allGather',
      'reduceScatter',
      'allReduce f32',
      'allReduce bf16',
      'wait orders compute after communication',
      'split by rank gives singletons',
      'split with keys reorders ranks',
      'collective on a split communicator',
      'barrier',
    ])
      for (const rank of [0, 1]) assert.ok(r.out.includes(`[rank ${rank}] PASS ${name}\n`), `rank ${rank} ${name}`);
  },
);

test(
  "the mesh strategies' split sequences, each followed by an all-to-all on the new groups",
  { skip, timeout: 120_000 },
  async () => {
    const r = await job('splits', { ...process.env, WEFT_NCCL_TIMEOUT: '20' });
    assert.equal(r.code, 0, `${r.message}\n${r.err}`);
    for (const rank of [0, 1])
      assert.ok(r.out.includes(`[rank ${rank}] PASS world barrier after the splits\n`), `rank ${rank}`);
  },
);

test('a killed peer becomes a clear error within the timeout', { skip, timeout: 120_000 }, async () => {
  const token = 'kill-test';
  const server = await StoreServer.listen('127.0.0.1', 0, token);
  const timeoutS = 5;
  const procs = [0, 1].map((rank) =>
    spawn(process.execPath, [CHILD, 'kill'], {
      env: {
        ...process.env,
        ...rankEnv({
          rank,
          worldSize: 2,
          localRank: rank,
          localWorldSize: 2,
          nodeRank: 0,
          masterAddr: '127.0.0.1',
          masterPort: server.port,
          token,
        }),
        WEFT_NCCL_TIMEOUT: String(timeoutS),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const outputs = procs.map((p) => {
    let s = '';
    p.stdout!.on('data', (d: Buffer) => {
      s += d;
    });
    p.stderr!.on('data', (d: Buffer) => {
      s += d;
    });
    return { text: () => s, done: new Promise<number | null>((res) => p.on('close', (code) => res(code))) };
  });
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  // the timer is cleared: a pending 90 s timer kept the test process alive after the test passed
  const survivor = await Promise.race([
    outputs[0]!.done,
    new Promise<'hung'>((res) => {
      timer = setTimeout(() => res('hung'), 90_000);
    }),
  ]);
  clearTimeout(timer);
  const elapsed = Date.now() - t0;
  if (survivor === 'hung') procs[0]!.kill('SIGKILL');
  await server.close();
  const text = outputs[0]!.text();
  console.log(`# rank 0 (${elapsed} ms in all): ${text.trim().split('\n').join(' | ')}`);
  assert.notEqual(survivor, 'hung', 'rank 0 hung instead of reporting the dead peer');
  assert.equal(survivor, 0, text);
  const m = /DETECTED after (\d+) ms: (.*)/.exec(text);
  assert.ok(m, text);
  assert.ok(Number(m[1]) <= timeoutS * 1000 + 5000, `detected after ${m[1]} ms`);
  assert.match(m[2]!, /not complete after 5 s: a peer died or is stuck|ncclRemoteError|ncclSystemError/);
});
