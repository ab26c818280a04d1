// The kernel library of rfc's CUDA target. The generator copies the sections a model needs
// into its model.cu, ahead of the per-op kernels, which fix every size as a literal and call
// the templates here (after inlining, nvcc folds the sizes into the index arithmetic).
//
// Every section compiles two ways: with nvcc for the GPU, and as plain C++ under the CPU
// emulator of the tests (testdata/emu.h), which defines the CUDA names used here. So no
// warp shuffles or other warp-level intrinsics: reductions go through shared memory.
//
// Semantics follow package kernels (the CPU kernels) and interp/ops.go, which the tests
// check these against. Indices are int: the generator refuses tensors of 2^31 elements or more.
//
// A line "//== section NAME: DEPS" starts a section; DEPS are the sections it needs.

//== section common:
#ifdef __CUDACC__
#include <cuda_fp16.h>
typedef __half rfc_half;
__device__ __forceinline__ float rfc_ld(const rfc_half* p, int i) { return __half2float(p[i]); }
#endif

// rfc_ld reads element i of an operand as float, whatever its storage type.
__device__ __forceinline__ float rfc_ld(const float* p, int i) { return p[i]; }

__device__ __forceinline__ int rfc_imin(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ int rfc_imax(int a, int b) { return a > b ? a : b; }

// rfc_bits builds a float from its IEEE bits: infinities and NaNs never appear as literals.
__device__ __forceinline__ float rfc_bits(unsigned int u) { return __uint_as_float(u); }

// rfc_block_sum and rfc_block_max reduce v over the NT threads of the block, which must all
// call them; sh is a __shared__ array of NT floats.
template <int NT>
__device__ __forceinline__ float rfc_block_sum(float v, float* sh) {
  const int t = threadIdx.x;
  sh[t] = v;
  __syncthreads();
  for (int s = NT / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] += sh[t + s];
    __syncthreads();
  }
  const float r = sh[0];
  __syncthreads();
  return r;
}

template <int NT>
__device__ __forceinline__ float rfc_block_max(float v, float* sh) {
  const int t = threadIdx.x;
  sh[t] = v;
  __syncthreads();
  for (int s = NT / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] = fmaxf(sh[t], sh[t + s]);
    __syncthreads();
  }
  const float r = sh[0];
  __syncthreads();
  return r;
}

//== section act: common
// Activations, as kernels/elementwise.go computes them (the sigmoid-gated forms included).
__device__ __forceinline__ float rfc_sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }
__device__ __forceinline__ float rfc_relu(float v) { return v < 0.0f ? 0.0f : v; }  // NaN stays NaN
__device__ __forceinline__ float rfc_silu(float v) { return rfc_sigmoid(v) * v; }
__device__ __forceinline__ float rfc_tanh(float v) { return tanhf(v); }
__device__ __forceinline__ float rfc_sin(float v) { return sinf(v); }
__device__ __forceinline__ float rfc_cos(float v) { return cosf(v); }
// x·Φ(x) with the exact erf: GeLU(approximation="none").
__device__ __forceinline__ float rfc_gelu(float v) { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); }
// x/2·(1+tanh(√(2/π)(x+0.044715x³))) written as x·σ(2u), as the CPU kernel does.
__device__ __forceinline__ float rfc_gelu_tanh(float v) {
  return rfc_sigmoid(1.5957691216057308f * v * (1.0f + 0.044715f * v * v)) * v;
}
__device__ __forceinline__ float rfc_gelu_sigmoid(float v) { return rfc_sigmoid(1.702f * v) * v; }
__device__ __forceinline__ float rfc_clamp(float v, float lo, float hi) {
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return v;
}

//== section exp: common
// e^x, in a section of its own: only models that use it carry it.
__device__ __forceinline__ float rfc_exp(float v) { return expf(v); }

