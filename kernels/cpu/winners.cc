// max / corner_max RoIAlign's derivatives on fixed sampling grids, as XLA FFI custom calls.
//
// Once each output element's winning sample is known (int8 arg[k, p, q, c] in [0, G * G),
// or -1 for none; found in JAX), max RoIAlign is linear in the features:
//   out[k, p, q, c] = sum_{i < 4} share_i(c) * wy[k, p, j_i * G + iy] * wx[k, q, l_i * G + ix]
//                     * x[image[k], ry[k, p, j_i * G + iy], rx[k, q, l_i * G + ix], c]
// with (iy, ix) = (arg / G, arg % G), corner i = (j_i, l_i) in the order (lo, lo), (lo, hi),
// (hi, lo), (hi, hi), the per-axis tables holding each sample's two neighbours (j = 0: lo,
// 1: hi) and their bilinear weights, and share_i the corner's share of the cotangent
// (1 for "max", whose code operand is not read; for "corner_max" decoded from int32
// code[k, p, q, c], 3 bits a corner, as jax_roialign/core/corners.py encodes it).  Three
// handlers, the contractions of that form:
//   WinnerRead              out (K, P, Q, C)
//   WinnerFeaturesTranspose dx  (N, H, W, C)         by bands of feature rows; "max" in float32
//                                                    at G <= 2 by distinct pixels, not by corners
//   WinnerWeightsTranspose  dwy (K, P, 2G), dwx (K, Q, 2G)
// Attribute `corner` selects corner_max's shares.  Deterministic, as in tap_sum.cc.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "common.h"

