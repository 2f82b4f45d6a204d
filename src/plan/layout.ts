// A layout: tensor × Ulysses × ring × data degrees, the attention strategy, where the Ulysses and
// ring axes sit on the cluster (placement) and how tokens are dealt (shard). Ranks are numbered
// innermost-first: tp, then ulysses then ring (head-first) or ring then ulysses (context-first),
// then dp — so head-first keeps the all-to-alls inside a node, context-first the ring hops.
import type { ShardKind } from '../shard/shard.js';
import type { CandidateSpec, Cluster, Placement, PlanConfig, PlanStrategy } from './types.js';
import type { GroupShape, LinkClass } from './links.js';
import { allToAllLoads, hopShares } from './pcie.js';

export interface PlanLayout {
  tp: number;
  ulysses: number;
  ring: number;
  dp: number;
  strategy: PlanStrategy;
  placement: Placement;
  shard: ShardKind;
  /** double-ring: ranks of each inner ring */
  inner?: number;
}

export function describeLayout(l: PlanLayout): string {
  const deg = `tp${l.tp} u${l.ulysses} r${l.ring} dp${l.dp}`;
  const extra = l.ring > 1 ? ` ${l.shard}${l.inner ? ` inner ${l.inner}` : ''}` : '';
  const place = l.ulysses > 1 && l.ring > 1 ? ` ${l.placement}` : '';
  return `${l.strategy} ${deg}${extra}${place}`;
}

export function rankOf(l: PlanLayout, t: number, u: number, r: number, d: number): number {
  const sp = l.placement === 'head-first' ? u + l.ulysses * r : r + l.ring * u;
  return t + l.tp * (sp + l.ulysses * l.ring * d);
}

