// The GPU check's criterion (checkPasses), on hand-made error records: no GPU needed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkPasses, type GpuCheck } from '../../src/run/gpu.js';

const ok = { out: 1e-3, lse: 1e-8, dq: 2e-3, dk: 2e-3, dv: 2e-3 };

test('a CP result passes when close to one GPU and about as close to the f64 reference', () => {
  assert.ok(checkPasses({ vsSingle: ok, cpVsRef: ok, singleVsRef: ok }));
  assert.ok(!checkPasses({ vsSingle: { ...ok, dv: 3e-2 }, cpVsRef: ok, singleVsRef: ok }), 'too far from one GPU');
  assert.ok(
    !checkPasses({ vsSingle: ok, cpVsRef: { ...ok, dk: 9e-3 }, singleVsRef: ok }),
    'further from the reference than one GPU',
  );
  assert.ok(!checkPasses({ vsSingle: { ...ok, dq: NaN }, cpVsRef: ok, singleVsRef: ok }), 'NaN fails');
});

test('outputs that are exactly zero in the reference are judged by absolute norm against it, not against one GPU', () => {
  // every row sees one key (the sparse mask): dq and dk are zero, one GPU's values rounding noise
  const zero: GpuCheck = {
    vsSingle: { ...ok, dq: 3e-2, dk: 3e-2 },
    cpVsRef: { ...ok, dq: 4e-5, dk: 4e-5 },
    singleVsRef: { ...ok, dq: 3e-5, dk: 3e-5 },
    zeroRef: ['dq', 'dk'],
  };
  assert.ok(checkPasses(zero));
  assert.ok(!checkPasses({ ...zero, cpVsRef: { ...ok, dq: 0.5, dk: 4e-5 } }), 'a real dq where the reference has none');
  assert.ok(
    !checkPasses({ ...zero, vsSingle: { ...ok, dq: 3e-2, dk: 3e-2, dv: 3e-2 } }),
    'dv is not zero in the reference and stays judged',
  );
});
