import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { fromBf16, fromF16, toBf16, toF16 } from '../../src/tensor/dtype.js';
import { castHost, hostTensor } from '../../src/tensor/host.js';

test('bf16 keeps the top 16 bits, rounding to nearest even', () => {
  assert.equal(toBf16(1), 0x3f80);
  assert.equal(fromBf16(0x3f80), 1);
  assert.equal(toBf16(-2), 0xc000);
  // 1 + 2^-8 is exactly half-way between 1 and 1 + 2^-7: ties go to the even mantissa (1)
  assert.equal(fromBf16(toBf16(1 + 2 ** -8)), 1);
  // 1 + 3·2^-8 is half-way between 1 + 2^-7 and 1 + 2^-6: ties to even → 1 + 2^-6
  assert.equal(fromBf16(toBf16(1 + 3 * 2 ** -8)), 1 + 2 ** -6);
  assert.equal(fromBf16(toBf16(Infinity)), Infinity);
  assert.ok(Number.isNaN(fromBf16(toBf16(NaN))));
});

test('f16 handles normals, subnormals, overflow and ties', () => {
  assert.equal(toF16(1), 0x3c00);
  assert.equal(toF16(65504), 0x7bff);
  assert.equal(toF16(65520), 0x7c00); // rounds up to infinity
  assert.equal(fromF16(toF16(2 ** -24)), 2 ** -24); // smallest subnormal
  assert.equal(fromF16(toF16(2 ** -26)), 0);
  assert.equal(fromF16(toF16(1 + 2 ** -11)), 1); // tie to even
  assert.equal(fromF16(0xfc00), -Infinity);
  assert.ok(Number.isNaN(fromF16(toF16(NaN))));
});

test('round trips are exact for representable values and close for the rest', () => {
  fc.assert(
    fc.property(fc.float({ noNaN: true, min: -60000, max: 60000 }), (x) => {
      const b = fromBf16(toBf16(x)),
        h = fromF16(toF16(x));
      assert.equal(fromBf16(toBf16(b)), b);
      assert.equal(fromF16(toF16(h)), h);
      assert.ok(Math.abs(b - x) <= Math.abs(x) * 2 ** -8 + 1e-40);
      assert.ok(Math.abs(h - x) <= Math.abs(x) * 2 ** -11 + 2 ** -25);
    }),
  );
});

test('castHost converts between every pair of dtypes', () => {
  const src = hostTensor('f64', [2, 2], Float64Array.from([1.5, -2.25, 0, 1024]));
  for (const a of ['f64', 'f32', 'bf16', 'f16'] as const) {
    const t = castHost(castHost(src, a), 'f64');
    assert.deepEqual(Array.from(t.data), [1.5, -2.25, 0, 1024]);
  }
});
