import assert from 'node:assert/strict';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { makeRecord, summarize, writeRecords } from '../../src/bench/record.js';
import { htmlReport } from '../../src/report/html.js';
import { loadRecords, markdown } from '../../src/report/report.js';
import { weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

test('summaries give median and spread, whatever the sample order', () => {
  assert.deepEqual(summarize([5, 1, 3, 2, 4]), { n: 5, median: 3, min: 1, max: 5, p10: 1, p90: 5 });
  assert.throws(() => summarize([]));
});

test('records round-trip through files into a side-by-side table with ratios and an HTML page', () => {
  const dir = tempDir();
  const cfg = { S: 8192, mask: 'causal' };
  const file = writeRecords(dir, [
    makeRecord('kernel', 'weft-fwd', cfg, 'ms', [1.0, 1.1, 0.9], { tflops: 400 }),
    makeRecord('kernel', 'sdpa-flash2', cfg, 'ms', [1.2, 1.3], { tflops: 320 }),
  ]);
  assert.match(path.basename(file), /^kernel-.*\.jsonl$/);
  const records = loadRecords([dir]);
  assert.equal(records.length, 2);
  assert.equal(records[0]!.summary.median, 1.0);
  const md = markdown(records);
  assert.match(md, /\| S=8192 mask=causal \| 400 \| 320 \(1\.25×\) \|/);
  assert.match(htmlReport(records), /"name":"weft-fwd".*vegaEmbed/s);
});

test('weft report refuses what is not a record, with exit 2', () => {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'x.jsonl'), '{"hello": 1}\n');
  const r = weft(['report', dir]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^weft: .*not a weft benchmark record/);
  assert.equal(weft(['report', path.join(dir, 'missing')]).code, 2);
});

test('weft report skips a corrupt record with a warning naming file:line and reports the rest', () => {
  const dir = tempDir();
  const file = writeRecords(dir, [makeRecord('kernel', 'weft-fwd', { S: 1024 }, 'ms', [2], { tflops: 300 })]);
  appendFileSync(file, '{"kind": "kernel", "name": "trunc'); // a run cut off mid-line
  writeFileSync(path.join(dir, 'other.jsonl'), '\n{"hello": 1}\n');
  const warnings: string[] = [];
  assert.equal(loadRecords([dir], (m) => warnings.push(m)).length, 1);
  assert.deepEqual(warnings, [
    `skipped ${file}:2: not a JSON record`,
    `skipped ${path.join(dir, 'other.jsonl')}:2: not a weft benchmark record (needs kind, name, config, env, summary)`,
  ]);
  const r = weft(['report', dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\| S=1024 \| 300 \|/);
  assert.match(
    r.stderr,
    /^weft: skipped .*kernel-.*\.jsonl:2: not a JSON record\nweft: skipped .*other\.jsonl:2: not a weft benchmark record.*\n$/,
  );
});

test('weft report --html: a bad page path is one line and exit 2, before the records are read', () => {
  const dir = tempDir();
  writeRecords(dir, [makeRecord('kernel', 'weft-fwd', { S: 1024 }, 'ms', [2])]);
  for (const [page, re] of [
    [path.join(dir, 'missing', 'r.html'), /folder .*missing does not exist/],
    [dir, /it is a folder/],
    ['/dev/null', /not a regular file/],
  ] as const) {
    const r = weft(['report', path.join(dir, 'nope'), '--html', page]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^weft: cannot write [^\n]*\n$/);
    assert.match(r.stderr, re);
  }
  const page = path.join(dir, 'r.html');
  assert.equal(weft(['report', dir, '--html', page]).code, 0);
  assert.ok(existsSync(page));
});
