import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { readSafetensors, type StTensor, writeSafetensors } from '../../src/io/safetensors.js';
import { parseMask } from '../../src/mask/spec.js';
import { weft } from '../helpers/cli.js';
import { readOutputs, writeProblem, writeRawSafetensors } from '../helpers/files.js';
import { naiveAttention, rel } from '../helpers/naive.js';
import { tempDir } from '../helpers/temp.js';

const dir = tempDir();

function compare(
  outFile: string,
  p: ReturnType<typeof writeProblem>,
  S: number,
  H: number,
  Hkv: number,
  D: number,
  mask: string,
  tol: number,
  cu?: number[],
): void {
  const got = readOutputs(outFile);
  const n = naiveAttention(p.q, p.k, p.v, S, H, Hkv, D, parseMask(mask, cu), 1 / Math.sqrt(D), p.dout);
  assert.deepEqual(got.get('out')!.shape, [S, H, D]);
  assert.deepEqual(got.get('lse')!.shape, [H, S]);
  for (const name of ['out', 'lse', 'dq', 'dk', 'dv'] as const) {
    const e = rel(got.get(name)!.data, n[name]);
    assert.ok(e <= tol, `${mask} ${name}: error ${e} > ${tol}`);
  }
}

test('weft attn matches the f64 reference within 1e-10 (f64) and 1e-5 (f32) on every mask, odd lengths, GQA', () => {
  const [S, H, Hkv, D] = [37, 4, 2, 8];
  const cu = [0, 5, 6, 30, 37];
  const p = writeProblem(dir, 'main', [S, H, D], [S, Hkv, D], { seed: 5, cuSeqlens: cu });
  for (const mask of ['full', 'causal', 'sliding:3,2', 'sliding:-1,4', 'prefix:9', 'document', 'document-causal']) {
    for (const [dtype, tol] of [
      ['f64', 1e-10],
      ['f32', 1e-5],
    ] as const) {
      const out = path.join(dir, `out-${mask}-${dtype}.safetensors`);
      const r = weft(['attn', '--in', p.file, '--out', out, '--mask', mask, '--dtype', dtype]);
      assert.equal(r.code, 0, r.stderr);
      compare(out, p, S, H, Hkv, D, mask, tol, cu);
    }
  }
});

test('a leading batch dim runs each sequence on its own; lse comes back [B,H,S]', () => {
  const [B, S, H, D] = [3, 10, 2, 4];
  const p = writeProblem(dir, 'batch', [B, S, H, D], [B, S, 1, D], { seed: 6 });
  const out = path.join(dir, 'batch-out.safetensors');
  const r = weft(['attn', '--in', p.file, '--out', out, '--mask', 'causal', '--dtype', 'f64', '--scale', '0.4']);
  assert.equal(r.code, 0, r.stderr);
  const got = readOutputs(out);
  assert.deepEqual(got.get('out')!.shape, [B, S, H, D]);
  assert.deepEqual(got.get('lse')!.shape, [B, H, S]);
  for (let b = 0; b < B; b++) {
    const cut = (x: Float64Array, heads: number): Float64Array => x.slice(b * S * heads * D, (b + 1) * S * heads * D);
    const n = naiveAttention(
      cut(p.q, H),
      cut(p.k, 1),
      cut(p.v, 1),
      S,
      H,
      1,
      D,
      { kind: 'causal' },
      0.4,
      cut(p.dout, H),
    );
    assert.ok(rel(cut(got.get('out')!.data, H), n.out) < 1e-12);
    assert.ok(rel(got.get('lse')!.data.slice(b * H * S, (b + 1) * H * S), n.lse) < 1e-12);
    assert.ok(rel(cut(got.get('dk')!.data, 1), n.dk) < 1e-12);
  }
});

