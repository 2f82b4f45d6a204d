// Ulysses: an all-to-all turns "my tokens, all heads" into "all tokens of the group, my heads";
// attention then runs on whole sequences of fewer heads, and a second all-to-all brings the
// output (and lse) back to the token owners. The attention in the middle is pluggable: one local
// block for Ulysses, a ring over Ulysses groups for USP.
import type { Comm } from '../comm/comm.js';
import { queryRows } from '../mask/view.js';
import { accumType, type DType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/host.js';
import {
  castReleasing,
  castTo,
  concatPositions,
  type Env,
  envOf,
  localAttention,
  type PartialResult,
  releaseAll,
} from './common.js';
import { addHeads, HeadPlan } from './heads.js';
import type { Strategy, StrategyResult } from './types.js';

/** Attention over the gathered tokens (positions `pos`, in member order) for this member's heads. */
export type HeadAttention = (qH: Tensor, kH: Tensor, vH: Tensor, pos: Int32Array) => Promise<PartialResult>;

export async function ulyssesAttention(
  env: Env,
  group: Comm,
  memberPos: (c: number) => Int32Array,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  inner: HeadAttention,
  label: string,
): Promise<StrategyResult> {
  const { device } = env,
    u = group.size,
    me = group.rank;
  const [T, H, D] = q.shape as [number, number, number];
  const dtype = q.dtype,
    acc = accumType(dtype);
  const plan = new HeadPlan(u, H, k.shape[1]!),
    Hl = plan.Hl;
  const len = Array.from({ length: u }, (_, c) => memberPos(c).length);
  const off = len.map((_, c) => len.slice(0, c).reduce((a, b) => a + b, 0));
  const Ttot = off[u - 1]! + len[u - 1]!;
  const pos = concatPositions(Array.from({ length: u }, (_, c) => memberPos(c)));
  const [g0, g1] = plan.kv(me),
    nR = g1 - g0;

  /** Local tokens, heads [h0, h0 + n) for member c → gathered tokens of this member's heads. */
  const scatterHeads = (
    t: Tensor,
    heads: (c: number) => [number, number],
    nMine: number,
  ): { send: Tensor[]; recv: Tensor[] } => ({
    send: Array.from({ length: u }, (_, c) => {
      const [h0, h1] = heads(c);
      const s = device.empty(t.dtype, [T, h1 - h0, D]);
      device.copyBox(t, s, { src: [0, h0], dst: [0, 0], size: [T, h1 - h0] });
      return s;
    }),
    recv: len.map((n) => device.empty(t.dtype, [n, nMine, D])),
  });
  const concat = (parts: readonly Tensor[], n: number, dt: DType): Tensor => {
    const out = device.empty(dt, [Ttot, n, D]); // the parts tile it
    parts.forEach((p, c) => device.copyBox(p, out, { src: [0, 0], dst: [off[c]!, 0], size: [len[c]!, n] }));
    return out;
  };
  /** Gathered tokens [Ttot, n, D] → each member's rows; back here: [T, n_c, D] per member. */
  const splitRows = (t: Tensor, nFrom: (c: number) => number): { send: Tensor[]; recv: Tensor[] } => ({
    send: len.map((n, c) => {
      const s = device.empty(t.dtype, [n, t.shape[1]!, D]);
      device.copyBox(t, s, { src: [off[c]!, 0], dst: [0, 0], size: [n, t.shape[1]!] });
      return s;
    }),
    recv: len.map((_, c) => device.empty(t.dtype, [T, nFrom(c), D])),
  });
  const qHeads = (c: number): [number, number] => [c * Hl, (c + 1) * Hl];
  /** packing buffers and copies are released once used: a member holds O(T · H), not every copy */
  const release = (...ts: readonly Tensor[]): void => releaseAll(device, ts);
  /** `t` cast to `dt` for packing; `done` releases the cast copy (not `t`) once packed */
  const castFor = (t: Tensor, dt: DType): { t: Tensor; done: () => void } => {
    const c = castTo(device, t, dt);
    return {
      t: c,
      done: () => {
        if (c !== t) device.release(c);
      },
    };
  };

  env.trace.step(`${label} fwd qkv`);
  const xq = scatterHeads(q, qHeads, Hl),
    xk = scatterHeads(k, (c) => plan.kv(c), nR),
    xv = scatterHeads(v, (c) => plan.kv(c), nR);
  const works = [xq, xk, xv].map((x) => group.allToAll(x.send, x.recv));
  for (const w of works) await w.wait();
  const qH = concat(xq.recv, Hl, dtype);
  let kH = concat(xk.recv, nR, dtype),
    vH = concat(xv.recv, nR, dtype);
  for (const x of [xq, xk, xv]) release(...x.send, ...x.recv);
  const regular = plan.regular(me);
  if (!regular) {
    const [k0, v0] = [kH, vH];
    kH = plan.expand(device, me, k0);
    vH = plan.expand(device, me, v0);
    release(k0, v0);
  }

  const p = await inner(qH, kH, vH, pos);

  env.trace.step(`${label} fwd out`);
  // the cast output is packed and kept for the backward's delta (common.ts finish); the
  // accumulation-type one goes
  const o = castTo(device, p.state.out, dtype);
  if (o !== p.state.out) {
    device.release(p.state.out);
    p.state.out = o;
  }
  const xo = splitRows(o, () => Hl);
  const lseSend = len.map((n, c) => {
    const s = device.empty(acc, [Hl, n]);
    device.copyBox(p.state.lse, s, { src: [0, off[c]!], dst: [0, 0], size: [Hl, n] });
    return s;
  });
  const lseRecv = len.map(() => device.empty(acc, [Hl, T]));
  const wo = group.allToAll(xo.send, xo.recv),
    wl = group.allToAll(lseSend, lseRecv);
  await wo.wait();
  await wl.wait();
  const out = device.empty(dtype, [T, H, D]),
    lse = device.empty(acc, [H, T]); // every member's heads tile them
  for (let c = 0; c < u; c++) {
    device.copyBox(xo.recv[c]!, out, { src: [0, 0], dst: [0, c * Hl], size: [T, Hl] });
    device.copyBox(lseRecv[c]!, lse, { src: [0, 0], dst: [c * Hl, 0], size: [Hl, T] });
  }
  release(...xo.send, ...xo.recv, ...lseSend, ...lseRecv);

  return {
    out,
    lse,
    backward: async (dout) => {
      env.trace.step(`${label} bwd dout`);
      const xd = scatterHeads(dout, qHeads, Hl);
      await group.allToAll(xd.send, xd.recv).wait();
      const doutH = concat(xd.recv, Hl, dtype);
      release(...xd.send, ...xd.recv);
      const g = await p.backward(doutH);
      release(doutH, p.state.out);
      const dkR = regular ? g.dk : plan.reduce(device, me, g.dk),
        dvR = regular ? g.dv : plan.reduce(device, me, g.dv);
      // a KV head shared by several members gets partial sums: move those in the accumulation type
      const shared = plan.shared(),
        gdt = shared ? acc : dtype;
      env.trace.step(`${label} bwd grads`);
      const kvHeads = (c: number): number => plan.kv(c)[1] - plan.kv(c)[0];
      const split = (t: Tensor, dt: DType, heads: (c: number) => number): { send: Tensor[]; recv: Tensor[] } => {
        const c = castFor(t, dt),
          x = splitRows(c.t, heads);
        c.done();
        release(t);
        return x;
      };
      if (!regular) release(g.dk, g.dv); // reduced into dkR, dvR
      const xq2 = split(g.dq, dtype, () => Hl),
        xk2 = split(dkR, gdt, kvHeads),
        xv2 = split(dvR, gdt, kvHeads);
      const ws = [xq2, xk2, xv2].map((x) => group.allToAll(x.send, x.recv));
      for (const w of ws) await w.wait();
      const dq = device.empty(dtype, [T, H, D]);
      // shared KV heads are summed into; otherwise every member's KV heads tile dk, dv
      const dk = shared ? device.zeros(gdt, k.shape) : device.empty(gdt, k.shape),
        dv = shared ? device.zeros(gdt, v.shape) : device.empty(gdt, v.shape);
      for (let c = 0; c < u; c++) {
        device.copyBox(xq2.recv[c]!, dq, { src: [0, 0], dst: [0, c * Hl], size: [T, Hl] });
        const [h0, h1] = plan.kv(c);
        for (const [part, into] of [
          [xk2.recv[c]!, dk],
          [xv2.recv[c]!, dv],
        ] as const) {
          if (shared) addHeads(device, part, into, h0);
          else device.copyBox(part, into, { src: [0, 0], dst: [0, h0], size: [T, h1 - h0] });
        }
      }
      for (const x of [xq2, xk2, xv2]) release(...x.send, ...x.recv);
      return { dq, dk: castReleasing(device, dk, dtype), dv: castReleasing(device, dv, dtype) };
    },
  };
}

export const ulysses: Strategy = async (ctx, q, k, v) => {
  const env = envOf(ctx);
  return ulyssesAttention(
    env,
    ctx.comm,
    (c) => ctx.shard.positions(c),
    q,
    k,
    v,
    async (qH, kH, vH, pos) => localAttention(env, queryRows(ctx.mask, pos), pos, qH, kH, vH),
    'ulysses',
  );
};
