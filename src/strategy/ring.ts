// Ring attention: queries stay, K/V rotate around the group; in the backward pass they rotate
// back the other way with their dK/dV, which complete at home; dQ accumulates where the queries live. Blocks whose view is
// empty under the mask are skipped without a kernel call (their K/V still pass through).
import type { Comm } from '../comm/comm.js';
import { queryRows } from '../mask/view.js';
import { accumType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/host.js';
import { type Env, envOf, finish, freshState, isEmpty, keyBlockGrads, type PartialResult } from './common.js';
import { ringBackward, ringForward } from './ring-pass.js';
import type { Strategy } from './types.js';

/**
 * Attention of this member's queries against the K/V blocks of every ring member.
 * `blocks(m)` gives the global positions of member m's rows (its queries and its K/V).
 */
export async function ringAttention(
  env: Env,
  ring: Comm,
  blocks: (m: number) => Int32Array,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  label: string,
): Promise<PartialResult> {
  const [T, H, D] = q.shape as [number, number, number];
  const acc = accumType(q.dtype);
  const qRows = queryRows(env.mask, blocks(ring.rank));
  const rows = (m: number): number => blocks(m).length;
  const view = (owner: number) => ({ q: qRows, kPos: blocks(owner) });
  const state = freshState(env.device, acc, T, H, D);
  // the forward's last block is where the backward starts: kept, so the backward needs no K/V hop
  // for it (for a ring of 2, none at all) at the cost of holding one more K/V block until then
  const last = await ringForward(
    env,
    ring,
    rows,
    [k, v],
    ([kb, vb], owner) => {
      const vw = view(owner);
      if (!isEmpty(vw)) env.kernel.forward({ q, k: kb!, v: vb!, view: vw, scale: env.scale, state });
    },
    `${label} fwd`,
  );
  return {
    state,
    backward: async (dout) => {
      const dq = env.device.zeros(acc, q.shape);
      const [dk, dv] = await ringBackward(
        env,
        ring,
        rows,
        [k, v],
        [acc, acc],
        ([kb, vb], owner) => keyBlockGrads(env, { q, state, dout, dq }, kb!, vb!, view(owner)),
        `${label} bwd`,
        last,
      );
      return { dq, dk: dk!, dv: dv! };
    },
  };
}

export const ring: Strategy = async (ctx, q, k, v) => {
  const env = envOf(ctx);
  return finish(env, q.dtype, await ringAttention(env, ctx.comm, (m) => ctx.shard.positions(m), q, k, v, 'ring'));
};
