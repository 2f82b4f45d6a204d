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

// Once per mask view, after the lists: offs[b] = the tiles of the row blocks before b, offs[nb] =
// all of them. One CTA of 1024 threads, a chunk of 1024 blocks at a time.
extern "C" __global__ void weft_decode_offsets(const int* __restrict__ total, int nb, int* __restrict__ offs) {
  __shared__ int wsum[32];
  __shared__ int carry;
  const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
  if (tid == 0) carry = 0;
  __syncthreads();
  for (int b0 = 0; b0 < nb; b0 += 1024) {
    const int b = b0 + tid, x = b < nb ? total[b] : 0;
    int s = x;  // inclusive scan within the warp
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int y = __shfl_up_sync(0xffffffffu, s, o);
      if (lane >= o) s += y;
    }
    if (lane == 31) wsum[w] = s;
    __syncthreads();
    if (w == 0) {
      int t = wsum[lane];
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int y = __shfl_up_sync(0xffffffffu, t, o);
        if (lane >= o) t += y;
      }
      wsum[lane] = t;
    }
    __syncthreads();
    const int incl = carry + (w ? wsum[w - 1] : 0) + s;
    if (b < nb) offs[b] = incl - x;
    __syncthreads();
    if (tid == 1023) carry = incl;
    __syncthreads();
  }
  if (tid == 0) offs[nb] = carry;
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

// CTA c owns units [⌊U·c/C⌋, ⌊U·(c+1)/C⌋); unit u is the CTA ⌈(u+1)·C/U⌉ − 1's
__device__ __forceinline__ long long range_start(int c, long long U, int C) { return U * c / C; }
__device__ __forceinline__ int cta_of(long long u, long long U, int C) { return (int)(((u + 1) * C + U - 1) / U) - 1; }

// A place in the ordered work units (row block b, kv head hk, the i-th of the pair's n units).
// Unit i reads the block's listed tile (i + rot) mod n: each pair starts at the tile as far into
// its list as its first unit is into its CTA's range, so that at any moment the CTAs on the kv
// heads of a row block read the same key rows — K and V hold a key's heads side by side (2 KiB
// at Hkv 8, D 128), and reads of whole rows keep DRAM pages open where reads of one head's 256
// bytes from ranges out of step did not (measured: 3–6% of the rate at 2–8 GiB). Any order is exact.
struct Cursor {
  int b, hk, i, n, rot;
};

__device__ __forceinline__ void enter(Cursor& c, const int* __restrict__ offs, int Hkv, long long U, int CU) {
  const long long sp = (long long)Hkv * offs[c.b] + (long long)c.hk * c.n;
  c.rot = c.n ? (int)((sp - range_start(cta_of(sp, U, CU), U, CU)) % c.n) : 0;
}

// the listed tile of the unit
__device__ __forceinline__ int tile_of(const Cursor& c) { return c.i + c.rot < c.n ? c.i + c.rot : c.i + c.rot - c.n; }

// the next unit; row blocks that list no tile are skipped
__device__ __forceinline__ void advance(Cursor& c, const int* __restrict__ offs, int nb, int Hkv, long long U, int CU) {
  if (++c.i < c.n) return;
  c.i = 0;
  if (++c.hk == Hkv) {
    c.hk = 0;
    do ++c.b;
    while (c.b < nb && offs[c.b + 1] == offs[c.b]);
    c.n = c.b < nb ? offs[c.b + 1] - offs[c.b] : 0;
  }
  if (c.b < nb) enter(c, offs, Hkv, U, CU);
}


