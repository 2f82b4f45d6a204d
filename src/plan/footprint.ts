// What weft's own code holds on a GPU for one attention layer (attention modes): the inputs (q,
// k, v and dO of the local rows), the peak the strategy code holds — allocations minus releases,
// counted by running it (counts.ts), with the backward kernel's f32 delta — and the kernel's block
// lists, cached per mask view across iterations: per view an f32 entry per (128-row query tile,
// 128-key tile) for the forward and per (128-key tile, 64-row query tile) for the backward, i.e.
// 3·Tq·Tk/4096 bytes — quadratic in the block, 1.5 GiB per rank for a ring of 2 at S = 2M.
import type { Placement } from '../mesh/mesh.js';
import { elemBytes } from './config.js';
import { type CountCase, preparedCounts, prepareCounts } from './counts.js';
import type { PlanLayout } from './layout.js';
import { deviceOpsCase, seqsAtOnce } from './schedule.js';
import type { PlanConfig } from './types.js';

const FWD_QTILE = 128,
  KTILE = 128,
  BWD_QTILE = 64; // src/backends/cuda/kernel/source.ts
const cdiv = (a: number, b: number): number => Math.ceil(a / b);

/** Bytes of the kernel's block lists for one mask view of tq query rows and tk keys (f32 entries and per-row counts). */
function blockListBytes(tq: number, tk: number, backward: boolean): number {
  const nq = cdiv(tq, FWD_QTILE),
    nk = cdiv(tk, KTILE);
  const fwd = 4 * (nq * nk + nq);
  return backward ? fwd + 4 * (nk * cdiv(tq, BWD_QTILE) + nk) : fwd;
}

/**
 * One weft iteration's memory per GPU, bytes: inputs, the highest the forward holds, how much
 * higher the backward goes, block lists; the peak is the sum of the four.
 */
interface Footprint {
  inputs: number;
  forward: number;
  backward: number;
  blockLists: number;
}

/** A footprint's peak: its four parts together. */
export function footprintBytes(f: Footprint): number {
  return f.inputs + f.forward + f.backward + f.blockLists;
}

/** The kernel's block lists of one rank (forward and, in attention mode, backward). */
function blockLists(l: Pick<PlanLayout, 'strategy' | 'ring' | 'ulysses'>, T: number, bwd: boolean): number {
  const r = l.ring;
  switch (l.strategy) {
    case 'allgather':
      return blockListBytes(T, T, bwd) + blockListBytes(T, r * T, bwd);
    case 'ulysses':
      return blockListBytes(l.ulysses * T, l.ulysses * T, bwd);
    case 'usp':
      return r * blockListBytes(l.ulysses * T, l.ulysses * T, bwd);
    default:
      return r * blockListBytes(T, T, bwd);
  }
}

/** weft's memory per GPU for one attention layer of `l` (attention modes; tp 1); its counts prepared. */
export function weftFootprint(cfg: PlanConfig, l: PlanLayout): Footprint {
  const m = cfg.model,
    B = seqsAtOnce(cfg, l);
  const f = footprintOf({
    ...l,
    S: cfg.seqLen,
    H: m.heads,
    Hkv: m.kvHeads,
    D: m.headDim,
    e: elemBytes(cfg),
    backward: cfg.mode === 'attention',
  });
  return { inputs: B * f.inputs, forward: B * f.forward, backward: B * f.backward, blockLists: B * f.blockLists };
}

/** One rank of an attention layer of S tokens (equal shards). */
interface AttentionShape {
  strategy: PlanLayout['strategy'];
  S: number;
  H: number;
  Hkv: number;
  D: number;
  e: number;
  ulysses: number;
  ring: number;
  inner?: number;
  placement?: Placement;
  backward: boolean;
}

function footprintCaseOf(x: Omit<AttentionShape, 'S' | 'backward'>): CountCase {
  return {
    strategy: x.strategy,
    ulysses: x.ulysses,
    ring: x.ring,
    inner: x.strategy === 'double-ring' ? (x.inner ?? x.ring) : x.ring,
    placement: x.placement ?? 'head-first',
    H: x.H,
    Hkv: x.Hkv,
    D: x.D,
    e: x.e === 4 ? 4 : 2,
  };
}

function footprintOf(x: AttentionShape): Footprint {
  const { H, Hkv, D, e, backward: bwd } = x,
    T = x.S / (x.ulysses * x.ring);
  const h = preparedCounts(footprintCaseOf(x), T);
  const inputs = bwd ? 2 * T * H * D * e + 2 * T * Hkv * D * e : T * H * D * e + 2 * T * Hkv * D * e;
  // the forward alone holds its peak at its end (the output cast); with a backward, how much higher that goes
  return {
    inputs,
    forward: h.heldForward,
    backward: bwd ? h.heldPeak - h.heldForward : 0,
    blockLists: blockLists(x, T, bwd),
  };
}

/** What one rank of weft's code holds for one attention layer of S tokens (equal shards): `weft run`'s memory check and the planner's. */
export async function attentionFootprint(x: AttentionShape): Promise<Footprint> {
  await prepareCounts([footprintCaseOf(x)]);
  return footprintOf(x);
}

/**
 * weft's strategy memory per GPU in a model's layers (training, prefill), bytes, from its code run
 * dry on the layer's tensor-parallel share of the heads (as its Device work is counted). `kept`:
 * in training each layer's forward keeps what its backward reads until that backward runs, beyond
 * the output (an activation); with full recomputation that forward runs inside the backward, one
 * layer at a time. `buffers`: the layer running holds its peak beyond its output (prefill: the
 * forward's, each layer's forward state reclaimed before the next).
 */
export function weftLayerMemory(cfg: PlanConfig, l: PlanLayout): { kept: number; buffers: number } {
  const T = (seqsAtOnce(cfg, l) * cfg.seqLen) / (l.ulysses * l.ring),
    c = deviceOpsCase(cfg, l);
  const h = preparedCounts(c, T),
    out = T * c.H * c.D * elemBytes(cfg);
  if (cfg.mode === 'prefill') return { kept: 0, buffers: h.heldForward - out };
  const keptLayers = cfg.recompute === 'none' ? cfg.model.layers - 1 : 0;
  return { kept: keptLayers * (h.heldKept - out), buffers: h.heldPeak - out };
}
