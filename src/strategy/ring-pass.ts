// The ring schedule, generic over what travels and what is done with each block, so ring,
// USP (a ring over Ulysses groups) and double ring (a ring of rings) share one implementation.
// Member i starts with its own block; at step s it holds the block of member i − s. Every step
// starts the next transfer before visiting the block in hand, then waits: the transfer of block
// s + 1 overlaps the compute on block s (double buffering).
import type { Comm, P2POp, Work } from '../comm/comm.js';
import { DONE } from '../comm/comm.js';
import type { DType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/host.js';
import { type Env, mod, rowsLike } from './common.js';

/** Rows of the block member m starts with (all travelling tensors share their leading dimension). */
export type BlockRows = (member: number) => number;

/**
 * Forward: rotate `travel` (e.g. [k, v]) n − 1 times; visit(held, owner, step) for every block,
 * the own block first. Traffic of the rotation into step s is labelled `${label} ${s}`.
 */
export async function ringForward(
  env: Env, ring: Comm, rows: BlockRows, travel: readonly Tensor[],
  visit: (held: readonly Tensor[], owner: number, step: number) => Promise<void> | void, label: string,
): Promise<void> {
  const n = ring.size, me = ring.rank, next = mod(me + 1, n), prev = mod(me - 1, n);
  let held = travel;
  for (let s = 0; s < n; s++) {
    const owner = mod(me - s, n);
    let work: Work = DONE, incoming: Tensor[] = [];
    if (s < n - 1) {
      incoming = held.map((t) => rowsLike(env.device, t, rows(mod(owner - 1, n))));
      env.trace.step(`${label} ${s + 1}`);
      work = ring.sendRecv(held.map((t, i): P2POp => ({ send: { buf: t, peer: next }, recv: { buf: incoming[i]!, peer: prev } })));
    }
    await visit(held, owner, s);
    await work.wait();
    held = incoming;
  }
}

/**
 * Backward: `travel` rotates as in the forward pass, and the gradients of each block (`grads`:
 * dtype per gradient, shaped like the travelling tensors) follow it around the ring and come
 * home. At step s a member computes the held block's gradient contribution into fresh tensors
 * (visit returns them, or null for an empty block) while the sum of the earlier members'
 * contributions is in flight to it; it adds them, and sends the sum on at the next step.
 * The last hop brings every block's total back to its owner. Returns the own block's gradients.
 */
export async function ringBackward(
  env: Env, ring: Comm, rows: BlockRows, travel: readonly Tensor[], grads: readonly DType[],
  visit: (held: readonly Tensor[], owner: number, step: number) => Promise<Tensor[] | null> | Tensor[] | null, label: string,
): Promise<Tensor[]> {
  const n = ring.size, me = ring.rank, next = mod(me + 1, n), prev = mod(me - 1, n);
  const like = (owner: number): Tensor[] => grads.map((dt, i) => rowsLike(env.device, travel[i]!, rows(owner), dt));
  let held = travel;
  let carry: Tensor[] | null = null; // the sum for the block held in the previous step
  for (let s = 0; s < n; s++) {
    const owner = mod(me - s, n);
    const ops: P2POp[] = [];
    let incoming: Tensor[] = [], arriving: Tensor[] = [];
    if (s < n - 1) {
      incoming = held.map((t) => rowsLike(env.device, t, rows(mod(owner - 1, n))));
      held.forEach((t, i) => ops.push({ send: { buf: t, peer: next }, recv: { buf: incoming[i]!, peer: prev } }));
    }
    if (carry) {
      arriving = like(owner);
      carry.forEach((t, i) => ops.push({ send: { buf: t, peer: next }, recv: { buf: arriving[i]!, peer: prev } }));
    }
    let work: Work = DONE;
    if (ops.length) { env.trace.step(`${label} ${s}`); work = ring.sendRecv(ops); }
    const local = await visit(held, owner, s);
    await work.wait();
    if (local && arriving.length) local.forEach((t, i) => env.device.add(t, arriving[i]!));
    carry = local ?? (arriving.length ? arriving : like(owner));
    held = incoming;
  }
  if (n === 1) return carry!;
  const home = like(me);
  env.trace.step(`${label} ${n}`);
  await ring.sendRecv(carry!.map((t, i): P2POp => ({ send: { buf: t, peer: next }, recv: { buf: home[i]!, peer: prev } }))).wait();
  return home;
}
