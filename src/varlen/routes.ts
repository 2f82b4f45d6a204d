// Which K/V rows travel where, and by which path: the one routing rule that the dispatcher's plan,
// its pricing and the executor all follow, so that what is priced is what runs.
//
// star   the owner sends each peer the rows its queries see, directly, in round 0. Cheap for small
//        groups; in a large causal group the owner of the first rows sends them to every later rank
//        through its one port.
// relay  for a span of positions (a document), each holder's rows reach the other holders that
//        need them by a group-cast tree: round 0 sends them half way down the list of those holders,
//        then everyone holding them sends half of the remaining distance, … (⌈log2 n⌉ rounds for n
//        holders); each hop carries what its subtree needs. The sending is spread over the group
//        (a rank forwards about as much as it receives), and each round's transfers overlap the
//        compute on what came before.
// Gradients go back along the same hops in reverse round order, summed on the way.

/** Positions [start, end) held by one rank. */
export interface Run {
  start: number;
  end: number;
  rank: number;
}

/** One transfer: K/V rows (global position ranges) of `origin`, sent by `from` to `to` in `round`. */
export interface Hop {
  from: number;
  to: number;
  round: number;
  origin: number;
  ranges: [number, number][];
  rows: number;
  /** sent straight from its owner (a star hop): with chunks n, it goes in rounds 0 … n − 1 (chunkHop) */
  direct: boolean;
}

export type Ranges = readonly (readonly [number, number])[];

/** Sorted, disjoint ranges, merged where they touch. */
export function mergeRanges(list: [number, number][]): [number, number][] {
  list.sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [a, b] of list) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** First index of sorted disjoint ranges whose end is above x. */
function firstEndingAfter(r: Ranges, x: number): number {
  let a = 0,
    b = r.length;
  while (a < b) {
    const m = (a + b) >> 1;
    if (r[m]![1] <= x) a = m + 1;
    else b = m;
  }
  return a;
}

/** a ∩ b, both sorted and disjoint. */
export function intersect(a: Ranges, b: Ranges): [number, number][] {
  const out: [number, number][] = [];
  if (!a.length || !b.length) return out;
  let j = firstEndingAfter(b, a[0]![0]);
  for (const [s, e] of a) {
    while (j < b.length && b[j]![1] <= s) j++;
    for (let k = j; k < b.length && b[k]![0] < e; k++) {
      const lo = Math.max(s, b[k]![0]),
        hi = Math.min(e, b[k]![1]);
      if (lo < hi) out.push([lo, hi]);
    }
  }
  return out;
}

/** a minus b, both sorted and disjoint. */
export function subtract(a: Ranges, b: Ranges): [number, number][] {
  const out: [number, number][] = [];
  for (const [s, e] of a) {
    let at = s;
    for (let k = firstEndingAfter(b, s); k < b.length && b[k]![0] < e; k++) {
      if (b[k]![0] > at) out.push([at, b[k]![0]]);
      at = Math.max(at, b[k]![1]);
    }
    if (at < e) out.push([at, e]);
  }
  return out;
}

const count = (r: Ranges): number => r.reduce((s, [a, b]) => s + b - a, 0);

/**
 * Every hop of one step. `held`: the runs of positions, sorted by start, disjoint, covering what
 * any rank needs; `need[r]`: sorted disjoint key ranges rank r's queries see (its own rows may be
 * among them); `relay`: sorted disjoint spans whose rows travel by relay (the rest go star). Hops
 * of one (from, to, round, origin) are merged (a star's apart from a relay's); the list is sorted by
 * round, from, to, origin. A star's hops are listed whole, in round 0, whatever the chunks: one per
 * (owner, peer) pair; chunkHops cuts them into rounds where the rounds themselves are needed (the
 * executor), and the pricing reads each chunk's rows from chunkRows without listing them — a group
 * of k ranks has ~k²/2 star pairs, and 6 chunks of each on 1024 ranks do not fit in memory.
 */
