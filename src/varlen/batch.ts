// A packed variable-length batch: document lengths and the mask inside each document, and how
// they are read from the command line (a cu_seqlens list, a file of lengths, a seeded draw).
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';
import { lower, type MaskSpec, parseMask, sliceRow, type Slice } from '../mask/spec.js';
import { drawDocuments, type DistName, DIST_NAMES, fillPack } from './distributions.js';

/** The mask inside one document: causal, full (bidirectional) or a sliding window (negative side = unbounded). */
export type DocMask = { kind: 'causal' } | { kind: 'full' } | { kind: 'sliding'; left: number; right: number };

export interface Batch {
  lengths: readonly number[];
  masks: readonly DocMask[];
}

export function cuSeqlensOf(lengths: readonly number[]): number[] {
  const cu = [0];
  for (const l of lengths) cu.push(cu[cu.length - 1]! + l);
  return cu;
}

export function batchTokens(b: Batch): number {
  return b.lengths.reduce((s, l) => s + l, 0);
}

export function docMaskName(m: DocMask): string {
  return m.kind === 'sliding' ? `sliding:${m.left},${m.right}` : m.kind;
}

/** The per-document mask a document mask name gives: document-causal, document, document-sliding:L,R. */
export function docMaskOf(text: string): DocMask {
  const spec = parseMask(text, [0, 1]);
  if (spec.kind !== 'document')
    throw new UserError(
      `--strategy varlen needs a document mask (document-causal, document, document-sliding:L,R), not '${text}'`,
    );
  const inner = spec.inner;
  if (inner.kind === 'causal' || inner.kind === 'full') return { kind: inner.kind };
  if (inner.kind === 'sliding') return { kind: 'sliding', left: inner.left, right: inner.right };
  throw new UserError(`mask '${text}' is not a per-document mask`);
}

/** The whole batch as one mask: a document mask when every document has the same one, else slices. */
export function batchMaskSpec(b: Batch): MaskSpec {
  const cu = cuSeqlensOf(b.lengths);
  const first = b.masks[0]!;
  if (b.masks.every((m) => docMaskName(m) === docMaskName(first)))
    return { kind: 'document', cuSeqlens: cu, inner: innerSpec(first) };
  const slices: Slice[] = [];
  b.lengths.forEach((len, d) => {
    for (const s of lower(innerSpec(b.masks[d]!), len))
      slices.push({ ...s, q: [s.q[0] + cu[d]!, s.q[1] + cu[d]!], k: [s.k[0] + cu[d]!, s.k[1] + cu[d]!] });
  });
  return { kind: 'slices', slices };
}

function innerSpec(m: DocMask): MaskSpec {
  return m.kind === 'sliding' ? { kind: 'sliding', left: m.left, right: m.right } : { kind: m.kind };
}

/** Keys [lo, hi) (relative to the document) that row i of a document of length L sees. */
export function docRow(m: DocMask, L: number, i: number): [number, number] {
  if (m.kind === 'causal') return [0, i + 1];
  if (m.kind === 'full') return [0, L];
  return sliceRow(
    { q: [0, L], k: [0, L], left: m.left < 0 ? Infinity : m.left, right: m.right < 0 ? Infinity : m.right },
    i,
  );
}

/** Σ over x = 1..n of clamp(x − c, 0, w): the causal rows' overlap with a key range, summed. */
function clampSum(n: number, c: number, w: number): number {
  if (n <= c) return 0;
  if (n <= c + w) return ((n - c) * (n - c + 1)) / 2;
  return (w * (w + 1)) / 2 + (n - c - w) * w;
}

/**
 * Unmasked pairs of query rows [a, b) against key rows [c, e) of one document (relative positions).
 * Closed forms for causal and full; a sliding window is summed row by row.
 */
export function pairArea(m: DocMask, L: number, a: number, b: number, c: number, e: number): number {
  if (a >= b || c >= e) return 0;
  if (m.kind === 'full') return (b - a) * (e - c);
  if (m.kind === 'causal') return clampSum(b, c, e - c) - clampSum(a, c, e - c);
  let n = 0;
  for (let i = a; i < b; i++) {
    const [lo, hi] = docRow(m, L, i);
    n += Math.max(0, Math.min(e, hi) - Math.max(c, lo));
  }
  return n;
}

