// Document-length distributions for packed variable-length batches, each with where it comes from.
//
// `magi`: the varlen setting of MagiAttention's distributed benchmark, as its repository defines it
// (SandAI-org/MagiAttention, exps/dist_attn/benchmark/utils.py: varlen_short_seqlen_distribution for
// packs of at most 128K tokens, varlen_long_seqlen_distribution above; exps/dist_attn/benchmark/mask.py
// picks between them by `total_seqlen > 128 * 1024`; benchmark_conf.py: 8K tokens per rank, GQA
// 64:8, head dim 128). A pack is drawn as their generate_seqlens draws it: pick a bin by weight, a
// length uniformly in [lo, hi] (both ends), cut to what is left of the pack, at least 1, until full.
//
// `longtail`: a log-normal fitted to SlimPajama-627B (cerebras/SlimPajama-627B, a public deduplicated
// RedPajama) by the statistics CroissantLLM published for its shards: huggingface.co/datasets/
// croissantllm/croissant_dataset, english_660B_13/dataset_stats.csv, row
// Slimpajama627bTrainChunk4W0.jsonl.zstTrain — its `word_distribution` sample of per-document word
// counts (SLIMPAJAMA_WORDS: the first 266 entries) and its avg_tokens / avg_word (1140.84 / 685.926,
// tokens per word of that shard). The fit is maximum likelihood on ln(words) (mean and deviation),
// shifted by ln(tokens per word). Unlike a binned table it has an unbounded tail: a draw may be a
// document longer than a rank's share, the case that needs a group. fitWordSample reproduces the
// constants from the cited numbers (test/varlen/dispatch.test.ts).
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

/**
 * Per-document word counts of SlimPajama-627B (train chunk 4, shard W0): the first 266 entries of
 * the `word_distribution` sample in CroissantLLM's english_660B_13/dataset_stats.csv.
 */
export const SLIMPAJAMA_WORDS: readonly number[] = [
  227, 205, 2309, 394, 99, 408, 77, 750, 83, 439, 142, 394, 358, 139, 396, 163, 1654, 384, 211, 55, 2797, 198, 1914,
  359, 670, 431, 287, 819, 211, 275, 516, 751, 440, 64, 40, 106, 217, 430, 30, 1282, 949, 492, 150, 153, 277, 144, 92,
  97, 9355, 123, 1477, 557, 180, 151, 105, 68, 10382, 57, 581, 1083, 338, 584, 381, 4721, 773, 444, 177, 590, 381, 352,
  1456, 460, 720, 784, 250, 76, 87, 155, 1436, 129, 342, 3303, 57, 1831, 100, 61, 129, 457, 702, 135, 710, 98, 438, 654,
  8472, 969, 357, 446, 128, 779, 627, 218, 433, 492, 501, 383, 1199, 346, 133, 1438, 283, 409, 760, 517, 359, 79, 89,
  562, 197, 554, 323, 370, 428, 389, 198, 471, 72, 412, 1976, 290, 463, 1300, 827, 55, 2278, 151, 3174, 393, 2160, 454,
  512, 299, 99, 141, 139, 271, 67, 742, 335, 72, 122, 543, 1036, 43, 3292, 96, 289, 177, 1010, 103, 70, 40, 199, 3761,
  156, 319, 184, 97, 857, 318, 1445, 428, 152, 421, 265, 306, 264, 304, 421, 37, 631, 646, 229, 126, 891, 357, 44, 135,
  174, 217, 162, 229, 267, 399, 167, 243, 366, 962, 356, 90, 89, 647, 224, 818, 685, 578, 44, 881, 105, 123, 276, 104,
  132, 113, 67, 100, 2137, 4036, 37, 229, 561, 164, 2010, 389, 841, 367, 256, 1529, 133, 140, 783, 1270, 56, 409, 206,
  56, 379, 126, 204, 390, 225, 557, 925, 233, 481, 506, 151, 215, 53, 209, 78, 169, 200, 736, 796, 463, 69, 560, 39,
  173, 997, 133, 624, 384, 122, 128,
];

/** Tokens per word of that shard in the same table: avg_tokens / avg_word. */
export const SLIMPAJAMA_TOKENS_PER_WORD = 1140.84 / 685.926;

/** Log-normal in tokens by maximum likelihood on a sample of word counts: ln(tokens) = ln(words) + ln(tokens per word). */
export function fitWordSample(words: readonly number[], tokensPerWord: number): { mu: number; sigma: number } {
  const l = words.map(Math.log),
    n = l.length;
  const mean = l.reduce((a, b) => a + b, 0) / n;
  return {
    mu: mean + Math.log(tokensPerWord),
    sigma: Math.sqrt(l.reduce((a, b) => a + (b - mean) ** 2, 0) / n),
  };
}

/** fitWordSample(SLIMPAJAMA_WORDS, SLIMPAJAMA_TOKENS_PER_WORD), rounded: median e^mu ≈ 519 tokens, mean ≈ 938. */
export const LONGTAIL = { mu: 6.2515, sigma: 1.088 } as const;

export type DistName = 'longtail' | 'magi';
export const DIST_NAMES: readonly DistName[] = ['longtail', 'magi'];

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
