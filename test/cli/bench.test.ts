import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fitLine } from '../../src/bench/ops.js';
import { weft } from '../helpers/cli.js';

test('weft bench: a bad option or a machine without a GPU is one line and exit 2', () => {
  for (const args of [
    ['bench', 'ops', '--ops', 'memset'],
    ['bench', 'ops', '--sizes', '1x'],
    ['bench', 'ops'],
  ]) {
    const r = weft(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
  }
  assert.match(weft(['bench', 'ops', '--ops', 'memset']).stderr, /--ops/);
});

test('weft bench: every option, the records folder included, is checked before looking for a GPU or a launcher', () => {
  const cases: [string[], RegExp][] = [
    [['bench', 'ops', '--out', '/dev/null/records'], /^weft: cannot write into \/dev\/null\/records: .*not a folder/],
    [['bench', 'kernel', '--out', '/dev/null'], /^weft: cannot write into \/dev\/null: \/dev\/null is not a folder/],
    [['bench', 'kernel', '--heads', '0'], /^weft: --heads: must be at least 1/],
    [['bench', 'ops', '--sizes', '0'], /^weft: --sizes: must be at least 1/],
    [['bench', 'cp', '--seqs', '0'], /^weft: --seqs: must be at least 1/],
    [['bench', 'comm', '--sizes', '1m,0k'], /^weft: --sizes: must be at least 1, not '0k'/],
  ];
  for (const [args, re] of cases) {
    const r = weft(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, re, args.join(' '));
  }
});

test('bench ops: the line through (bytes, µs) gives the rate and the per-call cost', () => {
  // 2 µs per call and 4000 GB/s: 1 MB takes 2 + 0.25 µs
  const pts = [1e6, 1.6e7, 2.56e8].map((bytes) => ({ bytes, us: 2 + (bytes / 4e9) * 1e3 }));
  const f = fitLine(pts);
  assert.ok(Math.abs(f.GBps - 4000) < 1e-6 && Math.abs(f.interceptUs - 2) < 1e-9, JSON.stringify(f));
});
