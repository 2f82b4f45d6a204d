import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  type StTensor,
  writeSafetensors,
} from '../../src/io/safetensors.js';
import { tempDir } from '../helpers/temp.js';

const sample = (): Map<string, StTensor> =>
  new Map<string, StTensor>([
    ['a', { dtype: 'F64', shape: [2, 3], data: Float64Array.from([1, 2, 3, 4, 5, -6.5]) }],
    ['b', { dtype: 'F32', shape: [3], data: Float32Array.from([0.5, -1, 7]) }],
    ['c', { dtype: 'BF16', shape: [1, 2], data: Uint16Array.from([0x3f80, 0xc000]) }],
    ['d', { dtype: 'F16', shape: [2], data: Uint16Array.from([0x3c00, 0x7bff]) }],
    ['e', { dtype: 'I32', shape: [3], data: Int32Array.from([0, 5, 9]) }],
    ['f', { dtype: 'I64', shape: [2], data: BigInt64Array.from([0n, 1n << 40n]) }],
    ['g', { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) }],
  ]);

test('every dtype round-trips through bytes, with metadata and 8-byte aligned data', () => {
  const bytes = serializeSafetensors(sample(), { note: 'hi' });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0);
  const back = parseSafetensors(bytes);
  for (const [k, t] of sample()) {
    const b = back.get(k)!;
    assert.equal(b.dtype, t.dtype);
    assert.deepEqual(b.shape, t.shape);
    assert.deepEqual(
      Array.from(b.data as ArrayLike<number | bigint>),
      Array.from(t.data as ArrayLike<number | bigint>),
    );
  }
});

test('the header matches the format other tools read (offsets, names, dtype strings)', () => {
  const bytes = serializeSafetensors(
    new Map([['x', { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) } as StTensor]]),
  );
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8'));
  assert.deepEqual(header, { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } });
  assert.deepEqual(Array.from(new Float32Array(bytes.slice(8 + n).buffer)), [1, 2]);
});

test('corrupt and truncated files are refused with a message naming the problem', () => {
  const good = serializeSafetensors(sample());
  const cases: [string, Uint8Array, RegExp][] = [
    ['tiny', good.subarray(0, 5), /not a safetensors file/],
    ['truncated header', good.subarray(0, 20), /truncated or corrupt/],
    ['truncated data', good.subarray(0, good.length - 3), /truncated/],
    [
      'not json',
      (() => {
        const b = good.slice();
        b[10] = 0x7b;
        b[11] = 0x7b;
        return b;
      })(),
      /not valid JSON|malformed/,
    ],
  ];
  const bad = (header: object | string): Uint8Array => {
    const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
    const b = new Uint8Array(8 + h.length + 8);
    new DataView(b.buffer).setBigUint64(0, BigInt(h.length), true);
    b.set(h, 8);
    return b;
  };
  cases.push(['dtype', bad({ x: { dtype: 'U8', shape: [8], data_offsets: [0, 8] } }), /unsupported dtype/]);
  cases.push(['size', bad({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }), /needs 12/]);
  cases.push(['offsets', bad({ x: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }), /malformed data_offsets/]);
  cases.push(['beyond', bad({ x: { dtype: 'F64', shape: [2], data_offsets: [0, 16] } }), /truncated/]);
  cases.push(['array', bad([1, 2]), /not a JSON object/]);
  cases.push(['string header', bad('"x"'), /not a JSON object/]);
  cases.push(['number header', bad('8'), /not a JSON object/]);
  // strict as the format's own reader: one entry per name, ranges that tile the data exactly
  const x = '{"dtype":"F32","shape":[2],"data_offsets":[0,8]}';
  cases.push(['duplicate name', bad(`{"x":${x},"x":${x}}`), /tensor 'x' is named twice/]);
  cases.push([
    'duplicate after nesting',
    bad(`{"__metadata__":{"x":"1"},"x":${x}, "x" :${x}}`),
    /tensor 'x' is named twice/,
  ]);
  cases.push([
    'overlap',
    bad({
      x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      y: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
    }),
    /'x' and 'y' overlap/,
  ]);
  cases.push([
    'same range twice',
    bad({
      x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      y: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    }),
    /overlap/,
  ]);
  cases.push([
    'gap',
    bad({ x: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }),
    /bytes 0–4 of the data belong to no tensor/,
  ]);
  cases.push([
    'trailing bytes',
    bad({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }),
    /4 bytes after the last tensor/,
  ]);
  for (const [name, bytes, re] of cases) assert.throws(() => parseSafetensors(bytes, 'f.safetensors'), re, name);
  // ranges may be listed in any order, as long as together they tile the data
  const any = parseSafetensors(
    bad({
      y: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
      x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      e: { dtype: 'F32', shape: [0], data_offsets: [8, 8] },
    }),
  );
  assert.deepEqual([...any.keys()], ['y', 'x', 'e']);
});

test('writing is atomic: a failed write leaves neither the target nor a temporary file', () => {
  const dir = tempDir();
  const target = path.join(dir, 'missing-dir', 'x.safetensors');
  assert.throws(() => writeSafetensors(target, sample()), /cannot write .*folder .*missing-dir does not exist/);
  assert.equal(existsSync(target), false);
  const ok = path.join(dir, 'ok.safetensors');
  writeSafetensors(ok, sample());
  assert.deepEqual(readdirSync(dir), ['ok.safetensors']);
  assert.equal(readSafetensors(ok).size, sample().size);
  writeFileSync(path.join(dir, 'empty'), '');
  assert.throws(() => readSafetensors(path.join(dir, 'empty')), /not a safetensors file/);
  assert.throws(() => readSafetensors(path.join(dir, 'nope')), /no such file/);
});