export function routeHops(held: readonly Run[], need: readonly Ranges[], relay: Ranges): Hop[] {
  const N = need.length;
  const hops = new Map<number, Hop>();
  const add = (
    from: number,
    to: number,
    round: number,
    origin: number,
    ranges: [number, number][],
    direct: boolean,
  ): void => {
    if (!ranges.length) return;
    const key = (((round * 2 + (direct ? 1 : 0)) * N + from) * N + to) * N + origin;
    const h = hops.get(key);
    if (h) for (const r of ranges) h.ranges.push(r);
    else {
      hops.set(key, { from, to, round, origin, ranges, rows: 0, direct });
    }
  };
  const starts = held.map((r) => r.start);
  const runsIn = (a: number, b: number): Run[] => {
    let lo = 0,
      hi = held.length; // first run ending after a
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (held[m]!.end <= a) lo = m + 1;
      else hi = m;
    }
    const out: Run[] = [];
    for (let i = lo; i < held.length && starts[i]! < b; i++) out.push(held[i]!);
    return out;
  };
  // star: the rows outside relay spans, straight from their owner
  need.forEach((ranges, to) => {
    for (const [a, b] of subtract(ranges, relay))
      for (const run of runsIn(a, b))
        if (run.rank !== to) add(run.rank, to, 0, run.rank, [[Math.max(a, run.start), Math.min(b, run.end)]], true);
  });
  // relay: a group-cast tree over the holders that need the block, halving the distance each round
  for (const [a, b] of relay) {
    const own = new Map<number, [number, number][]>();
    for (const run of runsIn(a, b)) {
      const piece: [number, number] = [Math.max(a, run.start), Math.min(b, run.end)];
      const l = own.get(run.rank);
      if (l) l.push(piece);
      else own.set(run.rank, [piece]);
    }
    const holders = [...own.keys()].sort((x, y) => x - y);
    holders.forEach((origin, i) => {
      const block = own.get(origin)!;
      // the others that need some of the block, in rank order from the origin on (neighbours last: the last rounds stay on a node)
      const list: { rank: number; need: [number, number][] }[] = [{ rank: origin, need: [] }];
      for (let d = 1; d < holders.length; d++) {
        const rank = holders[(i + d) % holders.length]!,
          got = intersect(block, need[rank]!);
        if (got.length) list.push({ rank, need: got });
      }
      const n = list.length;
      if (n < 2) return;
      const rounds = Math.ceil(Math.log2(n));
      // node j, reached with step s, forwards to j + s/2, j + s/4, …: its subtree is [j, j + s)
      const carry = (lo: number, hi: number): [number, number][] =>
        mergeRanges(list.slice(lo, hi).flatMap((x) => x.need.map(([p, q]) => [p, q] as [number, number])));
      for (let t = 0; t < rounds; t++) {
        const step = 2 ** (rounds - 1 - t);
        for (let j = 0; j + step < n; j += 2 * step)
          add(list[j]!.rank, list[j + step]!.rank, t, origin, carry(j + step, Math.min(n, j + 2 * step)), false);
      }
    });
  }
  const out = [...hops.values()];
  for (const h of out) {
    if (h.ranges.length > 1) h.ranges = mergeRanges(h.ranges);
    h.rows = count(h.ranges);
  }
  return sortHops(out);
}

const sortHops = <T extends Hop>(hops: T[]): T[] =>
  hops.sort((x, y) => x.round - y.round || x.from - y.from || x.to - y.to || x.origin - y.origin);

/**
 * Rows of chunk t of a star hop of `rows` rows cut into `n` rounds growing 1 : 2 : … : n: round 0
 * runs beside the own block alone and its gradients return last, beside the own block's backward,
 * so it is the smallest; each later round runs beside the compute on a smaller one before it.
 */
function chunkRows(rows: number, n: number, t: number): number {
  const upTo = (u: number): number => (u < 0 ? 0 : Math.round((((u + 1) * (u + 2)) / (n * (n + 1))) * rows));
  return upTo(t) - upTo(t - 1);
}

/** A star hop cut into `n` rounds (chunkRows; the empty ones left out), each taking the next rows of its ranges. */
export function chunkHop<T extends Hop>(h: T, n: number): T[] {
  if (!h.direct || n <= 1) return [h];
  const out: T[] = [];
  let i = 0,
    at = h.ranges[0]![0];
  for (let t = 0; t < n; t++) {
    let want = chunkRows(h.rows, n, t);
    const ranges: [number, number][] = [];
    while (want > 0) {
      const r = h.ranges[i]!,
        take = Math.min(r[1] - at, want);
      ranges.push([at, at + take]);
      at += take;
      want -= take;
      if (at === r[1] && ++i < h.ranges.length) at = h.ranges[i]![0];
    }
    if (ranges.length) out.push({ ...h, round: t, ranges, rows: count(ranges) });
  }
  return out;
}

/** Every hop in its round: the star's cut into `chunks` rounds (what the executor sends). */
export function chunkHops<T extends Hop>(hops: readonly T[], chunks: number): T[] {
  return chunks > 1 ? sortHops(hops.flatMap((h) => chunkHop(h, chunks))) : [...hops];
}

/**
 * Query rows of `from` attended on `to`, the owner of the keys they see (key splitting): the queries
 * go there instead of the keys coming here, and their partial (out, lse) comes back to be merged. A
 * visit replaces one star hop (to → from) whole: `keys` are that hop's rows, `queries` the rows of
 * `from` that see any of them (rowsSeeing, computed by the plan from the documents' masks and by the
 * executor from the mask grid).
 */
export interface Visit {
  from: number;
  to: number;
  keys: [number, number][];
  queries: [number, number][];
  /** query rows */
  rows: number;
}

/**
 * The star hops of the visiting pairs (`pairs`: queryRank · N + keyOwner) taken out of `hops` (still
 * whole, before chunkHops) and turned into visits, their query rows from `queriesOf`. Relay hops stay.
 */
export function takeVisits(
  hops: readonly Hop[],
  pairs: ReadonlySet<number>,
  N: number,
  queriesOf: (from: number, keys: Ranges) => [number, number][],
): { hops: Hop[]; visits: Visit[] } {
  if (!pairs.size) return { hops: [...hops], visits: [] };
  const kept: Hop[] = [],
    visits: Visit[] = [];
  for (const h of hops) {
    if (!h.direct || !pairs.has(h.to * N + h.from)) {
      kept.push(h);
      continue;
    }
    const queries = queriesOf(h.to, h.ranges);
    visits.push({ from: h.to, to: h.from, keys: h.ranges, queries, rows: count(queries) });
  }
  visits.sort((x, y) => x.from - y.from || x.to - y.to);
  return { hops: kept, visits };
}
