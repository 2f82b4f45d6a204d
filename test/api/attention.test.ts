import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { attention, plan, readSafetensors, UserError, writeSafetensors } from '../../src/index.js';
import { parseMask } from '../../src/mask/spec.js';
import { Rng, randn } from '../../src/tensor/random.js';
import { weft } from '../helpers/cli.js';
import { naiveAttention, rel } from '../helpers/naive.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'weft-api-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function inputs(S: number, H: number, Hkv: number, D: number, seed: number) {
  const rng = new Rng(seed);
  const t = (heads: number) => {
    const h = randn(rng, 'f64', [S, heads, D]);
    return { data: h.data as Float64Array, shape: h.shape };
  };
  return { q: t(H), k: t(Hkv), v: t(Hkv), dout: t(H) };
}

test('attention matches the f64 reference on every mask, with GQA, forward and backward', async () => {
  const [S, H, Hkv, D] = [29, 4, 2, 8];
  const cu = [0, 7, 8, 29];
  const x = inputs(S, H, Hkv, D, 3);
  for (const mask of [
    'full',
    'causal',
    'sliding:3,2',
    'prefix:5',
    'document',
    'document-causal',
    'document-sliding:4,0',
  ]) {
    const r = await attention({ ...x, mask, dtype: 'f64', cuSeqlens: cu });
    const n = naiveAttention(
      x.q.data,
      x.k.data,
      x.v.data,
      S,
      H,
      Hkv,
      D,
      parseMask(mask, cu),
      1 / Math.sqrt(D),
      x.dout.data,
    );
    assert.deepEqual(r.out.shape, [S, H, D]);
    assert.deepEqual(r.lse.shape, [H, S]);
    assert.deepEqual(r.dk!.shape, [S, Hkv, D]);
    for (const name of ['out', 'lse', 'dq', 'dk', 'dv'] as const) {
      const e = rel(r[name]!.data as Float64Array, n[name]);
      assert.ok(e < 1e-12, `${mask} ${name}: ${e}`);
    }
  }
});

test('a context-parallel layout on CPU ranks gives the one-rank numbers; f32 inputs default to f32 outputs', async () => {
  const [S, H, Hkv, D] = [24, 4, 2, 8];
  const x = inputs(S, H, Hkv, D, 4);
  const one = await attention({ ...x, mask: 'causal', dtype: 'f64' });
  for (const layout of [
    { strategy: 'ring', world: 3 },
    { strategy: 'usp', world: 4, ulysses: 2, ring: 2 },
  ] as const) {
    const cp = await attention({ ...x, mask: 'causal', dtype: 'f64', layout });
    for (const name of ['out', 'lse', 'dq', 'dk', 'dv'] as const)
      assert.ok(
        rel(cp[name]!.data as Float64Array, one[name]!.data as Float64Array) < 1e-12,
        `${layout.strategy} ${name}`,
      );
  }
  const f32 = {
    q: { data: Float32Array.from(x.q.data), shape: x.q.shape },
    k: { data: Float32Array.from(x.k.data), shape: x.k.shape },
    v: { data: Float32Array.from(x.v.data), shape: x.v.shape },
  };
  const r = await attention({ ...f32, mask: 'causal' });
  assert.ok(r.out.data instanceof Float32Array);
  assert.equal(r.dq, undefined);
  assert.ok(rel(Float64Array.from(r.out.data), one.out.data as Float64Array) < 1e-5);
});

test("bad input is a UserError with the command's message; non-finite inputs are refused unless nonFinite is propagate", async () => {
  const x = inputs(8, 4, 2, 4, 5);
  await assert.rejects(
    attention({ ...x, k: x.q, mask: 'causal' }),
    (e: unknown) => e instanceof UserError && /shape of k/.test(e.message),
  );
  await assert.rejects(attention({ ...x, mask: 'bogus' }), UserError);
  await assert.rejects(attention({ ...x, mask: 'document' }), UserError);
  await assert.rejects(attention({ ...x, q: { data: x.q.data, shape: [8, 4, 5] } }), /does not hold/);
  const bad = { data: Float64Array.from(x.q.data), shape: x.q.shape };
  bad.data[13] = Number.NaN;
  await assert.rejects(
    attention({ ...x, q: bad }),
    (e: unknown) => e instanceof UserError && /q holds NaN at \[0, 3, 1\]: weft refuses NaN/.test(e.message),
  );
  const r = await attention({ ...x, q: bad, nonFinite: 'propagate', dtype: 'f64' });
  assert.deepEqual(r.out.shape, [8, 4, 4]); // computed, not refused
});

test('weft attn writes what attention returns (the command calls the library)', async () => {
  const [S, H, Hkv, D] = [16, 2, 1, 4];
  const x = inputs(S, H, Hkv, D, 6);
  const file = path.join(dir, 'in.safetensors'),
    out = path.join(dir, 'out.safetensors');
  writeSafetensors(
    file,
    new Map(Object.entries(x).map(([n, t]) => [n, { dtype: 'F64' as const, shape: [...t.shape], data: t.data }])),
  );
  const cli = weft([
    'attn',
    '--in',
    file,
    '--out',
    out,
    '--mask',
    'sliding:2,1',
    '--dtype',
    'f64',
    '--strategy',
    'ring',
    '--world',
    '2',
  ]);
  assert.equal(cli.code, 0, cli.stderr);
  const got = readSafetensors(out);
  const t = readSafetensors(file);
  const api = await attention({
    q: t.get('q')! as never,
    k: t.get('k')! as never,
    v: t.get('v')! as never,
    dout: t.get('dout')! as never,
    mask: 'sliding:2,1',
    dtype: 'f64',
  });
  for (const name of ['out', 'lse', 'dq', 'dk', 'dv'] as const)
    assert.ok(rel(got.get(name)!.data as Float64Array, api[name]!.data as Float64Array) < 1e-13, name);
});

test('plan(config) returns what weft plan --json prints', async () => {
  const cfg = { model: 'llama3-8b', seqLen: 65536, cluster: { nodes: 1, gpusPerNode: 4, gpu: 'h200' } };
  const file = path.join(dir, 'cfg.json');
  writeFileSync(file, JSON.stringify(cfg));
  const cli = weft(['plan', '--config', file, '--json']);
  assert.equal(cli.code, 0, cli.stderr);
  assert.deepEqual(await plan(cfg), JSON.parse(cli.stdout));
  assert.deepEqual(await plan(file), JSON.parse(cli.stdout));
  await assert.rejects(plan({ model: 'llama3-8b' }), UserError);
});
