// The avg CPU kernels' inner loops alone, outside XLA: A/B of tap-table forms, a fused
// transpose, and the read's time per box with its output reused or freshly mapped.
// Built and run by kernel_alone.py (which writes the tables); see its docstring.
//
// The loops over boxes and bands are those of kernels/cpu/tap_sum.cc with OpenMP threads
// in place of XLA's pool; the per-bin work (BinTaps, BinBlock, ScatterBlock, DotLanes) is
// the kernels' own, included from the source.

#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tap_sum.cc"

namespace {

using namespace jax_roialign;  // the kernels' per-bin functions
using T = float;
using V = Vec<T>;
constexpr int64_t kBlock = BlockChannels<T>();
constexpr int64_t kLanes = kVectorBytes / sizeof(T);

struct Array {
  std::vector<char> bytes;
  std::vector<int64_t> shape;
};

// Arrays written by kernel_alone.py: <prefix>.meta lists "name dims...", <prefix>.<name>.bin the data.
std::map<std::string, Array> Load(const std::string& prefix) {
  std::map<std::string, Array> arrays;
  std::ifstream meta(prefix + ".meta");
  std::string line;
  while (std::getline(meta, line)) {
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    Array a;
    for (int64_t d; fields >> d;) a.shape.push_back(d);
    std::ifstream data(prefix + "." + name + ".bin", std::ios::binary);
    a.bytes.assign(std::istreambuf_iterator<char>(data), {});
    arrays[name] = std::move(a);
  }
  return arrays;
}

struct Problem {
  std::map<std::string, Array> a;
  Tables t;
  int64_t n, h, w, c;
  const T *x, *ct, *wy, *wx;
  std::vector<T> out, dx, dwy, dwx, dots;

  explicit Problem(const std::string& prefix) : a(Load(prefix)) {
    const auto& s = a["x"].shape;
    n = s[0], h = s[1], w = s[2], c = s[3];
    auto i32 = [&](const char* k) { return reinterpret_cast<const int32_t*>(a[k].bytes.data()); };
    auto f32 = [&](const char* k) { return reinterpret_cast<const T*>(a[k].bytes.data()); };
    t = Tables{a["ry"].shape[0], a["ry"].shape[1], a["rx"].shape[1], a["ry"].shape[2], a["rx"].shape[2],
               i32("image"),      i32("ry"),         i32("ny"),         i32("rx"),         i32("nx")};
    x = f32("x"), ct = f32("ct"), wy = f32("wy"), wx = f32("wx");
    out.assign(t.k * t.p * t.q * c, 0);
    dx.assign(n * h * w * c, 0);
    dwy.assign(t.k * t.p * t.ty, 0);
    dwx.assign(t.k * t.q * t.tx, 0);
    dots.assign(t.k * t.p * t.q * t.ty * t.tx, 0);
  }

  const T* Image(const T* base, int64_t k) const { return base + static_cast<int64_t>(t.image[k]) * h * w * c; }

  // The Read kernel into o (channels a multiple of the block).
  void Read(T* o) const {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t k = 0; k < t.k; ++k) {
      std::vector<T> tw(t.ty * t.tx);
      std::vector<int64_t> to(t.ty * t.tx);
      for (int64_t p = 0; p < t.p; ++p) {
        for (int64_t q = 0; q < t.q; ++q) {
          const int64_t taps = BinTaps(t, wy, wx, k, p, q, w * c, c, 0, h, tw.data(), to.data());
          T* bin = o + ((k * t.p + p) * t.q + q) * c;
          for (int64_t c0 = 0; c0 < c; c0 += kBlock) BinBlock<T>(taps, tw.data(), to.data(), Image(x, k) + c0, bin + c0);
        }
      }
    }
  }

