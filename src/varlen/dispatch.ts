// The dispatcher: which rank holds which tokens of a packed batch. Documents are cut into pieces
// small in tokens and in area, and the pieces are placed densest first, each on the rank where
// max(area / mean area, tokens / mean tokens) ends lowest — a greedy vector schedule that balances
// the attention area (quadratic work) and the tokens (linear work, memory) together, under a hard
// per-rank token limit. A piece goes to a rank that already holds a neighbouring piece of its
// document whenever that costs no balance, so a short document stays whole on one rank (data
// parallel) and a long one spreads over as few ranks as balance allows (a group). A last pass
// moves pieces off the busiest rank (or swaps them for the front of a piece there) while that
// narrows the gap. On several nodes this runs twice: documents onto nodes, then each node's share
// onto its ranks, so that a group stays on one node's fast links unless it outgrows the node.
// The plan is deterministic: ties break by rank and position, nothing is random.
//
// What a rank then needs from its group is exact, from the mask: the keys the rows of its pieces
// see (one interval per piece: rows' intervals rise with the row), minus what it holds itself.
import { UserError } from '../errors.js';
import { type Batch, cuSeqlensOf, type DocMask, docMaskName, docRow, keySpan, pairArea } from './batch.js';
import type { HeadGroup } from './heads.js';
import { chunkHops, type Hop, mergeRanges, type Ranges, routeHops, takeVisits, type Visit } from './routes.js';

export interface DispatchOptions {
  world: number;
  /** most tokens a rank may hold (its queries, keys and values); default ⌈S/N · (1 + slack)⌉ */
  maxTokens?: number;
  /** default 0.05 */
  slack?: number;
  /** ranks per node (consecutive ranks share a node's fast links); default 8 */
  nodeSize?: number;
  /** longest piece a document is cut into; default ⌈S / (8N)⌉ (pieces are also cut to at most 1/8 of a rank's mean area) */
  granularity?: number;
  /**
   * which groups pass their K/V by relay (routes.ts) instead of straight from the owner: 'none'
   * (default), 'all', or the groups of at least that many ranks. plan/varlen.ts chooses per group
   * by priced cost (chooseRoutes).
   */
  relay?: 'none' | 'all' | number;
  /** rounds a star transfer is cut into (routes.ts); default 1 */
  chunks?: number;
  /**
   * key splitting: which star pairs send the queries to the keys' owner instead of the keys to the
   * queries (routes.ts Visit) — 'none' (default), 'all' (every star pair; for tests), or a number
   * x: a pair visits when its query rows · x are fewer than its key rows and the owner's area stays
   * within the plan's busiest (chooseVisits). x is a query row's traffic over a K/V row's, forward
   * and backward (plan/varlen.ts visitWeight).
   */
  visit?: 'none' | 'all' | number;
  /**
   * documents attended head-parallel on a sub-group (heads.ts): Ulysses over `ulysses` consecutive
   * ranks, `ring` such groups (default 1) across; placed first, on the least loaded ranks.
   */
  heads?: readonly HeadChoice[];
  /**
   * the work of a query row beside its pairs, in pairs: balance area + rowCost · tokens rather
   * than area alone (an attention kernel's time is about c · (pairs + k0 · rows), k0 its
   * half-efficiency keys per row; plan/varlen.ts rowCostOf reads it from the calibrated curves); default 0
   */
  rowCost?: number;
}

/** A document to attend head-parallel, and its sub-group's shape. */
export interface HeadChoice {
  doc: number;
  ulysses: number;
  ring?: number;
}

/** Tokens [start, end) (global positions) of one document, held by one rank. */
export interface Piece {
  doc: number;
  start: number;
  end: number;
  rank: number;
}

export interface DocPlacement {
  doc: number;
  start: number;
  length: number;
  mask: string;
  /** the ranks holding its pieces, ascending: one = local (data parallel), more = a group */
  ranks: number[];
  /**
   * how it is attended: `local` on one rank; `group`: queries stay, only the K/V rows the mask
   * needs travel, point to point; `heads`: head-parallel on `members` (Ulysses × ring, heads.ts)
   */
  mode: 'local' | 'group' | 'heads';
  /** a head-parallel document's sub-group, in member order (heads.ts HeadGroup) */
  heads?: { ulysses: number; ring: number; members: number[] };
  /** a group's K/V travel along a ring of its ranks, one hop a round (routes.ts), not straight from the owner */
  relay: boolean;
}

/**
 * K/V rows [start, end) of `origin` that `from` sends `to` in `round` (a star: round 0, from the
 * origin, `direct`; a relay: hop `round + 1` of its tree); `area`: the pairs `to`'s queries compute
 * against them. A star transfer is listed once however many rounds it is cut into (plan.chunks;
 * roundsOf lists the rounds).
 */
export interface Transfer extends Hop {
  area: number;
}

/** A visit (routes.ts) with the pairs it computes, which move from the visitor's area to the owner's. */
export interface PlanVisit extends Visit {
  area: number;
}