//== section gemm: common
// rfc_gemm computes one BM×BN tile of C = A·B for the problem p (blockIdx.z selects a batch
// entry or a group), K in steps of BK through shared memory, each of the (BM/TM)·(BN/TN)
// threads accumulating a TM×TN sub-tile in registers. The problem supplies the operands:
//   gm, gn, gk           the GEMM sizes
//   a(z, m, k)           an element of A (the problem reads it with k contiguous)
//   col(z, n) → Col      where column n of B starts (n ≥ gn gives an empty column)
//   bv(col, k)           an element of B's column
//   store(z, m, n, v)    the epilogue (bias, layout)
//   kBNContig            whether consecutive n are adjacent in memory (else k is)
// Loads outside the problem read 0, so sizes need not divide the tiles.
template <int BM, int BN, int BK, int TM, int TN, class P>
__device__ __forceinline__ void rfc_gemm(const P& p) {
  constexpr int TX = BN / TN, TY = BM / TM, NT = TX * TY;
  constexpr int APER = BM * BK / NT, BPER = BN * BK / NT;
  static_assert(APER * NT == BM * BK && BPER * NT == BN * BK, "tile loads must spread evenly");
  static_assert(NT % BN == 0 || !P::kBNContig, "a thread must keep its column of B");
  __shared__ float As[BK][BM + 1];
  __shared__ float Bs[BK][BN + 1];
  const int tid = threadIdx.x, tx = tid % TX, ty = tid / TX;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN, z = blockIdx.z;

  // Each thread loads the same rows of A and columns of B at every step of k.
  int am[APER], ak[APER], bk[BPER], bn[BPER];
  typename P::Col bc[BPER];
#pragma unroll
  for (int i = 0; i < APER; ++i) {
    const int e = tid + i * NT;
    am[i] = e / BK;
    ak[i] = e % BK;
  }
#pragma unroll
  for (int i = 0; i < BPER; ++i) {
    const int e = tid + i * NT;
    bn[i] = P::kBNContig ? e % BN : e / BK;
    bk[i] = P::kBNContig ? e / BN : e % BK;
    bc[i] = p.col(z, n0 + bn[i]);
  }
  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

  // The elements of the next step of k are read from global memory into registers before
  // the current step computes from shared memory, so that their latency overlaps the math.
  float na[APER], nb[BPER];
#pragma unroll
  for (int i = 0; i < APER; ++i) {
    const int m = m0 + am[i];
    na[i] = (m < p.gm && ak[i] < p.gk) ? p.a(z, m, ak[i]) : 0.0f;
  }
#pragma unroll
  for (int i = 0; i < BPER; ++i) nb[i] = bk[i] < p.gk ? p.bv(bc[i], bk[i]) : 0.0f;

  for (int k0 = 0; k0 < p.gk; k0 += BK) {
#pragma unroll
    for (int i = 0; i < APER; ++i) As[ak[i]][am[i]] = na[i];
#pragma unroll
    for (int i = 0; i < BPER; ++i) Bs[bk[i]][bn[i]] = nb[i];
    __syncthreads();
    const int k1 = k0 + BK;
    if (k1 < p.gk) {
#pragma unroll
      for (int i = 0; i < APER; ++i) {
        const int m = m0 + am[i], k = k1 + ak[i];
        na[i] = (m < p.gm && k < p.gk) ? p.a(z, m, k) : 0.0f;
      }
#pragma unroll
      for (int i = 0; i < BPER; ++i) {
        const int k = k1 + bk[i];
        nb[i] = k < p.gk ? p.bv(bc[i], k) : 0.0f;
      }
    }
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float ra[TM], rb[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) ra[i] = As[kk][ty + i * TY];
#pragma unroll
      for (int j = 0; j < TN; ++j) rb[j] = Bs[kk][tx + j * TX];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(ra[i], rb[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int m = m0 + ty + i * TY;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int n = n0 + tx + j * TX;
      if (m < p.gm && n < p.gn) p.store(z, m, n, acc[i][j]);
    }
  }
}

// RfcLinear is nn.Linear: y[m, n] = Σ_k x[m, k]·w[n, k] + b[n] (b may be null).
template <class TX, class TW, class TB>
struct RfcLinear {
  float* y;
  const TX* x;
  const TW* w;
  const TB* b;
  int gm, gn, gk;
  static constexpr bool kBNContig = false;
  struct Col {
    int off;
    bool ok;
  };
  __device__ float a(int, int m, int k) const { return rfc_ld(x, m * gk + k); }
  __device__ Col col(int, int n) const { return Col{n * gk, n < gn}; }
  __device__ float bv(const Col& c, int k) const { return c.ok ? rfc_ld(w, c.off + k) : 0.0f; }
  __device__ void store(int, int m, int n, float v) const { y[m * gn + n] = b ? v + rfc_ld(b, n) : v; }
};

// RfcMatMul is a batch of row-major products: y[z] = A[z]·B[z], A[z] at z·sa, B[z] at z·sb
// (a stride of 0 shares one matrix across the batch).
template <class TA, class TB>
struct RfcMatMul {
  float* y;
  const TA* A;
  const TB* B;
  int gm, gn, gk, sa, sb;
  static constexpr bool kBNContig = true;
  struct Col {
    int off;
    bool ok;
  };
  __device__ float a(int z, int m, int k) const { return rfc_ld(A, z * sa + m * gk + k); }
  __device__ Col col(int z, int n) const { return Col{z * sb + n, n < gn}; }
  __device__ float bv(const Col& c, int k) const { return c.ok ? rfc_ld(B, c.off + k * gn) : 0.0f; }
  __device__ void store(int z, int m, int n, float v) const { y[(z * gm + m) * gn + n] = v; }
};

// RfcConv2d is F.conv2d, or with kTransposed F.conv_transpose2d, as an implicit GEMM per
// group z. B is the im2col matrix of the input [C/G·KH·KW, N·OH·OW], read in place: output
// pixel (oy, ox) reads input pixel (oy·SH−PH+kh·DH, ox·SW−PW+kw·DW), or, transposed,
// gathers input pixel ((oy+PH−kh·DH)/SH, (ox+PW−kw·DW)/SW) where that divides exactly. A
// is the group's weights [K/G, C/G·KH·KW], or, transposed, read from [C, K/G, KH, KW]
// (PyTorch's layout).
template <class TX, class TW, class TB, bool kTransposed>
struct RfcConv2d {
  float* y;
  const TX* x;
  const TW* w;
  const TB* b;
  int C, H, W, K, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW;
  int gm, gn, gk;  // K/G, N·OH·OW, C/G·KH·KW
  static constexpr bool kBNContig = true;
  struct Col {
    int base, py, px;  // the output pixel; not transposed, its first input tap
    bool ok;
  };
  __device__ float a(int z, int m, int k) const {
    const int ci = k / (KH * KW), r = k % (KH * KW), cg = gk / (KH * KW);
    return kTransposed ? rfc_ld(w, ((z * cg + ci) * gm + m) * (KH * KW) + r) : rfc_ld(w, (z * gm + m) * gk + k);
  }
  __device__ Col col(int z, int n) const {
    const int img = n / (OH * OW), pix = n % (OH * OW);
    const int cg = gk / (KH * KW), oy = pix / OW, ox = pix % OW;
    return kTransposed ? Col{(img * C + z * cg) * H * W, oy, ox, n < gn}
                       : Col{(img * C + z * cg) * H * W, oy * SH - PH, ox * SW - PW, n < gn};
  }
  __device__ float bv(const Col& c, int k) const {
    const int ci = k / (KH * KW), r = k % (KH * KW);
    int iy = c.py + (r / KW) * DH, ix = c.px + (r % KW) * DW;
    if (kTransposed) {
      const int ty = c.py + PH - (r / KW) * DH, tx = c.px + PW - (r % KW) * DW;
      if (ty < 0 || tx < 0 || ty % SH != 0 || tx % SW != 0) return 0.0f;
      iy = ty / SH;
      ix = tx / SW;
    }
    return (c.ok && iy >= 0 && iy < H && ix >= 0 && ix < W) ? rfc_ld(x, c.base + (ci * H + iy) * W + ix) : 0.0f;
  }
  __device__ void store(int z, int m, int n, float v) const {
    const int img = n / (OH * OW), pix = n % (OH * OW), ch = z * gm + m;
    y[(img * K + ch) * OH * OW + pix] = b ? v + rfc_ld(b, ch) : v;
  }
};

//== section conv_direct: common
// rfc_conv_direct computes one output element of F.conv2d per thread; for convolutions with
// one input channel per group (depthwise), where a GEMM would have a tiny inner dimension.
template <class TX, class TW, class TB>
__device__ __forceinline__ void rfc_conv_direct(float* y, const TX* x, const TW* w, const TB* b, int total, int C,
                                                int H, int W, int K, int KH, int KW, int SH, int SW, int PH,
                                                int PW, int DH, int DW, int G, int OH, int OW) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int ox = i % OW, oy = (i / OW) % OH, ch = (i / (OW * OH)) % K, img = i / (OW * OH * K);
  const int kg = K / G, cg = C / G, g = ch / kg;
  float s = b ? rfc_ld(b, ch) : 0.0f;
  for (int ci = 0; ci < cg; ++ci) {
    const int xc = (img * C + g * cg + ci) * H * W;
    for (int kh = 0; kh < KH; ++kh) {
      const int iy = oy * SH - PH + kh * DH;
      if (iy < 0 || iy >= H) continue;
      for (int kw = 0; kw < KW; ++kw) {
        const int ix = ox * SW - PW + kw * DW;
        if (ix < 0 || ix >= W) continue;
        s = fmaf(rfc_ld(x, xc + iy * W + ix), rfc_ld(w, ((ch * cg + ci) * KH + kh) * KW + kw), s);
      }
    }
  }
  y[i] = s;
}

