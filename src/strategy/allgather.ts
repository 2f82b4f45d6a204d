// All-gather K/V: every rank gathers the whole K and V once and attends its queries to them.
// Uneven shards are padded to the longest one with position −1 rows (seen by nothing), so the
// user never pads. The own block is computed while the gather is in flight (its rows are hidden
// in the gathered copy); backward reduce-scatters dK/dV, overlapped with the own block's part.
import { queryRows, type MaskView } from '../mask/view.js';
import { accumType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/host.js';
import { concatPositions, envOf, finish, freshState, isEmpty, NO_POSITIONS, releaseAll, rowsLike } from './common.js';
import type { Strategy } from './types.js';

export const allgather: Strategy = async (ctx, q, k, v) => {
  const env = envOf(ctx),
    { comm, shard, device } = ctx,
    n = comm.size,
    me = comm.rank;
  const [T, H, D] = q.shape as [number, number, number];
  const Hkv = k.shape[1]!,
    acc = accumType(q.dtype),
    Tmax = shard.maxLength();
  // every rank's keys at j·Tmax; the own block is computed apart, so its slot stays padding
  const kPosAll = concatPositions(
    Array.from({ length: n }, (_, j) => (j === me ? NO_POSITIONS : shard.positions(j))),
    Tmax,
  );
  const pad = (t: Tensor): Tensor => {
    const p = rowsLike(device, t, Tmax);
    device.copyBox(t, p, { src: [0, 0], dst: [0, 0], size: [T, Hkv] });
    return p;
  };
  const kAll = rowsLike(device, k, n * Tmax),
    vAll = rowsLike(device, v, n * Tmax);
  env.trace.step('allgather fwd');
  const kPad = pad(k),
    vPad = pad(v);
  const wk = comm.allGather(kPad, kAll),
    wv = comm.allGather(vPad, vAll);

  const qRows = queryRows(ctx.mask, shard.positions(me));
  const own: MaskView = { q: qRows, kPos: shard.positions(me) },
    others: MaskView = { q: qRows, kPos: kPosAll };
  const ownEmpty = isEmpty(own),
    othersEmpty = isEmpty(others);
  const state = freshState(device, acc, T, H, D);
  if (!ownEmpty) env.kernel.forward({ q, k, v, view: own, scale: env.scale, state });
  await wk.wait();
  await wv.wait();
  releaseAll(device, [kPad, vPad]);
  if (!othersEmpty) env.kernel.forward({ q, k: kAll, v: vAll, view: others, scale: env.scale, state });

  return finish(env, q.dtype, {
    state,
    backward: async (dout) => {
      const common = { q, out: state.out, lse: state.lse, dout, scale: env.scale };
      const dq = device.zeros(acc, q.shape);
      const dkAll = device.zeros(acc, kAll.shape),
        dvAll = device.zeros(acc, vAll.shape);
      if (!othersEmpty)
        env.kernel.backward({ ...common, k: kAll, v: vAll, view: others, into: { dq, dk: dkAll, dv: dvAll } });
      const dkMine = device.zeros(acc, [Tmax, Hkv, D]),
        dvMine = device.zeros(acc, [Tmax, Hkv, D]);
      env.trace.step('allgather bwd');
      const rk = comm.reduceScatter(dkAll, dkMine),
        rv = comm.reduceScatter(dvAll, dvMine);
      const dk = device.zeros(acc, k.shape),
        dv = device.zeros(acc, v.shape);
      if (!ownEmpty) env.kernel.backward({ ...common, k, v, view: own, into: { dq, dk, dv } });
      await rk.wait();
      await rv.wait();
      // the gathered K/V and every gradient buffer go back once reduced (backward runs once)
      releaseAll(device, [dkAll, dvAll, kAll, vAll]);
      for (const [mine, into] of [
        [dkMine, dk],
        [dvMine, dv],
      ] as const) {
        const rows = device.zeros(acc, k.shape);
        device.copyBox(mine, rows, { src: [0, 0], dst: [0, 0], size: [T, Hkv] });
        device.add(into, rows);
        releaseAll(device, [rows, mine]);
      }
      return { dq, dk, dv };
    },
  });
};