export interface RankLoad {
  rank: number;
  tokens: number;
  /** unmasked (query, key) pairs of its queries (per head) */
  area: number;
  /** of which against its own keys (computed while the transfers run) */
  localArea: number;
  recvRows: number;
  sendRows: number;
  /** tokens held at the peak: own rows plus every received K/V row (kept for the backward) */
  peakRows: number;
  /** visiting query rows attended here (kept for the backward; each H/Hkv K/V rows' worth of one of K or V) */
  guestRows: number;
  /** of `area`, the pairs of visiting queries against the own keys */
  guestArea: number;
  /** of `area` (and `localArea`), the pairs of head-parallel documents (per head: their whole area over ulysses) */
  headArea: number;
}

export interface DispatchPlan {
  world: number;
  S: number;
  maxTokens: number;
  granularity: number;
  lengths: readonly number[];
  masks: readonly DocMask[];
  /** every piece, by start position */
  pieces: Piece[];
  docs: DocPlacement[];
  ranks: RankLoad[];
  /** every route hop, a star's whole (one per owner and peer) */
  transfers: Transfer[];
  /** rounds each star transfer is cut into (routes.ts chunkHop) */
  chunks: number;
  /** queries attended on the keys' owner instead of the keys travelling (key splitting) */
  visits: PlanVisit[];
  /** max / mean of the ranks' area and tokens */
  balance: { area: number; tokens: number };
}

/** The rebalance stops once the busiest bin is within this of the mean. */
const REBALANCE_TOLERANCE = 0.01;

/** Pieces per rank the cuts aim at (in tokens and in area): enough for the greedy placement to even out. */
const PIECES_PER_RANK = 8;

interface Unit {
  doc: number;
  start: number;
  end: number;
  area: number;
}

/** The global positions each rank holds, ascending. */
export function rankPositions(plan: DispatchPlan): Int32Array[] {
  const lists: number[][] = Array.from({ length: plan.world }, () => []);
  for (const p of plan.pieces) for (let x = p.start; x < p.end; x++) lists[p.rank]!.push(x);
  return lists.map((l) => Int32Array.from(l.sort((a, b) => a - b)));
}

/** The most tokens a rank may hold: `o.maxTokens`, or ⌈S/N · (1 + slack)⌉. */
export function rankTokenLimit(S: number, o: Pick<DispatchOptions, 'world' | 'maxTokens' | 'slack'>): number {
  return o.maxTokens ?? Math.ceil((S / o.world) * (1 + (o.slack ?? 0.05)));
}

export function dispatch(batch: Batch, o: DispatchOptions): DispatchPlan {
  const N = o.world,
    lengths = batch.lengths,
    masks = batch.masks;
  if (!Number.isInteger(N) || N < 1) throw new UserError(`the world size must be a positive integer, not ${N}`);
  if (lengths.length === 0) throw new UserError('the batch has no documents');
  if (masks.length !== lengths.length)
    throw new Error(`dispatch: ${masks.length} masks for ${lengths.length} documents`);
  const cu = cuSeqlensOf(lengths),
    S = cu[cu.length - 1]!;
  if (S < N) throw new UserError(`${S} tokens cannot give each of ${N} ranks one`);
  const maxTokens = rankTokenLimit(S, o);
  if (maxTokens * N < S)
    throw new UserError(
      `a limit of ${maxTokens} tokens per rank holds ${maxTokens * N} of the ${S} tokens on ${N} ranks`,
    );
  const g = Math.max(1, Math.min(o.granularity ?? Math.ceil(S / (PIECES_PER_RANK * N)), maxTokens));

  // the work a piece costs: its area, plus rowCost per row (a kernel's fixed cost per query row)
  const rowCost = Math.max(0, o.rowCost ?? 0);
  const area = (d: number, a: number, b: number): number =>
    pairArea(masks[d]!, lengths[d]!, a - cu[d]!, b - cu[d]!, 0, lengths[d]!) + rowCost * (b - a);
  const docs: Seg[] = lengths.map((L, d) => ({ doc: d, start: cu[d]!, end: cu[d]! + L }));
  const nodeSize = Math.max(1, o.nodeSize ?? 8);
  const hp = placeHeads(o.heads ?? [], lengths, masks, cu, N, maxTokens);
  const rest = docs.filter((d) => !hp.groups.has(d.doc));
  let placed: Piece[];
  if (N <= nodeSize || N % nodeSize !== 0) placed = place(rest, N, maxTokens, g, area, hp.load);
  else {
    // two levels: documents onto nodes first (a group then stays on one node's fast links unless
    // it outgrows the node), then each node's share onto its ranks
    const nodes = N / nodeSize;
    placed = [];
    const sum = (x: Float64Array): Float64Array =>
      Float64Array.from({ length: nodes }, (_, n) =>
        x.subarray(n * nodeSize, (n + 1) * nodeSize).reduce((a, b) => a + b, 0),
      );
    const onNodes = place(rest, nodes, maxTokens * nodeSize, g * nodeSize, area, {
      area: sum(hp.load.area),
      tok: sum(hp.load.tok),
    });
    for (let n = 0; n < nodes; n++) {
      const mine = onNodes.filter((p) => p.rank === n).map(({ doc, start, end }) => ({ doc, start, end }));
      const slice = (x: Float64Array): Float64Array => x.slice(n * nodeSize, (n + 1) * nodeSize);
      for (const p of place(mine, nodeSize, maxTokens, g, area, { area: slice(hp.load.area), tok: slice(hp.load.tok) }))
        placed.push({ ...p, rank: n * nodeSize + p.rank });
    }
  }
  const pieces = merge([...placed, ...hp.pieces]);
  const chunks = Math.max(1, Math.floor(o.chunks ?? 1));
  let plan = finishPlan(batch, N, S, maxTokens, g, cu, pieces, new Set(), chunks, [], hp.groups);
  const relay = o.relay ?? 'none';
  if (relay !== 'none')
    plan = withRoutes(
      plan,
      plan.docs.filter((d) => d.mode === 'group' && (relay === 'all' || d.ranks.length >= relay)).map((d) => d.doc),
      chunks,
    );
  const visit = o.visit ?? 'none';
  if (visit === 'none') return plan;
  const pairs =
    visit === 'all'
      ? plan.transfers.filter((t) => t.direct).map((t): [number, number] => [t.to, t.from])
      : chooseVisits(plan, visit);
  return withRoutes(plan, relayOf(plan), chunks, pairs);
}