//== section layer_norm: common
// rfc_layer_norm normalizes row blockIdx.x of x [rows, cols] (two passes: mean, then the mean
// squared deviation) and applies the element-wise affine w, b [cols] (either may be null).
template <int NT, class TX, class TW, class TB>
__device__ __forceinline__ void rfc_layer_norm(float* y, const TX* x, const TW* w, const TB* b, int cols, float eps) {
  __shared__ float sh[NT];
  const int off = blockIdx.x * cols;
  float s = 0.0f;
  for (int i = threadIdx.x; i < cols; i += NT) s += rfc_ld(x, off + i);
  const float mean = rfc_block_sum<NT>(s, sh) / (float)cols;
  float q = 0.0f;
  for (int i = threadIdx.x; i < cols; i += NT) {
    const float d = rfc_ld(x, off + i) - mean;
    q += d * d;
  }
  const float rstd = 1.0f / sqrtf(rfc_block_sum<NT>(q, sh) / (float)cols + eps);
  for (int i = threadIdx.x; i < cols; i += NT) {
    float v = (rfc_ld(x, off + i) - mean) * rstd;
    if (w) v *= rfc_ld(w, i);
    if (b) v += rfc_ld(b, i);
    y[off + i] = v;
  }
}

//== section group_norm: common
// Group normalization in two kernels, so that a large group spreads over many blocks: the
// first writes (mean, M2) of each chunk of a group, the second merges a group's chunks
// (Chan et al.'s parallel update) and normalizes its own chunk. Group t of x [N, C, HW] is
// the contiguous range [t·size, (t+1)·size) with size = C/G·HW; blockIdx.y = t.
template <int NT, class TX>
__device__ __forceinline__ void rfc_group_stats(float* stats, const TX* x, int size, int chunk, int chunks) {
  __shared__ float sh[NT];
  const int t = blockIdx.y, lo = blockIdx.x * chunk, n = rfc_imin(chunk, size - lo);
  const int off = t * size + lo;
  float s = 0.0f;
  for (int i = threadIdx.x; i < n; i += NT) s += rfc_ld(x, off + i);
  const float mean = rfc_block_sum<NT>(s, sh) / (float)n;
  float q = 0.0f;
  for (int i = threadIdx.x; i < n; i += NT) {
    const float d = rfc_ld(x, off + i) - mean;
    q += d * d;
  }
  q = rfc_block_sum<NT>(q, sh);
  if (threadIdx.x == 0) {
    stats[2 * (t * chunks + blockIdx.x)] = mean;
    stats[2 * (t * chunks + blockIdx.x) + 1] = q;
  }
}

