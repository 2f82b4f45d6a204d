// CPU ranks as processes: the comm test programs run over the TCP wire (one process per rank,
// started by weft's launcher) and must give exactly what the worker-thread ranks give.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { runRanks } from '../../src/backends/cpu/comm/index.js';
import { launch } from '../../src/launch/launcher.js';

const PROGRAMS = new URL('./programs.js', import.meta.url).href;
const WIRE = new URL('../../src/backends/cpu/tcp/wire.js', import.meta.url).href;
const ENV = new URL('../../src/launch/env.js', import.meta.url).href;

/** Run programs.ts `fn` on `world` processes over TCP; each rank prints its JSON result. */
async function overTcp(
  world: number,
  fn: string,
  args: unknown,
): Promise<{ code: number; results: unknown[]; err: string; message?: string }> {
  const script = `const { runTcpRank } = await import(${JSON.stringify(WIRE)}); const { distEnv, connectStore } = await import(${JSON.stringify(ENV)});
    const d = distEnv(); const store = await connectStore(d, 20000);
    const r = await runTcpRank({ module: ${JSON.stringify(PROGRAMS)}, fn: ${JSON.stringify(fn)} }, ${JSON.stringify(args)}, { rank: d.rank, size: d.worldSize, store, token: d.token, timeoutMs: 20000 });
    console.log(JSON.stringify(r)); store.close();`;
  const out = new PassThrough(),
    err = new PassThrough();
  let o = '',
    e = '';
  out.on('data', (b: Buffer) => {
    o += b;
  });
  err.on('data', (b: Buffer) => {
    e += b;
  });
  const r = await launch({
    nprocs: world,
    command: [process.execPath, '--input-type=module', '-e', script],
    stdout: out,
    stderr: err,
    graceMs: 1000,
  });
  const results: unknown[] = [];
  for (const line of o.trim().split('\n').filter(Boolean)) {
    const m = /^\[rank (\d+)\] (.*)$/.exec(line)!;
    results[Number(m[1])] = JSON.parse(m[2]!);
  }
  return { code: r.code, results, err: e, message: r.message };
}

const prog = (fn: string) => ({ module: new URL(PROGRAMS), fn });

describe('TCP wire between processes', () => {
  for (const [fn, world, args] of [
    ['exchange', 3, { dtype: 'f32', shared: true }],
    ['exchange', 2, { dtype: 'bf16', shared: false }],
    ['collectives', 4, { dtype: 'f64' }],
    ['subgroupCollectives', 4, { dtype: 'f32', b: 2 }],
    ['splits', 8, null],
  ] as const) {
    it(`${fn} on ${world} processes equals ${world} worker threads`, async () => {
      const tcp = await overTcp(world, fn, args);
      assert.equal(tcp.code, 0, tcp.err);
      assert.deepEqual(tcp.results, await runRanks(world, prog(fn), () => args));
    });
  }

  it('a rank that fails ends the job: the failure is reported, nothing hangs', async () => {
    const r = await overTcp(3, 'throwing', { rank: 1, delayMs: 10 });
    assert.notEqual(r.code, 0);
    // whichever the launcher sees first: rank 1's exit, or a peer that lost rank 1's connection
    assert.match(r.message ?? '', /^rank \d exited with code 1/);
    assert.match(r.err, /deliberate failure in rank 1|rank 1 closed its connection before finishing/);
  });
});
