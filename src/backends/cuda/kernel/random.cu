// Normal random 16-bit tensors made on the GPU, for benchmarks whose inputs are gigabytes
// (drawing them on the host would take longer than the measurement). Counter-based: element i
// of a seed is the same on every run. Box–Muller over two 32-bit halves of a splitmix64 hash.
typedef unsigned short u16;
typedef unsigned long long u64;

__device__ __forceinline__ u64 splitmix64(u64 x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Element g of the global tensor of `seed`: a normal draw (scale σ) rounded to bf16 or fp16.
__device__ __forceinline__ u16 randn16_at(u64 g, u64 seed, float scale, int f16) {
  const u64 r = splitmix64(seed * 0x2545f4914f6cdd1dull + g);
  const float u = ((float)(r >> 40) + 1.f) * (1.f / 16777217.f);  // (0, 1)
  const float w = (float)((r >> 8) & 0xffffffu) * (1.f / 16777216.f);
  const float x = scale * sqrtf(-2.f * logf(u)) * cospif(2.f * w);
  u16 h;
  if (f16) asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x));
  else asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(x));
  return h;
}

extern "C" __global__ void weft_randn16(u16* __restrict__ dst, u64 n, u64 seed, float scale, int f16) {
  for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x)
    dst[i] = randn16_at(i, seed, scale, f16);
}

// A shard of the same global tensor: local row r is global row positions[r] (rows of rowElems
// elements), so every rank draws its own rows and no rank ever holds the whole sequence.
extern "C" __global__ void weft_randn16_rows(u16* __restrict__ dst, const int* __restrict__ positions, u64 rows, u64 rowElems,
                                             u64 seed, float scale, int f16) {
  const u64 n = rows * rowElems;
  for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
    const u64 r = i / rowElems;
    dst[i] = randn16_at((u64)positions[r] * rowElems + (i - r * rowElems), seed, scale, f16);
  }
}
