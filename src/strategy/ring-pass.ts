// The ring schedule, generic over what travels and what is done with each block, so ring,
// USP (a ring over Ulysses groups) and double ring (a ring of rings) share one implementation.
// Forward: member i starts with its own block; at step s it holds the block of member i − s, and
// ends with the block of member i + 1. Backward turns the other way, from that block: at step s
// member i holds the block of member i + 1 + s, so each block's gradient sum, travelling with it,
// reaches its owner on the last step (no final hop home), and the last K/V hop is skipped (the
// last block is the member's own). Every step starts the next transfer before visiting the
// block in hand, then waits: the transfer for step s + 1 overlaps the compute of step s. Blocks
// received here are released once visited and passed on, so a member holds two at a time.
import type { Comm, P2POp, Work } from '../comm/comm.js';
import { DONE } from '../comm/comm.js';
import type { DType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/host.js';
import { type Env, isOwn, mod, recvRows, releaseAll, rowsLike } from './common.js';

/** Rows of the block member m starts with (all travelling tensors share their leading dimension). */
export type BlockRows = (member: number) => number;

/**
 * Forward: rotate `travel` (e.g. [k, v]) n − 1 times; visit(held, owner, step) for every block,
 * the own block first. Traffic of the rotation into step s is labelled `${label} ${s}`. Returns
 * the last block held (member i + 1's), where the backward pass starts.
 */
export async function ringForward(
  env: Env,
  ring: Comm,
  rows: BlockRows,
  travel: readonly Tensor[],
  visit: (held: readonly Tensor[], owner: number, step: number) => Promise<void> | void,
  label: string,
): Promise<readonly Tensor[]> {
  const n = ring.size,
    me = ring.rank,
    next = mod(me + 1, n),
    prev = mod(me - 1, n);
  let held = travel;
  for (let s = 0; s < n; s++) {
    const owner = mod(me - s, n);
    let work: Work = DONE,
      incoming: Tensor[] = [];
    if (s < n - 1) {
      incoming = held.map((t) => recvRows(env.device, t, rows(mod(owner - 1, n))));
      env.trace.step(`${label} ${s + 1}`);
      work = ring.sendRecv(
        held.map((t, i): P2POp => ({ send: { buf: t, peer: next }, recv: { buf: incoming[i]!, peer: prev } })),
      );
    }
    await visit(held, owner, s);
    await work.wait();
    if (s < n - 1) {
      if (!isOwn(held, travel)) releaseAll(env.device, held); // visited and passed on
      held = incoming;
    }
  }
  return held;
}

/**
 * Backward: `travel` rotates against the forward direction, starting from member i + 1's block
 * (`start`, what ringForward returned; fetched first when not given), and the gradients of each
 * block (`grads`: dtype per gradient, shaped like the travelling tensors) follow it. At step s a
 * member computes the held block's gradient contribution into fresh tensors (visit returns them,
 * or null for an empty block) while the sum of the earlier members' contributions is in flight to
 * it; it adds them and passes the sum on at the next step. The last step is the member's own
 * block, so the sum completes at home. Returns the own block's gradients.
 */
export async function ringBackward(
  env: Env,
  ring: Comm,
  rows: BlockRows,
  travel: readonly Tensor[],
  grads: readonly DType[],
  visit: (held: readonly Tensor[], owner: number, step: number) => Promise<Tensor[] | null> | Tensor[] | null,
  label: string,
  start?: readonly Tensor[],
): Promise<Tensor[]> {
  const n = ring.size,
    me = ring.rank,
    next = mod(me + 1, n),
    prev = mod(me - 1, n);
  const like = (owner: number): Tensor[] => grads.map((dt, i) => rowsLike(env.device, travel[i]!, rows(owner), dt));
  /** send `out` to the previous member, receive into tensors shaped like member `from`'s block from the next */
  const pass = (out: readonly Tensor[], from: number, dtypes?: readonly DType[]): { ops: P2POp[]; got: Tensor[] } => {
    const got = out.map((t, i) => recvRows(env.device, travel[i]!, rows(from), dtypes?.[i] ?? t.dtype));
    return {
      got,
      ops: out.map((t, i): P2POp => ({ send: { buf: t, peer: prev }, recv: { buf: got[i]!, peer: next } })),
    };
  };
  let held = start ?? travel;
  if (!start && n > 1) {
    const first = pass(travel, next);
    env.trace.step(`${label} 0`);
    await ring.sendRecv(first.ops).wait();
    held = first.got;
  }
  let carry: Tensor[] | null = null; // the sum for the block held in the previous step
  for (let s = 0; s < n; s++) {
    const owner = mod(me + 1 + s, n);
    const ops: P2POp[] = [];
    let incoming: readonly Tensor[] = [],
      arriving: Tensor[] = [];
    if (s < n - 1) {
      const nextOwner = mod(owner + 1, n);
      if (nextOwner === me)
        incoming = travel; // the last block is the own one: no transfer
      else {
        const kv = pass(held, nextOwner);
        incoming = kv.got;
        ops.push(...kv.ops);
      }
    }
    if (carry) {
      const g = pass(carry, owner, grads);
      arriving = g.got;
      ops.push(...g.ops);
    }
    let work: Work = DONE;
    if (ops.length) {
      env.trace.step(`${label} ${s + 1}`);
      work = ring.sendRecv(ops);
    }
    const local = await visit(held, owner, s);
    await work.wait();
    if (carry) releaseAll(env.device, carry); // passed on
    if (!isOwn(held, travel)) releaseAll(env.device, held); // visited and passed on (the kept `start` too)
    if (local && arriving.length) {
      local.forEach((t, i) => env.device.add(t, arriving[i]!));
      releaseAll(env.device, arriving);
    }
    carry = local ?? (arriving.length ? arriving : like(owner));
    held = incoming;
  }
  return carry!;
}
