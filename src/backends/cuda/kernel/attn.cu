// weft flash attention for Hopper (sm_90a): forward (out + lse in fp32, optionally merged into a
// running fp32 state) and backward (dq, dk, dv accumulated in fp32), for any mask given as per-row
// key intervals and per-key positions (MaskView), with block skipping from per-tile summaries.
//
// Compiled at run time by NVRTC with no headers. Compile-time choices (-D):
//   WEFT_D       head dim, 64 or 128
//   WEFT_F16     0: bf16 inputs, 1: fp16 inputs
//   WEFT_M       key intervals per query row (mask slots)
//   WEFT_STAGES  K/V shared-memory stages of the warp-specialized forward
//   WEFT_DQ_SPLIT  (D = 64) 1: the backward's warpgroups split dQ's columns (default), 0: its keys
//   WEFT_ABL     development ablation of the backward (timing only)
//
// Layouts: q [Tq, H, D], k/v [Tk, Hkv, D] (16-bit), out [Tq, H, D] f32, lse [H, Tq] f32 (natural
// log), dq [Tq, H, D] f32, dk/dv [Tk, Hkv, D] f32. GQA: query head h reads key head h / (H / Hkv).
//
// Shared-memory tiles use the 128-byte swizzle of wgmma: a tile of R rows is stored as D/64
// "panels" of R rows x 128 bytes (64 columns); the 16-byte chunk c of row r sits at chunk c ^ (r % 8).

typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#ifndef WEFT_D
#define WEFT_D 128
#endif
#ifndef WEFT_F16
#define WEFT_F16 0
#endif
#ifndef WEFT_M
#define WEFT_M 1
#endif
#ifndef WEFT_STAGES
#define WEFT_STAGES 2
#endif
#ifndef WEFT_ABL  // development ablation of the backward (timing only): 1 drops the dq reductions
#define WEFT_ABL 0
#endif

#if WEFT_F16
#define WGMMA_AB ".f16.f16"
#else
#define WGMMA_AB ".bf16.bf16"
#endif

#define NEG_INF (__int_as_float(0xff800000))
#define POS_INF (__int_as_float(0x7f800000))

constexpr int D = WEFT_D;
constexpr int NP = D / 64;           // 64-column panels per row
constexpr int PANEL128 = 128 * 128;  // bytes of one panel of a 128-row tile
constexpr int TILE128 = NP * PANEL128;
constexpr int TILE_MASK = 0x3fffffff; // block-list entry: tile index | (partial << 30)
constexpr float LOG2E = 1.4426950408889634f;

static_assert(D == 64 || D == 128, "head dim must be 64 or 128");

// ---------------------------------------------------------------------------------------------
// Small PTX wrappers

__device__ __forceinline__ u32 smem_addr(const void* p) {
  u32 a;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
  return a;
}

__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// two floats → one register of two 16-bit values, `lo` in the low half
__device__ __forceinline__ u32 pack2(float lo, float hi) {
  u32 r;
#if WEFT_F16
  asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
#else
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
#endif
  return r;
}

__device__ __forceinline__ float widen(u16 h) {
#if WEFT_F16
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
#else
  return __uint_as_float(((u32)h) << 16);
#endif
}

__device__ __forceinline__ void cp_async16(u32 dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_arrive(u32 bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}

// generic-proxy writes to shared memory → visible to wgmma (async proxy)
__device__ __forceinline__ void fence_async_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

__device__ __forceinline__ void named_sync(int id, int n) { asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(n) : "memory"); }
__device__ __forceinline__ void named_arrive(int id, int n) { asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(n) : "memory"); }

__device__ __forceinline__ void mbar_init(u32 bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(u32 bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(u32 bar, int parity) {
  asm volatile(
      "{\n.reg .pred ready;\n"
      "WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 ready, [%0], %1;\n"
      "@!ready bra WAIT;\n"
      "}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }
template <int N>
__device__ __forceinline__ void reg_fence(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; i++) asm volatile("" : "+f"(r[i])::"memory");
}

template <int R>
__device__ __forceinline__ void regs_dec() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(R)); }
template <int R>
__device__ __forceinline__ void regs_inc() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(R)); }

__device__ __forceinline__ void red_add4(float* p, float a, float b, float c, float d) {
  asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};\n" ::"l"(p), "f"(a), "f"(b), "f"(c), "f"(d) : "memory");
}

// Adds one n8 block of an accumulator (a0, a1 at row g, columns 2t, 2t + 1; a2, a3 at row g + 8) to
// global memory with one 16-byte atomic per thread: lanes t and t ^ 1 trade halves so that even
// lanes hold 4 consecutive columns of row g and odd lanes 4 of row g + 8. rg/rg8 point at column 0.
__device__ __forceinline__ void red_block(float* rg, float* rg8, bool okg, bool okg8, float a0, float a1, float a2, float a3,
                                          int t) {
  const bool odd = t & 1;
  const float y0 = __shfl_xor_sync(0xffffffffu, odd ? a0 : a2, 1);
  const float y1 = __shfl_xor_sync(0xffffffffu, odd ? a1 : a3, 1);
  if (odd) {
    if (okg8) red_add4(rg8 + 2 * (t - 1), y0, y1, a2, a3);
  } else if (okg) {
    red_add4(rg + 2 * t, a0, a1, y0, y1);
  }
}

// Bulk reduction of `bytes` of fp32 from shared to global memory by the copy engine (dst += src).
__device__ __forceinline__ void bulk_reduce_add(float* dst, u32 src, int bytes) {
  asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\n" ::"l"(dst), "r"(src), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void bulk_wait_read() { asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory"); }
__device__ __forceinline__ void bulk_wait_all() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }

// wgmma shared-memory matrix descriptor, 128-byte swizzle. Byte offsets: lbo = leading-dimension
// offset (MN-major: between 64-element groups along M/N), sbo = stride offset (between 8-row groups).
__device__ __forceinline__ u64 make_desc(u32 addr, u32 lbo, u32 sbo) {
  return (u64)((addr & 0x3FFFF) >> 4) | ((u64)((lbo & 0x3FFFF) >> 4) << 16) | ((u64)((sbo & 0x3FFFF) >> 4) << 32) |
         (1ull << 62);
}

