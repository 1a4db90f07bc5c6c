// MoBA's per-query block selection as a warp-level device function, shared by the full-sequence
// kernel (moba.cu) and the paged decode kernel (paged_decode.cu), so both rank blocks identically.
#pragma once

#include <climits>
#include <cstdint>

#include "common.cuh"

namespace attnscope::cuda {

// The gate's total order: higher score first, equal scores to the lower block index.
__device__ __forceinline__ bool gate_better(float s1, int c1, float s2, int c2) {
  return s1 > s2 || (s1 == s2 && c1 < c2);
}

// Writes the selection row out[0, top_k) of one query whose own block is `own` (>= 0): the
// min(top_k - 1, own) best complete past blocks by gate score, ascending, then `own`, then -1.
// Called by a whole warp (lane = its lane); gate_score(c) is this lane's q · k̄_c (no scale).
//   Phase 1: each lane scores c = lane, lane + 32, ... and keeps its own sorted best list.
//   Phase 2: the warp pops the global best `ranked` times by shuffle argmax (ties to lower c).
//   Phase 3: ascending order, own block last, -1 padding.
// When every past block fits (top_k - 1 >= own), no scoring at all.
template <class GateScore>
__device__ void moba_select_row(int own, int top_k, int lane, GateScore gate_score, int32_t* out) {
  const int ranked = min(top_k - 1, own);  // past blocks to select
  if (ranked == own) {  // every complete past block is selected: 0, 1, ..., own, then -1
    for (int x = lane; x < top_k; x += 32) out[x] = x <= own ? x : -1;
    return;
  }
  if (ranked == 0) {  // top_k = 1: the own block alone
    for (int x = lane; x < top_k; x += 32) out[x] = x == 0 ? own : -1;
    return;
  }

  float best_s[kMobaMaxRanked];
  int best_c[kMobaMaxRanked];
  int count = 0;
  for (int c = lane; c < own; c += 32) {
    const float s = gate_score(c);
    // Candidates arrive in increasing c, so a strict ">" keeps ties in lower-index-first order.
    if (count < ranked || s > best_s[ranked - 1]) {
      int slot = count < ranked ? count : ranked - 1;  // a full list drops its last entry
      while (slot > 0 && best_s[slot - 1] < s) {
        best_s[slot] = best_s[slot - 1];
        best_c[slot] = best_c[slot - 1];
        --slot;
      }
      best_s[slot] = s;
      best_c[slot] = c;
      if (count < ranked) ++count;
    }
  }

  int chosen[kMobaMaxRanked];
  int head = 0;
  for (int r = 0; r < ranked; ++r) {
    float s = head < count ? best_s[head] : ATTNSCOPE_NEG_INF;
    int c = head < count ? best_c[head] : INT_MAX;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      const float s2 = __shfl_xor_sync(kFullMask, s, off);
      const int c2 = __shfl_xor_sync(kFullMask, c, off);
      if (gate_better(s2, c2, s, c)) s = s2, c = c2;
    }
    if (head < count && best_c[head] == c) ++head;  // block ids are unique across lanes
    chosen[r] = c;
  }
  for (int x = 1; x < ranked; ++x) {  // insertion sort of at most 32 ids
    const int c = chosen[x];
    int y = x;
    while (y > 0 && chosen[y - 1] > c) {
      chosen[y] = chosen[y - 1];
      --y;
    }
    chosen[y] = c;
  }
  for (int x = lane; x < top_k; x += 32) {
    out[x] = x < ranked ? chosen[x] : (x == ranked ? own : -1);
  }
}

}  // namespace attnscope::cuda
