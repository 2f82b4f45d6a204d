import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Checker, codeName, GpuError, safeDescribe } from '../../src/cuda/errors.js';

test('a failed call names the call, the code, its name and its meaning', () => {
  const c = new Checker('cuda', (code) => ({ name: code === 2 ? 'CUDA_ERROR_OUT_OF_MEMORY' : '', text: code === 2 ? 'out of memory' : '' }));
  assert.doesNotThrow(() => c.check('cuMemAlloc_v2', 0));
  assert.throws(() => c.check('cuMemAlloc_v2', 2), (e: Error) =>
    e instanceof GpuError && e.code === 2 && e.call === 'cuMemAlloc_v2' &&
    e.message === 'cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory');
});

test('when the library cannot describe a code, the built-in table names it', () => {
  const broken = safeDescribe('cuda', () => { throw new Error('library gone'); });
  assert.deepEqual(broken(700), { name: 'CUDA_ERROR_ILLEGAL_ADDRESS', text: 'no description available' });
  assert.equal(codeName('nvrtc', 6), 'NVRTC_ERROR_COMPILATION');
  assert.equal(codeName('nccl', 6), 'ncclRemoteError');
  assert.equal(codeName('cuda', 12345), 'unknown cuda code');
  // NVRTC and NCCL give only a text: the name comes from the table
  const nccl = new Checker('nccl', () => ({ name: '', text: 'remote process exited or there was a network error' }), () => 'NCCL says: peer 1 closed');
  assert.throws(() => nccl.check('ncclGroupEnd', 6), (e: Error) =>
    e.message === 'ncclGroupEnd failed: ncclRemoteError (6): remote process exited or there was a network error; NCCL says: peer 1 closed');
});
