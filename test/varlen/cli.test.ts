// weft run --strategy varlen as scripts use it: JSON with stats and check, the dry plan, bad input.
import assert from 'node:assert/strict';
import { writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const BASE = ['run', '--strategy', 'varlen', '--heads', '2', '--kv-heads', '1', '--dim', '4'];

describe('weft run --strategy varlen', () => {
  it('runs a cu_seqlens batch and reports stats and the check as JSON', () => {
    const r = weft([
      ...BASE,
      '--world',
      '3',
      '--cu-seqlens',
      '0,1,30,33,70',
      '--mask',
      'document-sliding:5,0',
      '--dtype',
      'f64',
      '--check',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.check.ok, true);
    assert.equal(j.check.tolerance, 1e-10);
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

  it('refuses bad input with one line and exit code 2', () => {
    for (const [args, msg] of [
      [['--world', '2', '--mask', 'document-causal'], /give the batch/],
      [['--world', '2', '--cu-seqlens', '0,5,3', '--mask', 'document-causal'], /strictly increasing/],
      [['--world', '2', '--docs', '3', '--dist', 'zipf', '--mask', 'document-causal'], /unknown distribution/],
      [['--world', '2', '--cu-seqlens', '0,8', '--mask', 'causal'], /needs a document mask/],
      [['--world', '9', '--cu-seqlens', '0,8', '--mask', 'document'], /cannot give each of 9 ranks/],
    ] as const) {
      const r = weft([...BASE, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, msg);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.equal(r.stdout, '');
    }
  });
});
