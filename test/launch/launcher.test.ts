// The launcher with a tiny node script as each rank: the environment contract, rank-prefixed
// output, the store shared by the ranks, and fail-fast.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { launch, type LaunchOptions } from '../../src/launch/launcher.js';
import { weft } from '../helpers/cli.js';

const STORE = new URL('../../src/launch/env.js', import.meta.url).href;

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let s = '';
  stream.on('data', (d: Buffer) => {
    s += d.toString();
  });
  return { stream, text: () => s };
}

async function run(script: string, o: Partial<LaunchOptions> & { nprocs: number }) {
  const out = capture(),
    err = capture();
  const r = await launch({
    command: [process.execPath, '--input-type=module', '-e', script],
    stdout: out.stream,
    stderr: err.stream,
    graceMs: 1000,
    ...o,
  });
  return { ...r, out: out.text(), err: err.text() };
}

test("each rank gets torchrun's environment, the multicast guards and a prefixed output", async () => {
  const script = `const e = process.env; console.log(JSON.stringify({ RANK: e.RANK, WORLD_SIZE: e.WORLD_SIZE, LOCAL_RANK: e.LOCAL_RANK,
    LOCAL_WORLD_SIZE: e.LOCAL_WORLD_SIZE, MASTER_ADDR: e.MASTER_ADDR, port: Number(e.MASTER_PORT) > 0, token: (e.WEFT_STORE_TOKEN ?? '').length > 16,
    nvls: e.NCCL_NVLS_ENABLE, symm: e.TORCH_SYMM_MEM_DISABLE_MULTICAST, nvshmem: e.NVSHMEM_DISABLE_NVLS })); console.error('to stderr');`;
  const r = await run(script, { nprocs: 3, env: { ...process.env, NCCL_NVLS_ENABLE: '1' } });
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trim().split('\n').sort();
  assert.equal(lines.length, 3);
  lines.forEach((l, i) => {
    assert.ok(l.startsWith(`[rank ${i}] `), l);
    assert.deepEqual(JSON.parse(l.slice(`[rank ${i}] `.length)), {
      RANK: String(i),
      WORLD_SIZE: '3',
      LOCAL_RANK: String(i),
      LOCAL_WORLD_SIZE: '3',
      MASTER_ADDR: '127.0.0.1',
      port: true,
      token: true,
      nvls: '0',
      symm: '1',
      nvshmem: '1',
    });
  });
  assert.deepEqual(r.err.trim().split('\n').sort(), ['[rank 0] to stderr', '[rank 1] to stderr', '[rank 2] to stderr']);
});

test('two nodes (two launchers on loopback) form one job: global ranks, one store, one token', async () => {
  const script = `const { distEnv, connectStore } = await import(${JSON.stringify(STORE)});
    const d = distEnv(); const s = await connectStore(d, 10000);
    await s.set('seen/' + d.rank, 'node ' + d.nodeRank);
    await s.barrier('all', d.worldSize);
    const nodes = []; for (let r = 0; r < d.worldSize; r++) nodes.push(await s.getString('seen/' + r));
    console.log(d.rank + '/' + d.worldSize + ' local ' + d.localRank + ' of ' + d.localWorldSize + ': ' + nodes.join(',')); s.close();`;
  const port = 29000 + Math.floor(Math.random() * 2000);
  const common = { nprocs: 2, nodes: 2, master: { host: '127.0.0.1', port }, token: 'a-shared-secret-for-this-test' };
  const [a, b] = await Promise.all([run(script, { ...common, nodeRank: 0 }), run(script, { ...common, nodeRank: 1 })]);
  assert.equal(a.code, 0, a.err);
  assert.equal(b.code, 0, b.err);
  const all = 'node 0,node 0,node 1,node 1';
  assert.deepEqual(a.out.trim().split('\n').sort(), [
    `[rank 0] 0/4 local 0 of 2: ${all}`,
    `[rank 1] 1/4 local 1 of 2: ${all}`,
  ]);
  assert.deepEqual(b.out.trim().split('\n').sort(), [
    `[rank 2] 2/4 local 0 of 2: ${all}`,
    `[rank 3] 3/4 local 1 of 2: ${all}`,
  ]);
});

