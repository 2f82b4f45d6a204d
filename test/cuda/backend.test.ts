// Without a GPU (CI), 'auto' falls back to the CPU and says why in one line; asking for CUDA by
// name is a user error with that line. (On a GPU machine 'auto' gets CUDA; the test adapts.)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { UserError } from '../../src/errors.js';
import { registerBackend, resolveBackend } from '../../src/backends/index.js';
import { CpuDevice } from '../../src/backends/cpu/device.js';

test('auto skips a backend that cannot start and keeps its reason; asking for it by name fails with that reason', async () => {
  registerBackend('cuda', {
    priority: 10,
    init: async () => {
      throw new Error('CUDA driver library not found (tried libcuda.so.1 by name: nope)\nsecond line');
    },
  });
  const r = await resolveBackend('auto');
  assert.equal(r.backend.name, 'cpu');
  assert.deepEqual(r.skipped, [
    { name: 'cuda', reason: 'CUDA driver library not found (tried libcuda.so.1 by name: nope)' },
  ]);
  await assert.rejects(
    resolveBackend('cuda'),
    (e: Error) =>
      e instanceof UserError &&
      e.message === 'cuda backend unavailable: CUDA driver library not found (tried libcuda.so.1 by name: nope)',
  );
  await assert.rejects(resolveBackend('tpu' as never), UserError);
  registerBackend('cuda', {
    priority: 10,
    init: async () => ({ name: 'cuda', device: new CpuDevice(), description: 'fake' }),
  });
  assert.equal((await resolveBackend('auto')).backend.description, 'fake');
});

test('the real CUDA backend on this machine either starts or says why in one line', () => {
  // a fresh process, so the registry holds the real factories
  const code = `
    const { resolveBackend } = await import(${JSON.stringify(new URL('../../src/backends/index.js', import.meta.url).href)});
    const r = await resolveBackend('auto');
    console.log(JSON.stringify({ name: r.backend.name, skipped: r.skipped }));`;
  const p = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    encoding: 'utf8',
    env: { ...process.env, WEFT_LIBCUDA: '/nonexistent/libcuda.so.1' },
    timeout: 60_000,
  });
  assert.equal(p.status, 0, p.stderr);
  const r = JSON.parse(p.stdout) as { name: string; skipped: { name: string; reason: string }[] };
  assert.equal(r.name, 'cpu');
  assert.equal(r.skipped.length, 1);
  assert.equal(r.skipped[0]!.name, 'cuda');
  // koffi may be absent where optional dependencies were not installed; otherwise the path is named
  assert.match(r.skipped[0]!.reason, /WEFT_LIBCUDA=\/nonexistent\/libcuda\.so\.1|koffi/);
});