test('bf16 inputs are accepted; without dout only out and lse are written; --json prints a summary', () => {
  const p = writeProblem(dir, 'bf16', [9, 2, 4], [9, 2, 4], { dtype: 'bf16', dout: false });
  const out = path.join(dir, 'bf16-out.safetensors');
  const r = weft(['attn', '--in', p.file, '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).seq, 9);
  const got = readOutputs(out);
  assert.deepEqual([...got.keys()], ['out', 'lse']);
  const n = naiveAttention(p.q, p.k, p.v, 9, 2, 2, 4, { kind: 'full' }, 0.5);
  assert.ok(rel(got.get('out')!.data, n.out) < 1e-5);
});

describe('bad input: one line naming the problem, exit code 2, no stack trace, nothing written', () => {
  const good = writeProblem(dir, 'good', [8, 4, 4], [8, 2, 4], { cuSeqlens: [0, 3, 8] }).file;
  const file = (name: string, bytes: Uint8Array | string): string => {
    const f = path.join(dir, name);
    writeFileSync(f, bytes);
    return f;
  };
  const goodBytes = readFileSync(good);
  const cases: [string, string[], RegExp][] = [
    ['missing file', ['--in', path.join(dir, 'nope.safetensors')], /no such file/],
    ['truncated file', ['--in', file('trunc.safetensors', goodBytes.subarray(0, goodBytes.length - 10))], /truncated/],
    [
      'corrupt file',
      ['--in', file('corrupt.safetensors', 'this is not a tensor file at all')],
      /corrupt|not a safetensors/,
    ],
    ['missing q', ['--in', writeProblemWithout('q')], /missing tensor 'q'/],
    ['missing v', ['--in', writeProblemWithout('v')], /missing tensor 'v'/],
    ['k length', ['--in', writeProblem(dir, 'klen', [8, 4, 4], [7, 2, 4]).file], /does not match q/],
    ['head dim', ['--in', writeProblem(dir, 'hd', [8, 4, 4], [8, 2, 3]).file], /head dim/],
    ['heads', ['--in', writeProblem(dir, 'heads', [8, 3, 4], [8, 2, 4]).file], /not a multiple/],
    ['dtype mismatch', ['--in', mixedDtypes()], /must share one dtype/],
    ['q rank', ['--in', writeProblem(dir, 'rank', [8, 4], [8, 2]).file], /must be \[S,H,D\]/],
    [
      'cu not increasing',
      ['--in', writeProblem(dir, 'cu1', [8, 4, 4], [8, 2, 4], { cuSeqlens: [0, 5, 3, 8] }).file, '--mask', 'document'],
      /strictly increasing/,
    ],
    [
      'cu end',
      ['--in', writeProblem(dir, 'cu2', [8, 4, 4], [8, 2, 4], { cuSeqlens: [0, 5, 7] }).file, '--mask', 'document'],
      /end at the sequence length 8/,
    ],
    [
      'document without cu',
      ['--in', writeProblem(dir, 'nocu', [8, 4, 4], [8, 2, 4]).file, '--mask', 'document'],
      /needs cu_seqlens/,
    ],
    ['unknown mask', ['--in', good, '--mask', 'diagonal'], /unknown mask 'diagonal'/],
    ['malformed window', ['--in', good, '--mask', 'sliding:3'], /sliding/],
    ['malformed scale', ['--in', good, '--scale', '1.2.3'], /--scale: '1.2.3' is not a number/],
    ['negative scale', ['--in', good, '--scale', '-1'], /--scale: must be greater than 0/],
    ['unknown dtype', ['--in', good, '--dtype', 'f8'], /--dtype: unknown value 'f8'/],
    // non-finite values are refused before computing, naming the tensor and the first index
    ['NaN in q', ['--in', poisoned('nan-q', 'q', 5, NaN)], /^weft: q holds NaN at \[0, 1, 1\]/],
    ['-Inf in k', ['--in', poisoned('inf-k', 'k', 17, -Infinity)], /^weft: k holds -Infinity at \[2, 0, 1\]/],
    ['Inf in dout', ['--in', poisoned('inf-dout', 'dout', 127, Infinity)], /^weft: dout holds Infinity at \[7, 3, 3\]/],
    [
      'f32 overflow',
      ['--in', poisoned('big-v', 'v', 3, 1e300)],
      /v holds 1e\+300 at \[0, 0, 3\], beyond the range of f32: use --dtype f64/,
    ],
    // malformed files are refused whole
    [
      'duplicate names',
      [
        '--in',
        writeRawSafetensors(
          path.join(dir, 'dup.safetensors'),
          '{"q":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"q":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
          4,
        ),
      ],
      /tensor 'q' is named twice/,
    ],
    [
      'overlapping ranges',
      [
        '--in',
        writeRawSafetensors(
          path.join(dir, 'overlap.safetensors'),
          {
            q: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            k: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
          },
          12,
        ),
      ],
      /the data of tensors 'q' and 'k' overlap/,
    ],
    [
      'a gap in the data',
      [
        '--in',
        writeRawSafetensors(
          path.join(dir, 'gap.safetensors'),
          { q: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } },
          8,
        ),
      ],
      /belong to no tensor/,
    ],
    [
      'a header that is not an object',
      ['--in', writeRawSafetensors(path.join(dir, 'str.safetensors'), '"q"', 0)],
      /not a JSON object/,
    ],
  ];
  for (const [name, args, re] of cases)
    test(name, () => {
      const out = path.join(dir, `bad-${name.replace(/ /g, '-')}.safetensors`);
      const r = weft(['attn', ...args, '--out', out]);
      assert.equal(r.code, 2, `${name}: exit ${r.code}, stderr ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${name}: ${r.stderr}`);
      assert.match(lines[0]!, /^weft: /);
      assert.match(lines[0]!, re, name);
      assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/, `${name}: stack trace`);
      assert.equal(existsSync(out), false, `${name}: output written`);
      assert.deepEqual(
        readdirSync(dir).filter((f) => f.includes('.tmp')),
        [],
      );
    });
});