/** The documents whose groups relay. */
function relayOf(plan: DispatchPlan): number[] {
  return plan.docs.filter((d) => d.relay).map((d) => d.doc);
}

/** The plan with the star pairs that visit chosen by chooseVisits for this weight (the rest of its routes kept). */
export function withVisits(plan: DispatchPlan, weight: number): DispatchPlan {
  const bare = plan.visits.length ? withRoutes(plan, relayOf(plan), plan.chunks, []) : plan;
  return withRoutes(bare, relayOf(bare), bare.chunks, chooseVisits(bare, weight));
}

/** The visiting pairs of a plan, [query rank, key owner] (what the executor takes). */
function visitPairs(plan: DispatchPlan): [number, number][] {
  return plan.visits.map((x) => [x.from, x.to]);
}

/**
 * Which star pairs visit (key splitting), greedily by traffic saved: a pair's queries go to the
 * keys' owner when its query rows · weight are fewer than the key rows it would receive, and the
 * owner's area, with the pairs it takes on, stays within VISIT_AREA_LIMIT of the mean (the area
 * moves with the queries; the visitor's falls). Most saved first; ties by pair.
 */
function chooseVisits(plan: DispatchPlan, weight: number): [number, number][] {
  const N = plan.world;
  const rowsOf = new Map<number, number>(); // rank · documents + document → its rows
  const D = plan.lengths.length,
    cu = cuSeqlensOf(plan.lengths);
  for (const p of plan.pieces) rowsOf.set(p.rank * D + p.doc, (rowsOf.get(p.rank * D + p.doc) ?? 0) + p.end - p.start);
  const queriesOf = queryRowsOf(plan);
  const cands: { t: Transfer; saved: number }[] = [];
  for (const t of plan.transfers) {
    if (!t.direct) continue;
    // a cheap bound first: the visitor's rows of the documents the keys belong to
    let upper = 0;
    for (const d of docsIn(cu, t.ranges)) upper += rowsOf.get(t.to * D + d) ?? 0;
    if (upper * weight >= t.rows) continue;
    const rows = queriesOf(t.to, t.ranges).reduce((s, [a, b]) => s + b - a, 0);
    if (rows * weight < t.rows) cands.push({ t, saved: t.rows - rows * weight });
  }
  cands.sort((x, y) => y.saved - x.saved || x.t.to - y.t.to || x.t.from - y.t.from);
  const area = Float64Array.from(plan.ranks, (r) => r.area);
  const limit = (1 + VISIT_AREA_LIMIT) * (area.reduce((a, b) => a + b, 0) / N);
  const out: [number, number][] = [];
  for (const { t } of cands) {
    if (area[t.from]! + t.area > limit) continue;
    area[t.from]! += t.area;
    area[t.to]! -= t.area;
    out.push([t.to, t.from]);
  }
  return out;
}

/** How far above the mean a key owner's area may grow by the visits it takes on (the ≤ 1.05 balance target, less a margin). */
const VISIT_AREA_LIMIT = 0.04;

/** The documents that sorted global ranges touch. */
function docsIn(cu: readonly number[], ranges: Ranges): Set<number> {
  const out = new Set<number>();
  for (const [a, b] of ranges) for (let d = docAt(cu, a); d < cu.length - 1 && cu[d]! < b; d++) out.add(d);
  return out;
}

/** The last document starting at or before position x. */
function docAt(cu: readonly number[], x: number): number {
  let a = 0,
    b = cu.length - 2;
  while (a < b) {
    const mid = (a + b + 1) >> 1;
    if (cu[mid]! <= x) a = mid;
    else b = mid - 1;
  }
  return a;
}

/**
 * The rows of rank `from` (global position ranges) that see any key in `keys`, from the documents'
 * masks: in one document the rows that see a key range are one run (rows' intervals rise with the
 * row), found by binary search in each of the rank's pieces of it.
 */
