// weft split-K decode attention for Hopper (sm_90a): a few query rows per sequence against a long
// KV cache, where the work is reading K and V once at memory speed. Partial (out, lse) of every
// key split are merged in fp32 by the last CTA to finish its part (no second launch), and the
// result is written — or merged into a running fp32 state — as the training forward does.
//
// Compiled at run time by NVRTC with no headers. Compile-time choices (-D):
//   WEFT_D       head dim, 64 or 128
//   WEFT_F16     0: bf16 inputs, 1: fp16 inputs
//   WEFT_M       key intervals per query row (mask slots)
//   WEFT_WM      16-vector m-tiles per CTA (1, 2, 4); the 4 warps split each key tile WN = 4 / WM ways
//   WEFT_STAGES  K/V shared-memory stages of the cp.async pipeline
//   WEFT_MINB    CTAs per SM the launch aims at (the register bound of __launch_bounds__)
//
// Layouts as the AttnKernel seam: q [Tq, H, D], k/v [Tk, Hkv, D] (16-bit), out [Tq, H, D] f32,
// lse [H, Tq] f32 (natural log). Masks as MaskView: per query row WEFT_M key intervals [lo, hi) of
// global positions, per key row its global position (−1 = padding).
//
// Work split. A "row block" is a run of consecutive query rows (the host groups the rows of one
// sequence together); its vectors are (row, query head of the GQA group) pairs, up to 16·WM of
// them, so every K/V tile a CTA loads serves all the query heads that share it. Grid: (split,
// row block, kv head); the row block's list of key tiles it may see (weft_decode_tiles, _count,
// _list, once per mask view) is cut into `splits` equal parts. Masking is per element, so any
// view is exact; tiles no row of the block sees are never read (a batch whose sequences'
// tokens interleave in the cache reads each sequence's tiles once).
//
// Shared-memory tiles: 64 key rows × D, the 16-byte chunk c of row r stored at chunk c ^ (r % 8)
// (conflict-free ldmatrix).

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
#ifndef WEFT_WM
#define WEFT_WM 1
#endif
#ifndef WEFT_STAGES
#define WEFT_STAGES 4
#endif
#ifndef WEFT_MINB
#define WEFT_MINB 1
#endif

#define NEG_INF (__int_as_float(0xff800000))

constexpr int D = WEFT_D;
constexpr int WM = WEFT_WM;
constexpr int STAGES = WEFT_STAGES;
constexpr int WARPS = 4;
constexpr int THREADS = WARPS * 32;
constexpr int WN = WARPS / WM;     // warps sharing one m-tile, each on its own keys of the tile
constexpr int KT = 64;             // keys per tile
constexpr int NK = KT / WN;        // keys per warp per tile: 16, 32, 64
constexpr int NT = NK / 8;         // 8-key n-tiles per warp
constexpr int VB = 16 * WM;        // query vectors per CTA
constexpr int CH = D / 8;          // 16-byte chunks per row
constexpr int TILE_BYTES = KT * D * 2;
constexpr int STAGE_BYTES = 2 * TILE_BYTES + KT * 4;  // K, V, key positions
constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;

static_assert(D == 64 || D == 128, "head dim must be 64 or 128");
static_assert(WM == 1 || WM == 2 || WM == 4, "WEFT_WM must be 1, 2 or 4");
static_assert(STAGES >= 2, "at least two stages");
static_assert(WARPS * 16 * D * 4 + 2 * WARPS * 16 * 4 <= STAGES * STAGE_BYTES, "the warp merge reuses the stage memory");

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

__device__ __forceinline__ void cp_async16(u32 dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0) : "memory");
}
__device__ __forceinline__ void cp_async4(u32 dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 4 : 0) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

