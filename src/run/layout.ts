// A layout says how attention is split: which strategy, over how many ranks, which shard, and
// the mesh degrees. validateLayout rejects bad ones with one line before any rank starts.
import { UserError } from '../errors.js';
import { type Placement, PLACEMENTS } from '../mesh/mesh.js';
import type { MaskSpec } from '../mask/spec.js';
import { isShardKind, SHARD_KINDS, type ShardKind } from '../shard/shard.js';
import { isStrategyName, STRATEGY_NAMES, type StrategyName } from '../strategy/names.js';

export interface Layout {
  strategy: StrategyName;
  world: number;
  /** default: doc-zigzag for document masks, zigzag otherwise */
  shard?: ShardKind;
  /** Ulysses degree (ulysses: the world size; usp: with ring, a factorization of it) */
  ulysses?: number;
  /** ring degree (usp) */
  ring?: number;
  /** inner ring size (double-ring; must divide the world size) */
  inner?: number;
  /** usp only; default head-first */
  placement?: Placement;
}

/** A layout with every default filled in. */
export interface ResolvedLayout {
  strategy: StrategyName;
  world: number;
  shard: ShardKind;
  ulysses: number;
  ring: number;
  inner: number;
  placement: Placement;
}

export interface Dims {
  S: number;
  H: number;
  Hkv: number;
}

function positiveInt(x: unknown, what: string): number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 1)
    throw new UserError(`${what} must be a positive integer, not ${String(x)}`);
  return x;
}

/** Throws UserError naming the first problem; returns the layout with defaults filled in. */
export function resolveLayout(layout: Layout, dims: Dims, mask?: MaskSpec): ResolvedLayout {
  const { strategy } = layout;
  if (!isStrategyName(strategy))
    throw new UserError(`unknown strategy '${String(strategy)}' (known: ${STRATEGY_NAMES.join(', ')})`);
  const world = positiveInt(layout.world, 'the world size');
  const S = positiveInt(dims.S, 'the sequence length'),
    H = positiveInt(dims.H, 'the head count'),
    Hkv = positiveInt(dims.Hkv, 'the KV head count');
  if (H % Hkv !== 0) throw new UserError(`${H} heads are not a multiple of ${Hkv} KV heads`);
  if (world > S)
    throw new UserError(`world size ${world} is larger than the sequence length ${S} (every rank needs a token)`);
  if (layout.shard !== undefined && !isShardKind(layout.shard))
    throw new UserError(`unknown shard '${String(layout.shard)}' (known: ${SHARD_KINDS.join(', ')})`);
  if (layout.placement !== undefined && !(PLACEMENTS as readonly string[]).includes(layout.placement)) {
    throw new UserError(`unknown placement '${String(layout.placement)}' (known: ${PLACEMENTS.join(', ')})`);
  }
  if (layout.placement !== undefined && strategy !== 'usp')
    throw new UserError(`placement applies to usp only, not ${strategy}`);
  if (layout.inner !== undefined && strategy !== 'double-ring')
    throw new UserError(`an inner ring size applies to double-ring only, not ${strategy}`);
  if (layout.ulysses !== undefined && strategy !== 'ulysses' && strategy !== 'usp')
    throw new UserError(`a Ulysses degree applies to ulysses and usp only, not ${strategy}`);
  if (layout.ring !== undefined && strategy !== 'usp' && strategy !== 'ring')
    throw new UserError(`a ring degree applies to ring and usp only, not ${strategy}`);

  let ulysses = 1,
    ring = world,
    inner = world;
  if (strategy === 'ring' && layout.ring !== undefined && positiveInt(layout.ring, 'the ring degree') !== world) {
    throw new UserError(`ring degree ${layout.ring} is not the world size ${world}`);
  }
  if (strategy === 'ulysses') {
    ulysses = layout.ulysses === undefined ? world : positiveInt(layout.ulysses, 'the Ulysses degree');
    if (ulysses !== world)
      throw new UserError(
        `Ulysses degree ${ulysses} is not the world size ${world} (use usp to combine Ulysses with a ring)`,
      );
    ring = 1;
  }
  if (strategy === 'usp') {
    if (layout.ulysses === undefined && layout.ring === undefined)
      throw new UserError(`usp needs a Ulysses degree or a ring degree (their product is the world size ${world})`);
    const u = layout.ulysses === undefined ? undefined : positiveInt(layout.ulysses, 'the Ulysses degree');
    const r = layout.ring === undefined ? undefined : positiveInt(layout.ring, 'the ring degree');
    if (u !== undefined && r !== undefined && u * r !== world)
      throw new UserError(`Ulysses degree ${u} × ring degree ${r} = ${u * r} is not the world size ${world}`);
    const given = u ?? r!;
    if (world % given !== 0)
      throw new UserError(
        `${u !== undefined ? 'Ulysses' : 'ring'} degree ${given} does not divide the world size ${world}`,
      );
    ulysses = u ?? world / r!;
    ring = r ?? world / u!;
  }
  if (strategy === 'ulysses' || strategy === 'usp') {
    if (ulysses > H) throw new UserError(`Ulysses degree ${ulysses} is above the head count ${H}`);
    if (H % ulysses !== 0) throw new UserError(`Ulysses degree ${ulysses} does not divide the head count ${H}`);
  }
  if (strategy === 'double-ring') {
    if (layout.inner === undefined)
      throw new UserError(`double-ring needs an inner ring size (a divisor of the world size ${world})`);
    inner = positiveInt(layout.inner, 'the inner ring size');
    if (world % inner !== 0) throw new UserError(`inner ring size ${inner} does not divide the world size ${world}`);
  }
  const shard = layout.shard ?? (mask?.kind === 'document' ? 'doc-zigzag' : 'zigzag');
  return { strategy, world, shard, ulysses, ring, inner, placement: layout.placement ?? 'head-first' };
}

/** Throws UserError (one line, naming the problem) for a layout that cannot run on these dims. */
export function validateLayout(layout: Layout, dims: Dims): void {
  resolveLayout(layout, dims);
}