function queryRowsOf(plan: { pieces: readonly Piece[]; lengths: readonly number[]; masks: readonly DocMask[] }) {
  const cu = cuSeqlensOf(plan.lengths),
    D = plan.lengths.length;
  const mine = new Map<number, Piece[]>();
  for (const p of plan.pieces) {
    const l = mine.get(p.rank * D + p.doc);
    if (l) l.push(p);
    else mine.set(p.rank * D + p.doc, [p]);
  }
  return (from: number, keys: Ranges): [number, number][] => {
    const out: [number, number][] = [];
    for (const [a, b] of keys)
      for (let d = docAt(cu, a); d < D && cu[d]! < b; d++) {
        const s0 = cu[d]!,
          L = plan.lengths[d]!,
          m = plan.masks[d]!;
        const c = Math.max(a, s0) - s0,
          e = Math.min(b, s0 + L) - s0;
        for (const p of mine.get(from * D + d) ?? []) {
          // first row whose interval ends after c, first row whose interval starts at or after e
          const first = (ok: (i: number) => boolean): number => {
            let lo = p.start - s0,
              hi = p.end - s0;
            while (lo < hi) {
              const mid = (lo + hi) >> 1;
              if (ok(mid)) hi = mid;
              else lo = mid + 1;
            }
            return lo;
          };
          const i0 = first((i) => docRow(m, L, i)[1] > c),
            i1 = first((i) => docRow(m, L, i)[0] >= e);
          if (i0 < i1) out.push([s0 + i0, s0 + i1]);
        }
      }
    return mergeRanges(out);
  };
}

/** The plan with these documents' groups passing K/V by relay, the others straight from the owner in `chunks` rounds, and these pairs visiting. */
export function withRoutes(
  plan: DispatchPlan,
  relayDocs: Iterable<number>,
  chunks = plan.chunks,
  visits: readonly (readonly [number, number])[] = visitPairs(plan),
): DispatchPlan {
  const batch = { lengths: plan.lengths, masks: plan.masks };
  return finishPlan(
    batch,
    plan.world,
    plan.S,
    plan.maxTokens,
    plan.granularity,
    cuSeqlensOf(plan.lengths),
    plan.pieces,
    new Set(relayDocs),
    chunks,
    visits,
    headPlaces(plan),
  );
}

/** The head-parallel documents' sub-groups, by document. */
function headPlaces(plan: DispatchPlan): Map<number, HeadPlace> {
  return new Map(plan.docs.filter((d) => d.heads).map((d) => [d.doc, d.heads!]));
}

/** The routes of a plan as the executor takes them (execute.ts routedKV). */
export function routesOf(plan: DispatchPlan): {
  relay: [number, number][];
  chunks: number;
  visits: [number, number][];
  heads: HeadGroup[];
} {
  return { relay: relaySpans(plan), chunks: plan.chunks, visits: visitPairs(plan), heads: headGroups(plan) };
}

/** The head-parallel documents as the executor takes them (heads.ts HeadGroup). */
function headGroups(plan: DispatchPlan): HeadGroup[] {
  return plan.docs.filter((d) => d.heads).map((d) => ({ start: d.start, end: d.start + d.length, ...d.heads! }));
}

/** The position spans whose K/V travel by relay (what the executor takes), sorted. */
function relaySpans(plan: DispatchPlan): [number, number][] {
  return plan.docs.filter((d) => d.relay).map((d) => [d.start, d.start + d.length]);
}

/** Tokens [start, end) of one document, before placement. */
interface Seg {
  doc: number;
  start: number;
  end: number;
}

/**
 * Place segments of documents on N bins (ranks, or nodes): cut them into pieces small in tokens
 * (≤ g) and area (≤ 1/8 of a bin's mean), place them densest first on the bin where
 * max(area / mean, tokens / mean) ends lowest within the token limit (beside a neighbouring piece
 * when that costs no balance), rebalance, and give every bin a token.
 */
