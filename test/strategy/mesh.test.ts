import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { doubleRingMesh, Mesh, uspMesh } from '../../src/mesh/mesh.js';

describe('Mesh', () => {
  it('head-first keeps Ulysses groups on consecutive ranks; context-first keeps rings there', () => {
    const hf = uspMesh(2, 4, 'head-first'),
      cf = uspMesh(2, 4, 'context-first');
    assert.deepEqual(hf.members(5, 'ulysses'), [4, 5]);
    assert.deepEqual(hf.members(5, 'ring'), [1, 3, 5, 7]);
    assert.deepEqual(cf.members(5, 'ulysses'), [1, 5]);
    assert.deepEqual(cf.members(5, 'ring'), [4, 5, 6, 7]);
    assert.equal(hf.rankOf({ ulysses: 1, ring: 2 }), 5);
    assert.equal(cf.rankOf({ ulysses: 1, ring: 2 }), 6);
  });

  it('coordinates and ranks round-trip', () => {
    const m = new Mesh([
      { name: 'a', size: 2 },
      { name: 'b', size: 3 },
      { name: 'c', size: 2 },
    ]);
    assert.equal(m.size, 12);
    for (let r = 0; r < 12; r++)
      assert.equal(m.rankOf({ a: m.coord(r, 'a'), b: m.coord(r, 'b'), c: m.coord(r, 'c') }), r);
    assert.deepEqual(doubleRingMesh(3, 2).members(4, 'inner'), [3, 4, 5]);
    assert.throws(() => m.rankOf({ a: 0, b: 3, c: 0 }), /b=3 outside \[0, 3\)/);
    assert.throws(() => m.coord(0, 'z'), /no axis 'z'/);
  });
});
