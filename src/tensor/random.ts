// Seeded random inputs (xoshiro128**, Box–Muller) so that tests and runs reproduce.
import type { DType } from './dtype.js';
import { type HostTensor, hostZeros, setter } from './host.js';

export class Rng {
  private s: Uint32Array;
  constructor(seed = 1) {
    this.s = new Uint32Array(4);
    let x = seed >>> 0 || 0x9e3779b9;
    for (let i = 0; i < 4; i++) {
      x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) + 0x6b43a9b3 + i;
      this.s[i] = x >>> 0;
    }
  }
  /** uniform in [0, 1) */
  next(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2] ^= s[0]!;
    s[3] ^= s[1]!;
    s[1] ^= s[2]!;
    s[0] ^= s[3]!;
    s[2] ^= t;
    s[3] = rotl(s[3]!, 11);
    return r / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  normal(): number {
    const u = 1 - this.next(),
      v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}
function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export function randn(rng: Rng, dtype: DType, shape: readonly number[], scale = 1, shared = false): HostTensor {
  const t = hostZeros(dtype, shape, shared);
  const set = setter(t);
  for (let i = 0; i < t.data.length; i++) set(i, rng.normal() * scale);
  return t;
}
