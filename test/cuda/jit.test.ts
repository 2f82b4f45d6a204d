import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  compileCached,
  CubinCache,
  cubinCacheKey,
  defaultCacheDir,
  type CompileRequest,
  type CompileTarget,
} from '../../src/backends/cuda/runtime/jit.js';
import { tempDir } from '../helpers/temp.js';

const req: CompileRequest = {
  source: 'extern "C" __global__ void k() {}',
  name: 'k.cu',
  options: ['--gpu-architecture=sm_90a'],
  nameExpressions: [],
};
const target: CompileTarget = { device: 'NVIDIA H200', cc: [9, 0], driver: 13000, nvrtc: '13.0' };

test('the cache key changes with source, options, device and driver', () => {
  const k = cubinCacheKey(req, target);
  assert.equal(k, cubinCacheKey({ ...req }, { ...target }));
  assert.notEqual(k, cubinCacheKey({ ...req, source: req.source + ' ' }, target));
  assert.notEqual(k, cubinCacheKey({ ...req, options: ['--gpu-architecture=sm_90'] }, target));
  assert.notEqual(k, cubinCacheKey({ ...req, nameExpressions: ['f<1>'] }, target));
  assert.notEqual(k, cubinCacheKey(req, { ...target, device: 'NVIDIA H100' }));
  assert.notEqual(k, cubinCacheKey(req, { ...target, driver: 13010 }));
  assert.notEqual(k, cubinCacheKey(req, { ...target, nvrtc: '13.1' }));
});

test('a second compile of the same request is a cache hit with the same cubin', () => {
  const dir = tempDir('weft-cubin-');
  let compiles = 0;
  const compile = (): { cubin: Uint8Array; log: string; lowered: Record<string, string> } => {
    compiles++;
    return { cubin: new Uint8Array([1, 2, 3, compiles]), log: 'ok', lowered: { 'f<1>': '_Z1fILi1EEvv' } };
  };
  const a = compileCached(req, target, new CubinCache(dir), compile);
  const b = compileCached(req, target, new CubinCache(dir), compile);
  assert.deepEqual([a.hit, b.hit, compiles], [false, true, 1]);
  assert.deepEqual(b.program, a.program);
  // a truncated entry is ignored and rewritten
  const file = path.join(dir, readdirSync(dir)[0]!);
  writeFileSync(file, Buffer.from([4, 0, 0, 0, 0x7b, 0x7d]));
  assert.equal(compileCached(req, target, new CubinCache(dir), compile).hit, false);
  assert.equal(compiles, 2);
});

test('no cache directory means always compiling; the default honours WEFT_CACHE_DIR', () => {
  let compiles = 0;
  const compile = () => {
    compiles++;
    return { cubin: new Uint8Array(1), log: '', lowered: {} };
  };
  compileCached(req, target, new CubinCache(null), compile);
  compileCached(req, target, new CubinCache(null), compile);
  assert.equal(compiles, 2);
  assert.equal(defaultCacheDir({ WEFT_CACHE_DIR: '/x/y' }), '/x/y');
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/c' }), '/c/weft/cubin');
});