/** Keys [lo, hi) that the rows [a, b) of a document see together (rows' intervals rise with the row, so their union is one interval). */
export function keySpan(m: DocMask, L: number, a: number, b: number): [number, number] {
  return [docRow(m, L, a)[0], docRow(m, L, b - 1)[1]];
}

/** A cu_seqlens list as the CLI takes it: 0,…,S, strictly increasing. */
function parseCuSeqlens(text: string): number[] {
  const parts = text.split(',').map((x) => x.trim());
  if (parts.some((x) => !/^\d+$/.test(x)))
    throw new UserError(`--cu-seqlens must be integers separated by commas, not '${text}'`);
  const cu = parts.map(Number);
  if (cu.length < 2 || cu[0] !== 0) throw new UserError('--cu-seqlens must start at 0 and name at least one document');
  for (let i = 1; i < cu.length; i++)
    if (cu[i]! <= cu[i - 1]!)
      throw new UserError(`--cu-seqlens must be strictly increasing (entry ${i} is ${cu[i]} after ${cu[i - 1]})`);
  return cu;
}

/** Document lengths from a file: positive integers separated by white space or commas; '#' starts a comment. */
function readLengths(file: string): number[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`--lengths: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const words = text
    .split('\n')
    .map((l) => l.replace(/#.*/, ''))
    .join(' ')
    .split(/[\s,]+/)
    .filter((w) => w.length);
  if (!words.length) throw new UserError(`--lengths: ${file} holds no document lengths`);
  const bad = words.find((w) => !/^\d+$/.test(w) || Number(w) < 1);
  if (bad !== undefined) throw new UserError(`--lengths: '${bad}' in ${file} is not a positive whole number of tokens`);
  return words.map(Number);
}

export interface BatchSource {
  cuSeqlens?: string;
  lengths?: string;
  docs?: number;
  dist?: string;
  seq?: number;
  seed: number;
}

/** Document lengths from exactly one source: --cu-seqlens, --lengths, or --dist with --docs N or --seq S. */
export function lengthsFrom(s: BatchSource): number[] {
  const given = [
    s.cuSeqlens !== undefined && '--cu-seqlens',
    s.lengths !== undefined && '--lengths',
    (s.docs !== undefined || s.dist !== undefined) && '--docs/--dist',
  ].filter(Boolean);
  if (given.length !== 1)
    throw new UserError(
      given.length
        ? `give one batch source, not ${given.join(' and ')}`
        : 'give the batch: --cu-seqlens LIST, --lengths FILE, or --docs N [--dist longtail|magi]',
    );
  let lengths: number[];
  if (s.cuSeqlens !== undefined) {
    const cu = parseCuSeqlens(s.cuSeqlens);
    lengths = cu.slice(1).map((x, i) => x - cu[i]!);
  } else if (s.lengths !== undefined) lengths = readLengths(s.lengths);
  else {
    const dist = (s.dist ?? 'longtail') as DistName;
    if (!DIST_NAMES.includes(dist))
      throw new UserError(`--dist: unknown distribution '${s.dist}' (known: ${DIST_NAMES.join(', ')})`);
    if (s.docs !== undefined && s.seq !== undefined)
      throw new UserError(
        'with --dist give --docs N (that many documents) or --seq S (documents filling S tokens), not both',
      );
    if (s.docs === undefined && s.seq === undefined) throw new UserError('--dist needs --docs N or --seq S');
    return s.docs !== undefined ? drawDocuments(dist, s.docs, s.seed) : fillPack(dist, s.seq!, s.seed);
  }
  const S = lengths.reduce((a, b) => a + b, 0);
  if (s.seq !== undefined && s.seq !== S)
    throw new UserError(`--seq ${s.seq} differs from the ${S} tokens of the documents`);
  return lengths;
}
