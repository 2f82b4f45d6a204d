// The planner's figures stay what they were (test/plan/golden.ts says what is covered and how to
// regenerate): numbers equal to a relative 1e-9, rankings and verdicts exactly.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { snapshot } from './golden.js';

const file = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../../test/plan/golden.json');

function compare(got: unknown, want: unknown, at: string, diffs: string[]): void {
  // the host-preparation term went with the profile that had it: it was 0 for every current profile
  if (at.endsWith('.breakdown.host') && want === 0 && got === undefined) return;
  if (typeof want === 'number' && typeof got === 'number') {
    if (Math.abs(got - want) > 1e-9 * Math.max(Math.abs(want), 1e-12)) diffs.push(`${at}: ${got} ≠ ${want}`);
  } else if (want && typeof want === 'object' && got && typeof got === 'object') {
    const keys = new Set([...Object.keys(want), ...Object.keys(got)]);
    for (const k of keys)
      compare((got as Record<string, unknown>)[k], (want as Record<string, unknown>)[k], `${at}.${k}`, diffs);
  } else if (got !== want) diffs.push(`${at}: ${JSON.stringify(got)} ≠ ${JSON.stringify(want)}`);
}

test('the planner predicts what it predicted before (golden file)', async () => {
  const got = await snapshot();
  if (process.env.WEFT_GOLDEN_WRITE) writeFileSync(file, JSON.stringify(got) + '\n');
  const want = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  const diffs: string[] = [];
  compare(JSON.parse(JSON.stringify(got)), want, '', diffs);
  assert.deepEqual(diffs.slice(0, 20), [], `${diffs.length} difference(s)`);
});
