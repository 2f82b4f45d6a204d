// The planner's input: a JSON config naming the model, the workload and the cluster (presets or
// explicit figures), optionally the exact candidates to evaluate. Every problem is a UserError
// that names the field, e.g. `cluster.interNode.GBps: expected a number > 0, got "fast"`.
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';
import { parseMask, type MaskSpec } from '../mask/spec.js';
import { isShardKind, SHARD_KINDS } from '../shard/shard.js';
import { PLACEMENTS } from '../mesh/mesh.js';
import { STRATEGY_NAMES } from '../strategy/names.js';
import { GPU_PRESETS, GPU_CLASSES } from './hardware.js';
import { IMPLEMENTATIONS } from './calibration/types.js';
import { MODEL_PRESETS, type ModelSpec } from './model.js';
import {
  MODES,
  type CandidateSpec,
  type Cluster,
  type GpuClass,
  type GpuSpec,
  type LinkSpec,
  type PcieTree,
  type PlanConfig,
  type PlanStrategy,
} from './types.js';

export type { CandidateSpec, Cluster, Mode, PlanConfig, PlanStrategy } from './types.js';

/** The strategies a layout may name: the context-parallel ones and `local`. */
export const PLAN_STRATEGIES: readonly PlanStrategy[] = ['local', ...STRATEGY_NAMES];

type Json = unknown;

function fail(path: string, what: string, got?: Json): never {
  throw new UserError(`${path}: ${what}${got === undefined ? '' : `, got ${JSON.stringify(got)}`}`);
}

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function object(v: Json, path: string): Record<string, Json> {
  if (!isObject(v)) fail(path, 'expected an object', v);
  return v;
}

function known(o: Record<string, Json>, path: string, keys: readonly string[]): void {
  for (const k of Object.keys(o))
    if (!keys.includes(k)) fail(`${path ? `${path}.` : ''}${k}`, `unknown field (known: ${keys.join(', ')})`);
}

function number(v: Json, path: string, { integer = false, min = 0, exclusive = true } = {}): number {
  if (v === undefined) fail(path, 'missing');
  const ok =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (integer ? Number.isInteger(v) : true) &&
    (exclusive ? v > min : v >= min);
  if (!ok) fail(path, `expected ${integer ? 'an integer' : 'a number'} ${exclusive ? '>' : '≥'} ${min}`, v);
  return v as number;
}

function optNumber(
  v: Json,
  path: string,
  opts: { integer?: boolean; min?: number; exclusive?: boolean },
  dflt: number,
): number {
  return v === undefined ? dflt : number(v, path, opts);
}

function choice<T extends string>(v: Json, path: string, choices: readonly T[]): T {
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v))
    fail(path, `expected one of ${choices.join(', ')}`, v);
  return v as T;
}

function model(v: Json): ModelSpec {
  if (v === undefined) fail('model', `missing (a preset: ${Object.keys(MODEL_PRESETS).join(', ')}, or an object)`);
  if (typeof v === 'string') {
    const m = MODEL_PRESETS[v];
    if (!m) fail('model', `unknown preset (known: ${Object.keys(MODEL_PRESETS).join(', ')})`, v);
    return m;
  }
  const o = object(v, 'model');
  const keys = ['layers', 'hidden', 'heads', 'kvHeads', 'headDim', 'ffnHidden', 'vocab'] as const;
  known(o, 'model', ['name', ...keys]);
  const n = (k: (typeof keys)[number]): number => number(o[k], `model.${k}`, { integer: true });
  const m: ModelSpec = {
    name: typeof o.name === 'string' ? o.name : 'custom',
    layers: n('layers'),
    hidden: n('hidden'),
    heads: n('heads'),
    kvHeads: n('kvHeads'),
    headDim: n('headDim'),
    ffnHidden: n('ffnHidden'),
    vocab: n('vocab'),
  };
  if (m.heads % m.kvHeads !== 0) fail('model.kvHeads', `must divide heads (${m.heads})`, m.kvHeads);
  return m;
}

function link(v: Json, path: string, dflt: LinkSpec | undefined, required: string): LinkSpec {
  if (v === undefined) {
    if (!dflt) fail(path, `missing (${required})`);
    return dflt;
  }
  const o = object(v, path);
  known(o, path, ['GBps', 'latencyUs']);
  return {
    GBps: number(o.GBps, `${path}.GBps`),
    latencyUs: optNumber(o.latencyUs, `${path}.latencyUs`, { min: 0, exclusive: false }, dflt?.latencyUs ?? 10),
  };
}