template <int NT, class TX, class TW, class TB>
__device__ __forceinline__ void rfc_group_apply(float* y, const TX* x, const TW* w, const TB* b, const float* stats,
                                                int size, int chunk, int chunks, int groups, int cpg, int hw,
                                                float eps) {
  __shared__ float mr[2];
  const int t = blockIdx.y, lo = blockIdx.x * chunk, n = rfc_imin(chunk, size - lo);
  if (threadIdx.x == 0) {
    float cnt = 0.0f, mean = 0.0f, m2 = 0.0f;
    for (int c = 0; c < chunks; ++c) {
      const float nb = (float)rfc_imin(chunk, size - c * chunk);
      const float mb = stats[2 * (t * chunks + c)], qb = stats[2 * (t * chunks + c) + 1];
      const float tot = cnt + nb, d = mb - mean;
      mean += d * nb / tot;
      m2 += qb + d * d * cnt * nb / tot;
      cnt = tot;
    }
    mr[0] = mean;
    mr[1] = 1.0f / sqrtf(m2 / cnt + eps);
  }
  __syncthreads();
  const float mean = mr[0], rstd = mr[1];
  const int g = t % groups, off = t * size + lo;
  for (int i = threadIdx.x; i < n; i += NT) {
    const int ch = g * cpg + (lo + i) / hw;
    const float wv = w ? rfc_ld(w, ch) : 1.0f, bv = b ? rfc_ld(b, ch) : 0.0f;
    y[off + i] = (rfc_ld(x, off + i) - mean) * (rstd * wv) + bv;
  }
}

