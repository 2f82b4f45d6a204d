// The event-driven simulator: exact agreement with the analytical model where both describe the
// same thing (uniform ring steps), close agreement elsewhere, FIFO contention on shared ports,
// timelines, and 16,384 GPUs within the time the issue allows.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../src/errors.js';
import type { ChromeTrace, ChromeEvent } from '../../src/io/trace.js';
import { parseConfig, type CandidateSpec } from '../../src/plan/config.js';
import { completeLayout } from '../../src/plan/layout.js';
import { buildContext, prepare } from '../../src/plan/search.js';
import { COMPUTE, Engine, IN_INTRA, OUT_INTRA } from '../../src/sim/engine.js';
import { simulate } from '../../src/sim/simulate.js';
import { tempDir } from '../helpers/temp.js';
import { Progress } from '../../src/plan/progress.js';

const node8 = { nodes: 1, gpusPerNode: 8, gpu: 'h200' };
const two = { nodes: 2, gpusPerNode: 8, gpu: 'h200', interNode: { GBps: 25, latencyUs: 10 } };

async function run(
  config: Record<string, unknown>,
  cand: CandidateSpec,
): Promise<{ sim: number; ana: number; scaled: boolean; tasks: number }> {
  const cfg = parseConfig({ model: 'llama3-8b', mask: 'causal', ...config });
  const ctx = buildContext(cfg),
    l = completeLayout(cand, cfg);
  await prepare(ctx, [l]);
  const r = simulate(ctx, l);
  return { sim: r.stepMs, ana: r.analyticStepMs, scaled: r.scaled, tasks: r.tasks };
}

test('where every ring step is alike, the simulation reproduces the analytical model exactly', async () => {
  const cases: [Record<string, unknown>, CandidateSpec][] = [
    [
      { mode: 'attention', seqLen: 65536, mask: 'full', cluster: node8 },
      { ring: 8, shard: 'contiguous' },
    ],
    [
      { mode: 'attention', seqLen: 65536, cluster: node8 },
      { ring: 8, shard: 'zigzag' },
    ],
    [{ mode: 'attention', seqLen: 65536, cluster: node8 }, { ulysses: 8 }],
    [
      { mode: 'attention-forward', seqLen: 262144, cluster: node8 },
      { ulysses: 4, ring: 2 },
    ],
    [
      { mode: 'training', seqLen: 131072, cluster: node8 },
      { ulysses: 4, ring: 2 },
    ],
    [
      { mode: 'training', seqLen: 81920, cluster: { ...two, gpu: 'a800' } },
      { ulysses: 8, ring: 2 },
    ],
    [
      { mode: 'prefill', seqLen: 262144, cluster: node8 },
      { tp: 2, ring: 4 },
    ],
  ];
  for (const [config, cand] of cases) {
    const r = await run(config, cand);
    assert.ok(
      Math.abs(r.sim / r.ana - 1) < 1e-9,
      `${JSON.stringify(cand)} ${config.mode}: simulated ${r.sim} vs analytical ${r.ana}`,
    );
  }
});

test('elsewhere they agree closely: imbalance, double rings, TokenRing, rings across nodes', async () => {
  const cases: [Record<string, unknown>, CandidateSpec, number][] = [
    [{ mode: 'attention', seqLen: 65536, cluster: node8 }, { ring: 8, shard: 'contiguous' }, 0.02],
    [{ mode: 'attention', seqLen: 65536, cluster: two }, { ulysses: 4, ring: 4 }, 0.05],
    [{ mode: 'attention', seqLen: 65536, cluster: two }, { ring: 16, strategy: 'double-ring', inner: 8 }, 0.1],
    [{ mode: 'attention', seqLen: 65536, cluster: two }, { ring: 16, strategy: 'tokenring' }, 0.1],
    [{ mode: 'attention', seqLen: 65536, cluster: two }, { ring: 16, strategy: 'allgather' }, 0.02],
  ];
  for (const [config, cand, tol] of cases) {
    const r = await run(config, cand);
    assert.ok(Math.abs(r.sim / r.ana - 1) < tol, `${JSON.stringify(cand)}: simulated ${r.sim} vs analytical ${r.ana}`);
  }
});

