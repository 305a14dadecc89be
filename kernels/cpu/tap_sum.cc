// avg RoIAlign's tap sum and its two transposes, as XLA FFI custom calls for the host CPU.
//
// The op is out[k, p, q, c] = sum_{a < ny[k, p]} sum_{b < nx[k, q]} wy[k, p, a] * wx[k, q, b]
//                                * x[image[k], ry[k, p, a], rx[k, q, b], c]
// with per-axis tap tables built in JAX (jax_roialign/kernels/tap_sum_cpu.py).  Three
// handlers, each one of the form's contractions:
//   Read              out   (K, P, Q, C)  given x, tables
//   FeaturesTranspose dx    (N, H, W, C)  given ct (K, P, Q, C), tables
//   WeightsTranspose  dwy   (K, P, TY), dwx (K, Q, TX)  given ct, x, tables
// Accumulation is in the element type (float32 or float64).  Work is split over the
// XLA intra-op thread pool: by boxes for Read and WeightsTranspose (each box writes only
// its own rows), by bands of feature rows for FeaturesTranspose (each band is written by
// one worker, visiting boxes in order), so every result is deterministic.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common.h"

namespace jax_roialign {
namespace {

struct Tables {
  int64_t k, p, q, ty, tx;
  const int32_t* image;
  const int32_t* ry;
  const int32_t* ny;
  const int32_t* rx;
  const int32_t* nx;
};

Tables MakeTables(ffi::Buffer<ffi::S32> image, ffi::Buffer<ffi::S32> ry, ffi::Buffer<ffi::S32> ny,
                  ffi::Buffer<ffi::S32> rx, ffi::Buffer<ffi::S32> nx) {
  auto dy = ry.dimensions();
  auto dx = rx.dimensions();
  return Tables{dy[0], dy[1], dx[1], dy[2], dx[2], image.typed_data(), ry.typed_data(), ny.typed_data(),
                rx.typed_data(), nx.typed_data()};
}

template <typename T>
inline void BinBlock(int64_t taps, const T* w, const int64_t* offset, const T* x, T* out) {
  using V = Vec<T>;
  constexpr int64_t lanes = kVectorBytes / sizeof(T);
  V acc[kVectors] = {};
  for (int64_t i = 0; i < taps; ++i) {
    const T wi = w[i];
    const T* xi = x + offset[i];
#pragma GCC unroll 8
    for (int64_t v = 0; v < kVectors; ++v) {
      V xv;
      std::memcpy(&xv, xi + v * lanes, sizeof(V));
      acc[v] += wi * xv;
    }
  }
#pragma GCC unroll 8
  for (int64_t v = 0; v < kVectors; ++v) std::memcpy(out + v * lanes, &acc[v], sizeof(V));
}

// The taps of bin (p, q) of box k whose row lies in [lo, hi): weights wy * wx and offsets
// (elements) from the image's start, row-major.  Returns their number.
template <typename T>
int64_t BinTaps(const Tables& t, const T* wys, const T* wxs, int64_t k, int64_t p, int64_t q, int64_t row_stride,
                int64_t c, int64_t lo, int64_t hi, T* tap_w, int64_t* tap_off) {
  const int64_t kp = k * t.p + p, kq = k * t.q + q;
  int64_t taps = 0;
  for (int64_t a = 0; a < t.ny[kp]; ++a) {
    const int64_t r = t.ry[kp * t.ty + a];
    if (r < lo || r >= hi) continue;
    const T wa = wys[kp * t.ty + a];
    for (int64_t b = 0; b < t.nx[kq]; ++b, ++taps) {
      tap_w[taps] = wa * wxs[kq * t.tx + b];
      tap_off[taps] = r * row_stride + static_cast<int64_t>(t.rx[kq * t.tx + b]) * c;
    }
  }
  return taps;
}

template <typename T>
inline void BinTail(int64_t n, int64_t taps, const T* w, const int64_t* offset, const T* x, T* out) {
  for (int64_t j = 0; j < n; ++j) out[j] = 0;
  for (int64_t i = 0; i < taps; ++i) Axpy<T>(n, w[i], x + offset[i], out);
}

template <ffi::DataType D>
ffi::Error Read(ffi::ThreadPool pool, ffi::Buffer<D> x, ffi::Buffer<ffi::S32> image, ffi::Buffer<ffi::S32> ry,
                ffi::Buffer<D> wy, ffi::Buffer<ffi::S32> ny, ffi::Buffer<ffi::S32> rx, ffi::Buffer<D> wx,
                ffi::Buffer<ffi::S32> nx, ffi::ResultBuffer<D> out) {
  using T = ffi::NativeType<D>;
  constexpr int64_t kBlock = BlockChannels<T>();
  const auto xd = x.dimensions();
  const int64_t h = xd[1], w = xd[2], c = xd[3];
  const Tables t = MakeTables(image, ry, ny, rx, nx);
  const T* xs = x.typed_data();
  const T* wys = wy.typed_data();
  const T* wxs = wx.typed_data();
  T* o = out->typed_data();
  AdviseHugePages(o, out->size_bytes());
  ParallelFor(pool, t.k, [&](int64_t k) {
    std::vector<T> tap_w(t.ty * t.tx);
    std::vector<int64_t> tap_off(t.ty * t.tx);
    const T* img = xs + static_cast<int64_t>(t.image[k]) * h * w * c;
    for (int64_t p = 0; p < t.p; ++p) {
      const int64_t kp = k * t.p + p;
      for (int64_t q = 0; q < t.q; ++q) {
        const int64_t taps = BinTaps(t, wys, wxs, k, p, q, w * c, c, 0, h, tap_w.data(), tap_off.data());
        T* bin = o + (kp * t.q + q) * c;
        int64_t c0 = 0;
        for (; c0 + kBlock <= c; c0 += kBlock) BinBlock<T>(taps, tap_w.data(), tap_off.data(), img + c0, bin + c0);
        if (c0 < c) BinTail<T>(c - c0, taps, tap_w.data(), tap_off.data(), img + c0, bin + c0);
      }
    }
  });
  return ffi::Error::Success();
}

// Whether any row tap of row-bin kp lies in [lo, hi).
inline bool RowsMeet(const Tables& t, int64_t kp, int64_t lo, int64_t hi) {
  for (int64_t a = 0; a < t.ny[kp]; ++a) {
    const int64_t r = t.ry[kp * t.ty + a];
    if (r >= lo && r < hi) return true;
  }
  return false;
}

// dx[offset[i] + (0, kLanes * kVectors)] += w[i] * g for every tap i of one bin, the
// bin's cotangent block held in registers.
template <typename T>
inline void ScatterBlock(int64_t taps, const T* w, const int64_t* offset, const T* g, T* x) {
  using V = Vec<T>;
  constexpr int64_t lanes = kVectorBytes / sizeof(T);
  V gv[kVectors];
#pragma GCC unroll 8
  for (int64_t v = 0; v < kVectors; ++v) std::memcpy(&gv[v], g + v * lanes, sizeof(V));
  for (int64_t i = 0; i < taps; ++i) {
    const T wi = w[i];
    T* xi = x + offset[i];
#pragma GCC unroll 8
    for (int64_t v = 0; v < kVectors; ++v) {
      V xv;
      std::memcpy(&xv, xi + v * lanes, sizeof(V));
      xv += wi * gv[v];
      std::memcpy(xi + v * lanes, &xv, sizeof(V));
    }
  }
}

template <ffi::DataType D>
ffi::Error FeaturesTranspose(ffi::ThreadPool pool, ffi::Buffer<D> ct, ffi::Buffer<ffi::S32> image,
                             ffi::Buffer<ffi::S32> ry, ffi::Buffer<D> wy, ffi::Buffer<ffi::S32> ny,
                             ffi::Buffer<ffi::S32> rx, ffi::Buffer<D> wx, ffi::Buffer<ffi::S32> nx,
                             ffi::ResultBuffer<D> dx) {
  using T = ffi::NativeType<D>;
  constexpr int64_t kBlock = BlockChannels<T>();
  const auto xd = dx->dimensions();
  const int64_t n = xd[0], h = xd[1], w = xd[2], c = xd[3];
  const Tables t = MakeTables(image, ry, ny, rx, nx);
  const T* g = ct.typed_data();
  const T* wys = wy.typed_data();
  const T* wxs = wx.typed_data();
  T* out = dx->typed_data();
  AdviseHugePages(out, dx->size_bytes());
  // Each band's worker visits the boxes in order, so the sums are deterministic.
  ForRowBands(pool, out, n, h, w * c, [&](int64_t lo, int64_t hi) {
    std::vector<T> tap_w(t.ty * t.tx);
    std::vector<int64_t> tap_off(t.ty * t.tx);
    for (int64_t k = 0; k < t.k; ++k) {
      T* img = out + static_cast<int64_t>(t.image[k]) * h * w * c;
      for (int64_t p = 0; p < t.p; ++p) {
        if (!RowsMeet(t, k * t.p + p, lo, hi)) continue;
        for (int64_t q = 0; q < t.q; ++q) {
          const int64_t taps = BinTaps(t, wys, wxs, k, p, q, w * c, c, lo, hi, tap_w.data(), tap_off.data());
          if (taps == 0) continue;
          const T* gb = g + ((k * t.p + p) * t.q + q) * c;
          int64_t c0 = 0;
          for (; c0 + kBlock <= c; c0 += kBlock) ScatterBlock<T>(taps, tap_w.data(), tap_off.data(), gb + c0, img + c0);
          for (int64_t j = 0; j < taps && c0 < c; ++j) Axpy<T>(c - c0, tap_w[j], gb + c0, img + tap_off[j] + c0);
        }
      }
    }
  });
  return ffi::Error::Success();
}

// Lane-wise partial sums of g . x over c channels (lanes summed by the caller, once per
// table entry rather than once per tap).
template <typename T>
inline auto DotLanes(int64_t c, const T* g, const T* x) {
  using V = Vec<T>;
  constexpr int64_t lanes = kVectorBytes / sizeof(T);
  V s0 = {}, s1 = {};
  int64_t i = 0;
  for (; i + 2 * lanes <= c; i += 2 * lanes) {
    V g0, g1, x0, x1;
    std::memcpy(&g0, g + i, sizeof(V));
    std::memcpy(&g1, g + i + lanes, sizeof(V));
    std::memcpy(&x0, x + i, sizeof(V));
    std::memcpy(&x1, x + i + lanes, sizeof(V));
    s0 += g0 * x0;
    s1 += g1 * x1;
  }
  for (; i < c; ++i) s0[0] += g[i] * x[i];
  return s0 + s1;
}

template <typename V>
inline auto SumLanes(const V& v) {
  auto s = v[0];
  for (size_t i = 1; i < sizeof(V) / sizeof(s); ++i) s += v[i];
  return s;
}

template <ffi::DataType D>
ffi::Error WeightsTranspose(ffi::ThreadPool pool, ffi::Buffer<D> ct, ffi::Buffer<D> x, ffi::Buffer<ffi::S32> image,
                            ffi::Buffer<ffi::S32> ry, ffi::Buffer<D> wy, ffi::Buffer<ffi::S32> ny,
                            ffi::Buffer<ffi::S32> rx, ffi::Buffer<D> wx, ffi::Buffer<ffi::S32> nx,
                            ffi::ResultBuffer<D> dwy, ffi::ResultBuffer<D> dwx) {
  using T = ffi::NativeType<D>;
  using V = Vec<T>;
  const auto xd = x.dimensions();
  const int64_t h = xd[1], w = xd[2], c = xd[3];
  const Tables t = MakeTables(image, ry, ny, rx, nx);
  const T* g = ct.typed_data();
  const T* xs = x.typed_data();
  const T* wys = wy.typed_data();
  const T* wxs = wx.typed_data();
  T* gy = dwy->typed_data();
  T* gx = dwx->typed_data();
  ParallelFor(pool, t.k, [&](int64_t k) {
    // dwy[k, p, a] = sum_{q, b} wx[k, q, b] * D and dwx[k, q, b] = sum_{p, a} wy[k, p, a] * D
    // with D = ct[k, p, q] . x[image, ry[k, p, a], rx[k, q, b]], accumulated lane-wise.
    std::vector<V> gyv(t.p * t.ty, V{}), gxv(t.q * t.tx, V{});
    const T* img = xs + static_cast<int64_t>(t.image[k]) * h * w * c;
    for (int64_t p = 0; p < t.p; ++p) {
      const int64_t kp = k * t.p + p;
      for (int64_t a = 0; a < t.ny[kp]; ++a) {
        const T wa = wys[kp * t.ty + a];
        const T* row = img + static_cast<int64_t>(t.ry[kp * t.ty + a]) * w * c;
        V sum_a = {};
        for (int64_t q = 0; q < t.q; ++q) {
          const int64_t kq = k * t.q + q;
          const T* gq = g + (kp * t.q + q) * c;
          for (int64_t b = 0; b < t.nx[kq]; ++b) {
            const V d = DotLanes<T>(c, gq, row + static_cast<int64_t>(t.rx[kq * t.tx + b]) * c);
            sum_a += wxs[kq * t.tx + b] * d;
            gxv[q * t.tx + b] += wa * d;
          }
        }
        gyv[p * t.ty + a] = sum_a;
      }
    }
    for (int64_t i = 0; i < t.p * t.ty; ++i) gy[k * t.p * t.ty + i] = SumLanes(gyv[i]);
    for (int64_t i = 0; i < t.q * t.tx; ++i) gx[k * t.q * t.tx + i] = SumLanes(gxv[i]);
  });
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_roialign

// Operands after the thread pool: the value (x or ct; for the weights' transpose ct then
// x), then image, ry, wy, ny, rx, wx, nx; then the result(s).
#define JAX_ROIALIGN_TAP_TABLES(D)  \
  .Arg<ffi::Buffer<ffi::S32>>()     \
      .Arg<ffi::Buffer<ffi::S32>>() \
      .Arg<ffi::Buffer<D>>()        \
      .Arg<ffi::Buffer<ffi::S32>>() \
      .Arg<ffi::Buffer<ffi::S32>>() \
      .Arg<ffi::Buffer<D>>()        \
      .Arg<ffi::Buffer<ffi::S32>>()

#define JAX_ROIALIGN_HANDLERS(SUFFIX, D)                                                                          \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(                                                                                  \
      JaxRoialignRead##SUFFIX, jax_roialign::Read<D>,                                                             \
      ffi::Ffi::Bind().Ctx<ffi::ThreadPool>().Arg<ffi::Buffer<D>>() JAX_ROIALIGN_TAP_TABLES(D).Ret<ffi::Buffer<D>>()); \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(                                                                                  \
      JaxRoialignFeaturesTranspose##SUFFIX, jax_roialign::FeaturesTranspose<D>,                                   \
      ffi::Ffi::Bind().Ctx<ffi::ThreadPool>().Arg<ffi::Buffer<D>>() JAX_ROIALIGN_TAP_TABLES(D).Ret<ffi::Buffer<D>>()); \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxRoialignWeightsTranspose##SUFFIX, jax_roialign::WeightsTranspose<D>,           \
                                ffi::Ffi::Bind()                                                                  \
                                    .Ctx<ffi::ThreadPool>()                                                       \
                                    .Arg<ffi::Buffer<D>>()                                                        \
                                    .Arg<ffi::Buffer<D>>() JAX_ROIALIGN_TAP_TABLES(D)                             \
                                    .Ret<ffi::Buffer<D>>()                                                        \
                                    .Ret<ffi::Buffer<D>>());

JAX_ROIALIGN_HANDLERS(F32, ffi::F32)
JAX_ROIALIGN_HANDLERS(F64, ffi::F64)
