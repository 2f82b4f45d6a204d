import assert from 'node:assert/strict';
import { test } from 'node:test';
import { weft } from '../helpers/cli.js';

test('weft demo checks one rank and every strategy against the reference', () => {
  const r = weft(['demo', '--seq', '64', '--heads', '4', '--kv-heads', '2', '--dim', '8', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const { results } = JSON.parse(r.stdout) as { results: Record<string, string | number>[] };
  assert.equal(results.length, 8);
  for (const row of results) for (const k of ['out', 'lse', 'dq', 'dk', 'dv']) assert.ok(Number(row[k]) < 1e-5, `${row.where} ${row.mask} ${k} = ${row[k]}`);
});