test('transfers through one port queue; through different ports they overlap', async () => {
  const e = new Engine(3);
  const a = e.add('transfer', e.labelId('x'), 0, OUT_INTRA, 5, 0, 1, IN_INTRA);
  const b = e.add('transfer', e.labelId('y'), 0, OUT_INTRA, 5, 0, 2, IN_INTRA); // same sender port
  assert.equal(a, 5);
  assert.equal(b, 10);
  const c = e.add('transfer', e.labelId('z'), 2, OUT_INTRA, 5, 0, 1, IN_INTRA); // rank 1's ingress is busy until 5
  assert.equal(c, 10);
  const d = e.add('compute', e.labelId('k'), 0, COMPUTE, 3, 0); // compute runs beside the transfers
  assert.equal(d, 3);
  assert.equal(e.makespan(), 10);
  assert.deepEqual(
    e.spans(1).map((s) => [s.role, s.peer, s.start, s.end]),
    [
      ['recv', 0, 0, 5],
      ['recv', 2, 5, 10],
    ],
  );
});

test('weft simulate: table, JSON and a per-rank Chrome trace whose spans respect the streams', async () => {
  const dir = tempDir('weft-sim-');
  const cfgFile = path.join(dir, 'c.json'),
    tl = path.join(dir, 'timeline.json');
  writeFileSync(cfgFile, JSON.stringify({ model: 'llama3-8b', mode: 'attention', seqLen: 65536, cluster: two }));
  const main = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
  const text = spawnSync(
    process.execPath,
    [main, 'simulate', '--config', cfgFile, '--ulysses', '2', '--ring', '8', '--timeline', tl],
    { encoding: 'utf8' },
  );
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /simulated step [\d.]+ ms .* analytical [\d.]+ ms/);
  // Chrome trace event JSON: one process per rank, one thread per stream, complete events in µs
  const t = JSON.parse(readFileSync(tl, 'utf8')) as ChromeTrace;
  const meta = t.traceEvents.filter((e) => e.ph === 'M') as Extract<ChromeEvent, { ph: 'M' }>[];
  const names = new Map(meta.filter((e) => e.name === 'process_name').map((e) => [e.pid, e.args.name!]));
  const threads = new Map(meta.filter((e) => e.name === 'thread_name').map((e) => [`${e.pid}/${e.tid}`, e.args.name!]));
  const spans = t.traceEvents.filter((e) => e.ph === 'X') as Extract<ChromeEvent, { ph: 'X' }>[];
  const ranks = (t.otherData as { ranks: { rank: number; standsFor: number; finishMs: number }[] }).ranks;
  assert.equal(ranks.length, 8);
  assert.deepEqual(
    [...names.entries()],
    ranks.map((r) => [r.rank, `rank ${r.rank} (stands for ${r.standsFor} GPUs)`]),
  );
  for (const r of ranks) {
    const mine = spans.filter((e) => e.pid === r.rank);
    for (const e of mine) assert.ok(threads.has(`${e.pid}/${e.tid}`), 'every span sits on a named thread');
    const compute = mine.filter((e) => threads.get(`${e.pid}/${e.tid}`) === 'compute');
    assert.ok(compute.length >= 16);
    assert.ok(mine.every((e) => e.cat === threads.get(`${e.pid}/${e.tid}`)!.split(' ')[0]));
    // no two spans of one thread overlap (trace viewers need that); compute is one stream
    const byThread = new Map<number, typeof mine>();
    for (const e of mine) byThread.set(e.tid, [...(byThread.get(e.tid) ?? []), e]);
    for (const list of byThread.values())
      for (let i = 1; i < list.length; i++)
        assert.ok(list[i]!.ts >= list[i - 1]!.ts + list[i - 1]!.dur - 1e-3, 'no overlap in a thread');
    assert.ok(
      mine.every((e) => e.ts + e.dur <= r.finishMs * 1000 + 1),
      'ts and dur are microseconds (finishMs is rounded to 1 µs)',
    );
    assert.ok(mine.some((e) => e.cat === 'send') && mine.some((e) => e.cat === 'recv'));
  }
  // a bad --timeline path fails before the simulation, in one line
  for (const [bad, re] of [
    [path.join(dir, 'missing', 't.json'), /folder .*missing does not exist/],
    [dir, /it is a folder/],
    [cfgFile, /it is the input/],
  ] as const) {
    const r = spawnSync(
      process.execPath,
      [main, 'simulate', '--config', cfgFile, '--ulysses', '2', '--ring', '8', '--timeline', bad],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^weft: cannot write [^\n]*\n$/);
    assert.match(r.stderr, re);
  }
  const json = spawnSync(process.execPath, [main, 'simulate', '--config', cfgFile, '--plan', '1', '--json'], {
    encoding: 'utf8',
  });
  assert.equal(json.status, 0, json.stderr);
  const j = JSON.parse(json.stdout) as {
    simulated: { stepMs: number };
    analytical: { stepMs: number };
    ranks: unknown[];
  };
  assert.ok(j.simulated.stepMs > 0 && j.analytical.stepMs > 0 && j.ranks.length > 0);
  const both = spawnSync(process.execPath, [main, 'simulate', '--config', cfgFile, '--plan', '1', '--ring', '4'], {
    encoding: 'utf8',
  });
  assert.equal(both.status, 2);
});