template <int TA, int TB>
__device__ __forceinline__ void wgmma_ss_n64(float (&d)[32], u64 da, u64 db, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32" WGMMA_AB " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, %35, %36;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(da), "l"(db), "r"(accumulate), "n"(TA), "n"(TB));
}

template <int TA, int TB>
__device__ __forceinline__ void wgmma_ss_n32(float (&d)[16], u64 da, u64 db, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k16.f32" WGMMA_AB " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, %16, %17, p, 1, 1, %19, %20;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "l"(da), "l"(db), "r"(accumulate), "n"(TA), "n"(TB));
}

template <int TB>
__device__ __forceinline__ void wgmma_rs_n64(float (&d)[32], const u32 (&a)[4], u64 db, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32" WGMMA_AB " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate), "n"(TB));
}

template <int TA, int TB>
__device__ __forceinline__ void wgmma_ss_n128(float (&d)[64], u64 da, u64 db, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32" WGMMA_AB " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, %67, %68;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(da), "l"(db), "r"(accumulate), "n"(TA), "n"(TB));
}

template <int TB>
__device__ __forceinline__ void wgmma_rs_n128(float (&d)[64], const u32 (&a)[4], u64 db, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32" WGMMA_AB " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, %70;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate), "n"(TB));
}

// ---------------------------------------------------------------------------------------------
// Tiles and masks

// Copy rows [row0, row0 + ROWS) of a [T, *, D] tensor (row stride `stride` elements; `src` already
// points at the head) into swizzled panels at `dst`. Rows at or past T are zero-filled, so they
// can never carry NaN into a product.
template <int ROWS, int NT>
__device__ __forceinline__ void load_tile(u32 dst, const u16* __restrict__ src, int row0, int T, long long stride, int tid) {
  constexpr int CPR = D / 8;        // 16-byte chunks per row
  constexpr int STEP = NT / CPR;    // rows per pass; a multiple of 8 keeps each thread's swizzle fixed
  static_assert(STEP % 8 == 0 && ROWS % STEP == 0, "tile rows must split evenly over the loading threads");
  const int r0 = tid / CPR, ch = tid % CPR;
  u32 d = dst + (ch >> 3) * (ROWS * 128) + r0 * 128 + (((ch & 7) ^ (r0 & 7)) << 4);
  const u16* s = src + (long long)(row0 + r0) * stride + ch * 8;
#pragma unroll 4
  for (int r = row0 + r0; r < row0 + ROWS; r += STEP) {
    const bool ok = r < T;
    cp_async16(d, ok ? s : src, ok);
    d += STEP * 128;
    s += STEP * stride;
  }
}

// The key intervals of one query row; rows past the end (and padding rows) see nothing.
struct RowMask {
  int lo[WEFT_M], hi[WEFT_M];
};

__device__ __forceinline__ RowMask row_mask(const int* __restrict__ qlo, const int* __restrict__ qhi, int row, int T) {
  RowMask m;
#pragma unroll
  for (int s = 0; s < WEFT_M; s++) {
    m.lo[s] = row < T ? qlo[row * WEFT_M + s] : 0;
    m.hi[s] = row < T ? qhi[row * WEFT_M + s] : 0;
  }
  return m;
}

// Key position p (−1 = padding) is visible to the row. lo ≥ 0 always, so padding never is.
__device__ __forceinline__ bool sees(const RowMask& m, int p) {
  bool ok = false;
#pragma unroll
  for (int s = 0; s < WEFT_M; s++) ok |= (m.lo[s] <= p) & (p < m.hi[s]);
  return ok;
}

__device__ __forceinline__ int key_pos(const int* __restrict__ kpos, int c, int T) { return c < T ? kpos[c] : -1; }

__device__ __forceinline__ float sigmoidf_(float x) {
  return x >= 0.f ? 1.f / (1.f + expf(-x)) : expf(x) / (1.f + expf(x));
}
__device__ __forceinline__ float log_sigmoidf_(float x) {
  return x >= 0.f ? -log1pf(expf(-x)) : x - log1pf(expf(x));
}

// ---------------------------------------------------------------------------------------------
// Block skipping. Per query tile and mask slot: (min lo, max lo, min hi, max hi) over its rows;
// per key tile: (min position, max position, has padding). A (query tile, key tile) pair is
// empty when no row's interval can reach the keys, full when every row's interval of one slot
// covers [min, max] of keys without padding, partial otherwise (tested per element).

extern "C" __global__ void weft_mask_qsum(const int* __restrict__ qlo, const int* __restrict__ qhi, int T, int tile,
                                          int4* __restrict__ out) {
  __shared__ int4 part[8];
  const int t0 = blockIdx.x * tile, t1 = min(T, t0 + tile);
  for (int s = 0; s < WEFT_M; s++) {
    int4 a = make_int4(0x7fffffff, -0x7fffffff, 0x7fffffff, -0x7fffffff);
    for (int r = t0 + threadIdx.x; r < t1; r += blockDim.x) {
      const int lo = qlo[r * WEFT_M + s], hi = qhi[r * WEFT_M + s];
      a.x = min(a.x, lo); a.y = max(a.y, lo); a.z = min(a.z, hi); a.w = max(a.w, hi);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      a.x = min(a.x, __shfl_xor_sync(0xffffffffu, a.x, o));
      a.y = max(a.y, __shfl_xor_sync(0xffffffffu, a.y, o));
      a.z = min(a.z, __shfl_xor_sync(0xffffffffu, a.z, o));
      a.w = max(a.w, __shfl_xor_sync(0xffffffffu, a.w, o));
    }
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = a;
    __syncthreads();
    if (threadIdx.x == 0) {
      int4 b = part[0];
      for (int w = 1; w < (int)(blockDim.x >> 5); w++) {
        b.x = min(b.x, part[w].x); b.y = max(b.y, part[w].y); b.z = min(b.z, part[w].z); b.w = max(b.w, part[w].w);
      }
      out[blockIdx.x * WEFT_M + s] = b;
    }
    __syncthreads();
  }
}