//== section layer_norm2d: common
// rfc_layer_norm2d normalizes, at every pixel of x [N, C, HW], the C channel values; one
// thread per pixel, so that reads of a channel are coalesced across threads.
template <class TX, class TW, class TB>
__device__ __forceinline__ void rfc_layer_norm2d(float* y, const TX* x, const TW* w, const TB* b, int n, int c,
                                                 int hw, float eps) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n * hw) return;
  const int off = (i / hw) * c * hw + i % hw;
  float s = 0.0f;
  for (int ch = 0; ch < c; ++ch) s += rfc_ld(x, off + ch * hw);
  const float mean = s / (float)c;
  float q = 0.0f;
  for (int ch = 0; ch < c; ++ch) {
    const float d = rfc_ld(x, off + ch * hw) - mean;
    q += d * d;
  }
  const float rstd = 1.0f / sqrtf(q / (float)c + eps);
  for (int ch = 0; ch < c; ++ch) {
    const float v = (rfc_ld(x, off + ch * hw) - mean) * rstd;
    y[off + ch * hw] = v * (w ? rfc_ld(w, ch) : 1.0f) + (b ? rfc_ld(b, ch) : 0.0f);
  }
}

//== section softmax: common
// rfc_softmax_rows: softmax of row blockIdx.x of x [rows, dim] (the maximum first, so large
// logits do not overflow; an all −Inf row gives NaN, as PyTorch).
template <int NT, class TX>
__device__ __forceinline__ void rfc_softmax_rows(float* y, const TX* x, int dim) {
  __shared__ float sh[NT];
  const int off = blockIdx.x * dim;
  float mx = -rfc_bits(0x7f800000u);
  for (int i = threadIdx.x; i < dim; i += NT) mx = fmaxf(mx, rfc_ld(x, off + i));
  mx = rfc_block_max<NT>(mx, sh);
  float s = 0.0f;
  for (int i = threadIdx.x; i < dim; i += NT) s += expf(rfc_ld(x, off + i) - mx);
  const float inv = 1.0f / rfc_block_sum<NT>(s, sh);
  for (int i = threadIdx.x; i < dim; i += NT) y[off + i] = expf(rfc_ld(x, off + i) - mx) * inv;
}