namespace jax_roialign {
namespace {

struct SampleTables {
  int64_t k, p, q, g;
  const int32_t* image;
  const int32_t* ry;
  const int32_t* rx;
};

SampleTables MakeSampleTables(ffi::Buffer<ffi::S32> image, ffi::Buffer<ffi::S32> ry, ffi::Buffer<ffi::S32> rx) {
  auto dy = ry.dimensions();
  return SampleTables{dy[0], dy[1], rx.dimensions()[1], dy[2] / 2, image.typed_data(), ry.typed_data(),
                      rx.typed_data()};
}

// corner_max: a bin's four corners' shares of each channel's cotangent, sh[i * c + j]
// (code: 3 bits a corner, 2^-e, e = 4 for none), times `scale` (the cotangent, or 1).
// Decoded once per bin, branch-free, so that the per-corner loops vectorize as max's do
// (a decode inside them left them scalar: 200 ms for fpn-p3-sr2's features' gradient).
// The shares are powers of two, so the product's order does not change it.
template <typename T>
inline void DecodeShares(const int32_t* code, const T* scale, int64_t c, T* sh) {
  for (int i = 0; i < 4; ++i) {
    T* __restrict out = sh + i * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) {
      const int32_t e = (code[j] >> (3 * i)) & 7;
      const T share = ((e & 1) ? T(0.5) : T(1)) * ((e & 2) ? T(0.25) : T(1));
      out[j] = e >= 4 ? T(0) : share * (scale ? scale[j] : T(1));
    }
  }
}

// Calls f(s, i, table index of the corner's row, of its column) for every sample s of a bin
// and corner i of it.
template <typename F>
inline void ForCorners(int64_t g, const F& f) {
  for (int64_t s = 0; s < g * g; ++s) {
    const int64_t iy = s / g, ix = s % g;
    for (int i = 0; i < 4; ++i) f(static_cast<int32_t>(s), i, (i >> 1) * g + iy, (i & 1) * g + ix);
  }
}

// A bin's int8 winners widened to int32: the per-corner loops compare them with float
// lanes, which vectorizes at one width (int8 there measured the max boxes' gradient
// about 1.7x slower).
inline const int32_t* Widened(const int8_t* arg, int64_t c, int32_t* out) {
#pragma omp simd
  for (int64_t j = 0; j < c; ++j) out[j] = arg[j];
  return out;
}

template <typename T, bool Corner>
void ReadBins(const SampleTables& t, const T* xs, int64_t h, int64_t w, int64_t c, const int8_t* arg,
              const int32_t* code, const T* wy, const T* wx, T* out, ffi::ThreadPool& pool) {
  const int64_t g2 = 2 * t.g;
  ParallelFor(pool, t.k, [&](int64_t k) {
    const T* img = xs + static_cast<int64_t>(t.image[k]) * h * w * c;
    std::vector<int32_t> wins(c);
    std::vector<T> shares(Corner ? 4 * c : 0);
    for (int64_t p = 0; p < t.p; ++p) {
      const int64_t kp = k * t.p + p;
      for (int64_t q = 0; q < t.q; ++q) {
        const int64_t kq = k * t.q + q, e = (kp * t.q + q) * c;
        T* o = out + e;
        std::memset(o, 0, sizeof(T) * c);
        const int32_t* __restrict ae = Widened(arg + e, c, wins.data());
        if constexpr (Corner) DecodeShares<T>(code + e, nullptr, c, shares.data());
        ForCorners(t.g, [&](int32_t s, int i, int64_t a, int64_t b) {
          const T wt = wy[kp * g2 + a] * wx[kq * g2 + b];
          const T* __restrict xr = img + (static_cast<int64_t>(t.ry[kp * g2 + a]) * w + t.rx[kq * g2 + b]) * c;
          const T* __restrict sh = shares.data() + i * c;  // corner_max only
          T* __restrict oe = o;
#pragma omp simd
          for (int64_t j = 0; j < c; ++j) {
            const T v = (Corner ? sh[j] * wt : wt) * xr[j];
            oe[j] += ae[j] == s ? v : T(0);
          }
        });
      }
    }
  });
}

// The largest grid G whose winner indices, and -1 for none, fit one float32 permutation
// (G * G < 8 lanes).
constexpr int64_t kPixelGrid = 2;

struct PixelTables {
  int64_t rows[2 * kPixelGrid], cols[2 * kPixelGrid];
  float row_w[2 * kPixelGrid][kPixelGrid], col_w[2 * kPixelGrid][kPixelGrid];  // [row or column][sample's iy or ix]
  int64_t n_rows = 0, n_cols = 0;
};

// Distinct entries of one bin's 2G-entry table (lo block then hi block) among [lo, hi),
// each with its weight summed per sample coordinate (a clamped sample's lo and hi coincide).
inline void DistinctTaps(int64_t g, const int32_t* index, const float* weight, int64_t lo, int64_t hi,
                         int64_t* out, float (*out_w)[kPixelGrid], int64_t* count) {
  int64_t n = 0;
  for (int64_t a = 0; a < 2 * g; ++a) {
    const int64_t r = index[a];
    if (r < lo || r >= hi) continue;
    int64_t d = 0;
    while (d < n && out[d] != r) ++d;
    if (d == n) {
      out[n] = r;
      for (int64_t s = 0; s < kPixelGrid; ++s) out_w[n][s] = 0.0f;
      ++n;
    }
    out_w[d][a % g] += weight[a];
  }
  *count = n;
}

// max's scatter of one bin by pixels (float32, G <= kPixelGrid): the bin's samples x corners
// fall on at most 2G x 2G distinct pixels (about 3 x 3 at G = 2, against 4 G^2 = 16
// corners), and each lane adds to a pixel the weight of its winning sample there, picked
// from the pixel's per-sample table by one permutation: no per-sample mask, one
// read-modify-write of each pixel.  Rows outside [lo, hi) are the other bands'.  Returns
// the first channel it did not cover (whole vectors only; the caller masks the rest).
inline int64_t ScatterBinByPixels(int64_t g, const int32_t* ry, const float* wy, const int32_t* rx, const float* wx,
                                  int64_t lo, int64_t hi, int64_t w, int64_t c, const float* ct, const int8_t* arg,
                                  float* img) {
  using V = Vec<float>;
  typedef int32_t VI __attribute__((vector_size(kVectorBytes)));
  constexpr int64_t lanes = kVectorBytes / sizeof(float);
  PixelTables t;
  DistinctTaps(g, ry, wy, lo, hi, t.rows, t.row_w, &t.n_rows);
  DistinctTaps(g, rx, wx, 0, INT64_MAX, t.cols, t.col_w, &t.n_cols);
  const int64_t vectors = c / lanes;
  for (int64_t i = 0; i < t.n_rows; ++i) {
    for (int64_t j = 0; j < t.n_cols; ++j) {
      V table = {};  // lanes past the samples stay 0: arg -1 (no winner) masks to the last
      for (int64_t s = 0; s < g * g; ++s) table[s] = t.row_w[i][s / g] * t.col_w[j][s % g];
      float* __restrict px = img + (t.rows[i] * w + t.cols[j]) * c;
      for (int64_t v = 0; v < vectors; ++v) {
        V gv, xv;
        VI av;
        std::memcpy(&gv, ct + v * lanes, sizeof(V));
        for (int64_t l = 0; l < lanes; ++l) av[l] = arg[v * lanes + l];  // widened: one vpmovsxbd
        std::memcpy(&xv, px + v * lanes, sizeof(V));
        xv += __builtin_shuffle(table, av & (lanes - 1)) * gv;
        std::memcpy(px + v * lanes, &xv, sizeof(V));
      }
    }
  }
  return vectors * lanes;
}

template <typename T, bool Corner>
void ScatterBins(const SampleTables& t, int64_t n, int64_t h, int64_t w, int64_t c, const T* g, const int8_t* arg,
                 const int32_t* code, const T* wy, const T* wx, T* dx, ffi::ThreadPool& pool) {
  const int64_t g2 = 2 * t.g;
  constexpr bool kByPixels = !Corner && std::is_same_v<T, float>;
  const bool by_pixels = kByPixels && t.g <= kPixelGrid;
  ForRowBands(pool, dx, n, h, w * c, [&](int64_t lo, int64_t hi) {
    std::vector<int32_t> wins(c);
    std::vector<T> shared_g(Corner ? 4 * c : 0);
    for (int64_t k = 0; k < t.k; ++k) {
      T* img = dx + static_cast<int64_t>(t.image[k]) * h * w * c;
      for (int64_t p = 0; p < t.p; ++p) {
        const int64_t kp = k * t.p + p;
        const int32_t* rows = t.ry + kp * g2;
        if (std::none_of(rows, rows + g2, [&](int32_t r) { return r >= lo && r < hi; })) continue;
        for (int64_t q = 0; q < t.q; ++q) {
          const int64_t kq = k * t.q + q, e = (kp * t.q + q) * c;
          int64_t c0 = 0;
          if constexpr (kByPixels) {
            if (by_pixels)
              c0 = ScatterBinByPixels(t.g, rows, wy + kp * g2, t.rx + kq * g2, wx + kq * g2, lo, hi, w, c, g + e,
                                      arg + e, img);
          }
          if (c0 == c) continue;
          const int32_t* __restrict ae = Widened(arg + e, c, wins.data());
          if constexpr (Corner) DecodeShares<T>(code + e, g + e, c, shared_g.data());
          ForCorners(t.g, [&](int32_t s, int i, int64_t a, int64_t b) {
            const int64_t r = rows[a];
            if (r < lo || r >= hi) return;
            const T wt = wy[kp * g2 + a] * wx[kq * g2 + b];
            T* __restrict xr = img + (r * w + t.rx[kq * g2 + b]) * c;
            const T* __restrict ge = Corner ? shared_g.data() + i * c : g + e;
#pragma omp simd
            for (int64_t j = c0; j < c; ++j) {
              const T v = wt * ge[j];  // loaded unconditionally, then selected: vectorizes
              xr[j] += ae[j] == s ? v : T(0);
            }
          });
        }
      }
    }
  });
}

template <typename T, bool Corner>
void WeightBins(const SampleTables& t, const T* xs, int64_t h, int64_t w, int64_t c, const T* g, const int8_t* arg,
                const int32_t* code, const T* wy, const T* wx, T* dwy, T* dwx, ffi::ThreadPool& pool) {
  const int64_t g2 = 2 * t.g;
  ParallelFor(pool, t.k, [&](int64_t k) {
    const T* img = xs + static_cast<int64_t>(t.image[k]) * h * w * c;
    std::memset(dwy + k * t.p * g2, 0, sizeof(T) * t.p * g2);
    std::memset(dwx + k * t.q * g2, 0, sizeof(T) * t.q * g2);
    std::vector<int32_t> wins(c);
    std::vector<T> shared_g(Corner ? 4 * c : 0);
    for (int64_t p = 0; p < t.p; ++p) {
      const int64_t kp = k * t.p + p;
      for (int64_t q = 0; q < t.q; ++q) {
        const int64_t kq = k * t.q + q, e = (kp * t.q + q) * c;
        const int32_t* __restrict ae = Widened(arg + e, c, wins.data());
        if constexpr (Corner) DecodeShares<T>(code + e, g + e, c, shared_g.data());
        ForCorners(t.g, [&](int32_t s, int i, int64_t a, int64_t b) {
          const T* __restrict xr = img + (static_cast<int64_t>(t.ry[kp * g2 + a]) * w + t.rx[kq * g2 + b]) * c;
          const T* __restrict ge = Corner ? shared_g.data() + i * c : g + e;
          T d = 0;
#pragma omp simd reduction(+ : d)
          for (int64_t j = 0; j < c; ++j) {
            const T v = ge[j] * xr[j];
            d += ae[j] == s ? v : T(0);
          }
          dwy[kp * g2 + a] += wx[kq * g2 + b] * d;
          dwx[kq * g2 + b] += wy[kp * g2 + a] * d;
        });
      }
    }
  });
}

template <ffi::DataType D>
ffi::Error WinnerRead(ffi::ThreadPool pool, ffi::Buffer<D> x, ffi::Buffer<ffi::S32> image, ffi::Buffer<ffi::S8> arg,
                      ffi::Buffer<ffi::S32> code, ffi::Buffer<ffi::S32> ry, ffi::Buffer<D> wy,
                      ffi::Buffer<ffi::S32> rx, ffi::Buffer<D> wx, bool corner, ffi::ResultBuffer<D> out) {
  using T = ffi::NativeType<D>;
  const auto xd = x.dimensions();
  const SampleTables t = MakeSampleTables(image, ry, rx);
  AdviseHugePages(out->typed_data(), out->size_bytes());
  auto run = corner ? ReadBins<T, true> : ReadBins<T, false>;
  run(t, x.typed_data(), xd[1], xd[2], xd[3], arg.typed_data(), code.typed_data(), wy.typed_data(), wx.typed_data(),
      out->typed_data(), pool);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error WinnerFeaturesTranspose(ffi::ThreadPool pool, ffi::Buffer<D> ct, ffi::Buffer<ffi::S32> image,
                                   ffi::Buffer<ffi::S8> arg, ffi::Buffer<ffi::S32> code, ffi::Buffer<ffi::S32> ry,
                                   ffi::Buffer<D> wy, ffi::Buffer<ffi::S32> rx, ffi::Buffer<D> wx, bool corner,
                                   ffi::ResultBuffer<D> dx) {
  using T = ffi::NativeType<D>;
  const auto xd = dx->dimensions();
  const SampleTables t = MakeSampleTables(image, ry, rx);
  AdviseHugePages(dx->typed_data(), dx->size_bytes());
  auto run = corner ? ScatterBins<T, true> : ScatterBins<T, false>;
  run(t, xd[0], xd[1], xd[2], xd[3], ct.typed_data(), arg.typed_data(), code.typed_data(), wy.typed_data(),
      wx.typed_data(), dx->typed_data(), pool);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error WinnerWeightsTranspose(ffi::ThreadPool pool, ffi::Buffer<D> ct, ffi::Buffer<D> x,
                                  ffi::Buffer<ffi::S32> image, ffi::Buffer<ffi::S8> arg, ffi::Buffer<ffi::S32> code,
                                  ffi::Buffer<ffi::S32> ry, ffi::Buffer<D> wy, ffi::Buffer<ffi::S32> rx,
                                  ffi::Buffer<D> wx, bool corner, ffi::ResultBuffer<D> dwy, ffi::ResultBuffer<D> dwx) {
  using T = ffi::NativeType<D>;
  const auto xd = x.dimensions();
  const SampleTables t = MakeSampleTables(image, ry, rx);
  auto run = corner ? WeightBins<T, true> : WeightBins<T, false>;
  run(t, x.typed_data(), xd[1], xd[2], xd[3], ct.typed_data(), arg.typed_data(), code.typed_data(), wy.typed_data(),
      wx.typed_data(), dwy->typed_data(), dwx->typed_data(), pool);
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_roialign

// Operands after the thread pool: the value (x or ct; for the weights' transpose ct then
// x), image, arg, code, ry, wy, rx, wx; then the attribute `corner` and the result(s).
#define JAX_ROIALIGN_WINNER_TABLES(D)   \
  .Arg<ffi::Buffer<ffi::S32>>()         \
      .Arg<ffi::Buffer<ffi::S8>>()      \
      .Arg<ffi::Buffer<ffi::S32>>()     \
      .Arg<ffi::Buffer<ffi::S32>>()     \
      .Arg<ffi::Buffer<D>>()            \
      .Arg<ffi::Buffer<ffi::S32>>()     \
      .Arg<ffi::Buffer<D>>()            \
      .Attr<bool>("corner")

#define JAX_ROIALIGN_WINNER_HANDLERS(SUFFIX, D)                                                                  \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(                                                                                 \
      JaxRoialignWinnerRead##SUFFIX, jax_roialign::WinnerRead<D>,                                                \
      ffi::Ffi::Bind().Ctx<ffi::ThreadPool>().Arg<ffi::Buffer<D>>() JAX_ROIALIGN_WINNER_TABLES(D).Ret<ffi::Buffer<D>>()); \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(                                                                                 \
      JaxRoialignWinnerFeaturesTranspose##SUFFIX, jax_roialign::WinnerFeaturesTranspose<D>,                      \
      ffi::Ffi::Bind().Ctx<ffi::ThreadPool>().Arg<ffi::Buffer<D>>() JAX_ROIALIGN_WINNER_TABLES(D).Ret<ffi::Buffer<D>>()); \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxRoialignWinnerWeightsTranspose##SUFFIX,                                       \
                                jax_roialign::WinnerWeightsTranspose<D>,                                         \
                                ffi::Ffi::Bind()                                                                 \
                                    .Ctx<ffi::ThreadPool>()                                                      \
                                    .Arg<ffi::Buffer<D>>()                                                       \
                                    .Arg<ffi::Buffer<D>>() JAX_ROIALIGN_WINNER_TABLES(D)                         \
                                    .Ret<ffi::Buffer<D>>()                                                       \
                                    .Ret<ffi::Buffer<D>>());

JAX_ROIALIGN_WINNER_HANDLERS(F32, ffi::F32)
JAX_ROIALIGN_WINNER_HANDLERS(F64, ffi::F64)
