// TokenRing: K/V stay home; the queries travel one way around the ring (with dout, out and lse
// in the backward pass) while each rank's partial result for a visiting query block travels
// back the other way, straight to the block's owner. Both ends know from positions alone
// whether a (query block, key block) pair is empty, so empty pairs send no partial at all.
// Backward: dK/dV accumulate where K/V live; dQ partials go home like the forward partials.
import type { Comm, P2POp, Work } from '../comm/comm.js';
import { DONE } from '../comm/comm.js';
import { type MaskView, type QueryRows, queryRows } from '../mask/view.js';
import { accumType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/host.js';
import { type Env, envOf, finish, freshState, isEmpty, isOwn, mod, releaseAll, rowsLike } from './common.js';
import type { Strategy } from './types.js';

interface QueryPass {
  /** tensors that travel with this rank's queries (shaped [T, …] or [H, T] when `lseLike`) */
  travel: readonly Tensor[];
  /** shapes of the partial a holder returns for owner j's queries */
  partial: (owner: number) => Tensor[];
  /** compute the partial of the visiting block of `owner` against the local K/V, into `into` */
  visit: (held: readonly Tensor[], owner: number, into: Tensor[]) => void;
  /** the own block, computed at step 0 without a partial */
  own: () => void;
  /** fold an arrived partial into this rank's result */
  combine: (part: Tensor[]) => void;
}

/**
 * The query-travelling schedule. At step s this rank holds the queries of owner me − s; it
 * sends the partial of step s − 1 to its owner and receives the partial rank me + s − 1
 * computed for it, all while computing step s.
 */
async function queryPass(
  env: Env,
  comm: Comm,
  rowsOf: (j: number) => number,
  live: (owner: number, holder: number) => boolean,
  p: QueryPass,
  label: string,
): Promise<void> {
  const n = comm.size,
    me = comm.rank,
    next = mod(me + 1, n),
    prev = mod(me - 1, n);
  const lead = (t: Tensor, rows: number): Tensor =>
    // lse [H, T] travels with rows on its second axis
    t.shape.length === 2 ? env.device.zeros(t.dtype, [t.shape[0]!, rows]) : rowsLike(env.device, t, rows);
  // what arrives or is computed here is released once used and passed on: two blocks at a time
  const release = (ts: readonly Tensor[]): void => releaseAll(env.device, ts);
  let held = p.travel;
  let pending: { owner: number; part: Tensor[] } | null = null;
  const exchange = (ops: P2POp[], s: number): { arriving: Tensor[] | null } => {
    if (pending) for (const t of pending.part) ops.push({ send: { buf: t, peer: pending.owner } });
    const src = mod(me + s - 1, n);
    const arriving = s >= 2 && live(me, src) ? p.partial(me) : null;
    if (arriving) for (const t of arriving) ops.push({ recv: { buf: t, peer: src } });
    return { arriving };
  };
  for (let s = 0; s < n; s++) {
    const owner = mod(me - s, n);
    const ops: P2POp[] = [];
    let incoming: Tensor[] = [];
    if (s < n - 1) {
      incoming = held.map((t) => lead(t, rowsOf(mod(owner - 1, n))));
      held.forEach((t, i) => ops.push({ send: { buf: t, peer: next }, recv: { buf: incoming[i]!, peer: prev } }));
    }
    const { arriving } = exchange(ops, s);
    let work: Work = DONE;
    if (ops.length) {
      env.trace.step(`${label} ${s}`);
      work = comm.sendRecv(ops);
    }
    const sent = pending;
    if (s === 0) {
      p.own();
      pending = null;
    } else if (live(owner, me)) {
      const part = p.partial(owner);
      p.visit(held, owner, part);
      pending = { owner, part };
    } else pending = null;
    await work.wait();
    if (arriving) {
      p.combine(arriving);
      release(arriving);
    }
    if (sent) release(sent.part);
    if (!isOwn(held, p.travel)) release(held); // visited and passed on
    held = incoming;
  }
  if (n === 1) return;
  const ops: P2POp[] = [];
  const sent = pending;
  const { arriving } = exchange(ops, n);
  if (ops.length) {
    env.trace.step(`${label} ${n}`);
    await comm.sendRecv(ops).wait();
  }
  if (arriving) {
    p.combine(arriving);
    release(arriving);
  }
  if (sent) release(sent.part);
}

export const tokenring: Strategy = async (ctx, q, k, v) => {
  const env = envOf(ctx),
    { device, shard, comm } = ctx,
    me = comm.rank;
  const [T, H, D] = q.shape as [number, number, number];
  const acc = accumType(q.dtype);
  const rowsCache = new Map<number, QueryRows>();
  const rowsOf = (j: number): QueryRows => {
    let r = rowsCache.get(j);
    if (!r) {
      r = queryRows(ctx.mask, shard.positions(j));
      rowsCache.set(j, r);
    }
    return r;
  };
  const view = (owner: number): MaskView => ({ q: rowsOf(owner), kPos: shard.positions(me) });
  const live = (owner: number, holder: number): boolean =>
    !isEmpty({ q: rowsOf(owner), kPos: shard.positions(holder) });
  const len = (j: number): number => shard.length(j);

  const state = freshState(device, acc, T, H, D);
  await queryPass(
    env,
    comm,
    len,
    live,
    {
      travel: [q],
      partial: (j) => {
        const s = freshState(device, acc, len(j), H, D);
        return [s.out, s.lse];
      },
      visit: ([qj], j, [out, lse]) => {
        env.kernel.forward({ q: qj!, k, v, view: view(j), scale: env.scale, state: { out: out!, lse: lse! } });
      },
      own: () => {
        if (live(me, me)) env.kernel.forward({ q, k, v, view: view(me), scale: env.scale, state });
      },
      combine: ([out, lse]) => env.kernel.merge(state, { out: out!, lse: lse! }),
    },
    'tokenring fwd',
  );

  return finish(env, q.dtype, {
    state,
    backward: async (dout) => {
      const dq = device.zeros(acc, q.shape),
        dk = device.zeros(acc, k.shape),
        dv = device.zeros(acc, v.shape);
      const grad = (qj: Tensor, doutj: Tensor, outj: Tensor, lsej: Tensor, j: number, dqj: Tensor): void => {
        env.kernel.backward({
          q: qj,
          k,
          v,
          out: outj,
          lse: lsej,
          dout: doutj,
          view: view(j),
          scale: env.scale,
          into: { dq: dqj, dk, dv },
        });
      };
      await queryPass(
        env,
        comm,
        len,
        live,
        {
          travel: [q, dout, state.out, state.lse],
          partial: (j) => [device.zeros(acc, [len(j), H, D])],
          visit: ([qj, dj, oj, lj], j, [dqj]) => grad(qj!, dj!, oj!, lj!, j, dqj!),
          own: () => {
            if (live(me, me)) grad(q, dout, state.out, state.lse, me, dq);
          },
          combine: ([part]) => device.add(dq, part!),
        },
        'tokenring bwd',
      );
      return { dq, dk, dv };
    },
  });
};