// rfc_softmax_strided: softmax along the middle axis of x [outer, dim, inner], one thread per
// (outer, inner) position.
template <class TX>
__device__ __forceinline__ void rfc_softmax_strided(float* y, const TX* x, int outer, int dim, int inner) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= outer * inner) return;
  const int off = (i / inner) * dim * inner + i % inner;
  float mx = -rfc_bits(0x7f800000u);
  for (int d = 0; d < dim; ++d) mx = fmaxf(mx, rfc_ld(x, off + d * inner));
  float s = 0.0f;
  for (int d = 0; d < dim; ++d) s += expf(rfc_ld(x, off + d * inner) - mx);
  const float inv = 1.0f / s;
  for (int d = 0; d < dim; ++d) y[off + d * inner] = expf(rfc_ld(x, off + d * inner) - mx) * inv;
}

//== section attention: common
// rfc_attention is scaled dot-product attention in Refiners' layout (q [B, Lq, H·dk],
// k [B, Lk, H·dk], v [B, Lk, H·dv], out [B, Lq, H·dv]) without the Lq×Lk score matrix: a block
// of 128 threads owns BQ queries of one (batch, head) (blockIdx.y), sweeps the keys BK at a
// time through shared memory and folds each tile in with an online softmax (running maximum
// and sum per query, rescaling the partial output when the maximum grows). D ≥ dk, dv is the
// padded head size. With causal, query i sees keys j ≤ i (torch.ones(Lq, Lk).tril()).
template <int D, int BQ, int BK, class TQ, class TK, class TV>
__device__ __forceinline__ void rfc_attention(float* out, const TQ* q, const TK* k, const TV* v, int H, int Lq,
                                              int Lk, int dk, int dv, float scale, bool causal) {
  constexpr int NT = 128, TPR = NT / BQ, SC = BK / TPR, DC = D / TPR;
  static_assert(TPR * BQ == NT && SC * TPR == BK && DC * TPR == D, "tile shapes must divide");
  __shared__ float Qs[BQ][D + 1];
  __shared__ float Ks[BK][D + 1];
  __shared__ float Vs[BK][D];
  __shared__ float Ps[BQ][BK + 1];
  __shared__ float red[BQ][TPR];
  const float inf = rfc_bits(0x7f800000u);
  const int tid = threadIdx.x, r = tid / TPR, part = tid % TPR;
  const int bh = blockIdx.y, bi = bh / H, h = bh % H, q0 = blockIdx.x * BQ;
  const int ldq = H * dk, ldv = H * dv;
  for (int e = tid; e < BQ * D; e += NT) {
    const int i = e / D, d = e % D;
    Qs[i][d] = (q0 + i < Lq && d < dk) ? rfc_ld(q, (bi * Lq + q0 + i) * ldq + h * dk + d) * scale : 0.0f;
  }
  float m = -inf, l = 0.0f, o[DC];
#pragma unroll
  for (int c = 0; c < DC; ++c) o[c] = 0.0f;
  // The last query of the block sees keys up to q0+BQ−1.
  const int kEnd = causal ? rfc_imin(Lk, q0 + BQ) : Lk;
  for (int k0 = 0; k0 < kEnd; k0 += BK) {
    __syncthreads();  // the previous tile is consumed (and Q is loaded)
    for (int e = tid; e < BK * D; e += NT) {
      const int j = e / D, d = e % D;
      const bool in = k0 + j < Lk;
      Ks[j][d] = (in && d < dk) ? rfc_ld(k, (bi * Lk + k0 + j) * ldq + h * dk + d) : 0.0f;
      Vs[j][d] = (in && d < dv) ? rfc_ld(v, (bi * Lk + k0 + j) * ldv + h * dv + d) : 0.0f;
    }
    __syncthreads();
    float s[SC], tmax = -inf;
#pragma unroll
    for (int c = 0; c < SC; ++c) {
      const int j = part + c * TPR;
      float acc = 0.0f;
#pragma unroll 8
      for (int d = 0; d < D; ++d) acc = fmaf(Qs[r][d], Ks[j][d], acc);
      const bool visible = k0 + j < Lk && (!causal || k0 + j <= q0 + r);
      s[c] = visible ? acc : -inf;
      tmax = fmaxf(tmax, s[c]);
    }
    red[r][part] = tmax;
    __syncthreads();
#pragma unroll
    for (int t = 0; t < TPR; ++t) tmax = fmaxf(tmax, red[r][t]);
    __syncthreads();
    const float mnew = fmaxf(m, tmax);
    // Nothing visible yet in this row: keep everything as it is.
    const bool none = mnew == -inf;
    const float corr = (none || m == -inf) ? (none ? 1.0f : 0.0f) : expf(m - mnew);
    float psum = 0.0f;
#pragma unroll
    for (int c = 0; c < SC; ++c) {
      const float p = (none || s[c] == -inf) ? 0.0f : expf(s[c] - mnew);
      Ps[r][part + c * TPR] = p;
      psum += p;
    }
    red[r][part] = psum;
    __syncthreads();
    psum = 0.0f;
#pragma unroll
    for (int t = 0; t < TPR; ++t) psum += red[r][t];
    l = l * corr + psum;
    m = mnew;
#pragma unroll
    for (int c = 0; c < DC; ++c) o[c] *= corr;
    for (int j = 0; j < BK; ++j) {
      const float p = Ps[r][j];
#pragma unroll
      for (int c = 0; c < DC; ++c) o[c] = fmaf(p, Vs[j][part + c * TPR], o[c]);
    }
  }
  if (q0 + r < Lq) {
    const float inv = 1.0f / l;
#pragma unroll
    for (int c = 0; c < DC; ++c) {
      const int d = part + c * TPR;
      if (d < dv) out[(bi * Lq + q0 + r) * ldv + h * dv + d] = o[c] * inv;
    }
  }
}

