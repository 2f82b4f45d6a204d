// The CUDA device's own small kernels: fill, elementwise add and a strided box copy that also
// converts dtype. Conversions go through float exactly as the host's toBf16/toF16 do (round to
// nearest even, NaN stays quiet), so a cast on the GPU gives the same bits as castHost.
// No CUDA headers are needed: f16 conversion uses the PTX cvt instruction.
import type { DType } from '../../../tensor/dtype.js';

export const DTYPE_CODE: Record<DType, number> = { f64: 0, f32: 1, bf16: 2, f16: 3 };

export const BUILTIN_SOURCE = String.raw`
typedef unsigned short u16;
typedef unsigned long long u64;

__device__ __forceinline__ float bf16_to_f(u16 h) { return __uint_as_float(((unsigned)h) << 16); }
__device__ __forceinline__ u16 f_to_bf16(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return (u16)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (u16)(u >> 16);
}
__device__ __forceinline__ float f16_to_f(u16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ u16 f_to_f16(float f) { u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }

// dtype codes: 0 f64, 1 f32, 2 bf16, 3 f16
__device__ __forceinline__ double load(const void* p, u64 i, int t) {
  switch (t) {
    case 0: return ((const double*)p)[i];
    case 1: return ((const float*)p)[i];
    case 2: return bf16_to_f(((const u16*)p)[i]);
    default: return f16_to_f(((const u16*)p)[i]);
  }
}
__device__ __forceinline__ void store(void* p, u64 i, int t, double x) {
  switch (t) {
    case 0: ((double*)p)[i] = x; break;
    case 1: ((float*)p)[i] = (float)x; break;
    case 2: ((u16*)p)[i] = f_to_bf16((float)x); break;
    default: ((u16*)p)[i] = f_to_f16((float)x); break;
  }
}

#define GRID_STRIDE(i, n) for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < (n); i += (u64)gridDim.x * blockDim.x)

extern "C" __global__ void weft_fill(void* dst, int t, u64 n, double value) {
  GRID_STRIDE(i, n) store(dst, i, t, value);
}

extern "C" __global__ void weft_add(void* dst, int dt, const void* src, int st, u64 n) {
  GRID_STRIDE(i, n) store(dst, i, dt, load(dst, i, dt) + load(src, i, st));
}

// The fast path for f32, bf16 and f16 (weft_rows4): four consecutive elements per thread, one
// vector load and store each (16 bytes of f32, 8 of bf16/f16), converted through float (as the
// generic path does: a float → double → float round trip is exact). A 2D launch puts threads over
// quads of a row and rows, so no thread divides an index (the generic kernel's four 64-bit
// divisions per element held it to ~0.27 of HBM bandwidth).
__device__ __forceinline__ void load4(const void* p, u64 i, int t, float v[4]) {
  if (t == 1) { float4 q = ((const float4*)p)[i]; v[0] = q.x; v[1] = q.y; v[2] = q.z; v[3] = q.w; return; }
  uint2 q = ((const uint2*)p)[i];
  u16 h[4] = { (u16)(q.x & 0xffffu), (u16)(q.x >> 16), (u16)(q.y & 0xffffu), (u16)(q.y >> 16) };
  for (int k = 0; k < 4; k++) v[k] = t == 2 ? bf16_to_f(h[k]) : f16_to_f(h[k]);
}
__device__ __forceinline__ void store4(void* p, u64 i, int t, const float v[4]) {
  if (t == 1) { ((float4*)p)[i] = make_float4(v[0], v[1], v[2], v[3]); return; }
  u16 h[4];
  for (int k = 0; k < 4; k++) h[k] = t == 2 ? f_to_bf16(v[k]) : f_to_f16(v[k]);
  ((uint2*)p)[i] = make_uint2((unsigned)h[0] | ((unsigned)h[1] << 16), (unsigned)h[2] | ((unsigned)h[3] << 16));
}

// rows × quads4 quads: row r of src starts ss4·r quads after src, of dst ds4·r after dst.
// add = 0: dst ← src (converting); add = 1: dst += src.
extern "C" __global__ void weft_rows4(const void* src, int st, void* dst, int dt, u64 rows, u64 quads4, u64 ss4, u64 ds4, int add) {
  for (u64 r = blockIdx.y * (u64)blockDim.y + threadIdx.y; r < rows; r += (u64)gridDim.y * blockDim.y)
    for (u64 c = blockIdx.x * (u64)blockDim.x + threadIdx.x; c < quads4; c += (u64)gridDim.x * blockDim.x) {
      float v[4];
      load4(src, r * ss4 + c, st, v);
      if (add) { float w[4]; load4(dst, r * ds4 + c, dt, w); for (int k = 0; k < 4; k++) v[k] = w[k] + v[k]; }
      store4(dst, r * ds4 + c, dt, v);
    }
}

// dst[da0 + a, db0 + b, e] = src[sa0 + a, sb0 + b, e] for a < na, b < nb, e < inner,
// with second dimensions sb (source) and db (destination).
extern "C" __global__ void weft_copy_box(const void* src, int st, void* dst, int dt,
    u64 na, u64 nb, u64 inner, u64 sb, u64 db, u64 sa0, u64 sb0, u64 da0, u64 db0) {
  GRID_STRIDE(i, na * nb * inner) {
    u64 e = i % inner, r = i / inner, b = r % nb, a = r / nb;
    store(dst, ((da0 + a) * db + db0 + b) * inner + e, dt, load(src, ((sa0 + a) * sb + sb0 + b) * inner + e, st));
  }
}
`;
