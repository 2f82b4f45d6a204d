// Document-length distributions for packed variable-length batches, each with where it comes from.
//
// `magi`: the varlen setting of MagiAttention's distributed benchmark, as its repository defines it
// (SandAI-org/MagiAttention, exps/dist_attn/benchmark/utils.py: varlen_short_seqlen_distribution for
// packs of at most 128K tokens, varlen_long_seqlen_distribution above; exps/dist_attn/benchmark/mask.py
// picks between them by `total_seqlen > 128 * 1024`; benchmark_conf.py: 8K tokens per rank, GQA
// 64:8, head dim 128). A pack is drawn as their generate_seqlens draws it: pick a bin by weight, a
// length uniformly in [lo, hi] (both ends), cut to what is left of the pack, at least 1, until full.
//
// `longtail`: a log-normal fitted by maximum likelihood over the bins of that published short-pack
// histogram (the only document-length statistics found in a public repository this session; the
// repository does not name the corpus they were measured on). Unlike the binned table it has an
// unbounded tail: a draw may be a document longer than a rank's share, the case that needs a group.
// fitLogNormal reproduces the constants from the table (test/varlen/distributions.test.ts).
import { Rng } from '../tensor/random.js';

/** [lo, hi] token bounds (inclusive, as Python's randint) and the bin's weight. */
export type Bin = readonly [lo: number, hi: number, weight: number];

const K = 1024;

/** varlen_short_seqlen_distribution: packs of at most 128K tokens. */
export const MAGI_SHORT: readonly Bin[] = [
  [0, 0.25 * K, 0.0766],
  [0.25 * K, 0.5 * K, 0.1651],
  [0.5 * K, 0.75 * K, 0.1246],
  [0.75 * K, 1.0 * K, 0.0972],
  [1.0 * K, 1.5 * K, 0.1324],
  [1.5 * K, 2.0 * K, 0.0927],
  [2.0 * K, 2.5 * K, 0.072],
  [2.5 * K, 3.0 * K, 0.0519],
  [3.0 * K, 3.5 * K, 0.0379],
  [3.5 * K, 4.0 * K, 0.0264],
  [4.0 * K, 5.0 * K, 0.038],
  [5.0 * K, 6.0 * K, 0.0245],
  [6.0 * K, 7.0 * K, 0.0145],
  [7.0 * K, 8.0 * K, 0.0097],
  [8.0 * K, 10.0 * K, 0.0122],
  [10.0 * K, 15.0 * K, 0.0128],
  [15.0 * K, 20.0 * K, 0.0051],
  [20.0 * K, 64.0 * K, 0.0064],
];

/** varlen_long_seqlen_distribution: packs above 128K tokens. */
export const MAGI_LONG: readonly Bin[] = [
  [0, 2 * K, 0.16],
  [2 * K, 4 * K, 0.05],
  [4 * K, 8 * K, 0.04],
  [8 * K, 16 * K, 0.06],
  [16 * K, 32 * K, 0.08],
  [32 * K, 64 * K, 0.21],
  [64 * K, 128 * K, 0.4],
  [128 * K, 256 * K, 0.2],
  [256 * K, 512 * K, 0.05],
  [512 * K, 1024 * K, 0.04],
  [1024 * K, 2048 * K, 0.01],
  [2048 * K, 4096 * K, 0.01],
];

/** MagiAttention's rule: the long table for packs above 128K tokens. */
export function magiBins(packTokens: number): readonly Bin[] {
  return packTokens > 128 * K ? MAGI_LONG : MAGI_SHORT;
}

/** The log-normal fitted to MAGI_SHORT by fitLogNormal (ln tokens: mean mu, deviation sigma). */
export const LONGTAIL = { mu: 7.0535, sigma: 1.0975 } as const;

export type DistName = 'longtail' | 'magi';
export const DIST_NAMES: readonly DistName[] = ['longtail', 'magi'];

function erf(x: number): number {
  // the Chebyshev fit of erfc in Numerical Recipes (erfcc): fractional error below 1.2e-7
  const t = 1 / (1 + 0.5 * Math.abs(x));
  const y =
    1 -
    t *
      Math.exp(
        -x * x -
          1.26551223 +
          t *
            (1.00002368 +
              t *
                (0.37409196 +
                  t *
                    (0.09678418 +
                      t *
                        (-0.18628806 +
                          t *
                            (0.27886807 +
                              t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
      );
  return x >= 0 ? y : -y;
}

function lognormalCdf(x: number, mu: number, sigma: number): number {
  return x <= 0 ? 0 : 0.5 * (1 + erf((Math.log(x) - mu) / (sigma * Math.SQRT2)));
}

/**
 * Maximum-likelihood log-normal over binned counts: maximise Σ w·log P(bin) with bin i = (lo, hi + 1)
 * in tokens, by a coarse grid and two refinements (the likelihood is smooth and unimodal here).
 */
export function fitLogNormal(bins: readonly Bin[]): { mu: number; sigma: number } {
  const ll = (mu: number, sigma: number): number =>
    bins.reduce((s, [lo, hi, w]) => {
      const p = lognormalCdf(hi + 1, mu, sigma) - lognormalCdf(lo, mu, sigma);
      return s + w * Math.log(Math.max(p, 1e-300));
    }, 0);
  let best = { mu: 7, sigma: 1 },
    span = { mu: 3, sigma: 0.9 };
  for (let round = 0; round < 4; round++) {
    let top = -Infinity,
      pick = best;
    for (let i = 0; i <= 60; i++)
      for (let j = 0; j <= 60; j++) {
        const mu = best.mu - span.mu + (2 * span.mu * i) / 60,
          sigma = best.sigma - span.sigma + (2 * span.sigma * j) / 60;
        if (sigma <= 0.05) continue;
        const v = ll(mu, sigma);
        if (v > top) {
          top = v;
          pick = { mu, sigma };
        }
      }
    best = pick;
    span = { mu: span.mu / 10, sigma: span.sigma / 10 };
  }
  return best;
}

/** One document length from a distribution, before the cut to the pack. */
function drawOne(rng: Rng, dist: DistName, packTokens: number): number {
  if (dist === 'longtail') return Math.max(1, Math.round(Math.exp(LONGTAIL.mu + LONGTAIL.sigma * rng.normal())));
  const bins = magiBins(packTokens);
  const total = bins.reduce((s, b) => s + b[2], 0);
  let u = rng.next() * total,
    i = 0;
  while (i < bins.length - 1 && u >= bins[i]![2]) {
    u -= bins[i]![2];
    i++;
  }
  const [lo, hi] = bins[i]!;
  return Math.max(1, rng.int(Math.floor(lo), Math.floor(hi)));
}

/** Draw documents until they fill `packTokens` (the last one cut to fit), as MagiAttention packs. */
export function fillPack(dist: DistName, packTokens: number, seed: number): number[] {
  const rng = new Rng(seed),
    out: number[] = [];
  let used = 0;
  while (used < packTokens) {
    const len = Math.min(drawOne(rng, dist, packTokens), packTokens - used);
    out.push(len);
    used += len;
  }
  return out;
}

/** Exactly `n` documents from the distribution (no pack to fill: the lengths are what they are). */
export function drawDocuments(dist: DistName, n: number, seed: number, packHint = 64 * K): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => drawOne(rng, dist, packHint));
}