//== section resample: common
// PyTorch's 'nearest' source index (not 'nearest-exact'), in float32 as PyTorch computes it;
// __fmul_rn keeps nvcc from fusing the rounding steps, which would move indices.
__device__ __forceinline__ int rfc_nearest(int dst, int in, int out) {
  if (out == in) return dst;
  if (out == 2 * in) return dst >> 1;
  const float scale = (float)in / (float)out;
  return rfc_imin((int)__fmul_rn((float)dst, scale), in - 1);
}

// rfc_linear_src gives PyTorch's bilinear source indices and weights for output index dst
// (upsample_bilinear2d, float32), as kernels.linearSource.
__device__ __forceinline__ void rfc_linear_src(int dst, int in, int out, bool align, int* i0, int* i1, float* l0,
                                               float* l1) {
  float src = 0.0f;
  if (align) {
    if (out > 1) src = __fmul_rn((float)(in - 1) / (float)(out - 1), (float)dst);
  } else {
    src = __fadd_rn(__fmul_rn((float)in / (float)out, __fadd_rn((float)dst, 0.5f)), -0.5f);
    if (src < 0.0f) src = 0.0f;
  }
  *i0 = rfc_imin((int)src, in - 1);
  *l1 = fminf(fmaxf(src - (float)*i0, 0.0f), 1.0f);
  *i1 = *i0 < in - 1 ? *i0 + 1 : *i0;
  *l0 = 1.0f - *l1;
}