function gpu(v: Json): GpuSpec {
  if (v === undefined) fail('cluster.gpu', `missing (a preset: ${Object.keys(GPU_PRESETS).join(', ')}, or an object)`);
  if (typeof v === 'string') {
    const g = GPU_PRESETS[v];
    if (!g) fail('cluster.gpu', `unknown preset (known: ${Object.keys(GPU_PRESETS).join(', ')})`, v);
    return g;
  }
  const o = object(v, 'cluster.gpu');
  known(o, 'cluster.gpu', ['name', 'class', 'bf16Tflops', 'memGiB', 'hbmTBs']);
  const cls: GpuClass = o.class === undefined ? 'hopper' : choice(o.class, 'cluster.gpu.class', GPU_CLASSES);
  return {
    name: typeof o.name === 'string' ? o.name : 'custom',
    class: cls,
    bf16Tflops: number(o.bf16Tflops, 'cluster.gpu.bf16Tflops'),
    memGiB: number(o.memGiB, 'cluster.gpu.memGiB'),
    hbmTBs: number(o.hbmTBs, 'cluster.gpu.hbmTBs'),
    intraNode: { GBps: 0, latencyUs: 0 },
  };
}

/** The PCIe tree of a node: the preset's, replaced field by field by the config's. */
function pcie(v: Json, dflt: PcieTree | undefined): PcieTree | undefined {
  if (v === undefined) return dflt;
  if (v === null) return undefined;
  const o = object(v, 'cluster.pcie');
  known(o, 'cluster.pcie', ['gpusPerSwitch', 'switchesPerSocket', 'uplinkGBps', 'rootComplexGBps']);
  const need = (
    k: 'gpusPerSwitch' | 'switchesPerSocket' | 'uplinkGBps' | 'rootComplexGBps',
    integer: boolean,
  ): number => (o[k] === undefined && dflt ? dflt[k] : number(o[k], `cluster.pcie.${k}`, { integer }));
  return {
    gpusPerSwitch: need('gpusPerSwitch', true),
    switchesPerSocket: need('switchesPerSocket', true),
    uplinkGBps: need('uplinkGBps', false),
    rootComplexGBps: need('rootComplexGBps', false),
    source: dflt && Object.keys(o).length === 0 ? dflt.source : 'config',
  };
}

function cluster(v: Json): Cluster {
  const o = object(v ?? fail('cluster', 'missing'), 'cluster');
  known(o, 'cluster', ['nodes', 'gpusPerNode', 'gpu', 'intraNode', 'interNode', 'pcie']);
  const nodes = number(o.nodes, 'cluster.nodes', { integer: true });
  const gpusPerNode = number(o.gpusPerNode, 'cluster.gpusPerNode', { integer: true });
  const g = gpu(o.gpu);
  const presetLink = g.intraNode.GBps > 0 ? g.intraNode : undefined;
  const intraNode =
    gpusPerNode > 1
      ? link(o.intraNode, 'cluster.intraNode', presetLink, 'needed with more than one GPU per node and a custom GPU')
      : (presetLink ?? { GBps: 1, latencyUs: 0 });
  const interNode =
    nodes > 1
      ? link(
          o.interNode,
          'cluster.interNode',
          undefined,
          'needed with more than one node: {"GBps": per GPU per direction, "latencyUs"}',
        )
      : { GBps: 1, latencyUs: 0 };
  if (nodes * gpusPerNode > 1 << 20)
    fail('cluster', `${nodes} × ${gpusPerNode} GPUs is beyond what the planner prices (at most 1,048,576)`);
  const cl: Cluster = {
    nodes,
    gpusPerNode,
    world: nodes * gpusPerNode,
    gpu: { ...g, intraNode },
    intraNode,
    interNode,
  };
  // a PCIe tree matters between GPUs of one node
  const tree = gpusPerNode > 1 ? pcie(o.pcie, g.pcie) : undefined;
  if (tree) cl.pcie = tree;
  return cl;
}

function candidate(v: Json, path: string): CandidateSpec {
  const o = object(v, path);
  known(o, path, ['tp', 'ulysses', 'ring', 'dp', 'strategy', 'placement', 'shard', 'inner']);
  const c: CandidateSpec = {};
  for (const k of ['tp', 'ulysses', 'ring', 'dp', 'inner'] as const)
    if (o[k] !== undefined) c[k] = number(o[k], `${path}.${k}`, { integer: true });
  if (o.strategy !== undefined) c.strategy = choice(o.strategy, `${path}.strategy`, PLAN_STRATEGIES);
  if (o.placement !== undefined) c.placement = choice(o.placement, `${path}.placement`, PLACEMENTS);
  if (o.shard !== undefined) {
    if (typeof o.shard !== 'string' || !isShardKind(o.shard))
      fail(`${path}.shard`, `expected one of ${SHARD_KINDS.join(', ')}`, o.shard);
    c.shard = o.shard;
  }
  return c;
}

