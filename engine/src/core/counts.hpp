// Closed-form counts of (query, key) pairs under a mask, for the cost model (no loop over rows, so
// 1M-token shapes cost nothing to describe). docs/cost-model.md derives them.
#pragma once

#include <cstdint>

#include "attnscope/mask.hpp"

namespace attnscope::counts {

// Sums of L² terms overflow int64 once L passes ~3·10⁹ (and B·H·L² far sooner), so every count
// is formed in 128 bits and only narrowed at the API boundary.
__extension__ typedef __int128 i128;
i128 triangle(i128 n);
// Σ_{x=1..n} min(x, cap): a ramp that saturates at cap.
i128 capped_ramp_sum(i128 n, i128 cap);
int64_t saturate(i128 v);
// First key position that owns a query row (rows with p < 0 see nothing).
int64_t first_position(int64_t q_len, int64_t kv_len);
// (query, key) pairs the mask leaves visible in one head, and keys at least one row sees.
i128 dense_pairs(const KeyMask& m, int64_t q_len, int64_t kv_len);
i128 touched_keys(const KeyMask& m, int64_t q_len, int64_t kv_len);

}  // namespace attnscope::counts