  // Bands of rows as ForRowBands cuts them, each zeroed and then visited by one thread.
  void Bands(const std::function<void(int64_t, int64_t)>& body) {
    const int64_t band = std::max<int64_t>(1, h / (4 * omp_get_max_threads()));
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t b = 0; b < (h + band - 1) / band; ++b) {
      const int64_t lo = b * band, hi = std::min(h, lo + band);
      for (int64_t i = 0; i < n; ++i) std::memset(dx.data() + (i * h + lo) * w * c, 0, sizeof(T) * (hi - lo) * w * c);
      body(lo, hi);
    }
  }

  // The FeaturesTranspose kernel (the banded scatter).
  void FeaturesTranspose() {
    Bands([&](int64_t lo, int64_t hi) {
      std::vector<T> tw(t.ty * t.tx);
      std::vector<int64_t> to(t.ty * t.tx);
      for (int64_t k = 0; k < t.k; ++k) {
        T* img = dx.data() + static_cast<int64_t>(t.image[k]) * h * w * c;
        for (int64_t p = 0; p < t.p; ++p) {
          if (!RowsMeet(t, k * t.p + p, lo, hi)) continue;
          for (int64_t q = 0; q < t.q; ++q) {
            const int64_t taps = BinTaps(t, wy, wx, k, p, q, w * c, c, lo, hi, tw.data(), to.data());
            const T* g = ct + ((k * t.p + p) * t.q + q) * c;
            for (int64_t c0 = 0; c0 < c && taps; c0 += kBlock) ScatterBlock<T>(taps, tw.data(), to.data(), g + c0, img + c0);
          }
        }
      }
    });
  }

  // The WeightsTranspose kernel (the tables' cotangents, per box).
  void WeightsTranspose() {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t k = 0; k < t.k; ++k) {
      std::vector<V> gy(t.p * t.ty, V{}), gx(t.q * t.tx, V{});
      for (int64_t p = 0; p < t.p; ++p) {
        const int64_t kp = k * t.p + p;
        for (int64_t a = 0; a < t.ny[kp]; ++a) {
          const T* row = Image(x, k) + static_cast<int64_t>(t.ry[kp * t.ty + a]) * w * c;
          V sum_a = {};
          for (int64_t q = 0; q < t.q; ++q) {
            const int64_t kq = k * t.q + q;
            for (int64_t b = 0; b < t.nx[kq]; ++b) {
              const V d = DotLanes<T>(c, ct + (kp * t.q + q) * c, row + static_cast<int64_t>(t.rx[kq * t.tx + b]) * c);
              sum_a += wx[kq * t.tx + b] * d;
              gx[q * t.tx + b] += wy[kp * t.ty + a] * d;
            }
          }
          gy[p * t.ty + a] = sum_a;
        }
      }
      for (int64_t i = 0; i < t.p * t.ty; ++i) dwy[k * t.p * t.ty + i] = SumLanes(gy[i]);
      for (int64_t i = 0; i < t.q * t.tx; ++i) dwx[k * t.q * t.tx + i] = SumLanes(gx[i]);
    }
  }

  // Both transposes in one banded pass: each tap's block is scattered and dotted with the
  // features while the bin's cotangent block is in registers; the per-tap dot products
  // (written by the one band that owns the tap's row) then give the tables' cotangents.
  void FusedTranspose() {
    Bands([&](int64_t lo, int64_t hi) {
      std::vector<T> tw(t.ty * t.tx);
      std::vector<int64_t> to(t.ty * t.tx);
      std::vector<V> acc(t.ty * t.tx);
      for (int64_t k = 0; k < t.k; ++k) {
        T* img = dx.data() + static_cast<int64_t>(t.image[k]) * h * w * c;
        for (int64_t p = 0; p < t.p; ++p) {
          const int64_t kp = k * t.p + p;
          if (!RowsMeet(t, kp, lo, hi)) continue;
          for (int64_t q = 0; q < t.q; ++q) {
            const int64_t kq = k * t.q + q;
            const int64_t taps = BinTaps(t, wy, wx, k, p, q, w * c, c, lo, hi, tw.data(), to.data());
            const T* g = ct + (kp * t.q + q) * c;
            std::fill(acc.begin(), acc.begin() + taps, V{});
            for (int64_t c0 = 0; c0 < c && taps; c0 += kBlock) {
              V gv[kVectors];
              for (int64_t v = 0; v < kVectors; ++v) std::memcpy(&gv[v], g + c0 + v * kLanes, sizeof(V));
              for (int64_t i = 0; i < taps; ++i) {
                T* di = img + to[i] + c0;
                const T* xi = Image(x, k) + to[i] + c0;
#pragma GCC unroll 8
                for (int64_t v = 0; v < kVectors; ++v) {
                  V dv, xv;
                  std::memcpy(&dv, di + v * kLanes, sizeof(V));
                  std::memcpy(&xv, xi + v * kLanes, sizeof(V));
                  dv += tw[i] * gv[v];
                  std::memcpy(di + v * kLanes, &dv, sizeof(V));
                  acc[i] += gv[v] * xv;
                }
              }
            }
            int64_t i = 0;  // BinTaps' order: the band's rows a, then every column b
            for (int64_t a = 0; a < t.ny[kp]; ++a) {
              const int64_t r = t.ry[kp * t.ty + a];
              if (r < lo || r >= hi) continue;
              for (int64_t b = 0; b < t.nx[kq]; ++b) dots[((kp * t.q + q) * t.ty + a) * t.tx + b] = SumLanes(acc[i++]);
            }
          }
        }
      }
    });
    std::fill(dwy.begin(), dwy.end(), 0);
    std::fill(dwx.begin(), dwx.end(), 0);
    for (int64_t k = 0; k < t.k; ++k)
      for (int64_t p = 0; p < t.p; ++p)
        for (int64_t q = 0; q < t.q; ++q) {
          const int64_t kp = k * t.p + p, kq = k * t.q + q;
          for (int64_t a = 0; a < t.ny[kp]; ++a)
            for (int64_t b = 0; b < t.nx[kq]; ++b) {
              const T d = dots[((kp * t.q + q) * t.ty + a) * t.tx + b];
              dwy[kp * t.ty + a] += wx[kq * t.tx + b] * d;
              dwx[kq * t.tx + b] += wy[kp * t.ty + a] * d;
            }
        }
  }
};