function place(
  segs: readonly Seg[],
  N: number,
  maxTokens: number,
  g: number,
  area: (d: number, a: number, b: number) => number,
  pre: Load = { area: new Float64Array(N), tok: new Float64Array(N) },
): Piece[] {
  const S = segs.reduce((s, x) => s + x.end - x.start, 0) + pre.tok.reduce((a, b) => a + b, 0);
  const totalArea = segs.reduce((s, x) => s + area(x.doc, x.start, x.end), 0) + pre.area.reduce((a, b) => a + b, 0);
  const meanArea = Math.max(totalArea / N, 1),
    meanTok = S / N;
  // pieces small in tokens and in area, so that a heavy document's rows can spread evenly
  const areaCap = Math.max(1, meanArea / PIECES_PER_RANK);
  const units: Unit[] = [];
  for (const { doc: d, start, end } of segs) {
    for (let a = start; a < end;) {
      let lo = a + 1,
        hi = Math.min(a + g, end); // the longest piece within both caps (at least one row)
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (area(d, a, mid) <= areaCap) lo = mid;
        else hi = mid - 1;
      }
      units.push({ doc: d, start: a, end: lo, area: area(d, a, lo) });
      a = lo;
    }
  }
  // densest first (area per token): the heavy rows spread evenly in area while every bin still has
  // room for tokens, and the light rows placed last even out the tokens at little cost in area
  const density = (u: Unit): number => u.area / (u.end - u.start);
  units.sort((x, y) => density(y) - density(x) || x.start - y.start);

  const rArea = Float64Array.from(pre.area),
    rTok = Float64Array.from(pre.tok);
  const placed: Piece[] = [];
  const holder = new Map<number, { bin: number; doc: number }>(); // a placed piece's first and last position → its bin
  const score = (r: number, u: Unit): number =>
    Math.max((rArea[r]! + u.area) / meanArea, (rTok[r]! + u.end - u.start) / meanTok);
  const put = (u: Unit, r: number): void => {
    placed.push({ doc: u.doc, start: u.start, end: u.end, rank: r });
    rArea[r]! += u.area;
    rTok[r]! += u.end - u.start;
    holder.set(u.start, { bin: r, doc: u.doc });
    holder.set(u.end - 1, { bin: r, doc: u.doc });
  };
  const queue = [...units];
  for (let qi = 0; qi < queue.length; qi++) {
    const u = queue[qi]!,
      len = u.end - u.start;
    let best = -1;
    for (let r = 0; r < N; r++) if (rTok[r]! + len <= maxTokens && (best < 0 || score(r, u) < score(best, u))) best = r;
    if (best < 0) {
      // no bin has room for the whole unit: fill the roomiest, the rest goes back in the queue
      let roomy = 0;
      for (let r = 1; r < N; r++) if (rTok[r]! < rTok[roomy]!) roomy = r;
      const fit = maxTokens - rTok[roomy]!,
        cut = u.start + fit;
      put({ ...u, end: cut, area: area(u.doc, u.start, cut) }, roomy);
      queue.push({ ...u, start: cut, area: area(u.doc, cut, u.end) });
      continue;
    }
    // a neighbour of this piece in its document, if it costs no balance
    for (const h of [holder.get(u.end), holder.get(u.start - 1)]) {
      const nb = h?.doc === u.doc ? h.bin : undefined;
      if (
        nb !== undefined &&
        nb !== best &&
        rTok[nb]! + len <= maxTokens &&
        score(nb, u) <= Math.max(1, score(best, u))
      ) {
        best = nb;
        break;
      }
    }
    put(u, best);
  }
  rebalance(placed, rArea, rTok, maxTokens, area);
  fillEmpty(placed, rTok, rArea, area);
  return placed;
}

/** Area and tokens per bin already taken (by head-parallel documents) before the pieces are placed. */
interface Load {
  area: Float64Array;
  tok: Float64Array;
}

/** A head-parallel document's sub-group (DocPlacement.heads). */
type HeadPlace = NonNullable<DocPlacement['heads']>;

/**
 * Place the head-parallel documents: each on ulysses × ring consecutive ranks starting at a
 * multiple of `ulysses` (a Ulysses group stays on one node when ulysses divides the node), the
 * start where the members' largest area ends lowest (ties: the lowest rank). The document is cut in
 * 2 · ring chunks, ring group j taking chunks j and 2·ring − 1 − j (zigzag: equal causal area),
 * each group's rows split evenly over its members. A member computes its group's rows against the
 * whole document for 1/ulysses of the heads: that area, per head, is what it carries.
 */
function placeHeads(
  choices: readonly HeadChoice[],
  lengths: readonly number[],
  masks: readonly DocMask[],
  cu: readonly number[],
  N: number,
  maxTokens: number,
): { pieces: Piece[]; load: Load; groups: Map<number, HeadPlace> } {
  const load: Load = { area: new Float64Array(N), tok: new Float64Array(N) },
    pieces: Piece[] = [],
    groups = new Map<number, HeadPlace>();
  for (const c of choices) {
    const u = c.ulysses,
      r = c.ring ?? 1,
      k = u * r,
      L = lengths[c.doc];
    if (L === undefined || groups.has(c.doc))
      throw new UserError(`head-parallel: no document ${c.doc}, or named twice`);
    if (!(u >= 1 && r >= 1 && k <= N && L >= k))
      throw new UserError(`head-parallel: ${u} × ${r} ranks for a document of ${L} tokens on ${N} ranks`);
    // each ring group's rows, relative to the document
    const chunk = (j: number): [number, number] => [Math.floor((j * L) / (2 * r)), Math.floor(((j + 1) * L) / (2 * r))];
    const rowsOf = (j: number): [number, number][] => (r === 1 ? [[0, L]] : [chunk(j), chunk(2 * r - 1 - j)]);
    const share = Array.from({ length: k }, (_, i) => {
      const j = Math.floor(i / u),
        runs = rowsOf(j);
      const area = runs.reduce((s, [a, b]) => s + pairArea(masks[c.doc]!, L, a, b, 0, L), 0) / u;
      // member i mod u takes its slice of the group's rows, in order
      const total = runs.reduce((s, [a, b]) => s + b - a, 0),
        from = Math.floor(((i % u) * total) / u),
        to = Math.floor((((i % u) + 1) * total) / u);
      const mine: [number, number][] = [];
      let at = 0;
      for (const [a, b] of runs) {
        const lo = Math.max(a, a + from - at),
          hi = Math.min(b, a + to - at);
        if (lo < hi) mine.push([lo, hi]);
        at += b - a;
      }
      return { area, runs: mine, tokens: to - from };
    });
    let best = -1,
      bestMax = Infinity;
    for (let s0 = 0; s0 + k <= N; s0 += u) {
      let worst = 0,
        fits = true;
      for (let i = 0; i < k; i++) {
        worst = Math.max(worst, load.area[s0 + i]! + share[i]!.area);
        fits &&= load.tok[s0 + i]! + share[i]!.tokens <= maxTokens;
      }
      if (fits && worst < bestMax) [best, bestMax] = [s0, worst];
    }
    if (best < 0) throw new UserError(`head-parallel: no ${k} ranks have room for document ${c.doc}`);
    const members = Array.from({ length: k }, (_, i) => best + i);
    share.forEach((x, i) => {
      load.area[best + i]! += x.area;
      load.tok[best + i]! += x.tokens;
      for (const [a, b] of x.runs)
        pieces.push({ doc: c.doc, start: cu[c.doc]! + a, end: cu[c.doc]! + b, rank: best + i });
    });
    groups.set(c.doc, { ulysses: u, ring: r, members });
  }
  return { pieces, load, groups };
}