function documents(o: Record<string, Json>, S: number): number[] | undefined {
  if (o.cuSeqlens !== undefined) {
    if (!Array.isArray(o.cuSeqlens)) fail('cuSeqlens', 'expected an array of document boundaries', o.cuSeqlens);
    const cu = o.cuSeqlens.map((x, i) => number(x, `cuSeqlens[${i}]`, { integer: true, min: 0, exclusive: false }));
    if (cu[0] !== 0 || cu[cu.length - 1] !== S || cu.some((x, i) => i > 0 && x <= cu[i - 1]!))
      fail('cuSeqlens', `must rise strictly from 0 to seqLen (${S})`);
    return cu;
  }
  if (o.documentLength !== undefined) {
    const len = number(o.documentLength, 'documentLength', { integer: true });
    const cu = [0];
    while (cu[cu.length - 1]! < S) cu.push(Math.min(S, cu[cu.length - 1]! + len));
    return cu;
  }
  return undefined;
}

/** Validate a parsed JSON config. */
export function parseConfig(json: Json): PlanConfig {
  const o = object(json, 'config');
  known(o, '', [
    'model',
    'mode',
    'seqLen',
    'batchSeqs',
    'microBatchSeqs',
    'mask',
    'cuSeqlens',
    'documentLength',
    'cluster',
    'candidates',
    'zero',
    'recompute',
    'precision',
    'kernel',
    'implementation',
  ]);
  const m = model(o.model);
  const mode = o.mode === undefined ? 'training' : choice(o.mode, 'mode', MODES);
  const seqLen = number(o.seqLen, 'seqLen', { integer: true });
  const batchSeqs = optNumber(o.batchSeqs, 'batchSeqs', { integer: true }, 1);
  const microBatchSeqs = optNumber(o.microBatchSeqs, 'microBatchSeqs', { integer: true }, 1);
  if (batchSeqs % microBatchSeqs !== 0) fail('microBatchSeqs', `must divide batchSeqs (${batchSeqs})`, microBatchSeqs);
  const maskText =
    o.mask === undefined
      ? 'causal'
      : typeof o.mask === 'string'
        ? o.mask
        : fail('mask', 'expected a mask name such as "causal" or "document-causal"', o.mask);
  const cuSeqlens = documents(o, seqLen);
  let mask: MaskSpec;
  try {
    mask = parseMask(maskText, cuSeqlens);
  } catch (e) {
    throw new UserError(
      `mask: ${(e as Error).message}${maskText.startsWith('document') ? ' (give "cuSeqlens" or "documentLength")' : ''}`,
    );
  }
  const cl = cluster(o.cluster);
  let candidates: CandidateSpec[] | undefined;
  if (o.candidates !== undefined) {
    if (!Array.isArray(o.candidates) || o.candidates.length === 0)
      fail('candidates', 'expected a non-empty array of layouts', o.candidates);
    candidates = o.candidates.map((c, i) => candidate(c, `candidates[${i}]`));
  }
  const zero =
    o.zero === undefined
      ? 1
      : [0, 1, 2, 3].includes(o.zero as number)
        ? (o.zero as 0 | 1 | 2 | 3)
        : fail('zero', 'expected 0, 1, 2 or 3', o.zero);
  const recompute = o.recompute === undefined ? 'none' : choice(o.recompute, 'recompute', ['none', 'full'] as const);
  const precision = o.precision === undefined ? 'bf16' : choice(o.precision, 'precision', ['bf16', 'fp32'] as const);
  const kernel =
    o.kernel === undefined
      ? undefined
      : typeof o.kernel === 'string'
        ? o.kernel
        : fail('kernel', 'expected a kernel name', o.kernel);
  const implementation =
    o.implementation === undefined ? 'weft' : choice(o.implementation, 'implementation', Object.keys(IMPLEMENTATIONS));
  const cfg: PlanConfig = {
    model: m,
    mode,
    seqLen,
    batchSeqs,
    microBatchSeqs,
    maskText,
    mask,
    cluster: cl,
    zero,
    recompute,
    precision,
    implementation,
  };
  if (cuSeqlens) cfg.cuSeqlens = cuSeqlens;
  if (candidates) cfg.candidates = candidates;
  if (kernel) cfg.kernel = kernel;
  return cfg;
}

/** Bytes of one activation, weight or communicated element. */
export function elemBytes(cfg: PlanConfig): number {
  return cfg.precision === 'fp32' ? 4 : 2;
}

export function loadConfig(file: string): PlanConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`--config: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UserError(`--config: ${file} is not JSON (${(e as Error).message})`);
  }
  return parseConfig(json);
}
