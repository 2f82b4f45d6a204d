// Double ring (LoongTrain): the world is `outer` inner rings of `inner` consecutive ranks. K/V
// rotate around the inner ring (fast links); each full inner cycle, every rank's K/V also moves
// one hop around the outer ring — that transfer is started before the inner cycle and hidden
// behind all of it. Backward nests the same way (ring-pass.ts: passes turn the other way): a
// block's dK/dV sum goes around the inner ring and completes at the rank that brought the block
// in, which adds it to the sum travelling with the block around the outer ring; that completes
// at the block's owner.
import { doubleRingMesh } from '../mesh/mesh.js';
import { type MaskView, queryRows } from '../mask/view.js';
import { accumType } from '../tensor/dtype.js';
import { envOf, finish, freshState, isEmpty, isOwn, keyBlockGrads, releaseAll } from './common.js';
import { ringBackward, ringForward } from './ring-pass.js';
import type { Strategy } from './types.js';

export interface DoubleRingOptions {
  inner: number;
}

export function doubleRing(opts: DoubleRingOptions): Strategy {
  return async (ctx, q, k, v) => {
    const env = envOf(ctx),
      { device, shard } = ctx,
      me = ctx.comm.rank;
    const n = ctx.comm.size;
    if (n % opts.inner !== 0) throw new Error(`double-ring: inner ring size ${opts.inner} does not divide ${n} ranks`);
    const mesh = doubleRingMesh(opts.inner, n / opts.inner);
    const iComm = mesh.group(ctx.comm, 'inner', device),
      oComm = mesh.group(ctx.comm, 'outer', device);
    const pos = (i: number, o: number): Int32Array => shard.positions(mesh.rankOf({ inner: i, outer: o }));
    const myI = iComm.rank;
    const [T, H, D] = q.shape as [number, number, number];
    const acc = accumType(q.dtype);
    const qRows = queryRows(ctx.mask, shard.positions(me));
    const view = (i: number, o: number): MaskView => ({ q: qRows, kPos: pos(i, o) });

    const state = freshState(device, acc, T, H, D);
    // the outer pass's last block starts the outer backward (kept, like ring's); the inner
    // passes keep nothing (one block per round would be O blocks), so each fetches its first
    const lastOuter = await ringForward(
      env,
      oComm,
      (o) => pos(myI, o).length,
      [k, v],
      async (held, o, t) => {
        const lastInner = await ringForward(
          env,
          iComm,
          (i) => pos(i, o).length,
          held,
          ([kb, vb], i) => {
            const vw = view(i, o);
            if (!isEmpty(vw)) env.kernel.forward({ q, k: kb!, v: vb!, view: vw, scale: env.scale, state });
          },
          `double-ring inner fwd (outer ${t})`,
        );
        if (!isOwn(lastInner, held)) releaseAll(device, lastInner);
      },
      'double-ring outer fwd',
    );

    return finish(env, q.dtype, {
      state,
      backward: async (dout) => {
        const dq = device.zeros(acc, q.shape);
        const [dk, dv] = await ringBackward(
          env,
          oComm,
          (o) => pos(myI, o).length,
          [k, v],
          [acc, acc],
          (held, o, t) =>
            ringBackward(
              env,
              iComm,
              (i) => pos(i, o).length,
              held,
              [acc, acc],
              ([kb, vb], i) => keyBlockGrads(env, { q, state, dout, dq }, kb!, vb!, view(i, o)),
              `double-ring inner bwd (outer ${t})`,
            ),
          'double-ring outer bwd',
          lastOuter,
        );
        return { dq, dk: dk!, dv: dv! };
      },
    });
  };
}
