#include "core/counts.hpp"

#include <algorithm>
#include <limits>

namespace attnscope::counts {

i128 triangle(i128 n) {
  return n <= 0 ? 0 : n * (n + 1) / 2;
}

// Both the window part (min(p + 1, W)) and the sink part (min(S, p - W + 1)) of a sliding-window
// row count are this shape.
i128 capped_ramp_sum(i128 n, i128 cap) {
  if (n <= 0 || cap <= 0) return 0;
  if (n <= cap) return triangle(n);
  return triangle(cap) + (n - cap) * cap;
}

int64_t saturate(i128 v) {
  constexpr i128 top = std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(std::clamp<i128>(v, 0, top));
}

// Rows with p < 0 (Lq > Lk under causal alignment) see nothing, so the visible rows are exactly
// p ∈ [first_position, Lk).
int64_t first_position(int64_t q_len, int64_t kv_len) {
  return std::max<int64_t>(0, kv_len - q_len);
}

i128 dense_pairs(const KeyMask& m, int64_t q_len, int64_t kv_len) {
  if (q_len <= 0 || kv_len <= 0) return 0;
  if (!m.causal) return i128{q_len} * kv_len;
  // p = i + Lk - Lq never exceeds Lk - 1, so hi(i) = p + 1 for every row that sees anything.
  const i128 a = first_position(q_len, kv_len);
  const i128 n = kv_len;
  if (a >= n) return 0;
  if (m.window <= 0) return triangle(n) - triangle(a);
  // Row at p: window keys min(p + 1, W), plus sinks min(S, p - W + 1) below the window.
  const i128 w = m.window;
  const i128 s = m.sinks;
  const i128 window_part = capped_ramp_sum(n, w) - capped_ramp_sum(a, w);
  const i128 sink_part = capped_ramp_sum(n - w, s) - capped_ramp_sum(a - w, s);
  return window_part + sink_part;
}

// The minimal K/V read. Only a causal window makes this smaller than Lk (the last row always
// reaches key Lk - 1).
i128 touched_keys(const KeyMask& m, int64_t q_len, int64_t kv_len) {
  if (q_len <= 0 || kv_len <= 0) return 0;
  if (!m.causal || m.window <= 0) return kv_len;
  const i128 a = first_position(q_len, kv_len);
  const i128 lo = std::max<i128>(0, a - m.window + 1);  // lowest key any window reaches
  return (i128{kv_len} - lo) + std::min<i128>(std::max<int64_t>(m.sinks, 0), lo);
}

}  // namespace attnscope::counts
