// weft run --strategy varlen as scripts use it: JSON with stats and check, the dry plan, bad input.
import assert from 'node:assert/strict';
import { writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { dispatch } from '../../src/varlen/dispatch.js';
import { weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const BASE = ['run', '--strategy', 'varlen', '--heads', '2', '--kv-heads', '1', '--dim', '4'];
const SMALL = ['--cu-seqlens', '0,1,30,33,70'];

// a document of 128 tokens among 32 of 32 on 8 ranks, 16 heads of 128: priced on H200s, the long
// document head-parallel (Ulysses 8) beats the plain dispatch's K/V exchange
const LONG = [128, ...Array.from({ length: 32 }, () => 32)];
/** A causal batch of these document lengths on 8 ranks. */
const on8 = (lengths: number[]): string[] => {
  const cu = lengths.reduce((c, l) => [...c, c[c.length - 1]! + l], [0]).join(',');
  return ['run', '--strategy', 'varlen', '--world', '8', '--cu-seqlens', cu, '--mask', 'document-causal'];
};
const PRICED = on8(LONG);

/** Runs weft with these arguments and --check in f64; the JSON, once the check passed within 1e-10. */
function checked(args: string[]): any {
  const r = weft([...args, '--dtype', 'f64', '--check', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.check.ok, true);
  assert.equal(j.check.tolerance, 1e-10);
  for (const e of Object.values(j.check.errors)) assert.ok((e as number) <= 1e-10, `${e}`);
  return j;
}
const PRICED_DIMS = ['--heads', '16', '--dim', '128'];

describe('weft run --strategy varlen', () => {
  it('runs a cu_seqlens batch and reports stats and the check as JSON', () => {
    const j = checked([...BASE, '--world', '3', ...SMALL, '--mask', 'document-sliding:5,0']);
    assert.equal(j.stats.perRank.length, 3);
    for (const x of j.stats.perRank)
      for (const f of ['bytesSent', 'bytesReceived', 'area', 'tokens', 'peakHeldBytes'])
        assert.equal(typeof x[f], 'number', f);
    assert.equal(typeof j.stats.balance, 'number');
  });

  it('prints the plan of a file of lengths without running', () => {
    const dir = tempDir();
    try {
      const f = path.join(dir, 'lengths.txt');
      writeFileSync(f, '# a batch\n5\n100, 3\n1\n');
      const r = weft([...BASE, '--world', '4', '--lengths', f, '--mask', 'document-causal', '--dry-plan', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout);
      assert.equal(j.plan.S, 109);
      assert.equal(j.plan.docs.length, 4);
      assert.equal(j.stats, undefined);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('chooses head-parallel documents by priced time and runs them exactly (f64)', () => {
    const j = checked([...PRICED, ...PRICED_DIMS]);
    const d = j.dispatch;
    assert.equal(d.how, 'auto');
    assert.deepEqual(d.considered[d.chosen].heads, [{ doc: 0, ulysses: 8, ring: 1 }]);
    assert.deepEqual(d.considered[0].heads, [], 'the plain dispatch is weighed first');
    assert.ok(d.considered[d.chosen].stepMs < d.considered[0].stepMs);
    assert.equal(j.stats.perRank.length, 8);
    for (const x of j.stats.perRank) assert.equal(typeof x.bytesSent, 'number');
    assert.equal(typeof j.stats.balance, 'number');
  });

  it('chooses visiting queries by priced time and runs them exactly (f64)', () => {
    // 64 and 32 tokens among 24 of 16 on 8 ranks, 32 heads of 128: a few star pairs price faster
    // sending their queries to the keys' owner than the keys to the queries
    const j = checked([...on8([64, 32, ...Array.from({ length: 24 }, () => 16)]), '--heads', '32', '--dim', '128']);
    const d = j.dispatch;
    assert.ok(d.considered[d.chosen].visits > 0, 'the chosen plan has visits');
    assert.equal(j.plan.visits.length, d.considered[d.chosen].visits);
    assert.ok(d.considered[d.chosen].stepMs < d.considered[0].stepMs);
  });

  it('shows the choice in the dry plan, the same every time', () => {
    const args = [...PRICED, ...PRICED_DIMS, '--dry-plan', '--json'];
    const r = weft(args);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(weft(args).stdout, r.stdout, 'deterministic');
    const j = JSON.parse(r.stdout);
    assert.equal(j.plan.docs[0].mode, 'heads');
    assert.deepEqual(j.plan.docs[0].heads, { ulysses: 8, ring: 1, members: [0, 1, 2, 3, 4, 5, 6, 7] });
    assert.deepEqual(j.dispatch.pricedOn, { gpu: 'h200', gpusPerNode: 8, calibration: 'shipped' });
    assert.ok(j.dispatch.considered.length >= 2);
    const t = weft([...PRICED, ...PRICED_DIMS, '--dry-plan']);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /dispatch: auto, priced on 8 H200s/);
    assert.match(t.stdout, /0 \(8×1\).*←/);
  });

  it('--dispatch plain gives the plain dispatcher plan', () => {
    const r = weft([...PRICED, ...PRICED_DIMS, '--dispatch', 'plain', '--dry-plan', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    const plan = dispatch({ lengths: LONG, masks: LONG.map(() => ({ kind: 'causal' as const })) }, { world: 8 });
    assert.deepEqual(j.plan.docs, JSON.parse(JSON.stringify(plan.docs)));
    assert.deepEqual(j.plan.pieces, plan.pieces);
    assert.deepEqual(j.plan.transfers, JSON.parse(JSON.stringify(plan.transfers)));
    assert.deepEqual(j.plan.visits, []);
    assert.equal(j.dispatch.how, 'plain');
    assert.equal(j.dispatch.considered.length, 1);
    assert.deepEqual(j.dispatch.considered[0].heads, []);
  });

  it('runs documents forced head-parallel exactly (f64)', () => {
    const j = checked([...BASE, '--world', '4', ...SMALL, '--mask', 'document-causal', '--head-docs', '3:2x2']);
    const d = j.dispatch;
    assert.deepEqual(d.considered[d.chosen].heads, [{ doc: 3, ulysses: 2, ring: 2 }]);
    assert.equal(d.considered[d.chosen].note, 'named by --head-docs');
  });

  it('refuses bad input with one line and exit code 2', () => {
    for (const [args, msg] of [
      [['--world', '2', '--mask', 'document-causal'], /give the batch/],
      [['--world', '2', '--cu-seqlens', '0,5,3', '--mask', 'document-causal'], /strictly increasing/],
      [['--world', '2', '--docs', '3', '--dist', 'zipf', '--mask', 'document-causal'], /unknown distribution/],
      [['--world', '2', '--cu-seqlens', '0,8', '--mask', 'causal'], /needs a document mask/],
      [['--world', '9', '--cu-seqlens', '0,8', '--mask', 'document'], /cannot give each of 9 ranks/],
      [
        ['--world', '2', '--cu-seqlens', '0,8', '--mask', 'document', '--dispatch', 'best'],
        /--dispatch: unknown value/,
      ],
      [['--world', '2', '--cu-seqlens', '0,8', '--mask', 'document', '--head-docs', '1'], /no document 1/],
      [
        ['--world', '2', '--cu-seqlens', '0,8', '--mask', 'document', '--head-docs', '0:3'],
        /does not divide the 2 heads/,
      ],
      [['--world', '2', '--cu-seqlens', '0,8', '--mask', 'document', '--head-docs', '0:2x2'], /2 × 2 ranks/],
      [['--world', '2', '--cu-seqlens', '0,8,9', '--mask', 'document', '--head-docs', '0,0'], /named twice/],
      [['--world', '2', '--cu-seqlens', '0,8', '--mask', 'document', '--head-docs', 'a'], /is not DOC/],
    ] as const) {
      const r = weft([...BASE, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, msg);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.equal(r.stdout, '');
    }
    const r = weft([
      'run',
      '--strategy',
      'ring',
      '--world',
      '2',
      '--seq',
      '8',
      ...BASE.slice(3),
      '--dispatch',
      'plain',
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--dispatch applies to --strategy varlen/);
  });
});