double Ms(const std::function<void()>& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double RelativeError(const std::vector<T>& a, const std::vector<T>& b) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max<double>(err, std::abs(a[i] - b[i]));
    scale = std::max<double>(scale, std::abs(a[i]));
  }
  return err / scale;
}

// forms <unmerged> <merged>: each pass on both table forms, interleaved, median of 21.
void Forms(const std::string& unmerged, const std::string& merged) {
  Problem u(unmerged), m(merged);
  std::map<std::string, std::vector<double>> ms;
  for (int r = 0; r < 21; ++r) {
    for (Problem* pr : {&u, &m}) {
      const std::string tag = pr == &u ? " T taps" : " merged";
      ms["read" + tag].push_back(Ms([&] { pr->Read(pr->out.data()); }));
      ms["features' transpose" + tag].push_back(Ms([&] { pr->FeaturesTranspose(); }));
      ms["tables' transpose" + tag].push_back(Ms([&] { pr->WeightsTranspose(); }));
    }
    ms["fused transpose merged"].push_back(Ms([&] { m.FusedTranspose(); }));
  }
  std::vector<T> dwy = m.dwy, dwx = m.dwx;
  m.WeightsTranspose();
  std::printf("%s (median ms of 21, %d threads)\n", merged.c_str(), omp_get_max_threads());
  for (const auto& [name, v] : ms) std::printf("  %-30s %7.2f\n", name.c_str(), Median(v));
  std::printf("  merged vs T taps: read %.1e, features' gradient %.1e (relative max error); fused vs separate tables' "
              "cotangents %.1e, %.1e\n",
              RelativeError(u.out, m.out), RelativeError(u.dx, m.dx), RelativeError(m.dwy, dwy),
              RelativeError(m.dwx, dwx));
}

// scaling <prefix>...: the read per box with its output reused, or freshly mapped per call
// (as glibc maps a block above its mmap threshold) with and without huge-page advice, and
// the first touch of such a block alone; then the floor of any features' gradient: zeroing
// a reused buffer of the features' size, as the banded scatter does.
void Scaling(const std::vector<std::string>& prefixes) {
  {
    Problem pr(prefixes.front());
    std::vector<double> v;
    for (int r = 0; r < 51; ++r) v.push_back(Ms([&] { pr.Bands([](int64_t, int64_t) {}); }));
    std::printf("zeroing the features' gradient (%.1f MB, reused, in bands): %.3f ms\n", pr.dx.size() * sizeof(T) / 1e6,
                Median(v));
  }
  std::printf("%6s %8s  us per box: %8s %12s %12s %14s %14s\n", "K", "out MB", "reused", "fresh 2MiB", "fresh 4KiB",
              "touch 2MiB", "touch 4KiB");
  for (const auto& prefix : prefixes) {
    Problem pr(prefix);
    const size_t bytes = pr.out.size() * sizeof(T);
    auto fresh = [&](bool huge, bool read) {
      void* block = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (huge) AdviseHugePages(block, bytes);
      if (read) {
        pr.Read(static_cast<T*>(block));
      } else {
#pragma omp parallel for
        for (int64_t i = 0; i < static_cast<int64_t>(bytes / 4096); ++i) std::memset(static_cast<char*>(block) + i * 4096, 0, 4096);
      }
      munmap(block, bytes);
    };
    std::vector<double> v[5];
    const int repeats = static_cast<int>(std::max<int64_t>(7, 16384 / pr.t.k));
    for (int r = 0; r < repeats; ++r) {
      v[0].push_back(Ms([&] { pr.Read(pr.out.data()); }));
      v[1].push_back(Ms([&] { fresh(true, true); }));
      v[2].push_back(Ms([&] { fresh(false, true); }));
      v[3].push_back(Ms([&] { fresh(true, false); }));
      v[4].push_back(Ms([&] { fresh(false, false); }));
    }
    const double per_box = 1e3 / pr.t.k;
    std::printf("%6ld %8.1f  %21.2f %12.2f %12.2f %14.2f %14.2f\n", static_cast<long>(pr.t.k), bytes / 1e6,
                per_box * Median(v[0]), per_box * Median(v[1]), per_box * Median(v[2]), per_box * Median(v[3]),
                per_box * Median(v[4]));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "forms" && argc == 4) {
    Forms(argv[2], argv[3]);
  } else if (mode == "scaling" && argc > 2) {
    Scaling(std::vector<std::string>(argv + 2, argv + argc));
  } else {
    std::fprintf(stderr, "usage: kernel_alone forms <unmerged> <merged> | scaling <prefix>...\n");
    return 2;
  }
}
