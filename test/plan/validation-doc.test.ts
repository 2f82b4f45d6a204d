// docs/validation.md is generated (tools/validation-table.ts): it must say what the model says now.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { validationTable } from '../../tools/validation-table.js';
import { repoFile } from './validation.js';

test('docs/validation.md is up to date (npm run validation regenerates it)', async () => {
  assert.equal(
    readFileSync(repoFile('docs/validation.md'), 'utf8'),
    await validationTable(),
    'docs/validation.md is stale: run npm run validation',
  );
});
