// What `weft run` takes from its options on both paths (CPU ranks and GPUs): sizes, the mask
// with its documents (drawn first from the seed), the softmax scale and the layout.
import { type MaskSpec, parseMask } from '../mask/spec.js';
import type { Layout } from '../run/index.js';
import { Rng } from '../tensor/random.js';
import { UserError } from '../errors.js';
import { type OutputTarget, resolveOutput } from '../io/output.js';
import { distEnv } from '../launch/env.js';
import { layoutFrom, type LayoutOpts, optInt, timeoutMs } from './layout-options.js';
import { parseNumber } from './options.js';

/** The options every mode of `weft run` reads (training, varlen, prefill and decode). */
export interface RunCommonOpts extends LayoutOpts {
  heads: string;
  kvHeads?: string;
  dim: string;
  mask: string;
  backend: string;
  dtype?: string;
  docs?: string;
  cuSeqlens?: string;
  scale?: string;
  seed: string;
  check?: boolean;
  json?: boolean;
}

export interface RunOpts extends RunCommonOpts {
  seq: string;
  iters: string;
  warmup: string;
  timeline?: string;
  backward: boolean;
  memoryCheck: boolean;
  /** --strategy varlen (commands/varlen.ts) */
  dist?: string;
  lengths?: string;
  dryPlan?: boolean;
  rankTokens?: string;
  tokenSlack?: string;
  dispatch?: string;
  headDocs?: string;
  calibration?: string;
}

export function need(x: number | undefined, flag: string): number {
  if (x === undefined) throw new UserError(`--${flag} is required`);
  return x;
}

/** Document boundaries: explicit, or N random documents drawn from the seed. */
function documents(o: RunOpts, S: number, rng: Rng): number[] | undefined {
  if (o.cuSeqlens !== undefined && o.docs !== undefined) throw new UserError('give --docs or --cu-seqlens, not both');
  if (o.cuSeqlens !== undefined) {
    const cu = o.cuSeqlens.split(',').map((x) => x.trim());
    if (cu.some((x) => !/^\d+$/.test(x)))
      throw new UserError(`--cu-seqlens must be integers separated by commas, not '${o.cuSeqlens}'`);
    return cu.map(Number);
  }
  const n = optInt(o.docs, 'docs');
  if (n === undefined) return undefined;
  if (n > S) throw new UserError(`--docs ${n} is more documents than the ${S} tokens`);
  const cuts = new Set<number>();
  while (cuts.size < n - 1) cuts.add(rng.int(1, S - 1));
  return [0, ...[...cuts].sort((a, b) => a - b), S];
}

/** What both paths take from the options: sizes, the mask, scale, layout, iterations, the timeline file. */
export interface RunSetup {
  S: number;
  H: number;
  Hkv: number;
  D: number;
  mask: MaskSpec;
  scale: number;
  layout: Layout;
  rng: Rng;
  iters: number;
  warmup: number;
  timeline?: OutputTarget;
}

export function setup(o: RunOpts): RunSetup {
  const S = need(optInt(o.seq, 'seq'), 'seq'),
    H = need(optInt(o.heads, 'heads'), 'heads');
  const Hkv = optInt(o.kvHeads, 'kv-heads') ?? H,
    D = need(optInt(o.dim, 'dim'), 'dim');
  const rng = new Rng(optInt(o.seed, 'seed', 0)!);
  const cu = documents(o, S, rng);
  if (o.mask.startsWith('document') && !cu)
    throw new UserError(`mask '${o.mask}' needs document boundaries: --docs N or --cu-seqlens 0,…,${S}`);
  const mask = parseMask(o.mask, cu);
  const scale = o.scale === undefined ? 1 / Math.sqrt(D) : parseNumber(o.scale, '--scale', { positive: true });
  const iters = need(optInt(o.iters, 'iters'), 'iters'),
    warmup = optInt(o.warmup, 'warmup', 0) ?? 0;
  timeoutMs(o);
  // only the rank that writes the timeline checks its path (other nodes may not have the folder)
  const timeline = o.timeline === undefined || (distEnv()?.rank ?? 0) !== 0 ? undefined : resolveOutput(o.timeline);
  return { S, H, Hkv, D, mask, scale, layout: layoutFrom(o)!, rng, iters, warmup, timeline };
}