// The result of one vector's 4 columns: written, or merged into the running state whose lse is `lst`
// (read before any thread of the CTA writes it). −∞ on either side leaves the other unchanged.
__device__ __forceinline__ void put(float* __restrict__ out, float* __restrict__ lse, int Tq, int H, int r, int h, int c4,
                                    float4 val, float L, float lst, int merge) {
  float4* dst = (float4*)(out + ((long long)r * H + h) * D) + c4;
  float* dl = lse + (long long)h * Tq + r;
  if (!merge || lst == NEG_INF) {
    if (merge && L == NEG_INF) return;
    *dst = val;
    if (c4 == 0) *dl = L;
  } else if (L != NEG_INF) {
    // state ← merge(state, part) in log-sigmoid form: out −= σ(L − lst)·(out − part)
    const float xl = L - lst;
    const float sg = xl >= 0.f ? 1.f / (1.f + __expf(-xl)) : __expf(xl) / (1.f + __expf(xl));
    float4 o4 = *dst;
    o4.x -= sg * (o4.x - val.x); o4.y -= sg * (o4.y - val.y); o4.z -= sg * (o4.z - val.z); o4.w -= sg * (o4.w - val.w);
    *dst = o4;
    if (c4 == 0) *dl = lst - (xl <= 0.f ? -log1pf(__expf(xl)) : -xl - log1pf(__expf(-xl)));  // lst − log σ(lst − L)
  }
}

constexpr int C4 = D / 4;  // float4 columns of a vector
// shared memory after the stages: the warps' partial states of a segment, and the merge's scratch

// row blocks that list no tile: out 0, lse −∞ (a running state stays as it is); every CTA takes every C-th
__device__ __forceinline__ void empty_blocks(const int2* __restrict__ rows, const int* __restrict__ offs, int nb, float* __restrict__ out,
                                             float* __restrict__ lse, int Tq, int H, int Hkv, int merge) {
  const int G = H / Hkv;
  if (!merge)
    for (int b = blockIdx.x; b < nb; b += gridDim.x)
      if (offs[b + 1] == offs[b]) {
        const int2 rb = rows[b];
        const int nvb = min(VB, (rb.y - rb.x) * G);
        for (int hk = 0; hk < Hkv; hk++)
          for (int idx = threadIdx.x; idx < nvb * C4; idx += THREADS) {
            const int vi = idx / C4;
            put(out, lse, Tq, H, rb.x + vi / G, hk * G + vi % G, idx % C4, make_float4(0.f, 0.f, 0.f, 0.f), NEG_INF, NEG_INF, 0);
          }
      }
}

// the CTAs whose ranges meet the pair of units [pstart, pstart + n)
__device__ __forceinline__ int pair_ctas(long long pstart, int n, long long U, int CU) {
  return cta_of(pstart + n - 1, U, CU) - cta_of(pstart, U, CU) + 1;
}

