// Head-parallel attention of one long document on a sub-group of the world (the dispatcher's
// 'heads' mode): Ulysses over `ulysses` members, optionally a ring of `ring` such groups across
// (USP). The all-to-all trades the document's tokens for heads, so its K/V never travel point to
// point to the many ranks a star would reach; the rest of a member's rows run in the sparse K/V
// executor beside it (execute.ts). Exact: the document attends only to itself, so its rows'
// result is the sub-group's alone.
import type { Comm } from '../comm/comm.js';
import { SubgroupComm } from '../comm/subgroup.js';
import type { Device } from '../device/device.js';
import { queryRows } from '../mask/view.js';
import type { ShardMap } from '../shard/shard.js';
import { concatPositions, type Env, localAttention } from '../strategy/common.js';
import { ringAttention } from '../strategy/ring.js';
import type { StrategyResult } from '../strategy/types.js';
import { ulyssesAttention } from '../strategy/ulysses.js';
import type { Tensor } from '../tensor/host.js';

/**
 * A document [start, end) attended head-parallel by `members`: member i is Ulysses rank i mod
 * `ulysses` of ring group ⌊i / ulysses⌋ (each ring group's members consecutive, on one node).
 */
export interface HeadGroup {
  start: number;
  end: number;
  ulysses: number;
  ring: number;
  members: number[];
}

/** The rows [first, first + count) of the sorted positions `mine` that lie in [start, end). */
export function rowsIn(mine: Int32Array, start: number, end: number): [number, number] {
  const lower = (x: number): number => {
    let a = 0,
      b = mine.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if (mine[m]! < x) a = m + 1;
      else b = m;
    }
    return a;
  };
  const i0 = lower(start);
  return [i0, lower(end) - i0];
}

/** Rows [i0, i0 + n) of t, as a tensor of their own. */
export function rowSlice(device: Device, t: Tensor, i0: number, n: number): Tensor {
  const out = device.empty(t.dtype, [n, ...t.shape.slice(1)]);
  device.copyBox(t, out, { src: [i0, 0], dst: [0, 0], size: [n, t.shape[1] ?? 1] });
  return out;
}

/**
 * This rank's part of the head-parallel attention of group g: q, k, v are its rows of the
 * document. The result (out, lse and the backward's gradients) covers those rows alone.
 */
export function attendHeads(
  env: Env,
  comm: Comm,
  shard: ShardMap,
  g: HeadGroup,
  q: Tensor,
  k: Tensor,
  v: Tensor,
): Promise<StrategyResult> {
  const me = g.members.indexOf(comm.rank),
    u = g.ulysses;
  if (me < 0) throw new Error(`varlen heads: rank ${comm.rank} is not a member of [${g.members.join(', ')}]`);
  const pos = g.members.map((r) => {
    const all = shard.positions(r),
      [i0, n] = rowsIn(all, g.start, g.end);
    return all.subarray(i0, i0 + n);
  });
  const c = me % u,
    m = Math.floor(me / u);
  const sub = (ranks: number[]): Comm => new SubgroupComm(comm, ranks, env.device);
  const uComm = sub(g.members.slice(m * u, (m + 1) * u)),
    rComm = sub(Array.from({ length: g.ring }, (_, j) => g.members[j * u + c]!));
  /** the gathered positions of ring group j, in member order (the same array every call) */
  const groupPos = (j: number): Int32Array => concatPositions(pos.slice(j * u, (j + 1) * u));
  return ulyssesAttention(
    env,
    uComm,
    (x) => pos[m * u + x]!,
    q,
    k,
    v,
    g.ring > 1
      ? (qH, kH, vH) => ringAttention(env, rComm, groupPos, qH, kH, vH, 'varlen heads ring')
      : async (qH, kH, vH, p) => localAttention(env, queryRows(env.mask, p), p, qH, kH, vH),
    'varlen heads',
  );
}