/** The good problem [8,4,4] / [8,2,4] with one value of `name` replaced. */
function poisoned(file: string, name: string, index: number, value: number): string {
  const m = readRaw(writeProblem(dir, `${file}-src`, [8, 4, 4], [8, 2, 4]).file);
  (m.get(name)!.data as Float64Array)[index] = value;
  return writeRaw(file, m);
}

describe('a bad --out: one line, exit code 2, before any work, and the file is left as it was', () => {
  const p = writeProblem(dir, 'outs', [8, 4, 4], [8, 2, 4]).file;
  const outs = path.join(dir, 'outs');
  mkdirSync(outs);
  const ro = path.join(outs, 'readonly.safetensors');
  writeFileSync(ro, 'keep me');
  chmodSync(ro, 0o444);
  symlinkSync(p, path.join(outs, 'link-to-input'));
  symlinkSync('nowhere', path.join(outs, 'dangling'));
  const cases: [string, string[], RegExp][] = [
    ['--out is --in', ['--in', p, '--out', p], /it is the input/],
    ['--out links to --in', ['--in', p, '--out', path.join(outs, 'link-to-input')], /it is the input/],
    ['--out is read-only', ['--in', p, '--out', ro], /read-only/],
    ['--out is a device', ['--in', p, '--out', '/dev/null'], /not a regular file/],
    ['--out is a folder', ['--in', p, '--out', outs], /it is a folder/],
    ['--out is a dangling link', ['--in', p, '--out', path.join(outs, 'dangling')], /dangling/],
    [
      '--out in a missing folder',
      ['--in', p, '--out', path.join(outs, 'missing', 'o.safetensors')],
      /folder .*missing does not exist/,
    ],
    // checked first: a bad --out is named even when the input is bad too
    [
      '--out checked before --in is read',
      ['--in', path.join(dir, 'nope.safetensors'), '--out', path.join(outs, 'missing', 'o.safetensors')],
      /folder .*missing does not exist/,
    ],
  ];
  for (const [name, args, re] of cases)
    test(name, () => {
      const before = readdirSync(outs).sort(),
        input = readFileSync(p);
      const r = weft(['attn', ...args]);
      assert.equal(r.code, 2, `${name}: exit ${r.code}, stderr ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^weft: cannot write /);
      assert.match(r.stderr, re);
      assert.deepEqual(readdirSync(outs).sort(), before);
      assert.deepEqual(readFileSync(p), input);
      assert.equal(readFileSync(ro, 'utf8'), 'keep me');
    });

  test('a symbolic link --out is written through to its target', () => {
    const target = path.join(outs, 'target.safetensors'),
      link = path.join(outs, 'link.safetensors');
    writeFileSync(target, 'old');
    symlinkSync('target.safetensors', link);
    const r = weft(['attn', '--in', p, '--out', link]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.ok(statSync(target).isFile());
    assert.deepEqual([...readOutputs(target).keys()], ['out', 'lse', 'dq', 'dk', 'dv']);
  });
});

test('a tensor the problem does not use is named on stderr: cu_seqlens under a non-document mask, unknown names', () => {
  const m = readRaw(writeProblem(dir, 'extra-src', [8, 4, 4], [8, 2, 4], { cuSeqlens: [0, 3, 8] }).file);
  m.set('bias', { dtype: 'F32', shape: [1], data: Float32Array.from([1]) });
  const f = writeRaw('extra', m);
  const r = weft(['attn', '--in', f, '--out', path.join(dir, 'extra-out.safetensors'), '--mask', 'causal']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /ignoring 'bias'/);
  assert.match(r.stderr, /ignoring 'cu_seqlens' \(mask 'causal' is not a document mask\)/);
  const doc = weft(['attn', '--in', f, '--out', path.join(dir, 'extra-out.safetensors'), '--mask', 'document']);
  assert.equal(doc.code, 0, doc.stderr);
  assert.doesNotMatch(doc.stderr, /ignoring 'cu_seqlens'/);
});

function writeProblemWithout(name: string): string {
  const p = writeProblem(dir, `without-${name}`, [8, 4, 4], [8, 2, 4]);
  const m = new Map([...readRaw(p.file)].filter(([k]) => k !== name));
  return writeRaw(`without-${name}-2`, m);
}

function mixedDtypes(): string {
  const a = readRaw(writeProblem(dir, 'mix-a', [8, 4, 4], [8, 2, 4], { dtype: 'f32' }).file);
  const b = readRaw(writeProblem(dir, 'mix-b', [8, 4, 4], [8, 2, 4], { dtype: 'f64' }).file);
  a.set('k', b.get('k')!);
  return writeRaw('mix', a);
}

function readRaw(f: string): Map<string, StTensor> {
  return readSafetensors(f);
}
function writeRaw(name: string, m: Map<string, StTensor>): string {
  const f = path.join(dir, `${name}.safetensors`);
  writeSafetensors(f, m);
  return f;
}

describe('weft attn --strategy: the same files from N CPU ranks', () => {
  const [S, H, Hkv, D] = [29, 4, 2, 4];
  const cu = [0, 4, 17, 29];
  const p = writeProblem(dir, 'cp', [S, H, D], [S, Hkv, D], { seed: 8, cuSeqlens: cu });
  const layouts: string[][] = [
    ['--strategy', 'ring', '--world', '3'],
    ['--strategy', 'ring', '--world', '4', '--shard', 'striped'],
    ['--strategy', 'allgather', '--world', '4', '--shard', 'contiguous'],
    ['--strategy', 'ulysses', '--world', '4'],
    ['--strategy', 'usp', '--world', '4', '--ulysses', '2', '--placement', 'context-first'],
    ['--strategy', 'double-ring', '--world', '4', '--inner', '2'],
    ['--strategy', 'tokenring', '--world', '3'],
  ];
  for (const layout of layouts)
    for (const mask of ['causal', 'document-causal'])
      test(`${layout.join(' ')} --mask ${mask}`, () => {
        const out = path.join(dir, `cp-${layout.join('-')}-${mask}.safetensors`);
        const r = weft(['attn', '--in', p.file, '--out', out, '--mask', mask, '--dtype', 'f64', ...layout]);
        assert.equal(r.code, 0, r.stderr);
        compare(out, p, S, H, Hkv, D, mask, 1e-10, cu);
      });

  const bad: [string, string[], RegExp][] = [
    ['degrees', ['--strategy', 'usp', '--world', '4', '--ulysses', '3', '--ring', '2'], /is not the world size 4/],
    ['ulysses above heads', ['--strategy', 'ulysses', '--world', '8'], /Ulysses degree 8/],
    ['ulysses not dividing heads', ['--strategy', 'ulysses', '--world', '3'], /Ulysses degree 3/],
    ['world above S', ['--strategy', 'ring', '--world', '30'], /larger than the sequence length 29/],
    ['unknown strategy', ['--strategy', 'spiral', '--world', '2'], /unknown strategy 'spiral'/],
    ['unknown shard', ['--strategy', 'ring', '--world', '2', '--shard', 'diagonal'], /unknown shard 'diagonal'/],
    [
      'unknown placement',
      ['--strategy', 'usp', '--world', '4', '--ulysses', '2', '--placement', 'random'],
      /unknown placement 'random'/,
    ],
    ['world without strategy', ['--world', '2'], /--world needs --strategy/],
    ['strategy without world', ['--strategy', 'ring'], /--strategy needs --world/],
  ];
  for (const [name, args, re] of bad)
    test(`rejects ${name} before any rank starts`, () => {
      const out = path.join(dir, `cp-bad-${name.replace(/ /g, '-')}.safetensors`);
      const r = weft(['attn', '--in', p.file, '--out', out, '--mask', 'causal', ...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, re);
      assert.equal(existsSync(out), false);
    });
});