test('ranks meet through the store', async () => {
  const script = `const { distEnv, connectStore } = await import(${JSON.stringify(STORE)});
    const d = distEnv(); const s = await connectStore(d, 10000);
    if (d.rank === 0) await s.set('greeting', 'hello from 0');
    const n = await s.add('arrived', 1);
    await s.barrier('all', d.worldSize);
    console.log(await s.getString('greeting'), n <= d.worldSize); s.close();`;
  const r = await run(script, { nprocs: 4 });
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(
    r.out
      .trim()
      .split('\n')
      .map((l) => l.replace(/^\[rank \d\] /, '')),
    Array(4).fill('hello from 0 true'),
  );
});

// The other ranks would print after ten minutes; the two-minute hang guard fails the test first
// if they are not stopped, and their silence shows they were.
test(
  'fail-fast: one rank fails, the others are stopped, the first error is reported',
  { timeout: 120_000 },
  async () => {
    const script = `if (process.env.RANK === '1') { console.error('Error: rank one broke'); process.exit(3); }
    setTimeout(() => console.log('should not finish'), 600000);`;
    const r = await run(script, { nprocs: 3 });
    assert.equal(r.code, 3);
    assert.equal(r.failure?.rank, 1);
    assert.equal(r.message, 'rank 1 exited with code 3: Error: rank one broke; stopped the other ranks');
    assert.ok(!r.out.includes('should not finish'));
  },
);

test('a rank that ignores SIGTERM is killed after the grace period; a signal death counts as 128 + signal', async () => {
  const script = `process.on('SIGTERM', () => {}); if (process.env.RANK === '0') process.kill(process.pid, 'SIGKILL'); setInterval(() => {}, 1000);`;
  const r = await run(script, { nprocs: 2, graceMs: 300 });
  assert.equal(r.code, 137);
  assert.match(r.message!, /^rank 0 was killed by SIGKILL/);
});

test('weft launch on the command line: usage errors exit 2 with one line; --no-weft runs a plain program', () => {
  const bad = weft(['launch', '-n', '0', '--no-weft', '--', process.execPath, '-e', '0']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'weft: -n must be a positive integer, got 0\n');
  const badMaster = weft(['launch', '-n', '1', '--master', 'nohostport', '--', 'demo']);
  assert.equal(badMaster.code, 2);
  assert.match(badMaster.stderr, /^weft: --master must be ADDR:PORT/);
  const multi = weft(['launch', '-n', '1', '--nodes', '2', '--master', '127.0.0.1:29555', '--', 'demo']);
  assert.equal(multi.code, 2);
  assert.match(multi.stderr, /shared token/);
  const ok = weft([
    'launch',
    '-n',
    '2',
    '--no-weft',
    '--',
    process.execPath,
    '-e',
    'console.log("rank", process.env.RANK); setTimeout(() => process.exit(Number(process.env.RANK) * 5), Number(process.env.RANK) * 500)',
  ]);
  assert.equal(ok.code, 5);
  assert.match(ok.stdout, /\[rank 0\] rank 0/);
  assert.match(ok.stderr, /weft launch: rank 1 exited with code 5/);
});

test('weft launch runs a weft subcommand in each rank by default', () => {
  const r = weft(['launch', '-n', '2', '--', 'help', 'report']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.ok(
    lines.every((l) => /^\[rank [01]\] /.test(l)),
    r.stdout,
  );
  assert.ok(
    lines.includes('[rank 0] Usage: weft report [options] [inputs...]') &&
      lines.includes('[rank 1] Usage: weft report [options] [inputs...]'),
    r.stdout,
  );
});
