// USP (unified sequence parallelism): Ulysses of degree u inside, ring of degree r across, on a
// u × r mesh. The Ulysses all-to-all gathers the group's tokens for H/u heads; a ring over the
// Ulysses groups (members with the same head slice) then rotates those gathered K/V blocks.
// head-first placement puts each Ulysses group on consecutive ranks (its all-to-all on the
// fastest links); context-first puts each ring there.
import { uspMesh, type Placement } from '../mesh/mesh.js';
import { concatPositions, envOf } from './common.js';
import { ringAttention } from './ring.js';
import type { Strategy } from './types.js';
import { ulyssesAttention } from './ulysses.js';

export interface UspOptions {
  ulysses: number;
  ring: number;
  placement: Placement;
}

export function usp(opts: UspOptions): Strategy {
  return async (ctx, q, k, v) => {
    const env = envOf(ctx),
      me = ctx.comm.rank;
    const mesh = uspMesh(opts.ulysses, opts.ring, opts.placement);
    const uComm = mesh.group(ctx.comm, 'ulysses', ctx.device),
      rComm = mesh.group(ctx.comm, 'ring', ctx.device);
    const at = (c: number, m: number): Int32Array => ctx.shard.positions(mesh.rankOf({ ulysses: c, ring: m }));
    /** positions of Ulysses group m's gathered tokens, in member order (the same array every call) */
    const groupPos = (m: number): Int32Array =>
      concatPositions(Array.from({ length: opts.ulysses }, (_, c) => at(c, m)));
    const myRing = mesh.coord(me, 'ring');
    return ulyssesAttention(
      env,
      uComm,
      (c) => at(c, myRing),
      q,
      k,
      v,
      (qH, kH, vH) => ringAttention(env, rComm, groupPos, qH, kH, vH, 'usp ring'),
      'usp ulysses',
    );
  };
}
