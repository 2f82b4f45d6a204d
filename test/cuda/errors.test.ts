import assert from 'node:assert/strict';
import { test } from 'node:test';
import { outOfMemoryLine } from '../../src/cli/errors.js';
import { Checker, codeName, CU_OUT_OF_MEMORY, GpuError, safeDescribe } from '../../src/backends/cuda/runtime/errors.js';

test('a failed call names the call, the code, its name and its meaning', () => {
  const c = new Checker('cuda', (code) => ({
    name: code === 2 ? 'CUDA_ERROR_OUT_OF_MEMORY' : '',
    text: code === 2 ? 'out of memory' : '',
  }));
  assert.doesNotThrow(() => c.check('cuMemAlloc_v2', 0));
  assert.throws(
    () => c.check('cuMemAlloc_v2', 2),
    (e: Error) =>
      e instanceof GpuError &&
      e.code === 2 &&
      e.call === 'cuMemAlloc_v2' &&
      e.message === 'cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory',
  );
});

test('when the library cannot describe a code, the built-in table names it', () => {
  const broken = safeDescribe('cuda', () => {
    throw new Error('library gone');
  });
  assert.deepEqual(broken(700), { name: 'CUDA_ERROR_ILLEGAL_ADDRESS', text: 'no description available' });
  assert.equal(codeName('nvrtc', 6), 'NVRTC_ERROR_COMPILATION');
  assert.equal(codeName('nccl', 6), 'ncclRemoteError');
  assert.equal(codeName('cuda', 12345), 'unknown cuda code');
  // NVRTC and NCCL give only a text: the name comes from the table
  const nccl = new Checker(
    'nccl',
    () => ({ name: '', text: 'remote process exited or there was a network error' }),
    () => 'NCCL says: peer 1 closed',
  );
  assert.throws(
    () => nccl.check('ncclGroupEnd', 6),
    (e: Error) =>
      e.message ===
      'ncclGroupEnd failed: ncclRemoteError (6): remote process exited or there was a network error; NCCL says: peer 1 closed',
  );
});

test('running out of GPU memory is one line for the user, other GPU errors are not', () => {
  const oom = new GpuError(
    'cuda',
    'cuMemAlloc_v2',
    CU_OUT_OF_MEMORY,
    'CUDA_ERROR_OUT_OF_MEMORY',
    'out of device memory allocating 2.75 GiB (137.80 GiB in use by weft, 205.1 MiB free of 139.80 GiB)',
  );
  const line = outOfMemoryLine(oom)!;
  assert.match(
    line,
    /^weft: out of GPU memory allocating 2\.75 GiB \(137\.80 GiB in use by weft, 205\.1 MiB free of 139\.80 GiB\) — use a shorter sequence/,
  );
  assert.ok(!line.includes('\n'));
  assert.equal(
    outOfMemoryLine(
      new GpuError('cuda', 'cuLaunchKernel', 700, 'CUDA_ERROR_ILLEGAL_ADDRESS', 'an illegal memory access'),
    ),
    undefined,
  );
  assert.equal(outOfMemoryLine(new Error('out of device memory')), undefined);
});
