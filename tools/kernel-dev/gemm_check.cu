// Development checks of the matrix-product forms the attention kernels use (appended to attn.cu by
// the harness). One warpgroup runs one form and writes its fp32 accumulator as row-major [64][N].
//   mode 0: S = Q Kᵀ        (qk_gemm: K-major A and B, 128-row tiles)        a = Q [128][D], b = K [128][D], N = 128
//   mode 1: O = P V         (pv_gemm: A from registers, B N-major)           a = P [64][128],  b = V [128][D], N = D
//   mode 2: dQ = dS K       (bwd_dq_gemm, warpgroup 0: A M-major, B N-major) a = dSᵀ [128][64], b = K [128][D], N = D / 2
//   mode 5: the same for warpgroup 1 (columns D / 2 .. D)
//   mode 3: Sᵀ = K Qᵀ       (bwd_t_gemm: B a 64-row tile)                    a = K [128][D], b = Q [64][D],   N = 64
//   mode 4: dV = Pᵀ dO      (bwd_kv_gemm: A from registers, B N-major 64-row) a = Pᵀ [64][64], b = dO [64][D], N = D

// plain stores into the swizzled panel layout (rows × cols, cols a multiple of 64)
__device__ void check_store_tile(u32 dst, const u16* src, int rows, int cols) {
  for (int i = threadIdx.x; i < rows * cols; i += blockDim.x) {
    const int r = i / cols, c = i % cols;
    const u32 a = dst + (c / 64) * (rows * 128) + r * 128 + ((((c % 64) / 8) ^ (r & 7)) << 4) + (c % 8) * 2;
    asm volatile("st.shared.u16 [%0], %1;\n" ::"r"(a), "h"(src[i]) : "memory");
  }
}

template <int N>
__device__ void check_write(float* c, const float (&acc)[N / 2], int warp, int g, int t) {
#pragma unroll
  for (int i = 0; i < N / 8; i++)
#pragma unroll
    for (int e = 0; e < 4; e++) c[(warp * 16 + g + 8 * (e >> 1)) * N + 8 * i + 2 * t + (e & 1)] = acc[4 * i + e];
}

// registers of an A operand (64 rows × 16·K) in the accumulator arrangement, from row-major [64][16K]
template <int KS>
__device__ void check_afrag(u32 (&p)[KS][4], const u16* a, int warp, int g, int t) {
#pragma unroll
  for (int kk = 0; kk < KS; kk++)
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int row = warp * 16 + g + 8 * (j & 1), col = 16 * kk + 8 * (j >> 1) + 2 * t;
      p[kk][j] = pack2(widen(a[row * 16 * KS + col]), widen(a[row * 16 * KS + col + 1]));
    }
}

extern "C" __global__ void __launch_bounds__(128) weft_check_gemm(int mode, const u16* a, const u16* b, float* c) {
  extern __shared__ unsigned char smem_raw[];
  const u32 base = (smem_addr(smem_raw) + 1023u) & ~1023u;
  const u32 sA = base, sB = base + TILE128;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  if (mode == 0) {
    check_store_tile(sA, a, 128, D);
    check_store_tile(sB, b, 128, D);
  } else if (mode == 1) {
    check_store_tile(sB, b, 128, D);
  } else if (mode == 2 || mode == 5) {
    check_store_tile(sA, a, 128, 64);
    check_store_tile(sB, b, 128, D);
  } else if (mode == 3) {
    check_store_tile(sA, a, 128, D);
    check_store_tile(sB, b, 64, D);
  } else {
    check_store_tile(sB, b, 64, D);
  }
  fence_async_smem();
  __syncthreads();
  if (mode == 0) {
    float s[64];
    wg_fence();
    qk_gemm(s, sA, sB);
    wg_commit();
    wg_wait<0>();
    reg_fence(s);
    check_write<128>(c, s, warp, g, t);
  } else if (mode == 1) {
    u32 p[8][4];
    check_afrag<8>(p, a, warp, g, t);
    float o[D / 2];
    for (int i = 0; i < D / 2; i++) o[i] = 0.f;
    wg_fence();
    pv_gemm<D>(o, p, sB);
    wg_commit();
    wg_wait<0>();
    reg_fence(o);
    check_write<D>(c, o, warp, g, t);
  } else if (mode == 2 || mode == 5) {
    float acc[DQ_N / 2];
    wg_fence();
    bwd_dq_gemm<DQ_N>(acc, sA, sB, mode == 5);
    wg_commit();
    wg_wait<0>();
    reg_fence(acc);
    check_write<DQ_N>(c, acc, warp, g, t);
  } else if (mode == 3) {
    float acc[32];
    wg_fence();
    bwd_t_gemm(acc, sA, sB);
    wg_commit();
    wg_wait<0>();
    reg_fence(acc);
    check_write<64>(c, acc, warp, g, t);
  } else {
    u32 p[4][4];
    check_afrag<4>(p, a, warp, g, t);
    float acc[D / 2];
    for (int i = 0; i < D / 2; i++) acc[i] = 0.f;
    wg_fence();
    bwd_kv_gemm(acc, p, sB);
    wg_commit();
    wg_wait<0>();
    reg_fence(acc);
    check_write<D>(c, acc, warp, g, t);
  }
}
