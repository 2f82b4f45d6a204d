// weft run --strategy varlen with one CPU rank per process (weft launch, over TCP): every rank
// computes the same dispatch plan, rank 0 alone reports, and the result is the worker-thread run's —
// exact against the f64 reference, with the same counts per rank.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { weft } from '../helpers/cli.js';

const BASE = ['run', '--strategy', 'varlen', '--heads', '4', '--kv-heads', '2', '--dim', '8', '--dtype', 'f64'];
const COUNTS = ['tokens', 'recvRows', 'area', 'messages', 'bytesSent', 'bytesReceived', 'peakHeldBytes'] as const;

interface Run {
  plan: { bytesMoved: number };
  stats: { perRank: Record<string, number>[]; balance: number; tokenBalance: number };
  check: { errors: Record<string, number>; tolerance: number; ok: boolean };
}

describe('weft launch -n N -- run --strategy varlen (CPU ranks over TCP)', () => {
  // one-token documents, a document longer than a rank's share, and every per-document mask
  const cases: [number, string, string][] = [
    [2, '0,1,2,70,75,96', 'document-causal'],
    [3, '0,1,30,33,70,71,120', 'document-sliding:4,0'],
    [4, '0,90,91,100,101,130', 'document'],
  ];
  for (const [n, cu, mask] of cases)
    it(`${n} processes, ${mask}: exact, and the worker-thread run's counts`, () => {
      const args = [...BASE, '--world', String(n), '--cu-seqlens', cu, '--mask', mask, '--check', '--json'];
      const a = weft(['launch', '-n', String(n), '--', ...args, '--backend', 'cpu']);
      assert.equal(a.code, 0, a.stderr);
      const lines = a.stdout.trim().split('\n');
      assert.equal(lines.length, 1, 'rank 0 alone reports');
      assert.match(lines[0]!, /^\[rank 0\] \{/);
      const launched = JSON.parse(lines[0]!.slice('[rank 0] '.length)) as Run;
      assert.equal(launched.check.tolerance, 1e-10);
      assert.ok(launched.check.ok, JSON.stringify(launched.check.errors));
      assert.deepEqual(Object.keys(launched.check.errors), ['out', 'lse', 'dq', 'dk', 'dv']);

      const b = weft(args);
      assert.equal(b.code, 0, b.stderr);
      const threads = JSON.parse(b.stdout) as Run;
      assert.equal(launched.stats.perRank.length, n);
      const pick = (r: Run) => r.stats.perRank.map((x) => COUNTS.map((c) => x[c]));
      assert.deepEqual(pick(launched), pick(threads));
      assert.equal(launched.stats.balance, threads.stats.balance);
      assert.equal(launched.stats.tokenBalance, threads.stats.tokenBalance);
      assert.equal(launched.plan.bytesMoved, threads.plan.bytesMoved);
      assert.ok(
        launched.stats.perRank.some((x) => x.bytesSent! > 0),
        'some K/V rows travel between the processes',
      );
      assert.deepEqual(launched.check.errors, threads.check.errors, 'the same arithmetic in the same order');
    });

  it('prints the dry plan once, and refuses a world the launcher did not start with one line', () => {
    const plan = weft([
      'launch',
      '-n',
      '2',
      '--',
      ...BASE,
      '--world',
      '2',
      '--cu-seqlens',
      '0,5,40',
      '--mask',
      'document-causal',
      '--dry-plan',
      '--json',
    ]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.equal(plan.stdout.trim().split('\n').length, 1);
    assert.equal(JSON.parse(plan.stdout.slice('[rank 0] '.length)).plan.world, 2);

    const bad = weft([
      'launch',
      '-n',
      '2',
      '--',
      ...BASE,
      '--world',
      '3',
      '--cu-seqlens',
      '0,5,40',
      '--mask',
      'document-causal',
      '--backend',
      'cpu',
    ]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--world 3 differs from the 2 processes the launcher \(weft\) started/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(bad.stdout, '');

    // GPUs: one process per GPU, so alone only world 1 (refused before any GPU is looked for)
    const alone = weft([
      ...BASE.slice(0, -2),
      '--world',
      '2',
      '--cu-seqlens',
      '0,5,40',
      '--mask',
      'document-causal',
      '--backend',
      'cuda',
    ]);
    assert.equal(alone.code, 2, alone.stderr);
    assert.match(
      alone.stderr,
      /^weft: --backend cuda runs one process per GPU: weft launch -n 2 -- run --strategy varlen --backend cuda --world 2/,
    );
    assert.equal(alone.stderr.trim().split('\n').length, 1);
  });
});
