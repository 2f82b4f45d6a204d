import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LIBCUDA, LIBNCCL, LIBNVRTC, LibraryNotFound, openLibrary } from '../../src/backends/cuda/runtime/discovery.js';

const fail =
  (why: string) =>
  (p: string): never => {
    throw new Error(`Failed to load shared library: ${p}: ${why}`);
  };

test('the soname is tried before the known paths, and the first that loads wins', () => {
  const tried: string[] = [];
  const r = openLibrary(
    LIBNVRTC,
    (p) => {
      tried.push(p);
      if (p !== LIBNVRTC.paths[0]) throw new Error('no');
      return 'handle';
    },
    {},
  );
  assert.equal(r.path, '/usr/local/cuda-13.0/targets/x86_64-linux/lib/libnvrtc.so.13');
  assert.equal(r.handle, 'handle');
  assert.deepEqual(tried.slice(0, 2), ['libnvrtc.so.13', 'libnvrtc.so.12']);
});

test('the environment override is the only candidate when set', () => {
  const tried: string[] = [];
  const r = openLibrary(
    LIBNCCL,
    (p) => {
      tried.push(p);
      return p;
    },
    { WEFT_LIBNCCL: '/opt/nccl/libnccl.so.2' },
  );
  assert.equal(r.path, '/opt/nccl/libnccl.so.2');
  assert.deepEqual(tried, ['/opt/nccl/libnccl.so.2']);
  assert.throws(
    () => openLibrary(LIBNCCL, fail('cannot open shared object file'), { WEFT_LIBNCCL: '/nope/libnccl.so.2' }),
    (e: Error) =>
      e instanceof LibraryNotFound &&
      /WEFT_LIBNCCL=\/nope\/libnccl\.so\.2: \/nope\/libnccl\.so\.2: cannot open/.test(e.message),
  );
});

test('a failure says what was looked for where, in one line, and how to override', () => {
  try {
    openLibrary(LIBCUDA, fail('No such file or directory'), {});
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof LibraryNotFound);
    const m = e.message;
    assert.ok(!m.includes('\n'), 'one line');
    assert.match(m, /^CUDA driver library not found/);
    assert.match(m, /libcuda\.so\.1 by name: libcuda\.so\.1: No such file/);
    for (const p of LIBCUDA.paths) assert.ok(m.includes(p), `mentions ${p}`);
    assert.match(m, /set WEFT_LIBCUDA to its path$/);
  }
});