// The merge of a pair's partials by the last of its CTAs: the merged lse per vector in one pass
// over the partials' lse (thread t folds (max, sum) of vector t % VB over every (THREADS / VB)-th
// partial, then one thread per vector combines them); then every thread takes J (vector, 4
// columns) items — the same columns of vectors VS apart — and sums the weighted partials in
// batches of FB: the J × FB loads of a batch are independent and in flight together (32 float4),
// so the merge costs few L2 round trips.
__device__ __noinline__ void merge_pair(int b, int hk, const int2* __restrict__ rows, const int* __restrict__ offs,
                                        const float* __restrict__ part_o, const float* __restrict__ part_lse, int* __restrict__ counters,
                                        float* __restrict__ out, float* __restrict__ lse, int Tq, int H, int Hkv, long long U, int CU,
                                        int merge, float* lv, float* ls, float* fm, float* fs) {
  const int tid = threadIdx.x, G = H / Hkv;
  const int2 rr = rows[b];
  const int nv = min(VB, (rr.y - rr.x) * G), np = offs[b + 1] - offs[b];
  const long long pstart = (long long)Hkv * offs[b] + (long long)hk * np;
  const int cf = cta_of(pstart, U, CU), ns = pair_ctas(pstart, np, U, CU);
  const int slot0 = range_start(cf, U, CU) < pstart ? 1 : 0;  // the first CTA's slot: 1 when the pair is not its first
  __threadfence();
  if (tid == 0) counters[b * Hkv + hk] = 0;
  constexpr int PER = THREADS / VB;
  {
    const int vi = tid % VB;
    float M = NEG_INF, S = 0.f;
    for (int s2 = tid / VB; s2 < ns; s2 += PER) {
      const int at = (cf + s2) * 2 + (s2 == 0 ? slot0 : 0);
      const float x = vi < nv ? __ldcg(part_lse + (long long)at * VB + vi) : NEG_INF;
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
    for (int jj = 0; jj < PER; jj++) M = fmaxf(M, fm[tid + jj * VB]);
    float S = 0.f;
    if (M != NEG_INF)
#pragma unroll
      for (int jj = 0; jj < PER; jj++) {
        const float mj = fm[tid + jj * VB];
        if (mj != NEG_INF) S += fs[tid + jj * VB] * __expf(mj - M);
      }
    lv[tid] = M == NEG_INF ? NEG_INF : M + __logf(S);
    ls[tid] = merge ? lse[(long long)(hk * G + tid % G) * Tq + rr.x + tid / G] : NEG_INF;
  }
  __syncthreads();
  constexpr int VS = THREADS / C4;          // vectors between a thread's items
  constexpr int J = VB / VS;                // items per thread
  constexpr int FB = J >= 32 ? 1 : 32 / J;  // partials per batch
  const int c = tid % C4, v0 = tid / C4;
  float4 acc[J];
#pragma unroll
  for (int jj = 0; jj < J; jj++) acc[jj] = make_float4(0.f, 0.f, 0.f, 0.f);
  for (int s0 = 0; s0 < ns; s0 += FB) {
    float w[J][FB];
    float4 x[J][FB];
#pragma unroll
    for (int jj = 0; jj < J; jj++)
#pragma unroll
      for (int f = 0; f < FB; f++) {
        const int vi = v0 + jj * VS, s2 = s0 + f;
        const bool ok = vi < nv && s2 < ns;
        const long long at = ok ? (long long)((cf + s2) * 2 + (s2 == 0 ? slot0 : 0)) : 0;
        w[jj][f] = ok ? __ldcg(part_lse + at * VB + vi) : NEG_INF;
        x[jj][f] = ok ? __ldcg((const float4*)(part_o + (at * VB + vi) * D) + c) : make_float4(0.f, 0.f, 0.f, 0.f);
      }
#pragma unroll
    for (int jj = 0; jj < J; jj++) {
      const float L = v0 + jj * VS < nv ? lv[v0 + jj * VS] : NEG_INF;
      if (L == NEG_INF) continue;
#pragma unroll
      for (int f = 0; f < FB; f++) {
        const float wf = __expf(w[jj][f] - L);  // a partial that saw nothing: exp(−∞) = 0
        acc[jj].x += wf * x[jj][f].x; acc[jj].y += wf * x[jj][f].y; acc[jj].z += wf * x[jj][f].z; acc[jj].w += wf * x[jj][f].w;
      }
    }
  }
#pragma unroll
  for (int jj = 0; jj < J; jj++) {
    const int vi = v0 + jj * VS;
    if (vi < nv) put(out, lse, Tq, H, rr.x + vi / G, hk * G + vi % G, c, acc[jj], lv[vi], ls[vi], merge);
  }
}

// Grid: C CTAs (one per SM), 128 threads. The work units — (row block, kv head, listed tile), in that
// order — are cut into C equal contiguous ranges (stream-K): a CTA's range may start and end inside
// a (row block, kv head) pair and cross the pairs between, its cp.async pipeline running on across
// them. A pair that lies whole in one range is written at once; a pair cut by range ends leaves
// a normalized partial (fp32 out, natural-log lse) per CTA — slot 0 for the CTA's first pair, 1 for
// its last — in part_o [C][2][VB][D] and part_lse [C][2][VB], and the last of its CTAs to finish
// (counters[pair], put back to 0) merges them. offs: weft_decode_offsets of the lists' totals.
extern "C" __global__ void __launch_bounds__(THREADS, WEFT_MINB)
weft_decode(const u16* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v,
            const int* __restrict__ qlo, const int* __restrict__ qhi, const int* __restrict__ kpos,
            const int2* __restrict__ rows, const int* __restrict__ list, const int* __restrict__ offs, int stride, int nb,
            float* __restrict__ part_o, float* __restrict__ part_lse, int* __restrict__ counters,
            float* __restrict__ out, float* __restrict__ lse, int Tq, int Tk, int H, int Hkv, float scale, int merge) {
  extern __shared__ __align__(128) unsigned char smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp / WN, wn = warp % WN;
  const int cta = blockIdx.x, C = gridDim.x, G = H / Hkv;
  float* red_o = (float*)(smem + STAGES * STAGE_BYTES);  // [WARPS][16][D]
  float* red_m = red_o + WARPS * 16 * D;                 // [WARPS][16]
  float* red_l = red_m + WARPS * 16;                     // [WARPS][16]
  float* lv = red_l + WARPS * 16;                        // [VB] merged lse of each vector
  float* ls = lv + VB;                                   // [VB] the running state's lse (merge)
  float* fm = ls + VB;                                   // [THREADS] each thread's max
  float* fs = fm + THREADS;                              // [THREADS] each thread's sum of exp(lse − max)
  __shared__ int last;

  // fewer units than CTAs: the first U CTAs take one each (every range holds a unit, so every CTA
  // a pair's merge counts arrives)
  const long long U = (long long)Hkv * offs[nb];
  const int CU = (int)min((long long)C, U);
  if (cta >= CU) {
    empty_blocks(rows, offs, nb, out, lse, Tq, H, Hkv, merge);
    return;
  }
  const long long u0 = range_start(cta, U, CU);
  const int n = (int)(range_start(cta + 1, U, CU) - u0);
  Cursor cur;
  {
    // the row block of unit u0: the last b with Hkv·offs[b] ≤ u0, which lists tiles
    int lo = 0, hi = nb - 1;
    while (lo < hi) {
      const int mid = (lo + hi + 1) >> 1;
      if ((long long)Hkv * offs[mid] <= u0) lo = mid;
      else hi = mid - 1;
    }
    cur.b = lo;
    cur.n = offs[lo + 1] - offs[lo];
    const long long r = u0 - (long long)Hkv * offs[lo];
    cur.hk = (int)(r / cur.n);
    cur.i = (int)(r % cur.n);
    enter(cur, offs, Hkv, U, CU);
  }
  const u32 sbase = smem_addr(smem);
  // the first tiles are on their way before the query fragments load
  Cursor ld = cur;
#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < n) {
      load_stage(sbase + s * STAGE_BYTES, k, v, kpos, list[(long long)ld.b * stride + tile_of(ld)] * KT, Tk, Hkv, ld.hk, tid);
      advance(ld, offs, nb, Hkv, U, CU);
    }
    cp_async_commit();
  }

  const int va = wm * 16 + (lane >> 2), vb = va + 8;  // this thread's m-rows: lane/4 and lane/4 + 8
  const float sl2 = scale * LOG2E;
  int2 rr = make_int2(0, 0);
  RowMask ma, mb;
  u32 qa[D / 16][4];
  float o[D / 8][4];
  float mrow[2], lrow[2];
  int seg0 = 0;     // the tile index at which this CTA's segment of the pair began
  int slot = 0;     // 0 while in the CTA's first pair, then 1
  // pairs (row block, kv head) this CTA merges after its range: at most its first and its last
  int2 pend0 = make_int2(-1, 0), pend1 = make_int2(-1, 0);

  for (int j = 0; j < n; j++) {
    if (j == 0 || cur.i == 0) {
      // a new pair: its Q fragments and row masks, a fresh state
      rr = rows[cur.b];
      seg0 = cur.i;
      const int ra = rr.x + va / G, rb = rr.x + vb / G;
      const bool oka = ra < rr.y, okb = rb < rr.y;
      ma = row_mask(qlo, qhi, ra, oka);
      mb = row_mask(qlo, qhi, rb, okb);
      const u16* pa = q + ((long long)(oka ? ra : 0) * H + cur.hk * G + va % G) * D + 2 * (lane & 3);
      const u16* pb = q + ((long long)(okb ? rb : 0) * H + cur.hk * G + vb % G) * D + 2 * (lane & 3);
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++) {
        qa[kk][0] = oka ? *(const u32*)(pa + kk * 16) : 0u;
        qa[kk][1] = okb ? *(const u32*)(pb + kk * 16) : 0u;
        qa[kk][2] = oka ? *(const u32*)(pa + kk * 16 + 8) : 0u;
        qa[kk][3] = okb ? *(const u32*)(pb + kk * 16 + 8) : 0u;
      }
#pragma unroll
      for (int jj = 0; jj < D / 8; jj++) o[jj][0] = o[jj][1] = o[jj][2] = o[jj][3] = 0.f;
      mrow[0] = mrow[1] = NEG_INF;
      lrow[0] = lrow[1] = 0.f;
    }
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    {
      if (j + STAGES - 1 < n) {
        load_stage(sbase + ((j + STAGES - 1) % STAGES) * STAGE_BYTES, k, v, kpos, list[(long long)ld.b * stride + tile_of(ld)] * KT, Tk, Hkv,
                   ld.hk, tid);
        advance(ld, offs, nb, Hkv, U, CU);
      }
      cp_async_commit();
    }
    const u32 ks = sbase + (j % STAGES) * STAGE_BYTES, vs = ks + TILE_BYTES;
    const int* kp = (const int*)(smem + (j % STAGES) * STAGE_BYTES + 2 * TILE_BYTES);
    const int kw = wn * NK, c0 = list[(long long)cur.b * stride + tile_of(cur)] * KT;

    // S = Q Kᵀ over this warp's NK keys
    float s[NT][4];
