#include "attnscope/large_alloc.hpp"

#include <cstdlib>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace attnscope {
namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;

// ATTNSCOPE_NO_HUGE_PAGES=1 turns the whole scheme off (A/B measurements, odd kernels). Read once:
// large_free must make the same choice large_alloc made.
bool huge_pages_off() {
  static const bool off = [] {
    const char* v = std::getenv("ATTNSCOPE_NO_HUGE_PAGES");
    return v != nullptr && *v != '\0' && *v != '0';
  }();
  return off;
}

}  // namespace

void* large_alloc(std::size_t bytes) {
  if (bytes < kHugePage || huge_pages_off()) return ::operator new(bytes == 0 ? 1 : bytes);
  const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  if (rounded < bytes) throw std::bad_alloc();
  void* p = std::aligned_alloc(kHugePage, rounded);
  if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(p, rounded, MADV_HUGEPAGE);  // advice only: a kernel without THP simply ignores it
#endif
  return p;
}

void large_free(void* p, std::size_t bytes) noexcept {
  if (!p) return;
  if (bytes < kHugePage || huge_pages_off()) {
    ::operator delete(p);
  } else {
    std::free(p);
  }
}

}  // namespace attnscope
