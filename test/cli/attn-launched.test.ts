// weft attn with one rank per process (weft launch; the cluster launchers give the same
// environment): each rank reads only its rows of the input, rank 0 writes what one process
// writes; and the row reader that makes that possible.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { readSafetensors, type StTensor, writeSafetensors } from '../../src/index.js';
import { RowReader } from '../../src/io/rows.js';
import { randn, Rng } from '../../src/tensor/random.js';
import { weft } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'weft-attn-launched-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(
  name: string,
  lead: number[],
  H: number,
  Hkv: number,
  D: number,
  dtype: 'f32' | 'bf16',
  cu?: number[],
): string {
  const rng = new Rng(11);
  const t = (heads: number): StTensor => {
    const h = randn(rng, dtype, [...lead, heads, D]);
    return { dtype: dtype === 'f32' ? 'F32' : 'BF16', shape: [...h.shape], data: h.data as StTensor['data'] };
  };
  const m = new Map<string, StTensor>([
    ['q', t(H)],
    ['k', t(Hkv)],
    ['v', t(Hkv)],
    ['dout', t(H)],
  ]);
  if (cu) m.set('cu_seqlens', { dtype: 'I64', shape: [cu.length], data: BigInt64Array.from(cu.map(BigInt)) });
  const f = path.join(dir, `${name}.safetensors`);
  writeSafetensors(f, m);
  return f;
}

test('weft launch -n N -- attn --strategy …: the same file as one process, for batches, documents and GQA', () => {
  const cases: [string, number[], number, number, string, string[], number[]?][] = [
    ['batch', [2, 29], 4, 2, 'causal', ['--strategy', 'ring', '--world', '3']],
    [
      'docs',
      [50],
      4,
      1,
      'document-causal',
      ['--strategy', 'usp', '--world', '4', '--ulysses', '2', '--ring', '2'],
      [0, 7, 30, 50],
    ],
    ['bf16', [33], 2, 2, 'sliding:5,0', ['--strategy', 'tokenring', '--world', '2']],
  ];
  for (const [name, lead, H, Hkv, mask, layout, cu] of cases) {
    const input = file(name, lead, H, Hkv, 8, name === 'bf16' ? 'bf16' : 'f32', cu);
    const one = path.join(dir, `${name}-one.safetensors`),
      many = path.join(dir, `${name}-many.safetensors`);
    const a = weft(['attn', '--in', input, '--out', one, '--mask', mask, '--dtype', 'f64']);
    assert.equal(a.code, 0, a.stderr);
    const world = layout[layout.indexOf('--world') + 1]!;
    const b = weft([
      'launch',
      '-n',
      world,
      '--',
      'attn',
      '--in',
      input,
      '--out',
      many,
      '--mask',
      mask,
      '--dtype',
      'f64',
      '--json',
      ...layout,
    ]);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, new RegExp(`^\\[rank 0\\] \\{.*"where":"\\S+ on ${world} processes \\(weft\\)"`));
    assert.equal(b.stdout.trim().split('\n').length, 1, 'rank 0 alone reports');
    const x = readSafetensors(one),
      y = readSafetensors(many);
    assert.deepEqual([...y.keys()], ['out', 'lse', 'dq', 'dk', 'dv']);
    for (const [n, t] of x) {
      assert.deepEqual(y.get(n)!.shape, t.shape, `${name} ${n}`);
      const p = t.data as Float64Array,
        q = y.get(n)!.data as Float64Array;
      let worst = 0;
      for (let i = 0; i < p.length; i++) worst = Math.max(worst, Math.abs(p[i]! - q[i]!));
      assert.ok(worst < 1e-12, `${name} ${n}: ${worst}`);
    }
  }
});

test('under a launcher, attn needs a layout of the launched size; bad files fail on every rank with one line', () => {
  const input = file('small', [8], 2, 2, 4, 'f32');
  const out = path.join(dir, 'x.safetensors');
  const a = weft(['launch', '-n', '2', '--', 'attn', '--in', input, '--out', out]);
  assert.notEqual(a.code, 0);
  assert.match(a.stderr, /weft: under a launcher \(weft\) every process is one rank: give --strategy and --world 2/);
  const b = weft([
    'launch',
    '-n',
    '2',
    '--',
    'attn',
    '--in',
    input,
    '--out',
    out,
    '--strategy',
    'ring',
    '--world',
    '3',
  ]);
  assert.match(b.stderr, /--world 3 differs from the 2 processes/);
  const bad = path.join(dir, 'bad.safetensors');
  writeFileSync(bad, Buffer.from([1, 2, 3]));
  const c = weft(['launch', '-n', '2', '--', 'attn', '--in', bad, '--out', out, '--strategy', 'ring', '--world', '2']);
  assert.match(c.stderr, /weft: .*bad\.safetensors: not a safetensors file/);
  const d = weft(['attn', '--backend', 'cuda', '--in', input, '--out', out]);
  assert.equal(d.code, 2);
  assert.match(d.stderr, /^weft: head dim 4: the GPU kernels take head dims 64 and 128/);
  assert.equal(d.stderr.trim().split('\n').length, 1);
});

test('the row reader reads any rows of any tensor exactly as the whole file holds them', () => {
  const input = file('rows', [3, 20], 4, 2, 8, 'bf16');
  const whole = readSafetensors(input);
  const r = new RowReader(input);
  try {
    for (const [name, heads] of [
      ['q', 4],
      ['k', 2],
    ] as const) {
      const all = whole.get(name)!.data as Uint16Array,
        row = heads * 8;
      const pos = Int32Array.from([0, 1, 2, 30, 31, 59, 5, 6]);
      const got = r.rows(name, pos, row);
      assert.deepEqual(got.shape, [8, row]);
      pos.forEach((p, i) =>
        assert.deepEqual(
          Array.from((got.data as Uint16Array).subarray(i * row, (i + 1) * row)),
          Array.from(all.subarray(p * row, (p + 1) * row)),
        ),
      );
    }
  } finally {
    r.close();
  }
});