#pragma unroll
    for (int jj = 0; jj < NT; jj++) s[jj][0] = s[jj][1] = s[jj][2] = s[jj][3] = 0.f;
#pragma unroll
    for (int kq = 0; kq < D / 32; kq++) {
#pragma unroll
      for (int jj = 0; jj < NT; jj++) {
        const int row = kw + jj * 8 + (lane & 7), ch = 4 * kq + (lane >> 3);
        u32 bf[4];
        ldsm_x4(bf, ks + row * (D * 2) + ((ch ^ (row & 7)) << 4));
        mma16816(s[jj], qa[2 * kq], bf[0], bf[1]);
        mma16816(s[jj], qa[2 * kq + 1], bf[2], bf[3]);
      }
    }
    // mask, scale into log2 units, online softmax (rows a: elements 0, 1; b: 2, 3)
    float mx[2] = {NEG_INF, NEG_INF};
#pragma unroll
    for (int jj = 0; jj < NT; jj++) {
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int key = kw + jj * 8 + 2 * (lane & 3) + (e & 1);
        const int p = kp[key];
        const bool ok = c0 + key < Tk && (e < 2 ? sees(ma, p) : sees(mb, p));
        s[jj][e] = ok ? s[jj][e] * sl2 : NEG_INF;
        mx[e >> 1] = fmaxf(mx[e >> 1], s[jj][e]);
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
    for (int jj = 0; jj < NT; jj++) {
      const float p0 = ex2(s[jj][0] - base[0]), p1 = ex2(s[jj][1] - base[0]);
      const float p2 = ex2(s[jj][2] - base[1]), p3 = ex2(s[jj][3] - base[1]);
      lrow[0] += p0 + p1;
      lrow[1] += p2 + p3;
      pa[jj][0] = pack2(p0, p1);
      pa[jj][1] = pack2(p2, p3);
    }
#pragma unroll
    for (int jj = 0; jj < D / 8; jj++) {
      o[jj][0] *= alpha[0]; o[jj][1] *= alpha[0];
      o[jj][2] *= alpha[1]; o[jj][3] *= alpha[1];
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

    const bool endPair = cur.i == cur.n - 1;
    if (endPair || j == n - 1) {
      // ---- the end of this CTA's segment of the pair: merge the WN warps of each m-tile
      const bool whole = seg0 == 0 && endPair;
      const int nv = min(VB, (rr.y - rr.x) * G);  // vectors of real rows
#pragma unroll
      for (int h = 0; h < 2; h++) {
        lrow[h] += __shfl_xor_sync(0xffffffffu, lrow[h], 1);
        lrow[h] += __shfl_xor_sync(0xffffffffu, lrow[h], 2);
      }
      {
        float* wo = red_o + warp * 16 * D;
        const int r0 = lane >> 2, col = 2 * (lane & 3);
#pragma unroll
        for (int jj = 0; jj < D / 8; jj++) {
          *(float2*)(wo + r0 * D + jj * 8 + col) = make_float2(o[jj][0], o[jj][1]);
          *(float2*)(wo + (r0 + 8) * D + jj * 8 + col) = make_float2(o[jj][2], o[jj][3]);
        }
        if ((lane & 3) == 0) {
          red_m[warp * 16 + r0] = mrow[0]; red_m[warp * 16 + r0 + 8] = mrow[1];
          red_l[warp * 16 + r0] = lrow[0]; red_l[warp * 16 + r0 + 8] = lrow[1];
        }
      }
      if (whole && tid < nv) ls[tid] = merge ? lse[(long long)(cur.hk * G + tid % G) * Tq + rr.x + tid / G] : NEG_INF;
      __syncthreads();
      const long long pstart = (long long)Hkv * offs[cur.b] + (long long)cur.hk * cur.n;
      float* po = part_o + (long long)(cta * 2 + slot) * VB * D;
      float* pl = part_lse + (long long)(cta * 2 + slot) * VB;
      for (int idx = tid; idx < nv * C4; idx += THREADS) {
        const int vi = idx / C4, c4 = idx % C4, w0 = (vi / 16) * WN, r = vi % 16;
        float M = NEG_INF;
#pragma unroll
        for (int w = 0; w < WN; w++) M = fmaxf(M, red_m[(w0 + w) * 16 + r]);
        float L = 0.f;
        float4 O = make_float4(0.f, 0.f, 0.f, 0.f);
        if (M != NEG_INF) {
#pragma unroll
          for (int w = 0; w < WN; w++) {
            const float mw = red_m[(w0 + w) * 16 + r];
            const float cw = mw == NEG_INF ? 0.f : ex2(mw - M);
            const float4 x = *((const float4*)(red_o + ((w0 + w) * 16 + r) * D) + c4);
            L += cw * red_l[(w0 + w) * 16 + r];
            O.x += cw * x.x; O.y += cw * x.y; O.z += cw * x.z; O.w += cw * x.w;
          }
        }
        const float inv = L > 0.f ? 1.f / L : 0.f;
        O.x *= inv; O.y *= inv; O.z *= inv; O.w *= inv;
        const float lv1 = L > 0.f ? (M + __log2f(L)) * LN2 : NEG_INF;
        if (whole) put(out, lse, Tq, H, rr.x + vi / G, cur.hk * G + vi % G, c4, O, lv1, ls[vi], merge);
        else {
          ((float4*)(po + vi * D))[c4] = O;
          if (c4 == 0) pl[vi] = lv1;
        }
      }
      if (!whole) {
        // the last of the pair's CTAs to get here merges their partials, after its own range
        __threadfence();
        __syncthreads();
        if (tid == 0) last = atomicAdd(&counters[cur.b * Hkv + cur.hk], 1) == pair_ctas(pstart, cur.n, U, CU) - 1;
        __syncthreads();
        if (last) (pend0.x < 0 ? pend0 : pend1) = make_int2(cur.b, cur.hk);
      }
      slot = 1;
    }
    advance(cur, offs, nb, Hkv, U, CU);
  }
  if (pend0.x >= 0) {
    __syncthreads();
    merge_pair(pend0.x, pend0.y, rows, offs, part_o, part_lse, counters, out, lse, Tq, H, Hkv, U, CU, merge, lv, ls, fm, fs);
  }
  if (pend1.x >= 0) {
    __syncthreads();
    merge_pair(pend1.x, pend1.y, rows, offs, part_o, part_lse, counters, out, lse, Tq, H, Hkv, U, CU, merge, lv, ls, fm, fs);
  }
  empty_blocks(rows, offs, nb, out, lse, Tq, H, Hkv, merge);
}
