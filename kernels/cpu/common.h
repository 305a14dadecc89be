// Shared by the CPU kernels: the thread pool loop, huge-page advice and SIMD vectors.
#ifndef JAX_ROIALIGN_KERNELS_CPU_COMMON_H_
#define JAX_ROIALIGN_KERNELS_CPU_COMMON_H_

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>

#include <sys/mman.h>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace jax_roialign {

// Runs body(i) for i in [0, n) on the caller and the pool.  Late pool tasks find no work
// and touch only the shared state they own, so the caller may return once all items ran.
template <typename Body>
void ParallelFor(ffi::ThreadPool& pool, int64_t n, const Body& body) {
  if (n <= 0) return;
  struct State {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
    std::mutex mu;
    std::condition_variable cv;
  };
  auto state = std::make_shared<State>();
  const int64_t n_workers = std::min<int64_t>(std::max<int64_t>(pool.num_threads(), 1), n);
  auto work = [state, n, &body]() {
    for (int64_t i = state->next.fetch_add(1); i < n; i = state->next.fetch_add(1)) {
      body(i);
      if (state->done.fetch_add(1) + 1 == n) {
        std::lock_guard<std::mutex> lock(state->mu);
        state->cv.notify_all();
      }
    }
  };
  for (int64_t w = 1; w < n_workers; ++w) {
    // The task copies `state` but refers to `body`: it dereferences body only for an
    // item it claimed, and every item completes before this function returns.
    pool.Schedule([work]() { work(); });
  }
  work();
  std::unique_lock<std::mutex> lock(state->mu);
  state->cv.wait(lock, [&] { return state->done.load() == n; });
}

// Asks the kernel for 2 MiB pages over a large result before its first touch: a fresh
// result of tens of MiB otherwise costs one page fault per 4 KiB.  A hint only.
inline void AdviseHugePages(void* data, size_t bytes) {
  constexpr uintptr_t kHuge = uintptr_t{1} << 21;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

template <typename T>
inline void Axpy(int64_t n, T a, const T* __restrict x, T* __restrict y) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// Runs body(lo, hi) once for each band of rows [lo, hi) of an (n, h, row) array, bands
// spread over the pool (a few per thread, for balance), after zeroing the band's rows of
// every image.  A band is owned by one worker, so writes into it need no ordering beyond
// the body's own: the feature gradients' scatters are deterministic this way.
template <typename T, typename Body>
void ForRowBands(ffi::ThreadPool& pool, T* out, int64_t n, int64_t h, int64_t row, const Body& body) {
  const int64_t workers = std::max<int64_t>(pool.num_threads(), 1);
  const int64_t band = std::max<int64_t>(1, h / (4 * workers));
  ParallelFor(pool, (h + band - 1) / band, [&](int64_t i) {
    const int64_t lo = i * band, hi = std::min(h, lo + band);
    for (int64_t img = 0; img < n; ++img) std::memset(out + (img * h + lo) * row, 0, sizeof(T) * (hi - lo) * row);
    body(lo, hi);
  });
}

// GCC / Clang vectors of 32 bytes (8 float32 or 4 float64 lanes); a register block is
// kVectors of them.
constexpr int64_t kVectorBytes = 32;
constexpr int64_t kVectors = 8;

template <typename T>
struct Simd;
template <>
struct Simd<float> {
  typedef float type __attribute__((vector_size(kVectorBytes)));
};
template <>
struct Simd<double> {
  typedef double type __attribute__((vector_size(kVectorBytes)));
};
template <typename T>
using Vec = typename Simd<T>::type;

template <typename T>
constexpr int64_t BlockChannels() {
  return kVectorBytes / sizeof(T) * kVectors;
}

}  // namespace jax_roialign

#endif  // JAX_ROIALIGN_KERNELS_CPU_COMMON_H_