/**
 * Move (or swap) whole pieces off the rank of most area, to the least loaded rank where that
 * lowers the maximum within the token limit; stop when no such move is left.
 */
function rebalance(
  placed: Piece[],
  rArea: Float64Array,
  rTok: Float64Array,
  maxTokens: number,
  area: (d: number, a: number, b: number) => number,
): void {
  const N = rArea.length,
    areas = placed.map((p) => area(p.doc, p.start, p.end));
  const held: number[][] = Array.from({ length: N }, () => []);
  placed.forEach((p, i) => held[p.rank]!.push(i));
  const tokens = (i: number): number => placed[i]!.end - placed[i]!.start;
  /**
   * The exchange that best narrows the gap between hi and lo: piece i of hi moves to lo or, when lo
   * has no room for it, is swapped for as many tokens of the front of a piece j of lo (its lightest
   * rows when causal); failing that, t tokens of the back of i (its densest) for t of the front of j.
   */
  const bestMove = (hi: number, lo: number): { i: number; j: number; t: number; after: number } | undefined => {
    const gap = rArea[hi]! - rArea[lo]!;
    let best: { i: number; j: number; t: number; after: number } | undefined;
    const consider = (i: number, j: number, t: number, d: number): void => {
      if (d > 0 && d < gap && (!best || Math.abs(gap - 2 * d) < best.after))
        best = { i, j, t, after: Math.abs(gap - 2 * d) };
    };
    for (const i of held[hi]!) if (rTok[lo]! + tokens(i) <= maxTokens) consider(i, -1, tokens(i), areas[i]!);
    if (best) return best;
    // a swap: the whole of i for as many tokens of the front of j (its lightest rows when causal)
    for (const i of held[hi]!)
      for (const j of held[lo]!) {
        const t = tokens(i),
          pj = placed[j]!;
        if (tokens(j) >= t) consider(i, j, t, areas[i]! - area(pj.doc, pj.start, pj.start + t));
      }
    if (best) return best;
    // else a swap of t tokens: the last t rows of i (its densest when causal) for the first t of j
    for (const i of held[hi]!)
      for (const j of held[lo]!) {
        const pi = placed[i]!,
          pj = placed[j]!;
        for (let t = Math.min(tokens(i), tokens(j)); t >= 1; t >>= 1)
          consider(i, j, t, area(pi.doc, pi.end - t, pi.end) - area(pj.doc, pj.start, pj.start + t));
      }
    return best;
  };
  const move = (i: number, from: number, to: number): void => {
    rArea[from]! -= areas[i]!;
    rArea[to]! += areas[i]!;
    rTok[from]! -= tokens(i);
    rTok[to]! += tokens(i);
    held[from]!.splice(held[from]!.indexOf(i), 1);
    held[to]!.push(i);
    placed[i]!.rank = to;
  };
  /** the first t tokens of piece j become a piece of their own (on j's rank) */
  const splitFront = (j: number, t: number): number => {
    const pj = placed[j]!;
    if (tokens(j) === t) return j;
    const front: Piece = { doc: pj.doc, start: pj.start, end: pj.start + t, rank: pj.rank };
    pj.start += t;
    placed.push(front);
    areas.push(area(front.doc, front.start, front.end));
    areas[j] = area(pj.doc, pj.start, pj.end);
    held[front.rank]!.push(placed.length - 1);
    return placed.length - 1;
  };
  /** the last t tokens of piece i become a piece of their own (on i's rank) */
  const splitBack = (i: number, t: number): number => {
    const pi = placed[i]!;
    if (tokens(i) === t) return i;
    const back: Piece = { doc: pi.doc, start: pi.end - t, end: pi.end, rank: pi.rank };
    pi.end -= t;
    placed.push(back);
    areas.push(area(back.doc, back.start, back.end));
    areas[i] = area(pi.doc, pi.start, pi.end);
    held[back.rank]!.push(placed.length - 1);
    return placed.length - 1;
  };
  const order = Array.from({ length: N }, (_, r) => r);
  const enough = (1 + REBALANCE_TOLERANCE) * (rArea.reduce((a, b) => a + b, 0) / N);
  for (let pass = 0, budget = 4 * placed.length + 8 * N; pass < budget; pass++) {
    let hi = 0;
    for (let r = 1; r < N; r++) if (rArea[r]! > rArea[hi]!) hi = r;
    if (rArea[hi]! <= enough) return; // every further cut costs a piece, and pieces cost transfers
    order.sort((x, y) => rArea[x]! - rArea[y]! || x - y);
    let m: { i: number; j: number; t: number } | undefined,
      lo = -1;
    for (const r of order.slice(0, 32)) {
      if (r === hi) break;
      m = bestMove(hi, r);
      if (m) {
        lo = r;
        break;
      }
    }
    if (!m) return;
    const back = m.j >= 0 ? splitFront(m.j, m.t) : -1;
    move(splitBack(m.i, m.t), hi, lo);
    if (back >= 0) move(back, lo, hi);
  }
}