extern "C" __global__ void weft_mask_ksum(const int* __restrict__ kpos, int T, int tile, int ntiles, int4* __restrict__ out) {
  const int kt = blockIdx.x * blockDim.x + threadIdx.x;
  if (kt >= ntiles) return;
  int mn = 0x7fffffff, mx = -1, pad = 0;
  for (int c = kt * tile; c < kt * tile + tile; c++) {
    const int p = c < T ? kpos[c] : -1;
    if (p < 0) { pad = 1; continue; }
    mn = min(mn, p); mx = max(mx, p);
  }
  out[kt] = make_int4(mn, mx, pad, 0);
}

// 0 empty, 1 full, 2 partial
__device__ __forceinline__ int classify(const int4* __restrict__ qs, int4 ks) {
  if (ks.x > ks.y) return 0;
  bool any = false, full = false;
#pragma unroll
  for (int s = 0; s < WEFT_M; s++) {
    const int4 a = qs[s];
    if (a.x <= ks.y && a.w > ks.x) any = true;
    if (!ks.z && a.y <= ks.x && a.z > ks.y) full = true;
  }
  return full ? 1 : any ? 2 : 0;
}

// For each tile of the listed axis (one block each), the ascending list of non-empty tiles of the
// other axis: entry = tile | (partial << 30), and their count. by_key = 0: per query tile, list
// key tiles (forward); by_key = 1: per key tile, list query tiles (backward). Row stride = other count.
extern "C" __global__ void __launch_bounds__(256) weft_mask_list(const int4* __restrict__ qsum, const int4* __restrict__ ksum,
                                                              int nq, int nk, int by_key, int* __restrict__ list,
                                                              int* __restrict__ count) {
  __shared__ int warp_total[8];
  const int a = blockIdx.x, nb = by_key ? nq : nk;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int* row = list + (long long)a * nb;
  int base = 0;
  for (int b0 = 0; b0 < nb; b0 += 256) {
    const int b = b0 + threadIdx.x;
    int cls = 0;
    if (b < nb) cls = by_key ? classify(qsum + (long long)b * WEFT_M, ksum[a]) : classify(qsum + (long long)a * WEFT_M, ksum[b]);
    const unsigned ballot = __ballot_sync(0xffffffffu, cls != 0);
    if (lane == 0) warp_total[warp] = __popc(ballot);
    __syncthreads();
    int before = 0, total = 0;
#pragma unroll
    for (int w = 0; w < 8; w++) {
      before += w < warp ? warp_total[w] : 0;
      total += warp_total[w];
    }
    if (cls != 0) row[base + before + __popc(ballot & ((1u << lane) - 1u))] = b | ((cls == 2) << 30);
    base += total;
    __syncthreads();
  }
  if (threadIdx.x == 0) count[a] = base;
}

// ---------------------------------------------------------------------------------------------
// Small elementwise kernels

// delta[h, t] = Σ_d dout[t, h, d] · out[t, h, d]; out in f32 (out_f32 = 1) or the input type.
extern "C" __global__ void weft_attn_delta(const u16* __restrict__ dout, const void* __restrict__ out, int out_f32, int T, int H,
                                           float* __restrict__ delta) {
  const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= T * H) return;
  const long long b = (long long)row * D;
  float acc = 0.f;
#pragma unroll
  for (int d = lane; d < D; d += 32) {
    const float o = out_f32 ? ((const float*)out)[b + d] : widen(((const u16*)out)[b + d]);
    acc += widen(dout[b + d]) * o;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (lane == 0) delta[(row % H) * (long long)T + row / H] = acc;
}

// state ← merge(state, part) over rows of [T, H, D] (lse [H, T]); either side may be −∞.
extern "C" __global__ void weft_attn_merge(float* __restrict__ out, float* __restrict__ lse, const float* __restrict__ out_b,
                                           const float* __restrict__ lse_b, int T, int H) {
  const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= T * H) return;
  const long long li = (long long)(row % H) * T + row / H, b = (long long)row * D;
  const float la = lse[li], lb = lse_b[li];
  if (lb == NEG_INF) return;
  if (la == NEG_INF) {
    for (int d = lane; d < D; d += 32) out[b + d] = out_b[b + d];
  } else {
    const float w = sigmoidf_(lb - la);
    for (int d = lane; d < D; d += 32) out[b + d] -= w * (out[b + d] - out_b[b + d]);
  }
  __syncwarp();
  if (lane == 0) lse[li] = la == NEG_INF ? lb : la - log_sigmoidf_(la - lb);
}

// ---------------------------------------------------------------------------------------------
// Forward building blocks (one warpgroup = 64 query rows × a 128-key tile)

// S = Q Kᵀ for the warpgroup's 64 rows: Q rows start at byte `qs` (inside a 128-row tile), K tile at `ks`.
__device__ __forceinline__ void qk_gemm(float (&s)[64], u32 qs, u32 ks) {
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) {
    const u64 da = make_desc(qs + (kk >> 2) * PANEL128 + (kk & 3) * 32, 16, 1024);
    const u64 db = make_desc(ks + (kk >> 2) * PANEL128 + (kk & 3) * 32, 16, 1024);
    wgmma_ss_n128<0, 0>(s, da, db, kk > 0);
  }
}

// O += P V: P from registers (8 k-steps of 16 keys), V tile [128 keys][D] at `vs` read N-major.
template <int DD>
__device__ __forceinline__ void pv_gemm(float (&o)[DD / 2], const u32 (&p)[8][4], u32 vs) {
#pragma unroll
  for (int kk = 0; kk < 8; kk++) {
    const u64 db = make_desc(vs + kk * 2048, PANEL128, 1024);
    if constexpr (DD == 128) wgmma_rs_n128<1>(o, p[kk], db, 1);
    else wgmma_rs_n64<1>(o, p[kk], db, 1);
  }
}

