// weft bench decode without a GPU: option errors, the configuration's view and bytes, the table.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeBytes, decodeTable, decodeView } from '../../src/bench/decode.js';
import type { BenchRecord } from '../../src/bench/record.js';
import { sees } from '../../src/mask/view.js';
import { weft } from '../helpers/cli.js';

test('weft bench decode: a bad option or a machine without a GPU is one line and exit 2', () => {
  for (const args of [['--batches', '0'], ['--contexts', '1x'], ['--heads', '30'], ['--dim', '96'], []]) {
    const r = weft(['bench', 'decode', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
  }
});

test('a decode configuration: the last T tokens of each sequence see their own cache and new tokens up to themselves', () => {
  const B = 3,
    P = 10,
    T = 2,
    v = decodeView(B, P, T);
  assert.equal(v.kPos.length, B * (P + T));
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const r = b * T + t;
      for (let c = 0; c < v.kPos.length; c++) {
        const doc = Math.floor(c / (P + T)),
          i = c % (P + T);
        assert.equal(sees(v.q, r, v.kPos[c]!), doc === b && i <= P + t, `row ${r} key ${c}`);
      }
    }
  }
  assert.equal(decodeBytes({ B: 16, P: 1 << 20, T: 0, Hkv: 8, D: 128 }), 64 * 2 ** 30);
});

test('the decode table: TB/s per peer, weft over the best peer, weft over the copy rate', () => {
  const rec = (name: string, GBps: number, copyRatio?: number): BenchRecord => ({
    kind: 'decode',
    name,
    time: '',
    env: { host: '', cpus: '', cores: 1, node: '', platform: '', weft: '', gitRevision: 'unknown' },
    config: { B: 1, P: 1024, T: 4 },
    unit: 'ms',
    summary: { n: 1, median: 1, min: 1, max: 1, p10: 1, p90: 1 },
    derived: { GBps, ...(copyRatio === undefined ? {} : { copyRatio }) },
  });
  const t = decodeTable([rec('weft', 4000, 0.95), rec('sdpa-flash', 1000), rec('sdpa-cudnn', 500), rec('flex', 2000)]);
  const row = t.split('\n')[1]!.trim().split(/\s+/);
  assert.deepEqual(row, ['1', '1024', '4', '4.00', '1.00', '0.50', '2.00', '2.00', '0.95']);
});
