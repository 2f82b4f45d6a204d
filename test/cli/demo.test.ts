import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { weft } from '../helpers/cli.js';

test('weft demo checks one rank and every strategy against the reference', () => {
  const r = weft(['demo', '--seq', '64', '--heads', '4', '--kv-heads', '2', '--dim', '8', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const { results } = JSON.parse(r.stdout) as { results: Record<string, string | number>[] };
  assert.equal(results.length, 8);
  for (const row of results)
    for (const k of ['out', 'lse', 'dq', 'dk', 'dv'])
      assert.ok(Number(row[k]) < 1e-5, `${row.where} ${row.mask} ${k} = ${row[k]}`);
});

describe('weft demo: bad options are one line and exit 2 before anything is computed or printed', () => {
  const cases: [string, string[], RegExp][] = [
    ['heads below the Ulysses degree', ['--heads', '2'], /ulysses ×4: Ulysses degree 4 is above the head count 2/],
    [
      'heads not a multiple of kv-heads',
      ['--heads', '6', '--kv-heads', '4'],
      /--heads 6 is not a multiple of --kv-heads 4/,
    ],
    ['too short for the document mask', ['--seq', '3'], /--seq 3: .* at least 5 tokens/],
    ['zero head dim', ['--dim', '0'], /--dim: must be at least 1/],
  ];
  for (const [name, args, re] of cases)
    test(name, () => {
      const r = weft(['demo', ...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^weft: /);
      assert.match(r.stderr, re);
    });
});