// The thread's two query rows (g and g + 8 of its warp's 16) and their masks.
struct FwdRows {
  int row[2];
  RowMask m[2];
};

// Accumulator element e of n8-block i sits at row (e >> 1) ? g + 8 : g, column 8i + 2t + (e & 1).
// Masks a partial tile, then does one online-softmax step: new row max, rescale O and l, P = exp(S − max).
__device__ __forceinline__ void softmax_step(float (&s)[64], float (&o)[D / 2], float (&mrow)[2], float (&lrow)[2],
                                             u32 (&p)[8][4], bool partial, const FwdRows& fr,
                                             const int* __restrict__ kpos, int kt, int Tk, int t, float sl2) {
  if (partial) {
#pragma unroll
    for (int i = 0; i < 16; i++) {
      const int c = kt * 128 + 8 * i + 2 * t;
      const int p0 = key_pos(kpos, c, Tk), p1 = key_pos(kpos, c + 1, Tk);
#pragma unroll
      for (int r = 0; r < 2; r++) {
        if (!sees(fr.m[r], p0)) s[4 * i + 2 * r] = NEG_INF;
        if (!sees(fr.m[r], p1)) s[4 * i + 2 * r + 1] = NEG_INF;
      }
    }
  }
#pragma unroll
  for (int r = 0; r < 2; r++) {
    float mx = mrow[r];
#pragma unroll
    for (int i = 0; i < 16; i++) mx = fmaxf(mx, fmaxf(s[4 * i + 2 * r], s[4 * i + 2 * r + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float ms = mx == NEG_INF ? 0.f : mx * sl2;  // a row that has seen nothing stays at 0
    const float corr = ex2(mrow[r] * sl2 - ms);
    mrow[r] = mx;
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < 16; i++) {
      const float a = ex2(fmaf(s[4 * i + 2 * r], sl2, -ms)), b = ex2(fmaf(s[4 * i + 2 * r + 1], sl2, -ms));
      s[4 * i + 2 * r] = a;
      s[4 * i + 2 * r + 1] = b;
      sum += a + b;
    }
    lrow[r] = lrow[r] * corr + sum;
#pragma unroll
    for (int i = 0; i < D / 8; i++) {
      o[4 * i + 2 * r] *= corr;
      o[4 * i + 2 * r + 1] *= corr;
    }
  }
#pragma unroll
  for (int kk = 0; kk < 8; kk++) {
    p[kk][0] = pack2(s[8 * kk + 0], s[8 * kk + 1]);
    p[kk][1] = pack2(s[8 * kk + 2], s[8 * kk + 3]);
    p[kk][2] = pack2(s[8 * kk + 4], s[8 * kk + 5]);
    p[kk][3] = pack2(s[8 * kk + 6], s[8 * kk + 7]);
  }
}

// Normalise and store (or merge into the running fp32 state when `merge`).
__device__ __forceinline__ void fwd_epilogue(float (&o)[D / 2], float (&mrow)[2], float (&lrow)[2], const FwdRows& fr,
                                             float* __restrict__ out, float* __restrict__ lse, int Tq, int H, int h, int t,
                                             float scale, int merge) {
#pragma unroll
  for (int r = 0; r < 2; r++) {
    float l = lrow[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const float L = l > 0.f ? mrow[r] * scale + logf(l) : NEG_INF;
    const float inv = l > 0.f ? 1.f / l : 0.f;
    const int row = fr.row[r];
    const bool valid = row < Tq;
    float* orow = out + ((long long)row * H + h) * D + 2 * t;
    float* lp = lse + (long long)h * Tq + row;
    const float la = merge && valid ? *lp : 0.f;
    __syncwarp();  // every lane of the row has read the old lse before lane t = 0 replaces it
    if (!valid) continue;
    if (!merge) {
#pragma unroll
      for (int i = 0; i < D / 8; i++)
        *(float2*)(orow + 8 * i) = make_float2(o[4 * i + 2 * r] * inv, o[4 * i + 2 * r + 1] * inv);
      if (t == 0) *lp = L;
      continue;
    }
    if (L == NEG_INF) continue;
    const float w = la == NEG_INF ? 1.f : sigmoidf_(L - la);
#pragma unroll
    for (int i = 0; i < D / 8; i++) {
      float2 a = la == NEG_INF ? make_float2(0.f, 0.f) : *(float2*)(orow + 8 * i);
      a.x -= w * (a.x - o[4 * i + 2 * r] * inv);
      a.y -= w * (a.y - o[4 * i + 2 * r + 1] * inv);
      *(float2*)(orow + 8 * i) = a;
    }
    if (t == 0) *lp = la == NEG_INF ? L : la - log_sigmoidf_(la - L);
  }
}

__device__ __forceinline__ FwdRows fwd_rows(const int* __restrict__ qlo, const int* __restrict__ qhi, int q0, int Tq) {
  FwdRows fr;
  fr.row[0] = q0;
  fr.row[1] = q0 + 8;
  fr.m[0] = row_mask(qlo, qhi, q0, Tq);
  fr.m[1] = row_mask(qlo, qhi, q0 + 8, Tq);
  return fr;
}

// ---------------------------------------------------------------------------------------------
// Forward, all threads load (cp.async, double-buffered) and compute: 2 warpgroups × 64 rows.

extern "C" __global__ void __launch_bounds__(256, 1)
    weft_fwd_sync(const u16* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v, float* __restrict__ out,
                  float* __restrict__ lse, const int* __restrict__ qlo, const int* __restrict__ qhi,
                  const int* __restrict__ kpos, const int* __restrict__ list, const int* __restrict__ count, int Tq, int Tk,
                  int H, int Hkv, int nk, float scale, int merge) {
  extern __shared__ unsigned char smem_raw[];
  const u32 base = (smem_addr(smem_raw) + 1023u) & ~1023u;
  const u32 sQ = base, sK = sQ + TILE128, sV = sK + 2 * TILE128;
  const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int qt = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, hk = h / (H / Hkv);
  const int q0 = qt * 128;
  const long long qstride = (long long)H * D, kstride = (long long)Hkv * D;
  const u16* qh = q + (long long)h * D;
  const u16* kh = k + (long long)hk * D;
  const u16* vh = v + (long long)hk * D;
  const int* lst = list + (long long)qt * nk;
  const int cnt = count[qt];
  const float sl2 = scale * LOG2E;

  load_tile<128, 256>(sQ, qh, q0, Tq, qstride, tid);
  if (cnt > 0) {
    const int kt = lst[0] & TILE_MASK;
    load_tile<128, 256>(sK, kh, kt * 128, Tk, kstride, tid);
    load_tile<128, 256>(sV, vh, kt * 128, Tk, kstride, tid);
  }
  cp_async_commit();

  const FwdRows fr = fwd_rows(qlo, qhi, q0 + wg * 64 + warp * 16 + g, Tq);
  float o[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; i++) o[i] = 0.f;
  float mrow[2] = {NEG_INF, NEG_INF}, lrow[2] = {0.f, 0.f};
  u32 p[8][4];
  float s[64];

  for (int n = 0; n < cnt; n++) {
    cp_async_wait_all();
    fence_async_smem();
    __syncthreads();
    const int st = n & 1;
    if (n + 1 < cnt) {
      const int kt1 = lst[n + 1] & TILE_MASK;
      load_tile<128, 256>(sK + (st ^ 1) * TILE128, kh, kt1 * 128, Tk, kstride, tid);
      load_tile<128, 256>(sV + (st ^ 1) * TILE128, vh, kt1 * 128, Tk, kstride, tid);
    }
    cp_async_commit();
    const int e = lst[n];
    wg_fence();
    qk_gemm(s, sQ + wg * 64 * 128, sK + st * TILE128);
    wg_commit();
    wg_wait<0>();
    reg_fence(s);
    reg_fence(o);
    softmax_step(s, o, mrow, lrow, p, (e >> 30) & 1, fr, kpos, e & TILE_MASK, Tk, t, sl2);
    wg_fence();
    pv_gemm<D>(o, p, sV + st * TILE128);
    wg_commit();
    wg_wait<0>();
    reg_fence(o);
  }
  fwd_epilogue(o, mrow, lrow, fr, out, lse, Tq, H, h, t, scale, merge);
}

// ---------------------------------------------------------------------------------------------
// Forward, warp-specialized: warpgroup 0 loads (cp.async completing on mbarriers, WEFT_STAGES
// K/V stages, K and V released separately so the next K load starts as soon as S is done);
// warpgroups 1 and 2 compute 64 rows each and take turns on the tensor cores (named barriers 1
// and 2), so one's softmax overlaps the other's matrix products. Each consumer issues
// S = Q K_nᵀ together with O += P_{n−1} V_{n−1}.

constexpr int FWD_WS_THREADS = 384;

extern "C" __global__ void __launch_bounds__(FWD_WS_THREADS, 1)
    weft_fwd(const u16* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v, float* __restrict__ out,
             float* __restrict__ lse, const int* __restrict__ qlo, const int* __restrict__ qhi, const int* __restrict__ kpos,
             const int* __restrict__ list, const int* __restrict__ count, int Tq, int Tk, int H, int Hkv, int nk, float scale,
             int merge) {
  constexpr int ST = WEFT_STAGES;
  extern __shared__ unsigned char smem_raw[];
  const u32 base = (smem_addr(smem_raw) + 1023u) & ~1023u;
  const u32 sQ = base, sK = sQ + TILE128, sV = sK + ST * TILE128;
  // mbarriers: qfull, kfull[ST], vfull[ST], kempty[ST], vempty[ST]
  const u32 qfull = sV + ST * TILE128, kfull = qfull + 8, vfull = kfull + 8 * ST, kempty = vfull + 8 * ST,
            vempty = kempty + 8 * ST;
  const int tid = threadIdx.x, wg = tid >> 7;
  const int qt = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, hk = h / (H / Hkv);
  const int q0 = qt * 128;
  const int* lst = list + (long long)qt * nk;
  const int cnt = count[qt];

  if (tid == 0) {
    mbar_init(qfull, 128);
    for (int s = 0; s < ST; s++) {
      mbar_init(kfull + 8 * s, 128);
      mbar_init(vfull + 8 * s, 128);
      mbar_init(kempty + 8 * s, 8);
      mbar_init(vempty + 8 * s, 8);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (wg == 0) {
    regs_dec<40>();
    const long long qstride = (long long)H * D, kstride = (long long)Hkv * D;
    const u16* kh = k + (long long)hk * D;
    const u16* vh = v + (long long)hk * D;
    load_tile<128, 128>(sQ, q + (long long)h * D, q0, Tq, qstride, tid);
    cp_async_arrive(qfull);
    int next = cnt > 0 ? lst[0] & TILE_MASK : 0;
    for (int n = 0; n < cnt; n++) {
      const int st = n % ST, ph = ((n / ST) - 1) & 1, kt = next;
      if (n + 1 < cnt) next = lst[n + 1] & TILE_MASK;
      if (n >= ST) mbar_wait(kempty + 8 * st, ph);
      load_tile<128, 128>(sK + st * TILE128, kh, kt * 128, Tk, kstride, tid);
      cp_async_arrive(kfull + 8 * st);
      if (n >= ST) mbar_wait(vempty + 8 * st, ph);
      load_tile<128, 128>(sV + st * TILE128, vh, kt * 128, Tk, kstride, tid);
      cp_async_arrive(vfull + 8 * st);
    }
    cp_async_wait_all();
  } else {
    regs_inc<232>();
    const int cw = wg - 1, warp = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const float sl2 = scale * LOG2E;
    if (cw == 1) named_arrive(1, 256);  // consumer 0 goes first
    const FwdRows fr = fwd_rows(qlo, qhi, q0 + cw * 64 + warp * 16 + g, Tq);
    float o[D / 2];
#pragma unroll
    for (int i = 0; i < D / 2; i++) o[i] = 0.f;
    float mrow[2] = {NEG_INF, NEG_INF}, lrow[2] = {0.f, 0.f};
    u32 p[8][4];
    float s[64];
    mbar_wait(qfull, 0);

    for (int n = 0; n < cnt; n++) {
      const int st = n % ST, pst = (n + ST - 1) % ST;
      const int e = lst[n];
      mbar_wait(kfull + 8 * st, (n / ST) & 1);
      if (n > 0) mbar_wait(vfull + 8 * pst, ((n - 1) / ST) & 1);
      fence_async_smem();
      named_sync(1 + cw, 256);
      wg_fence();
      qk_gemm(s, sQ + cw * 64 * 128, sK + st * TILE128);
      if (n > 0) pv_gemm<D>(o, p, sV + pst * TILE128);
      wg_commit();
      named_arrive(2 - cw, 256);
      wg_wait<0>();
      reg_fence(s);
      reg_fence(o);
      if (lane == 0) {
        mbar_arrive(kempty + 8 * st);
        if (n > 0) mbar_arrive(vempty + 8 * pst);
      }
      softmax_step(s, o, mrow, lrow, p, (e >> 30) & 1, fr, kpos, e & TILE_MASK, Tk, t, sl2);
    }
    if (cnt > 0) {
      const int pst = (cnt - 1) % ST;
      mbar_wait(vfull + 8 * pst, ((cnt - 1) / ST) & 1);
      fence_async_smem();
      wg_fence();
      pv_gemm<D>(o, p, sV + pst * TILE128);
      wg_commit();
      wg_wait<0>();
      reg_fence(o);
    }
    if (cw == 0) named_sync(1, 256);  // the other consumer's last turn signal
    fwd_epilogue(o, mrow, lrow, fr, out, lse, Tq, H, h, t, scale, merge);
  }
}

// ---------------------------------------------------------------------------------------------
// Backward: one CTA per (128-key tile, query head), 3 warpgroups, looping over the non-empty
// 64-row query tiles of the key tile's list. Warpgroups 1 and 2 own 64 keys each; they load Q, dO,
// lse and delta one tile ahead (cp.async, double-buffered), and per query tile warpgroup w computes
//   Sᵀ = K_w Qᵀ, dPᵀ = V_w dOᵀ (64 × 64), P = exp(S·scale − lse), dS = P ∘ (dP − delta),
//   dV_w += Pᵀ dO, dK_w += dSᵀ Q (registers as the A operand),
// writes dSᵀ to shared memory, then its half of dQ's columns, dQ[:, cols_w] = dS K[:, cols_w] over
// all 128 keys (so each tile pair reduces one 64 × D partial), and leaves it, fp32 and scaled, in
// one of two shared-memory buffers. Warpgroup 0 gives its registers to them; its warp 0 is the dQ
// writer: it adds each staged tile to global dq with the copy engine's bulk reductions (one per
// row), waits until they have read the buffer and hands it back (mbarriers dqfull, dqempty). The
// reduction traffic, the largest memory stream of the backward, thus runs beside the next tiles'
// matrix products instead of between them. dq's element strides per head (dq_hs) and per row
// (dq_rs) are parameters. dK and dV (fp32) are added to global memory once at the end with vector
// atomics, so the query heads of a GQA group and ring steps accumulate.

#ifndef WEFT_DQ_SPLIT  // D = 64: 1 splits dQ's columns between the warpgroups (one partial per tile), 0 splits the keys (two)
#define WEFT_DQ_SPLIT 1
#endif

constexpr int BWD_THREADS = 384;
constexpr int PANEL64 = 64 * 128;
constexpr int TILE64 = NP * PANEL64;
constexpr bool DQ_COLSPLIT = D == 128 || WEFT_DQ_SPLIT;
constexpr int DQ_N = DQ_COLSPLIT ? D / 2 : 64;  // dQ columns per warpgroup
constexpr int DQ_PARTS = DQ_COLSPLIT ? 1 : 2;   // partial sums per tile, each reduced into dq
constexpr int DQ_ROW = D * 4 + 32;              // staged row: D fp32 + 32 bytes (conflict-free float2 stores)
constexpr int DQ_BUF = DQ_PARTS * 64 * DQ_ROW;

__device__ __forceinline__ void bwd_load_rows(float* sl, float* sd, const float* __restrict__ lse,
                                              const float* __restrict__ delta, int h, int Tq, int r0, int tid) {
  // threads 0..63 stage lse·log2(e) (+∞ when the row saw nothing or lies past the end), 64..127 delta
  if (tid < 64) {
    const int r = r0 + tid;
    const float L = r < Tq ? lse[(long long)h * Tq + r] : NEG_INF;
    sl[tid] = L == NEG_INF ? POS_INF : L * LOG2E;
  } else if (tid < 128) {
    const int r = r0 + tid - 64;
    sd[tid - 64] = r < Tq ? delta[(long long)h * Tq + r] : 0.f;
  }
}

template <int DD>
__device__ __forceinline__ void rs_acc(float (&acc)[DD / 2], const u32 (&a)[4], u64 db) {
  if constexpr (DD == 128) wgmma_rs_n128<1>(acc, a, db, 1);
  else wgmma_rs_n64<1>(acc, a, db, 1);
}

// Sᵀ (or dPᵀ) = A Bᵀ for the warpgroup's 64 keys: A rows at `as` inside a 128-row tile, B a 64-row tile.
__device__ __forceinline__ void bwd_t_gemm(float (&acc)[32], u32 as, u32 bs) {
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) {
    const u32 a = as + (kk >> 2) * PANEL128 + (kk & 3) * 32, b = bs + (kk >> 2) * PANEL64 + (kk & 3) * 32;
    wgmma_ss_n64<0, 0>(acc, make_desc(a, 16, 1024), make_desc(b, 16, 1024), kk > 0);
  }
}

// acc (64 keys × D) += A (registers, 64 keys × 64 queries) · B (64-row tile [64 queries][D], read N-major)
__device__ __forceinline__ void bwd_kv_gemm(float (&acc)[D / 2], const u32 (&a)[4][4], u32 bs) {
#pragma unroll
  for (int kk = 0; kk < 4; kk++) rs_acc<D>(acc, a[kk], make_desc(bs + kk * 2048, PANEL64, 1024));
}

// dQ (64 queries × DQ_N columns) = dS K: dSᵀ stored [128 keys][64 queries] at `ss` (read M-major), K the
// 128-row tile at `ks` (read N-major). Column split: warpgroup w takes columns [w·DQ_N, (w + 1)·DQ_N)
// over all 128 keys; key split (D = 64, WEFT_DQ_SPLIT 0): all 64 columns over its own 64 keys.
template <int DN>
__device__ __forceinline__ void bwd_dq_gemm(float (&acc)[DN / 2], u32 ss, u32 ks, int wg) {
  if constexpr (D == 128) {
#pragma unroll
    for (int kk = 0; kk < 8; kk++)
      wgmma_ss_n64<1, 1>(acc, make_desc(ss + kk * 2048, PANEL128, 1024), make_desc(ks + wg * PANEL128 + kk * 2048, PANEL128, 1024),
                         kk > 0);
  } else if constexpr (DN == 32) {
#pragma unroll
    for (int kk = 0; kk < 8; kk++)
      wgmma_ss_n32<1, 1>(acc, make_desc(ss + kk * 2048, PANEL128, 1024), make_desc(ks + kk * 2048 + wg * 64, PANEL128, 1024), kk > 0);
  } else {
#pragma unroll
    for (int kk = 0; kk < 4; kk++)
      wgmma_ss_n64<1, 1>(acc, make_desc(ss + (wg * 4 + kk) * 2048, PANEL128, 1024),
                         make_desc(ks + (wg * 4 + kk) * 2048, PANEL128, 1024), kk > 0);
  }
}

extern "C" __global__ void __launch_bounds__(BWD_THREADS, 1)
    weft_bwd(const u16* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v, const u16* __restrict__ dout,
             const float* __restrict__ lse, const float* __restrict__ delta, float* __restrict__ dq, float* __restrict__ dk,
             float* __restrict__ dv, const int* __restrict__ qlo, const int* __restrict__ qhi, const int* __restrict__ kpos,
             const int* __restrict__ list, const int* __restrict__ count, int Tq, int Tk, int H, int Hkv, int nq,
             float scale, long long dq_hs, long long dq_rs) {
  extern __shared__ unsigned char smem_raw[];
  const u32 base = (smem_addr(smem_raw) + 1023u) & ~1023u;
  const u32 sK = base, sV = sK + TILE128, sQ = sV + TILE128, sO = sQ + 2 * TILE64, sS = sO + 2 * TILE64;
  const u32 sDQ = sS + PANEL128;      // [2][DQ_BUF]
  const u32 sRow = sDQ + 2 * DQ_BUF;  // lse·log2(e) [2][64], delta [2][64]
  const u32 dqfull = sRow + 1024, dqempty = dqfull + 16;  // mbarriers [2] each
  float* sLse = (float*)(smem_raw + (sRow - smem_addr(smem_raw)));
  float* sDel = sLse + 128;
  const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
  const int kt = blockIdx.x, h = blockIdx.y, hk = h / (H / Hkv);
  const int* lst = list + (long long)kt * nq;
  const int cnt = count[kt];

  if (tid == 0) {
    for (int s = 0; s < 2; s++) {
      mbar_init(dqfull + 8 * s, 256);
      mbar_init(dqempty + 8 * s, 1);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  // register budget: 24 · 128 + 240 · 256 = 168 · 384, exactly what the launch allocated (a warpgroup
  // asking for more than the others give back would wait forever in setmaxnreg)
  if (wg == 0) {
    regs_dec<24>();
    if (warp == 0) {  // dQ writer: bulk reductions of each staged tile into dq
      float* dqh = dq + h * dq_hs;
      (void)dqh;
      for (int n = 0; n < cnt; n++) {
        const int st = n & 1, q0 = (lst[n] & TILE_MASK) * 64;
        mbar_wait(dqfull + 8 * st, (n >> 1) & 1);
#if WEFT_ABL < 1
        for (int j = lane; j < 64 * DQ_PARTS; j += 32) {
          const int row = j & 63;
          if (q0 + row < Tq) bulk_reduce_add(dqh + (q0 + row) * dq_rs, sDQ + st * DQ_BUF + (j >> 6) * 64 * DQ_ROW + row * DQ_ROW, D * 4);
        }
        bulk_commit();
        bulk_wait_read();
#endif
        __syncwarp();
        if (lane == 0) mbar_arrive(dqempty + 8 * st);
      }
      bulk_wait_all();
    }
  } else {
    regs_inc<240>();
    const int cw = wg - 1, ctid = tid - 128, g = lane >> 2, t = lane & 3;
    const long long qstride = (long long)H * D, kstride = (long long)Hkv * D;
    const u16* qh = q + (long long)h * D;
    const u16* oh = dout + (long long)h * D;
    const float sl2 = scale * LOG2E;

    load_tile<128, 256>(sK, k + (long long)hk * D, kt * 128, Tk, kstride, ctid);
    load_tile<128, 256>(sV, v + (long long)hk * D, kt * 128, Tk, kstride, ctid);
    if (cnt > 0) {
      const int qi = lst[0] & TILE_MASK;
      load_tile<64, 256>(sQ, qh, qi * 64, Tq, qstride, ctid);
      load_tile<64, 256>(sO, oh, qi * 64, Tq, qstride, ctid);
      bwd_load_rows(sLse, sDel, lse, delta, h, Tq, qi * 64, ctid);
    }
    cp_async_commit();

    const int krow0 = kt * 128 + cw * 64 + warp * 16 + g;
    const int kp[2] = {key_pos(kpos, krow0, Tk), key_pos(kpos, krow0 + 8, Tk)};
    float dva[D / 2], dka[D / 2];
#pragma unroll
    for (int i = 0; i < D / 2; i++) dva[i] = dka[i] = 0.f;
    float sT[32], dpT[32], dqa[DQ_N / 2];
    u32 pa[4][4], da[4][4];

    for (int n = 0; n < cnt; n++) {
      // this tile's Q, dO, lse, delta have landed, and both warpgroups are done with the previous
      // tile (its dQ product read dSᵀ and K; its buffers are reloaded next)
      cp_async_wait_all();
      fence_async_smem();
      named_sync(1, 256);
      const int st = n & 1;
      const u32 qs = sQ + st * TILE64, os = sO + st * TILE64;
      if (n + 1 < cnt) {
        const int qi1 = lst[n + 1] & TILE_MASK;
        load_tile<64, 256>(sQ + (st ^ 1) * TILE64, qh, qi1 * 64, Tq, qstride, ctid);
        load_tile<64, 256>(sO + (st ^ 1) * TILE64, oh, qi1 * 64, Tq, qstride, ctid);
        bwd_load_rows(sLse + 64 * (st ^ 1), sDel + 64 * (st ^ 1), lse, delta, h, Tq, qi1 * 64, ctid);
      }
      cp_async_commit();
      const int e = lst[n], qi = e & TILE_MASK;

      wg_fence();
      bwd_t_gemm(sT, sK + cw * 64 * 128, qs);
      bwd_t_gemm(dpT, sV + cw * 64 * 128, os);
      wg_commit();
      wg_wait<0>();
      reg_fence(sT);
      reg_fence(dpT);

      const float* L2 = sLse + 64 * st;
      const float* Dl = sDel + 64 * st;
      const bool partial = (e >> 30) & 1;
#pragma unroll
      for (int i = 0; i < 8; i++) {
#pragma unroll
        for (int j = 0; j < 2; j++) {
          const int c = 8 * i + 2 * t + j;
          const float lc = L2[c], dc = Dl[c];
          bool see0 = true, see1 = true;
          if (partial) {
            const RowMask m = row_mask(qlo, qhi, qi * 64 + c, Tq);
            see0 = sees(m, kp[0]);
            see1 = sees(m, kp[1]);
          }
          const float p0 = see0 ? ex2(fmaf(sT[4 * i + j], sl2, -lc)) : 0.f;
          const float p1 = see1 ? ex2(fmaf(sT[4 * i + 2 + j], sl2, -lc)) : 0.f;
          sT[4 * i + j] = p0;
          sT[4 * i + 2 + j] = p1;
          dpT[4 * i + j] = p0 * (dpT[4 * i + j] - dc);
          dpT[4 * i + 2 + j] = p1 * (dpT[4 * i + 2 + j] - dc);
        }
      }
#pragma unroll
      for (int kk = 0; kk < 4; kk++) {
#pragma unroll
        for (int j = 0; j < 4; j++) {
          pa[kk][j] = pack2(sT[8 * kk + 2 * j], sT[8 * kk + 2 * j + 1]);
          da[kk][j] = pack2(dpT[8 * kk + 2 * j], dpT[8 * kk + 2 * j + 1]);
        }
      }

      wg_fence();
      bwd_kv_gemm(dva, pa, os);
      bwd_kv_gemm(dka, da, qs);
      wg_commit();

      // dSᵀ → shared memory as [128 keys][64 queries], one swizzled panel
      {
        const int R = cw * 64 + warp * 16 + g;
#pragma unroll
        for (int i = 0; i < 8; i++) {
          const u32 a0 = sS + R * 128 + ((i ^ g) << 4) + 4 * t;
          const u32 v0 = da[i >> 1][2 * (i & 1)], v1 = da[i >> 1][2 * (i & 1) + 1];
          asm volatile("st.shared.u32 [%0], %1;\n" ::"r"(a0), "r"(v0) : "memory");
          asm volatile("st.shared.u32 [%0], %1;\n" ::"r"(a0 + 8 * 128), "r"(v1) : "memory");
        }
      }
      fence_async_smem();
      named_sync(1, 256);
      // the writer has read this dQ buffer's previous tile
      if (n >= 2) mbar_wait(dqempty + 8 * st, ((n >> 1) - 1) & 1);

      wg_fence();
      bwd_dq_gemm<DQ_N>(dqa, sS, sK, cw);
      wg_commit();
      wg_wait<0>();
      reg_fence(dqa);
      reg_fence(dva);
      reg_fence(dka);

      // stage dQ·scale for the writer
      {
        const int row = warp * 16 + g;
        const u32 b = sDQ + st * DQ_BUF + (DQ_PARTS == 2 ? cw * 64 * DQ_ROW : cw * DQ_N * 4) + row * DQ_ROW + 8 * t;
#pragma unroll
        for (int i = 0; i < DQ_N / 8; i++) {
          asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(b + 32 * i), "f"(dqa[4 * i] * scale), "f"(dqa[4 * i + 1] * scale)
                       : "memory");
          asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(b + 8 * DQ_ROW + 32 * i), "f"(dqa[4 * i + 2] * scale),
                       "f"(dqa[4 * i + 3] * scale)
                       : "memory");
        }
      }
      fence_async_smem();
      mbar_arrive(dqfull + 8 * st);
    }

    float* kd = dk + ((long long)krow0 * Hkv + hk) * D;
    float* vd = dv + ((long long)krow0 * Hkv + hk) * D;
    const long long down8 = 8LL * Hkv * D;
#pragma unroll
    for (int i = 0; i < D / 8; i++) {
      red_block(kd + 8 * i, kd + down8 + 8 * i, krow0 < Tk, krow0 + 8 < Tk, dka[4 * i] * scale, dka[4 * i + 1] * scale,
                dka[4 * i + 2] * scale, dka[4 * i + 3] * scale, t);
      red_block(vd + 8 * i, vd + down8 + 8 * i, krow0 < Tk, krow0 + 8 < Tk, dva[4 * i], dva[4 * i + 1], dva[4 * i + 2],
                dva[4 * i + 3], t);
    }
  }
}
