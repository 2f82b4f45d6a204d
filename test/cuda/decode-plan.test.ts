// Which views the CUDA backend hands to the split-K decode kernel, and how it packs their rows
// (decodePlan: pure host code, no GPU): short runs of rows that share keys — the new tokens of
// each sequence — packed whole into row blocks of at most 64 query vectors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodePlan, keysAscend } from '../../src/backends/cuda/kernel/decode.js';
import { MaskGrid } from '../../src/mask/grid.js';
import { editPositions, maskView, positionEdit } from '../../src/mask/view.js';
import { CacheMap } from '../../src/infer/cache.js';

const iota = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i);

/** The last T tokens of each of B documents of L tokens. */
function batchRows(B: number, L: number, T: number): ReturnType<typeof maskView> {
  const cu = iota(0, B + 1).map((i) => i * L);
  const grid = MaskGrid.build({ kind: 'document', cuSeqlens: cu, inner: { kind: 'causal' } }, B * L);
  const q = Int32Array.from(iota(0, B).flatMap((b) => iota((b + 1) * L - T, (b + 1) * L)));
  return maskView(grid, q, Int32Array.from(iota(0, B * L)));
}

test('new tokens of one sequence: one run; m-tiles per CTA grow with run × group', () => {
  const S = 1024,
    grid = MaskGrid.build({ kind: 'causal' }, S),
    all = Int32Array.from(iota(0, S));
  const plan = (T: number, g: number) => decodePlan(maskView(grid, Int32Array.from(iota(S - T, S)), all).q, g);
  assert.deepEqual(
    [plan(1, 4)?.wm, plan(4, 4)?.wm, plan(5, 4)?.wm, plan(8, 4)?.wm, plan(9, 4)?.wm, plan(16, 4)?.wm],
    [1, 1, 2, 2, 4, 4],
  );
  assert.equal(plan(17, 4), undefined); // 17 rows × 4 heads > 64 vectors
  assert.equal(plan(1, 64)?.wm, 4);
  assert.equal(plan(1, 65), undefined);
  assert.deepEqual([...plan(3, 4)!.blocks], [0, 3]);
});

test('prefill and training views are not decode-shaped', () => {
  const S = 1024,
    all = Int32Array.from(iota(0, S));
  assert.equal(decodePlan(maskView(MaskGrid.build({ kind: 'causal' }, S), all, all).q, 4), undefined);
  assert.equal(
    decodePlan(maskView(MaskGrid.build({ kind: 'sliding', left: 64, right: 0 }, S), all, all).q, 1),
    undefined,
  );
});

test('a batch: runs of different sequences pack whole into row blocks', () => {
  assert.deepEqual([...decodePlan(batchRows(8, 100, 1).q, 4)!.blocks], [0, 4, 4, 8]); // 4 sequences × 4 heads a block
  assert.deepEqual([...decodePlan(batchRows(3, 100, 3).q, 4)!.blocks], [0, 3, 3, 6, 6, 9]); // 12 vectors: one sequence a block
  const p = decodePlan(batchRows(5, 100, 8).q, 4)!;
  assert.equal(p.wm, 2);
  assert.deepEqual([...p.blocks], [0, 8, 8, 16, 16, 24, 24, 32, 32, 40]);
  // rows that see nothing (padding, −1) join a run without breaking it
  const grid = MaskGrid.build({ kind: 'causal' }, 100);
  const v = maskView(grid, Int32Array.from([-1, 97, -1, 98, 99]), Int32Array.from(iota(0, 100)));
  assert.deepEqual([...decodePlan(v.q, 4)!.blocks], [0, 5]);
  assert.equal(decodePlan(v.q, 4)!.wm, 2);
});

test('keys that ascend with the slots: a row block per run', () => {
  assert.deepEqual([...decodePlan(batchRows(4, 100, 1).q, 4, true)!.blocks], [0, 1, 1, 2, 2, 3, 3, 4]);
  assert.deepEqual([...decodePlan(batchRows(3, 100, 2).q, 4, true)!.blocks], [0, 2, 2, 4, 4, 6]);
  assert.deepEqual([...decodePlan(batchRows(3, 100, 2).q, 4)!.blocks], [0, 4, 4, 6]); // packed: 2 runs of 8 vectors a block
  const packed = Int32Array.from(iota(0, 300));
  assert.equal(keysAscend(packed), true);
  assert.equal(keysAscend(Int32Array.from([-1, 0, 1, -1, -1, 5, 9, -1])), true);
  assert.equal(keysAscend(Int32Array.from([0, 1, 2, 1])), false);
  // edits are judged from their rows' neighbours: an append in order keeps the verdict, one out of order loses it
  const pad = Int32Array.from([...iota(0, 300), ...Array<number>(200).fill(-1)]);
  assert.equal(keysAscend(pad), true);
  const next = editPositions(pad, Int32Array.from([300, 301]), Int32Array.from([300, 301]));
  assert.equal(keysAscend(next), true);
  assert.equal(keysAscend(editPositions(next, Int32Array.from([302]), Int32Array.from([150]))), false);
  // a sharded cache after a decode step: the sequences' generated tokens interleave
  const map = new CacheMap(1, 400);
  map.open(150, { kind: 'causal' });
  map.open(150, { kind: 'causal' });
  map.commit(map.place([100, 100]));
  assert.equal(keysAscend(map.positions(0)), true);
  map.commit(map.place([1, 1]));
  assert.equal(keysAscend(map.positions(0)), false);
});

test('a KV cache step makes its key positions as an edit of the last (what the decode kernel uploads)', () => {
  const map = new CacheMap(2, 64);
  map.open(40, { kind: 'causal' });
  map.open(40, { kind: 'causal' });
  map.commit(map.place([10, 6]));
  const before = [map.positions(0), map.positions(1)];
  const p = map.place([1, 1]);
  map.commit(p);
  for (const r of [0, 1]) {
    const now = map.positions(r),
      e = positionEdit(now)!;
    assert.ok(e, `rank ${r}: the new positions remember their edit`);
    assert.equal(e.base.deref(), before[r], 'made from the previous snapshot, which is left as it was');
    const mine = [...p.byRank[r]!];
    assert.deepEqual(
      [...e.rows],
      mine.map((i) => p.slot[i]!),
    );
    assert.deepEqual(
      [...e.values],
      mine.map((i) => p.pos[i]!),
    );
    for (let s = 0; s < now.length; s++) {
      const k = e.rows.indexOf(s);
      assert.equal(now[s], k >= 0 ? e.values[k] : before[r]![s]);
    }
  }
  const held = map.positions(0);
  map.close(0);
  const e = positionEdit(map.positions(0))!;
  assert.equal(e.base.deref(), held);
  assert.ok(e.values.every((x) => x === -1) && e.rows.every((s) => held[s]! >= 0 && held[s]! < 40));
  assert.equal(e.rows.length, [...held].filter((x) => x >= 0 && x < 40).length);
});