/** Every rank holds a token: an empty rank takes the last token of the longest piece. */
function fillEmpty(
  placed: Piece[],
  rTok: Float64Array,
  rArea: Float64Array,
  area: (d: number, a: number, b: number) => number,
): void {
  for (let r = 0; r < rTok.length; r++) {
    if (rTok[r]! > 0) continue;
    let longest = 0;
    placed.forEach((p, i) => {
      if (p.end - p.start > placed[longest]!.end - placed[longest]!.start) longest = i;
    });
    const p = placed[longest]!;
    if (p.end - p.start < 2) throw new Error('dispatch: no piece to split for an empty rank');
    const moved = { doc: p.doc, start: p.end - 1, end: p.end, rank: r };
    const a = area(p.doc, moved.start, moved.end);
    rArea[p.rank]! -= a;
    rTok[p.rank]! -= 1;
    rArea[r]! += a;
    rTok[r]! += 1;
    p.end -= 1;
    placed.push(moved);
  }
}

/** Pieces by start, neighbours of one document on one rank joined. */
function merge(placed: readonly Piece[]): Piece[] {
  const sorted = [...placed].sort((a, b) => a.start - b.start);
  const out: Piece[] = [];
  for (const p of sorted) {
    const last = out[out.length - 1];
    if (last && last.rank === p.rank && last.doc === p.doc && last.end === p.start) last.end = p.end;
    else out.push({ ...p });
  }
  return out;
}

