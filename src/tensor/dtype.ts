// Element types weft stores. bf16 and f16 live as raw 16-bit words (Uint16Array); arithmetic
// on them always happens after widening, in f32 or f64.
export type DType = 'f64' | 'f32' | 'bf16' | 'f16';
export const DTYPES: readonly DType[] = ['f64', 'f32', 'bf16', 'f16'];

export function bytesPerElement(dtype: DType): number {
  return dtype === 'f64' ? 8 : dtype === 'f32' ? 4 : 2;
}

/** The accumulation type for a storage type: f64 stays f64, everything else runs in f32. */
export function accumType(dtype: DType): 'f64' | 'f32' {
  return dtype === 'f64' ? 'f64' : 'f32';
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float → bf16 word, round to nearest even; NaN stays a quiet NaN. */
export function toBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) return ((bits >>> 16) | 0x40) & 0xffff;
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function fromBf16(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0]!;
}

/** float → IEEE half word, round to nearest even, with subnormals and overflow to ±inf. */
export function toF16(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rem > half || (rem === half && m & 1)) m++;
    return sign | m;
  }
  const rem = mant & 0x1fff;
  let m = mant >>> 13;
  if (rem > 0x1000 || (rem === 0x1000 && m & 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

export function fromF16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