// Counted work, not time: the simulator's event count bounds its cost at any machine load.
test("16,384 GPUs: the best plan and a Ulysses 8 × ring 2048 layout simulate within the simulator's event budget", async () => {
  const big = {
    model: 'llama3-70b',
    mode: 'training',
    seqLen: 1 << 20,
    batchSeqs: 1,
    mask: 'causal',
    cluster: { nodes: 2048, gpusPerNode: 8, gpu: 'h200', interNode: { GBps: 50, latencyUs: 10 } },
  };
  for (const cand of [
    { tp: 8, ulysses: 8, ring: 256 },
    { tp: 1, ulysses: 8, ring: 2048 },
  ]) {
    const r = await run(big, cand);
    assert.ok(r.tasks < 3e7, `${JSON.stringify(cand)}: ${r.tasks} events`);
    assert.ok(Math.abs(r.sim / r.ana - 1) < 0.02, `${r.sim} vs ${r.ana}`);
  }
  await assert.rejects(
    run(big, { ring: 16384 }),
    (e: unknown) => e instanceof UserError && /smaller ring degree/.test(e.message),
  );
});

test("weft simulate's progress counts the events simulated (the threshold injected)", async () => {
  const cfg = parseConfig({ model: 'llama3-8b', mask: 'causal', mode: 'attention', seqLen: 65536, cluster: two });
  const ctx = buildContext(cfg),
    l = completeLayout({ ulysses: 2, ring: 8 }, cfg);
  await prepare(ctx, [l]);
  const lines: string[] = [];
  const r = simulate(
    ctx,
    l,
    (total) => new Progress('events simulated', total, { afterMs: 0, everyMs: 0, write: (x) => lines.push(x) }),
  );
  assert.ok(lines.length > 1);
  // the total is the estimate the simulator checks its budget with; the count is exact
  assert.match(lines.at(-1)!, new RegExp(`^weft: ${r.tasks} of \\d+ events simulated \\(\\d+%\\)$`));
  const silent: string[] = [];
  simulate(ctx, l, (total) => new Progress('events simulated', total, { now: () => 0, write: (x) => silent.push(x) }));
  assert.deepEqual(silent, []);
});