function finishPlan(
  batch: Batch,
  N: number,
  S: number,
  maxTokens: number,
  g: number,
  cu: readonly number[],
  pieces: Piece[],
  relayDocs: ReadonlySet<number>,
  chunks: number,
  visitPairs: readonly (readonly [number, number])[],
  heads: ReadonlyMap<number, HeadPlace>,
): DispatchPlan {
  const { lengths, masks } = batch;
  const byDoc: Piece[][] = lengths.map(() => []);
  for (const p of pieces) byDoc[p.doc]!.push(p);
  const ranks: RankLoad[] = Array.from({ length: N }, (_, rank) => ({
    rank,
    tokens: 0,
    area: 0,
    localArea: 0,
    recvRows: 0,
    sendRows: 0,
    peakRows: 0,
    guestRows: 0,
    guestArea: 0,
    headArea: 0,
  }));
  const need: [number, number][][] = Array.from({ length: N }, () => []);
  /** a rank's pieces of a document */
  const mineOf = new Map<number, Piece[]>(); // rank · docs + doc
  byDoc.forEach((ps, d) => {
    const m = masks[d]!,
      L = lengths[d]!,
      s0 = cu[d]!;
    const hp = heads.get(d);
    if (hp) {
      // a member attends its ring group's rows against the whole document for 1/ulysses of the heads
      const u = hp.ulysses;
      hp.members.forEach((r, i) => {
        const group = new Set(hp.members.slice(Math.floor(i / u) * u, (Math.floor(i / u) + 1) * u));
        const a =
          ps.filter((p) => group.has(p.rank)).reduce((x, p) => x + pairArea(m, L, p.start - s0, p.end - s0, 0, L), 0) /
          u;
        ranks[r]!.area += a;
        ranks[r]!.localArea += a;
        ranks[r]!.headArea += a;
      });
      for (const p of ps) ranks[p.rank]!.tokens += p.end - p.start;
      return;
    }
    for (const p of ps) {
      const r = ranks[p.rank]!;
      r.tokens += p.end - p.start;
      r.area += pairArea(m, L, p.start - s0, p.end - s0, 0, L);
      const [lo, hi] = keySpan(m, L, p.start - s0, p.end - s0);
      need[p.rank]!.push([lo + s0, hi + s0]);
      const key = p.rank * lengths.length + d;
      const l = mineOf.get(key);
      if (l) l.push(p);
      else mineOf.set(key, [p]);
    }
  });
  for (const [key, ps] of mineOf) {
    const d = key % lengths.length,
      s0 = cu[d]!;
    for (const p of ps)
      for (const k of ps)
        ranks[p.rank]!.localArea += pairArea(
          masks[d]!,
          lengths[d]!,
          p.start - s0,
          p.end - s0,
          k.start - s0,
          k.end - s0,
        );
  }
  const areaAgainst = pairsAgainst(lengths, masks, cu, mineOf);
  const docs: DocPlacement[] = byDoc.map((ps, d) => {
    const rs = [...new Set(ps.map((p) => p.rank))].sort((a, b) => a - b);
    const hp = heads.get(d);
    const base = { doc: d, start: cu[d]!, length: lengths[d]!, mask: docMaskName(masks[d]!), ranks: rs };
    if (hp) return { ...base, mode: 'heads', relay: false, heads: hp };
    return { ...base, mode: rs.length === 1 ? 'local' : 'group', relay: rs.length > 1 && relayDocs.has(d) };
  });
  const relay = docs.filter((d) => d.relay).map((d) => [d.start, d.start + d.length] as [number, number]);
  const routed = takeVisits(
    routeHops(
      pieces.map(({ start, end, rank }) => ({ start, end, rank })),
      need.map((l) => mergeRanges(l)),
      relay,
    ),
    new Set(visitPairs.map(([q, o]) => q * N + o)),
    N,
    queryRowsOf({ pieces, lengths, masks }),
  );
  const transfers = routed.hops as Transfer[];
  for (const t of transfers) {
    t.area = 0;
    for (const [a, b] of t.ranges) t.area += areaAgainst(t.to, a, b);
  }
  // a visit's pairs are computed on the keys' owner
  const visits: PlanVisit[] = routed.visits.map((x) => ({
    ...x,
    area: x.keys.reduce((s, [a, b]) => s + areaAgainst(x.from, a, b), 0),
  }));
  for (const x of visits) {
    ranks[x.from]!.area -= x.area;
    ranks[x.to]!.area += x.area;
    ranks[x.to]!.guestArea += x.area;
    ranks[x.to]!.guestRows += x.rows;
  }
  for (const t of transfers) {
    ranks[t.from]!.sendRows += t.rows;
    ranks[t.to]!.recvRows += t.rows;
  }
  for (const r of ranks) r.peakRows = r.tokens + r.recvRows;
  const ratio = (xs: number[]): number => {
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    return mean > 0 ? Math.max(...xs) / mean : 1;
  };
  return {
    world: N,
    S,
    maxTokens,
    granularity: g,
    lengths,
    masks,
    pieces,
    docs,
    ranks,
    transfers,
    chunks,
    visits,
    balance: { area: ratio(ranks.map((r) => r.area)), tokens: ratio(ranks.map((r) => r.tokens)) },
  };
}

/** The pairs rank `to`'s queries compute against keys [a, b), from its pieces (`mineOf`: rank · documents + document → pieces). */
function pairsAgainst(
  lengths: readonly number[],
  masks: readonly DocMask[],
  cu: readonly number[],
  mineOf: ReadonlyMap<number, readonly Piece[]>,
): (to: number, a: number, b: number) => number {
  const docAt = (x: number): number => {
    let a = 0,
      b = lengths.length - 1; // last doc starting at or before x
    while (a < b) {
      const mid = (a + b + 1) >> 1;
      if (cu[mid]! <= x) a = mid;
      else b = mid - 1;
    }
    return a;
  };
  return (to, a, b) => {
    let n = 0;
    for (let d = docAt(a); d < lengths.length && cu[d]! < b; d++) {
      const s0 = cu[d]!,
        L = lengths[d]!;
      const c = Math.max(a, s0) - s0,
        e = Math.min(b, s0 + L) - s0;
      for (const p of mineOf.get(to * lengths.length + d) ?? [])
        n += pairArea(masks[d]!, L, p.start - s0, p.end - s0, c, e);
    }
    return n;
  };
}

/** The pairs each rank's queries compute against keys [a, b) of others, as finishPlan counts a transfer's area. */
export function areaCounter(plan: DispatchPlan): (to: number, a: number, b: number) => number {
  const D = plan.lengths.length,
    mineOf = new Map<number, Piece[]>();
  for (const p of plan.pieces) {
    const key = p.rank * D + p.doc,
      l = mineOf.get(key);
    if (l) l.push(p);
    else mineOf.set(key, [p]);
  }
  return pairsAgainst(plan.lengths, plan.masks, cuSeqlensOf(plan.lengths), mineOf);
}

/**
 * Every transfer in its round, the star's cut into plan.chunks rounds with each chunk's area — what
 * the executor sends. Lists them all: for inspection and tests; the pricing reads the rounds without it.
 */
export function roundsOf(plan: DispatchPlan): Transfer[] {
  if (plan.chunks <= 1) return plan.transfers;
  const against = areaCounter(plan);
  return chunkHops(plan.transfers, plan.chunks).map((t) =>
    t.direct ? { ...t, area: t.ranges.reduce((s, [a, b]) => s + against(t.to, a, b), 0) } : t,
  );
}
