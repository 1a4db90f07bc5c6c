// Storage for the engine's big buffers (tensors, KV-cache chunks, the bandwidth calibration):
// allocations of 2 MiB and more are 2 MiB aligned and advised for transparent huge pages.
//
// Why: decode streams hundreds of MB of K/V once per token. With 4 KiB pages the hardware
// prefetchers stop at every page boundary and every 4 KiB costs a TLB walk; on the Zen 5 VM of
// docs/benchmarks.md (THP in "madvise" mode) advised 2 MiB pages let a one-pass read run
// ~1.3–1.5× faster. The bandwidth calibration uses the same storage, so the roofline compares
// like with like. Where the kernel ignores the advice, nothing changes but the alignment;
// ATTNSCOPE_NO_HUGE_PAGES=1 turns it off.
#pragma once

#include <cstddef>
#include <memory>
#include <new>

namespace attnscope {

// Throws std::bad_alloc on failure. large_free must get the same byte count as large_alloc.
void* large_alloc(std::size_t bytes);
void large_free(void* p, std::size_t bytes) noexcept;

// An uninitialized float buffer from large_alloc that frees itself (KV-cache chunks, the triad).
struct LargeFree {
  std::size_t bytes = 0;
  void operator()(float* p) const noexcept { large_free(p, bytes); }
};
using LargeFloats = std::unique_ptr<float[], LargeFree>;
inline LargeFloats make_large_floats(std::size_t count) {
  return LargeFloats(static_cast<float*>(large_alloc(count * sizeof(float))),
                     LargeFree{count * sizeof(float)});
}

template <class T>
struct LargeAllocator {
  using value_type = T;
  LargeAllocator() = default;
  template <class U>
  LargeAllocator(const LargeAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n > std::size_t(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(large_alloc(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept { large_free(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const LargeAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace attnscope