__device__ __forceinline__ void ldsm_x4(u32 (&r)[4], u32 addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(u32 (&r)[4], u32 addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

// d += a · b, m16n8k16, fp32 accumulators
__device__ __forceinline__ void mma16816(float (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) {
#if WEFT_F16
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
#else
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
#endif
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The key intervals of one query row; rows outside the block (and padding rows) see nothing.
struct RowMask {
  int lo[WEFT_M], hi[WEFT_M];
};

__device__ __forceinline__ RowMask row_mask(const int* __restrict__ qlo, const int* __restrict__ qhi, int row, bool valid) {
  RowMask m;
#pragma unroll
  for (int s = 0; s < WEFT_M; s++) {
    m.lo[s] = valid ? qlo[row * WEFT_M + s] : 0;
    m.hi[s] = valid ? qhi[row * WEFT_M + s] : 0;
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

// ---------------------------------------------------------------------------------------------
// Per mask view, before the decode: the list of key tiles each row block may see, in order.

constexpr int LIST_CHUNK = 2048;  // tiles per CTA of the list kernels: 256 threads × 8

// Per 64-key tile: (min, max) key position, (INT_MAX, −1) when the tile holds only padding. One warp per tile.
extern "C" __global__ void weft_decode_tiles(const int* __restrict__ kpos, int Tk, int ntiles, int2* __restrict__ tiles) {
  const int lane = threadIdx.x & 31, t = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  if (t >= ntiles) return;
  int mn = 0x7fffffff, mx = -1;
  for (int j = lane; j < KT; j += 32) {
    const int c = t * KT + j;
    const int p = c < Tk ? kpos[c] : -1;
    if (p >= 0) { mn = min(mn, p); mx = max(mx, p); }
  }
#pragma unroll
  for (int o = 16; o; o >>= 1) {
    mn = min(mn, __shfl_xor_sync(0xffffffffu, mn, o));
    mx = max(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  }
  if (lane == 0) tiles[t] = make_int2(mn, mx);
}

// Whether some row of [r0, r1) may see a key of the tile: an interval meets [min, max] of its
// positions (a superset: the decode masks per element).
__device__ __forceinline__ bool tile_hit(const int* __restrict__ qlo, const int* __restrict__ qhi, int r0, int r1, int2 s) {
  if (s.x > s.y) return false;
  for (int r = r0; r < r1; r++)
#pragma unroll
    for (int i = 0; i < WEFT_M; i++) {
      const int lo = qlo[r * WEFT_M + i], hi = qhi[r * WEFT_M + i];
      if (lo < hi && lo <= s.y && s.x < hi) return true;
    }
  return false;
}

// this thread's 8 tiles of chunk blockIdx.y: a bit per tile the row block may see
__device__ __forceinline__ u32 chunk_hits(const int* __restrict__ qlo, const int* __restrict__ qhi, int2 rr, const int2* __restrict__ tiles, int ntiles) {
  u32 bits = 0;
  const int t0 = blockIdx.y * LIST_CHUNK + threadIdx.x * 8;
#pragma unroll
  for (int j = 0; j < 8; j++)
    if (t0 + j < ntiles && tile_hit(qlo, qhi, rr.x, rr.y, tiles[t0 + j])) bits |= 1u << j;
  return bits;
}

// sum over the 256 threads of a block (all threads get it)
__device__ __forceinline__ int block_sum(int x, int* red) {
#pragma unroll
  for (int o = 16; o; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = x;
  __syncthreads();
  int t = 0;
#pragma unroll
  for (int w = 0; w < 8; w++) t += red[w];
  return t;
}

// grid (row blocks, chunks of 2048 tiles), 256 threads: counts[b][chunk] = tiles block b may see there
extern "C" __global__ void weft_decode_count(const int* __restrict__ qlo, const int* __restrict__ qhi, const int2* __restrict__ rows,
                                             const int2* __restrict__ tiles, int ntiles, int* __restrict__ counts) {
  __shared__ int red[8];
  const int n = block_sum(__popc(chunk_hits(qlo, qhi, rows[blockIdx.x], tiles, ntiles)), red);
  if (threadIdx.x == 0) counts[blockIdx.x * gridDim.y + blockIdx.y] = n;
}

// grid as weft_decode_count: list[b][..] = the tiles block b may see, in key order; total[b] their number
extern "C" __global__ void weft_decode_list(const int* __restrict__ qlo, const int* __restrict__ qhi, const int2* __restrict__ rows,
                                            const int2* __restrict__ tiles, int ntiles, const int* __restrict__ counts,
                                            int* __restrict__ list, int* __restrict__ total, int stride) {
  __shared__ int red[8];
  __shared__ int scan[256];
  const int b = blockIdx.x, ch = blockIdx.y, nch = gridDim.y, tid = threadIdx.x;
  int before = 0;
  for (int j = tid; j < ch; j += 256) before += counts[b * nch + j];
  const int off = block_sum(before, red);
  const u32 bits = chunk_hits(qlo, qhi, rows[b], tiles, ntiles);
  // exclusive scan of the threads' hit counts, in thread order
  scan[tid] = __popc(bits);
  __syncthreads();
  for (int d = 1; d < 256; d <<= 1) {
    const int x = tid >= d ? scan[tid - d] : 0;
    __syncthreads();
    scan[tid] += x;
    __syncthreads();
  }
  int at = off + scan[tid] - __popc(bits);
  const int t0 = ch * LIST_CHUNK + tid * 8;
#pragma unroll
  for (int j = 0; j < 8; j++)
    if (bits >> j & 1) list[(long long)b * stride + at++] = t0 + j;
  if (ch == nch - 1 && tid == 255) total[b] = at;
}

// A decode step's edit of the key positions the device already holds: kpos[rows[i]] = rows[n + i].
extern "C" __global__ void weft_decode_scatter(int* __restrict__ kpos, const int* __restrict__ rows, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) kpos[rows[i]] = rows[n + i];
}

// ---------------------------------------------------------------------------------------------
// The decode

// one stage: K and V rows [c0, c0 + 64) of kv head hk, and their positions; rows past Tk read as 0
__device__ __forceinline__ void load_stage(u32 st, const u16* __restrict__ k, const u16* __restrict__ v, const int* __restrict__ kpos,
                                           int c0, int Tk, int Hkv, int hk, int tid) {
#pragma unroll
  for (int j = 0; j < KT * CH / THREADS; j++) {
    const int idx = tid + j * THREADS, row = idx / CH, ch = idx % CH, c = c0 + row;
    const bool ok = c < Tk;
    const long long off = ((long long)(ok ? c : 0) * Hkv + hk) * D + ch * 8;
    const u32 dst = st + row * (D * 2) + ((ch ^ (row & 7)) << 4);
    cp_async16(dst, k + off, ok);
    cp_async16(dst + TILE_BYTES, v + off, ok);
  }
  if (tid < KT) {
    const int c = c0 + tid;
    cp_async4(st + 2 * TILE_BYTES + tid * 4, kpos + (c < Tk ? c : 0), c < Tk);
  }
}

// grid (splits, row blocks, kv heads), 128 threads. part_o [Hkv][blocks][splits][VB][D] and
// part_lse [..][VB] hold each split's normalized output and natural-log lse; counters[Hkv][blocks]
// start at 0 and the last CTA of each (row block, kv head) puts them back to 0.
extern "C" __global__ void __launch_bounds__(THREADS, WEFT_MINB)
weft_decode(const u16* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v,
            const int* __restrict__ qlo, const int* __restrict__ qhi, const int* __restrict__ kpos,
            const int2* __restrict__ rows, const int* __restrict__ list, const int* __restrict__ total, int stride,
            float* __restrict__ part_o, float* __restrict__ part_lse, int* __restrict__ counters,
            float* __restrict__ out, float* __restrict__ lse, int Tq, int Tk, int H, int Hkv, float scale, int merge) {
  extern __shared__ __align__(128) unsigned char smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp / WN, wn = warp % WN;
  const int split = blockIdx.x, splits = gridDim.x, b = blockIdx.y, nb = gridDim.y, hk = blockIdx.z;
  const int G = H / Hkv;
  const int2 rr = rows[b];
  // this split's tiles: an equal share of the row block's list
  const int ntr = total[b];
  const int i0 = (int)(((long long)ntr * split) / splits), n = (int)(((long long)ntr * (split + 1)) / splits) - i0;
  const int* tl = list + (long long)b * stride + i0;
  const u32 sbase = smem_addr(smem);
  // the first tiles are on their way before the query fragments load
#pragma unroll
  for (int i = 0; i < STAGES - 1; i++) {
    if (i < n) load_stage(sbase + i * STAGE_BYTES, k, v, kpos, tl[i] * KT, Tk, Hkv, hk, tid);
    cp_async_commit();
  }

  // Q fragments and row masks of this warp's m-tile: m-rows lane/4 and lane/4 + 8
  const int va = wm * 16 + (lane >> 2), vb = va + 8;
  const int ra = rr.x + va / G, rb = rr.x + vb / G;
  const bool oka = ra < rr.y, okb = rb < rr.y;
  const RowMask ma = row_mask(qlo, qhi, ra, oka), mb = row_mask(qlo, qhi, rb, okb);
  u32 qa[D / 16][4];
  {
    const u16* pa = q + ((long long)(oka ? ra : 0) * H + hk * G + va % G) * D + 2 * (lane & 3);
    const u16* pb = q + ((long long)(okb ? rb : 0) * H + hk * G + vb % G) * D + 2 * (lane & 3);
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
      qa[kk][0] = oka ? *(const u32*)(pa + kk * 16) : 0u;
      qa[kk][1] = okb ? *(const u32*)(pb + kk * 16) : 0u;
      qa[kk][2] = oka ? *(const u32*)(pa + kk * 16 + 8) : 0u;
      qa[kk][3] = okb ? *(const u32*)(pb + kk * 16 + 8) : 0u;
    }
  }

  float o[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
  float mrow[2] = {NEG_INF, NEG_INF}, lrow[2] = {0.f, 0.f};
  const float sl2 = scale * LOG2E;

  for (int i = 0; i < n; i++) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    {
      const int nx = i + STAGES - 1;
      if (nx < n) load_stage(sbase + (nx % STAGES) * STAGE_BYTES, k, v, kpos, tl[nx] * KT, Tk, Hkv, hk, tid);
      cp_async_commit();
    }
    const u32 ks = sbase + (i % STAGES) * STAGE_BYTES, vs = ks + TILE_BYTES;
    const int* kp = (const int*)(smem + (i % STAGES) * STAGE_BYTES + 2 * TILE_BYTES);
    const int kw = wn * NK, c0 = tl[i] * KT;

    // S = Q Kᵀ over this warp's NK keys
    float s[NT][4];
#pragma unroll
    for (int j = 0; j < NT; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
    for (int kq = 0; kq < D / 32; kq++) {
#pragma unroll
      for (int j = 0; j < NT; j++) {
        const int row = kw + j * 8 + (lane & 7), ch = 4 * kq + (lane >> 3);
        u32 bf[4];
        ldsm_x4(bf, ks + row * (D * 2) + ((ch ^ (row & 7)) << 4));
        mma16816(s[j], qa[2 * kq], bf[0], bf[1]);
        mma16816(s[j], qa[2 * kq + 1], bf[2], bf[3]);
      }
    }
    // mask, scale into log2 units, online softmax (rows a: elements 0, 1; b: 2, 3)
    float mx[2] = {NEG_INF, NEG_INF};
#pragma unroll
    for (int j = 0; j < NT; j++) {
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int key = kw + j * 8 + 2 * (lane & 3) + (e & 1);
        const int p = kp[key];
        const bool ok = c0 + key < Tk && (e < 2 ? sees(ma, p) : sees(mb, p));
        s[j][e] = ok ? s[j][e] * sl2 : NEG_INF;
        mx[e >> 1] = fmaxf(mx[e >> 1], s[j][e]);
      }
    }
    float base[2], alpha[2];
#pragma unroll
    for (int h = 0; h < 2; h++) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
      const float mnew = fmaxf(mrow[h], mx[h]);
      base[h] = mnew == NEG_INF ? 0.f : mnew;  // a row that has seen nothing yet: −∞ − (−∞) never happens
      alpha[h] = ex2(mrow[h] - base[h]);
      mrow[h] = mnew;
      lrow[h] *= alpha[h];
    }
    u32 pa[NT][2];
#pragma unroll
    for (int j = 0; j < NT; j++) {
      const float p0 = ex2(s[j][0] - base[0]), p1 = ex2(s[j][1] - base[0]);
      const float p2 = ex2(s[j][2] - base[1]), p3 = ex2(s[j][3] - base[1]);
      lrow[0] += p0 + p1;
      lrow[1] += p2 + p3;
      pa[j][0] = pack2(p0, p1);
      pa[j][1] = pack2(p2, p3);
    }
#pragma unroll
    for (int j = 0; j < D / 8; j++) {
      o[j][0] *= alpha[0]; o[j][1] *= alpha[0];
      o[j][2] *= alpha[1]; o[j][3] *= alpha[1];
    }
    // O += P V
#pragma unroll
    for (int kk = 0; kk < NK / 16; kk++) {
      const u32 a[4] = {pa[2 * kk][0], pa[2 * kk][1], pa[2 * kk + 1][0], pa[2 * kk + 1][1]};
#pragma unroll
      for (int dn = 0; dn < D / 16; dn++) {
        const int row = kw + kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7), ch = 2 * dn + (lane >> 4);
        u32 bf[4];
        ldsm_x4_t(bf, vs + row * (D * 2) + ((ch ^ (row & 7)) << 4));
        mma16816(o[2 * dn], a, bf[0], bf[1]);
        mma16816(o[2 * dn + 1], a, bf[2], bf[3]);
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();

  // merge the WN warps of each m-tile through shared memory (the stages are free now)
  float* red_o = (float*)smem;                    // [WARPS][16][D]
  float* red_m = red_o + WARPS * 16 * D;          // [WARPS][16]
  float* red_l = red_m + WARPS * 16;              // [WARPS][16]
#pragma unroll
  for (int h = 0; h < 2; h++) {
    lrow[h] += __shfl_xor_sync(0xffffffffu, lrow[h], 1);
    lrow[h] += __shfl_xor_sync(0xffffffffu, lrow[h], 2);
  }
  {
    float* wo = red_o + warp * 16 * D;
    const int r0 = lane >> 2, col = 2 * (lane & 3);
#pragma unroll
    for (int j = 0; j < D / 8; j++) {
      *(float2*)(wo + r0 * D + j * 8 + col) = make_float2(o[j][0], o[j][1]);
      *(float2*)(wo + (r0 + 8) * D + j * 8 + col) = make_float2(o[j][2], o[j][3]);
    }
    if ((lane & 3) == 0) {
      red_m[warp * 16 + r0] = mrow[0]; red_m[warp * 16 + r0 + 8] = mrow[1];
      red_l[warp * 16 + r0] = lrow[0]; red_l[warp * 16 + r0 + 8] = lrow[1];
    }
  }
  __syncthreads();
  const long long grp = (long long)hk * nb + b;
  float* po = part_o + (grp * splits + split) * VB * D;
  float* pl = part_lse + (grp * splits + split) * VB;
  for (int idx = tid; idx < VB * D; idx += THREADS) {
    const int vi = idx / D, d = idx % D, w0 = (vi / 16) * WN, r = vi % 16;
    float M = NEG_INF;
#pragma unroll
    for (int w = 0; w < WN; w++) M = fmaxf(M, red_m[(w0 + w) * 16 + r]);
    float L = 0.f, O = 0.f;
    if (M != NEG_INF) {
#pragma unroll
      for (int w = 0; w < WN; w++) {
        const float mw = red_m[(w0 + w) * 16 + r];
        const float c = mw == NEG_INF ? 0.f : ex2(mw - M);
        L += c * red_l[(w0 + w) * 16 + r];
        O += c * red_o[((w0 + w) * 16 + r) * D + d];
      }
    }
    po[vi * D + d] = L > 0.f ? O / L : 0.f;
    if (d == 0) pl[vi] = L > 0.f ? (M + __log2f(L)) * LN2 : NEG_INF;
  }

  // the last CTA of this (row block, kv head) merges the splits
  __shared__ int last;
  __threadfence();
  __syncthreads();
  if (tid == 0) last = atomicAdd(&counters[grp], 1) == splits - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();
  if (tid == 0) counters[grp] = 0;
  const float* gpo = part_o + grp * splits * VB * D;
  const float* gpl = part_lse + grp * splits * VB;
  const int nv = min(VB, (rr.y - rr.x) * G);  // vectors of real rows
  // merged lse per vector in one pass over the splits' lse: thread t folds (max, sum) of vector
  // t % VB over every (THREADS / VB)-th split, then one thread per vector combines them
  constexpr int PER = THREADS / VB;
  float* lv = (float*)smem;   // [VB] merged lse of each vector
  float* ls = lv + VB;        // [VB] the running state's lse (merge)
  float* fm = ls + VB;        // [THREADS] each thread's max
  float* fs = fm + THREADS;   // [THREADS] each thread's sum of exp(lse − max)
  {
    const int vi = tid % VB;
    float M = NEG_INF, S = 0.f;
#pragma unroll 4
    for (int s2 = tid / VB; s2 < splits; s2 += PER) {
      const float x = __ldcg(gpl + s2 * VB + vi);
      if (x > M) {
        S = S * __expf(M - x) + 1.f;  // M = −∞ at first: exp(−∞) = 0
        M = x;
      } else if (x != NEG_INF) {
        S += __expf(x - M);
      }
    }
    fm[tid] = M;
    fs[tid] = S;
  }
  __syncthreads();
  if (tid < nv) {
    float M = NEG_INF;
#pragma unroll
    for (int j = 0; j < PER; j++) M = fmaxf(M, fm[tid + j * VB]);
    float S = 0.f;
    if (M != NEG_INF)
#pragma unroll
      for (int j = 0; j < PER; j++) {
        const float mj = fm[tid + j * VB];
        if (mj != NEG_INF) S += fs[tid + j * VB] * __expf(mj - M);
      }
    lv[tid] = M == NEG_INF ? NEG_INF : M + __logf(S);
    ls[tid] = merge ? lse[(long long)(hk * G + tid % G) * Tq + rr.x + tid / G] : NEG_INF;
  }
  __syncthreads();
  // Every thread takes J (vector, 4 columns) items — the same columns of vectors VS apart — and
  // sums the weighted partials over the splits in batches of FB: the J × FB loads of a batch are
  // independent and in flight together (32 float4), so the merge costs few L2 round trips.
  constexpr int C4 = D / 4;
  constexpr int VS = THREADS / C4;               // vectors between a thread's items
  constexpr int J = VB / VS;                     // items per thread
  constexpr int FB = J >= 32 ? 1 : 32 / J;       // splits per batch
  const int c = tid % C4, v0 = tid / C4;
  float4 acc[J];
#pragma unroll
  for (int j = 0; j < J; j++) acc[j] = make_float4(0.f, 0.f, 0.f, 0.f);
  for (int s0 = 0; s0 < splits; s0 += FB) {
    float w[J][FB];
    float4 x[J][FB];
#pragma unroll
    for (int j = 0; j < J; j++)
#pragma unroll
      for (int f = 0; f < FB; f++) {
        const int vi = v0 + j * VS, s2 = s0 + f;
        const bool ok = vi < nv && s2 < splits;
        w[j][f] = ok ? __ldcg(gpl + s2 * VB + vi) : NEG_INF;
        x[j][f] = ok ? __ldcg((const float4*)(gpo + (s2 * VB + vi) * D) + c) : make_float4(0.f, 0.f, 0.f, 0.f);
      }
#pragma unroll
    for (int j = 0; j < J; j++) {
      const float L = v0 + j * VS < nv ? lv[v0 + j * VS] : NEG_INF;
      if (L == NEG_INF) continue;
#pragma unroll
      for (int f = 0; f < FB; f++) {
        const float wf = __expf(w[j][f] - L);  // a split that saw nothing: exp(−∞) = 0
        acc[j].x += wf * x[j][f].x; acc[j].y += wf * x[j][f].y; acc[j].z += wf * x[j][f].z; acc[j].w += wf * x[j][f].w;
      }
    }
  }
#pragma unroll
  for (int j = 0; j < J; j++) {
    const int vi = v0 + j * VS;
    if (vi >= nv) continue;
    const int r = rr.x + vi / G, h = hk * G + vi % G;
    const float L = lv[vi];
    float4* dst = (float4*)(out + ((long long)r * H + h) * D) + c;
    float* dl = lse + (long long)h * Tq + r;
    const float lst = ls[vi];
    if (!merge || lst == NEG_INF) {
      if (merge && L == NEG_INF) continue;
      *dst = acc[j];
      if (c == 0) *dl = L;
    } else if (L != NEG_INF) {
      // state ← merge(state, part) in log-sigmoid form: out −= σ(L − lst)·(out − part)
      const float xl = L - lst;
      const float sg = xl >= 0.f ? 1.f / (1.f + __expf(-xl)) : __expf(xl) / (1.f + __expf(xl));
      float4 o4 = *dst;
      o4.x -= sg * (o4.x - acc[j].x); o4.y -= sg * (o4.y - acc[j].y); o4.z -= sg * (o4.z - acc[j].z); o4.w -= sg * (o4.w - acc[j].w);
      *dst = o4;
      if (c == 0) *dl = lst - (xl <= 0.f ? -log1pf(__expf(xl)) : -xl - log1pf(__expf(-xl)));  // lst − log σ(lst − L)
    }
  }
}