function shapeOf(cl: Cluster, ranks: readonly number[]): GroupShape {
  const perNode = new Map<number, number>();
  for (const x of ranks) {
    const n = Math.floor(x / cl.gpusPerNode);
    perNode.set(n, (perNode.get(n) ?? 0) + 1);
  }
  return { size: ranks.length, perNode: Math.max(...perNode.values()), nodes: perNode.size };
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

export function tpGroup(l: PlanLayout, cl: Cluster): GroupShape {
  return shapeOf(
    cl,
    range(l.tp).map((t) => rankOf(l, t, 0, 0, 0)),
  );
}

export function ulyssesGroup(l: PlanLayout, cl: Cluster): GroupShape {
  const ranks = range(l.ulysses).map((u) => rankOf(l, 0, u, 0, 0));
  const g = shapeOf(cl, ranks);
  // its all-to-alls cross the PCIe tree (the other groups run ring algorithms over links)
  if (cl.pcie && l.ulysses > 1) g.pcie = allToAllLoads(cl, ranks);
  return g;
}

export function ringGroup(l: PlanLayout, cl: Cluster): GroupShape {
  return shapeOf(
    cl,
    range(l.ring).map((r) => rankOf(l, 0, 0, r, 0)),
  );
}

/**
 * The group ZeRO shards over and gradients are reduced in: every rank holding the same tp shard.
 * TP is innermost, so it is every tp-th rank: gpusPerNode/tp of them on each node.
 */
export function dataGroup(l: PlanLayout, cl: Cluster): GroupShape {
  const size = l.ulysses * l.ring * l.dp;
  const perNode = Math.max(1, Math.min(size, Math.floor(cl.gpusPerNode / l.tp)));
  return { size, perNode, nodes: Math.ceil(size / perNode) };
}

const nodeOf = (cl: Cluster, x: number): number => Math.floor(x / cl.gpusPerNode);

/** The link class between ring positions a and b of the ring group at Ulysses slot u, replica d. */
export function hopClass(l: PlanLayout, cl: Cluster, u: number, d: number, a: number, b: number): LinkClass {
  return nodeOf(cl, rankOf(l, 0, u, a, d)) === nodeOf(cl, rankOf(l, 0, u, b, d)) ? 'intra' : 'inter';
}

/** The rank that follows `rank` in its (inner) ring. */
function ringSuccessor(l: PlanLayout, rank: number): number {
  const U = l.ulysses,
    R = l.ring,
    inner = l.strategy === 'double-ring' ? (l.inner ?? R) : R;
  const t = rank % l.tp,
    rest = Math.floor(rank / l.tp),
    sp = rest % (U * R),
    d = Math.floor(rest / (U * R));
  const [u, r] = l.placement === 'head-first' ? [sp % U, Math.floor(sp / U)] : [Math.floor(sp / R), sp % R];
  const base = r - (r % inner);
  return rankOf(l, t, u, base + ((r - base + 1) % inner), d);
}

/**
 * In a PCIe tree, the share of its link's bandwidth each ring hop of a node gets with every GPU
 * sending to its successor at once (pcie.ts); 1 for every hop elsewhere.
 */
export function hopShareOf(
  l: PlanLayout,
  cl: Cluster,
  cache = new Map<number, Float64Array>(),
): (rank: number) => number {
  if (!cl.pcie) return () => 1;
  const n = cl.gpusPerNode;
  return (rank) => {
    const node = Math.floor(rank / n);
    let shares = cache.get(node);
    if (!shares) {
      shares = hopShares(cl, (g) => {
        const b = ringSuccessor(l, node * n + g);
        return Math.floor(b / n) === node ? b % n : -1;
      });
      cache.set(node, shares);
    }
    return shares[rank % n]!;
  };
}

/**
 * The distinct hop patterns of the ring groups: hops[i] is the class of the link from ring
 * position i to the next (i+1, or for a double ring the next in its inner ring, with `outer[i]`
 * the link to the same position of the next inner ring). Congruent ring groups behave alike, so
 * costs and simulations run once per pattern.
 */
export interface RingPattern {
  hops: LinkClass[];
  outer?: LinkClass[];
  /** node of each ring position, relative to the first */
  nodes: number[];
  /** share of its link's bandwidth the hop from each position gets (below 1 behind a shared PCIe uplink) */
  share: number[];
  groups: number;
}

export function ringPatterns(l: PlanLayout, cl: Cluster): RingPattern[] {
  const inner = l.strategy === 'double-ring' ? (l.inner ?? l.ring) : l.ring;
  // a ring group's ranks are base + stride·i; its node pattern depends on base mod gpusPerNode only
  const residues = new Map<number, [number, number, number]>(); // residue → (u, d, count)
  const dps = Math.min(l.dp, 64);
  for (let d = 0; d < dps; d++) {
    for (let u = 0; u < l.ulysses; u++) {
      const res = rankOf(l, 0, u, 0, d) % cl.gpusPerNode;
      const e = residues.get(res);
      if (e) e[2]++;
      else residues.set(res, [u, d, 1]);
    }
  }
  const seen = new Map<string, RingPattern>();
  const shareOf = hopShareOf(l, cl);
  for (const [u, d, count] of residues.values()) {
    const hops: LinkClass[] = [],
      outer: LinkClass[] = [],
      nodes: number[] = [],
      share: number[] = [];
    const n0 = nodeOf(cl, rankOf(l, 0, u, 0, d));
    for (let i = 0; i < l.ring; i++) nodes.push(nodeOf(cl, rankOf(l, 0, u, i, d)) - n0);
    for (let i = 0; i < l.ring; i++) share.push(shareOf(rankOf(l, 0, u, i, d)));
    for (let i = 0; i < l.ring; i++) {
      const base = i - (i % inner);
      const next = base + ((i - base + 1) % inner);
      hops.push(nodes[i] === nodes[next] ? 'intra' : 'inter');
      if (inner < l.ring) outer.push(nodes[i] === nodes[(i + inner) % l.ring] ? 'intra' : 'inter');
    }
    const key = `${nodes.join()}|${share.join()}`;
    const p = seen.get(key);
    if (p) p.groups += count;
    else
      seen.set(
        key,
        inner < l.ring ? { hops, outer, nodes, share, groups: count } : { hops, nodes, share, groups: count },
      );
  }
  return [...seen.values()];
}

function divisors(n: number): number[] {
  const out: number[] = [];
  for (let i = 1; i <= n; i++) if (n % i === 0) out.push(i);
  return out;
}

function defaultShard(cfg: PlanConfig): ShardKind {
  if (cfg.mask.kind === 'document') return 'doc-zigzag';
  return cfg.mask.kind === 'full' ? 'contiguous' : 'zigzag';
}

/** Why a layout cannot run here, or undefined when it can (memory is judged later). */
export function layoutProblem(l: PlanLayout, cfg: PlanConfig): string | undefined {
  const m = cfg.model,
    world = cfg.cluster.world;
  const prod = l.tp * l.ulysses * l.ring * l.dp;
  if (prod !== world)
    return `ulysses ${l.ulysses} × ring ${l.ring} × tp ${l.tp} × dp ${l.dp} = ${prod}, not the ${world} GPUs of the cluster`;
  if (cfg.mode.startsWith('attention') && l.tp !== 1)
    return 'tensor parallelism applies to training and prefill; attention modes take tp 1';
  if (m.heads % l.tp !== 0 || m.kvHeads % l.tp !== 0)
    return `tp ${l.tp} does not divide the ${m.heads} heads and ${m.kvHeads} KV heads`;
  if ((m.heads / l.tp) % l.ulysses !== 0)
    return `ulysses ${l.ulysses} does not divide the ${m.heads / l.tp} heads per tensor-parallel rank`;
  const perReplica = cfg.batchSeqs / l.dp;
  if (!Number.isInteger(perReplica)) return `dp ${l.dp} does not divide batchSeqs ${cfg.batchSeqs}`;
  if (cfg.mode === 'training' || cfg.mode === 'prefill') {
    if (perReplica % cfg.microBatchSeqs !== 0)
      return `microBatchSeqs ${cfg.microBatchSeqs} does not divide the ${perReplica} sequences per replica`;
  }
  const pieces = l.ulysses * l.ring * (l.ring > 1 && l.shard !== 'contiguous' && l.shard !== 'striped' ? 2 : 1);
  if (cfg.seqLen < pieces) return `seqLen ${cfg.seqLen} is shorter than the ${pieces} pieces this layout cuts it into`;
  const need = (ok: boolean, what: string): string | undefined => (ok ? undefined : `strategy ${l.strategy} ${what}`);
  switch (l.strategy) {
    case 'local':
      return need(l.ulysses === 1 && l.ring === 1, 'needs ulysses 1 and ring 1');
    case 'ulysses':
      return need(l.ulysses > 1 && l.ring === 1, 'needs ulysses > 1 and ring 1 (use usp for both)');
    case 'ring':
      return need(l.ring > 1 && l.ulysses === 1, 'needs ring > 1 and ulysses 1 (use usp for both)');
    case 'usp':
      return need(l.ring > 1 && l.ulysses > 1, 'needs ulysses > 1 and ring > 1');
    case 'allgather':
    case 'tokenring':
      return need(l.ring > 1, 'needs ring > 1');
    case 'double-ring': {
      if (l.ring < 4) return 'strategy double-ring needs ring ≥ 4';
      const i = l.inner;
      if (i === undefined || i < 2 || i >= l.ring || l.ring % i !== 0)
        return `double-ring inner ${i ?? '(unset)'} must divide ring ${l.ring} and lie in [2, ${l.ring / 2}]`;
      return undefined;
    }
  }
}

/** Inner ring size that keeps an inner ring inside a node (the point of a double ring). */
function defaultInner(l: Omit<PlanLayout, 'inner'>, cl: Cluster): number | undefined {
  const perNode =
    l.placement === 'head-first' ? Math.floor(cl.gpusPerNode / (l.tp * l.ulysses)) : Math.floor(cl.gpusPerNode / l.tp);
  const ok = divisors(l.ring).filter((i) => i >= 2 && i < l.ring && i <= Math.max(2, perNode));
  return ok.length ? ok[ok.length - 1] : undefined;
}

/** Fill a user's partial layout; unset degrees default to 1 with dp (or ring) taking the rest. */
export function completeLayout(c: CandidateSpec, cfg: PlanConfig): PlanLayout {
  const world = cfg.cluster.world;
  const tp = c.tp ?? 1,
    ulysses = c.ulysses ?? 1;
  let ring = c.ring,
    dp = c.dp;
  if (ring === undefined && dp === undefined) dp = 1;
  if (ring === undefined) ring = Math.max(1, Math.round(world / (tp * ulysses * dp!)));
  if (dp === undefined) dp = Math.max(1, Math.round(world / (tp * ulysses * ring)));
  const strategy: PlanStrategy =
    c.strategy ?? (ulysses > 1 && ring > 1 ? 'usp' : ulysses > 1 ? 'ulysses' : ring > 1 ? 'ring' : 'local');
  const base = {
    tp,
    ulysses,
    ring,
    dp,
    strategy,
    placement: c.placement ?? 'head-first',
    shard: c.shard ?? defaultShard(cfg),
  } as PlanLayout;
  if (strategy === 'double-ring') {
    const inner = c.inner ?? defaultInner(base, cfg.cluster);
    if (inner !== undefined) base.inner = inner;
  }
  return base;
}

/** Every layout the search considers for this config (valid by divisibility; memory judged later). */
export function enumerateLayouts(cfg: PlanConfig): PlanLayout[] {
  const cl = cfg.cluster,
    m = cfg.model,
    out: PlanLayout[] = [];
  const attentionOnly = cfg.mode.startsWith('attention');
  const tps = attentionOnly ? [1] : divisors(cl.gpusPerNode).filter((t) => m.heads % t === 0 && m.kvHeads % t === 0);
  const shards: ShardKind[] =
    cfg.mask.kind === 'full'
      ? ['contiguous']
      : cfg.mask.kind === 'document'
        ? ['doc-zigzag', 'zigzag', 'contiguous']
        : ['zigzag', 'striped', 'contiguous'];
  const primary = shards[0]!;
  for (const tp of tps) {
    for (const dp of divisors(cfg.batchSeqs)) {
      if (cl.world % (tp * dp) !== 0) continue;
      for (const ulysses of divisors(m.heads / tp)) {
        const rest = cl.world / (tp * dp);
        if (rest % ulysses !== 0) continue;
        const ring = rest / ulysses;
        const push = (l: PlanLayout): void => {
          if (!layoutProblem(l, cfg)) out.push(l);
        };
        if (ring === 1) {
          push({
            tp,
            ulysses,
            ring,
            dp,
            strategy: ulysses > 1 ? 'ulysses' : 'local',
            placement: 'head-first',
            shard: primary,
          });
          continue;
        }
        const placements: PlanLayout['placement'][] = ulysses > 1 ? ['head-first', 'context-first'] : ['head-first'];
        // above 64 ring positions only the balanced primary shard is priced: under causal masks the
        // contiguous shard is never faster and the striped one prices the same (docs/plan.md)
        const ringShards = ring > 64 ? [primary] : shards;
        for (const placement of placements) {
          for (const shard of ringShards)
            push({ tp, ulysses, ring, dp, strategy: ulysses > 1 ? 'usp' : 'ring', placement, shard });
          push({ tp, ulysses, ring, dp, strategy: 'allgather', placement, shard: primary });
          push({ tp, ulysses, ring, dp, strategy: 'tokenring', placement, shard: primary });
          // double rings: every inner size for rings up to 64, else the one that fills a node
          const dr = { tp, ulysses, ring, dp, strategy: 'double-ring' as const, placement, shard: primary };
          const inners =
            ring <= 64
              ? divisors(ring).filter((i) => i >= 2 && i <= ring / 2)
              : [defaultInner(dr, cl)].filter((i): i is number => i !== undefined);
          for (const inner of inners) push({ ...dr, inner });
        }
      }
    }
  }
  return out;
}
