// The options of `weft run --mode prefill|decode`, checked once for both backends (CPU ranks in
// commands/infer.ts, GPUs in commands/infer-gpu.ts), as run-setup.ts does for the training mode.
import { UserError } from '../errors.js';
import type { PassKind } from '../infer/index.js';
import { type MaskSpec, parseMask } from '../mask/spec.js';
import { parseConfig } from '../plan/config.js';
import { choosePass, type InferenceConfig, type PassChoice } from '../plan/inference.js';
import { buildContext } from '../plan/search.js';
import { optInt } from './layout-options.js';
import type { RunCommonOpts } from './run-setup.js';
import { parseChoice } from './options.js';

const INFER_MODES = ['prefill', 'decode'] as const;

/** What `weft run` passes for --mode (its other options are refused or shared with the training mode). */
export interface InferOpts extends RunCommonOpts {
  mode?: string;
  context?: string;
  newTokens?: string;
  batch?: string;
  pass?: string;
  seq?: string;
  iters?: string;
  warmup?: string;
}

/** The planner's pass for a prefill on these ranks, priced as one node of H200s with weft's calibration. */
function plannedPass(
  P: number,
  T: number,
  B: number,
  H: number,
  Hkv: number,
  D: number,
  world: number,
  mask: string,
  cuSeqlens?: readonly number[],
): PassChoice {
  const base = parseConfig({
    model: { name: 'run', layers: 1, hidden: H * D, heads: H, kvHeads: Hkv, headDim: D, ffnHidden: H * D, vocab: 1 },
    mode: 'prefill',
    seqLen: P + T,
    batchSeqs: B,
    mask,
    ...(cuSeqlens ? { cuSeqlens } : {}),
    cluster: { nodes: 1, gpusPerNode: world, gpu: 'h200' },
  });
  const cfg: InferenceConfig = { base, mode: 'prefill', context: P, newTokens: T, batch: B };
  const ctx = buildContext(base);
  return choosePass(cfg, ctx.rates, ctx.net, { tp: 1, cp: world });
}

/** What both backends take from the options, checked. */
export interface InferSetup {
  mode: (typeof INFER_MODES)[number];
  P: number;
  T: number;
  B: number;
  world: number;
  H: number;
  Hkv: number;
  D: number;
  mask: MaskSpec;
  scale: number;
  seed: number;
  pass: PassKind;
  /** the planner's prices when --pass auto */
  planned?: PassChoice;
}

export function inferSetup(o: InferOpts): InferSetup {
  const mode = parseChoice(o.mode!, '--mode', INFER_MODES);
  const need = (v: string | undefined, flag: string, min = 1): number => {
    const x = optInt(v, flag, min);
    if (x === undefined) throw new UserError(`--mode ${mode} needs --${flag}`);
    return x;
  };
  if (o.seq !== undefined)
    throw new UserError(`--seq does not apply to --mode ${mode}: give --context (cached tokens) and --new-tokens`);
  const P = need(o.context, 'context', 0),
    T = optInt(o.newTokens, 'new-tokens') ?? 1,
    B = optInt(o.batch, 'batch') ?? 1;
  const world = need(o.world, 'world'),
    H = need(o.heads, 'heads'),
    Hkv = optInt(o.kvHeads, 'kv-heads') ?? H,
    D = need(o.dim, 'dim');
  if (H % Hkv !== 0) throw new UserError(`--heads ${H} must be a multiple of --kv-heads ${Hkv}`);
  if (mode === 'decode' && o.pass !== undefined)
    throw new UserError('--pass applies to --mode prefill (decode exchanges partial results in one all-gather)');
  if (o.strategy !== undefined && !(mode === 'decode' && o.strategy === 'allgather'))
    throw new UserError(
      mode === 'decode'
        ? `--mode decode exchanges partial (out, lse) by one all-gather: --strategy allgather or none, not '${o.strategy}'`
        : '--strategy does not apply to --mode prefill: choose the pass with --pass kv|q|auto',
    );
  for (const f of ['shard', 'ulysses', 'ring', 'inner', 'placement'] as const)
    if (o[f] !== undefined) throw new UserError(`--${f} does not apply to --mode ${mode}`);
  const seed = optInt(o.seed, 'seed', 0)!;
  const S = P + T;
  const cu =
    o.cuSeqlens !== undefined
      ? o.cuSeqlens.split(',').map((x) => {
          if (!/^\s*\d+\s*$/.test(x))
            throw new UserError(`--cu-seqlens must be integers separated by commas, not '${o.cuSeqlens}'`);
          return Number(x);
        })
      : undefined;
  if (o.docs !== undefined)
    throw new UserError(`--mode ${mode} takes document boundaries as --cu-seqlens 0,…,${S} (over cached + new tokens)`);
  if (o.mask.startsWith('document') && !cu)
    throw new UserError(
      `mask '${o.mask}' needs --cu-seqlens 0,…,${S} (over the ${P} cached and ${T} new tokens of each request)`,
    );
  const mask: MaskSpec = parseMask(o.mask, cu);
  const scale = o.scale === undefined ? 1 / Math.sqrt(D) : Number(o.scale);
  if (!(scale > 0) || !Number.isFinite(scale))
    throw new UserError(`--scale must be a positive number, not '${o.scale}'`);
  const passOpt = parseChoice(o.pass ?? 'auto', '--pass', ['kv', 'q', 'auto'] as const);
  const planned =
    mode === 'prefill' && passOpt === 'auto' ? plannedPass(P, T, B, H, Hkv, D, world, o.mask, cu) : undefined;
  const pass = passOpt === 'auto' ? (planned?.pass ?? 'kv') : passOpt;
  return { mode, P, T, B, world, H, Hkv, D, mask, scale, seed, pass, ...(planned ? { planned } : {}) };
}
