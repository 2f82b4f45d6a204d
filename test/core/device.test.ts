// The CPU device's fills: zeros are zeros; `empty` is NaN in every dtype, so a strategy that reads
// an element of a buffer it never wrote fails the CPU tests (on GPUs `empty` is not filled at all).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpuDevice } from '../../src/backends/cpu/device.js';
import { getter } from '../../src/tensor/host.js';

test('CpuDevice: zeros are zero, empty is NaN in every dtype', () => {
  const dev = new CpuDevice();
  for (const dtype of ['f64', 'f32', 'bf16', 'f16'] as const) {
    const z = dev.zeros(dtype, [3, 2]),
      e = dev.empty(dtype, [3, 2]);
    const gz = getter(z),
      ge = getter(e);
    for (let i = 0; i < 6; i++) {
      assert.equal(gz(i), 0, dtype);
      assert.ok(Number.isNaN(ge(i)), `${dtype} empty[${i}] = ${ge(i)}`);
    }
  }
});
