// Which keys a query row may see (causal, window, sinks; docs/conventions.md), defined once.
// References, fast paths and the map probe all use it, so an off-by-one cannot differ between them.
#pragma once

#include <algorithm>
#include <cstdint>

#include "attnscope/problem.hpp"

namespace attnscope {

struct KeyMask {
  bool causal = false;
  int64_t offset = 0;  // kv_len - q_len: query row i sits at key position i + offset
  int64_t window = 0;  // 0 = unlimited
  int64_t sinks = 0;
  int64_t kv_len = 0;

  static KeyMask of(const AttentionProblem& p);

  bool visible(int64_t i, int64_t j) const {
    if (!causal) return true;
    const int64_t pos = i + offset;
    if (j > pos) return false;
    if (window <= 0) return true;
    return j > pos - window || j < sinks;
  }
  // Half-open range [lo, hi) of keys that the window part covers for row i (sinks come on top).
  int64_t window_lo(int64_t i) const {
    if (!causal || window <= 0) return 0;
    return std::max<int64_t>(0, i + offset - window + 1);
  }
  int64_t hi(int64_t i) const {
    if (!causal) return kv_len;
    return std::clamp<int64_t>(i + offset + 1, 0, kv_len);
  }
  // Number of keys visible to row i.
  int64_t count(int64_t i) const {
    const int64_t h = hi(i);
    if (h <= 0) return 0;
    const int64_t lo = std::min(window_lo(i), h);
    return (h - lo) + std::min(sinks > 0 && window > 0 ? sinks : 0, lo);
  }
};

}  // namespace attnscope
