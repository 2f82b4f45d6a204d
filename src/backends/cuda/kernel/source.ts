// Where the CUDA source of weft's attention kernels lives and how one configuration of it is
// compiled. The .cu file is read at run time from the package's src/ (tsc does not copy it to
// dist/), then compiled by NVRTC per (head dim, dtype, mask slots) through the runtime's cache.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The path of attn.cu: this module is dist/src/backends/cuda/kernel/source.js, the source is src/backends/cuda/kernel/. */
const ATTN_SOURCE_PATH = fileURLToPath(new URL('../../../../../src/backends/cuda/kernel/attn.cu', import.meta.url));

/** Device-side normal random 16-bit tensors for benchmarks (random.cu). */
const RANDOM_SOURCE_PATH = fileURLToPath(new URL('../../../../../src/backends/cuda/kernel/random.cu', import.meta.url));

let cached: string | undefined;

export function attnSource(): string {
  cached ??= readFileSync(ATTN_SOURCE_PATH, 'utf8');
  return cached;
}

export function randomSource(): string {
  return readFileSync(RANDOM_SOURCE_PATH, 'utf8');
}

export type HalfType = 'bf16' | 'f16';

export interface Variant {
  /** head dim: 64 or 128 */
  d: 64 | 128;
  dtype: HalfType;
  /** key intervals per query row (MaskView's m) */
  m: number;
}

/** K/V shared-memory stages of the warp-specialized forward: as many as fit beside Q. */
function fwdStages(d: 64 | 128): number {
  return d === 128 ? 3 : 4;
}

export function variantOptions(v: Variant): string[] {
  return [
    '-std=c++17',
    `-DWEFT_D=${v.d}`,
    `-DWEFT_F16=${v.dtype === 'f16' ? 1 : 0}`,
    `-DWEFT_M=${v.m}`,
    `-DWEFT_STAGES=${fwdStages(v.d)}`,
  ];
}

export const FWD_THREADS = 384;
export const BWD_THREADS = 384;
/** Query rows per forward tile; key rows per tile everywhere. */
export const FWD_QTILE = 128;
export const KTILE = 128;
/** Query rows per backward tile. */
export const BWD_QTILE = 64;

/** Dynamic shared memory of the warp-specialized forward (tiles, 1 KiB alignment slack, mbarriers). */
export function fwdSharedBytes(d: 64 | 128): number {
  const tile = 128 * d * 2,
    st = fwdStages(d);
  return 1024 + (1 + 2 * st) * tile + 8 * (1 + 4 * st);
}

/** Dynamic shared memory of the backward: K, V, 2 × (Q, dO), dSᵀ, 2 × dQ staging, 2 × lse/delta, mbarriers. */
export function bwdSharedBytes(d: 64 | 128): number {
  return 1024 + 2 * (128 * d * 2) + 4 * (64 * d * 2) + 128 * 128 + 2 * 64 * (d * 4 + 32) + 1024 + 64;
}
