// A tensor in host memory: dtype, shape (row-major) and a typed array. On the CPU backend this is
// also the device tensor; its buffer may be a SharedArrayBuffer so worker ranks share it.
import { type DType, bytesPerElement, fromBf16, fromF16, toBf16, toF16 } from './dtype.js';

export type HostData = Float64Array | Float32Array | Uint16Array;

export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
}

export interface HostTensor extends Tensor {
  readonly data: HostData;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function allocData(dtype: DType, n: number, shared: boolean): HostData {
  const buf = shared ? new SharedArrayBuffer(n * bytesPerElement(dtype)) : new ArrayBuffer(n * bytesPerElement(dtype));
  return dtype === 'f64' ? new Float64Array(buf) : dtype === 'f32' ? new Float32Array(buf) : new Uint16Array(buf);
}

/** A zero-filled tensor; `shared` puts it in a SharedArrayBuffer. */
export function hostZeros(dtype: DType, shape: readonly number[], shared = false): HostTensor {
  return { dtype, shape: [...shape], data: allocData(dtype, numel(shape), shared) };
}

/** Wrap existing data; the array type must match the dtype. */
export function hostTensor(dtype: DType, shape: readonly number[], data: HostData): HostTensor {
  const want = dtype === 'f64' ? Float64Array : dtype === 'f32' ? Float32Array : Uint16Array;
  if (!(data instanceof want)) throw new Error(`hostTensor: ${dtype} needs a ${want.name}`);
  if (data.length !== numel(shape))
    throw new Error(`hostTensor: ${data.length} elements for shape [${shape.join(',')}]`);
  return { dtype, shape: [...shape], data };
}

/** Element i as a JS number, whatever the storage. */
export function getter(t: HostTensor): (i: number) => number {
  const d = t.data;
  if (t.dtype === 'bf16') return (i) => fromBf16(d[i]!);
  if (t.dtype === 'f16') return (i) => fromF16(d[i]!);
  return (i) => d[i]!;
}

/** Stores a JS number at element i, rounding to the storage type. */
export function setter(t: HostTensor): (i: number, x: number) => void {
  const d = t.data;
  if (t.dtype === 'bf16')
    return (i, x) => {
      d[i] = toBf16(x);
    };
  if (t.dtype === 'f16')
    return (i, x) => {
      d[i] = toF16(x);
    };
  return (i, x) => {
    d[i] = x;
  };
}

/** A copy in another dtype (rounding as the target requires). */
export function castHost(t: HostTensor, dtype: DType, shared = false): HostTensor {
  const out = hostZeros(dtype, t.shape, shared);
  if (dtype === t.dtype) {
    out.data.set(t.data as never);
    return out;
  }
  const get = getter(t),
    set = setter(out);
  for (let i = 0; i < out.data.length; i++) set(i, get(i));
  return out;
}

/** Widened values as Float64Array (no copy when already f64). */
export function asF64(t: HostTensor): Float64Array {
  return t.dtype === 'f64' ? (t.data as Float64Array) : (castHost(t, 'f64').data as Float64Array);
}

export function shapeEq(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function fmtShape(s: readonly number[]): string {
  return `[${s.join(',')}]`;
}

/** ‖a‖ (Frobenius): the error against a reference that is exactly zero. */
export function norm(a: HostTensor): number {
  let s = 0;
  for (const x of asF64(a)) s += x * x;
  return Math.sqrt(s);
}

/** ‖a − b‖ / ‖b‖ over all elements (Frobenius); 0 when both are zero; NaN anywhere gives NaN. */
export function relError(a: HostTensor | Float64Array, b: HostTensor | Float64Array): number {
  const x = a instanceof Float64Array ? a : asF64(a);
  const y = b instanceof Float64Array ? b : asF64(b);
  if (x.length !== y.length) throw new Error(`relError: ${x.length} vs ${y.length} elements`);
  let num = 0,
    den = 0;
  for (let i = 0; i < x.length; i++) {
    const xi = x[i]!,
      yi = y[i]!;
    if (Number.isNaN(xi) || Number.isNaN(yi)) return NaN;
    // equal infinities (lse of fully masked rows) agree exactly
    if (xi === yi) {
      if (Number.isFinite(yi)) den += yi * yi;
      continue;
    }
    num += (xi - yi) ** 2;
    den += yi * yi;
  }
  if (den === 0) return num === 0 ? 0 : Infinity;
  return Math.sqrt(num / den);
}
