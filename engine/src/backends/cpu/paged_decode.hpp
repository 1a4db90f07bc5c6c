// The CPU backend's paged-KV decode (decode.hpp's Backend::decode contract): the shared paged
// softmax walk that every variant's decode is built from, and its entry point.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/decode.hpp"

namespace attnscope::cpu {

struct Range {
  int64_t j0, j1;  // tokens [j0, j1) of the sequence
};

// Where a unit's keys and values sit inside each page. A score is the sum over key parts of
// q[q_off : q_off + width] · (row of the page's part k_part, kv head `head`); MLA has two
// parts (latent and rotary key), everything else one.
struct PageLayout {
  int parts = 1;
  int64_t q_off[2] = {0, 0}, width[2] = {0, 0};
  int k_part[2] = {0, 1}, v_part = 1;  // PagedKvCache::rows parts: 0 = K / c_kv, 1 = V / k_rope
  int64_t head = 0, dv = 0;
};

// One unit of work: G query rows (q_ld apart) attending the token ranges of one sequence.
struct Unit {
  const float* q = nullptr;
  int64_t G = 1, q_ld = 0;
  PageLayout layout;
  std::span<const int32_t> pages;
  std::vector<Range> ranges;
  float* o = nullptr;  // [G, dv], o_ld apart
  int64_t o_ld = 0;
  float* lse = nullptr;  // [G], lse_ld apart
  int64_t lse_ld = 1;
};

// Runs every unit, splitting long ones across threads (FlashDecoding): each split writes a partial
// (o, lse) and the splits merge by log-sum-exp, so the result does not depend on the split count.
void run_units(const PagedKvCache& cache, std::vector<Unit>& units, float scale, int threads,
               const CancelToken& cancel);

// One decode step: the variant's own decode (VariantInfo::cpu_decode) or the shared softmax one.
RunResult decode_paged(PagedKvCache& cache, const DecodeStep& step, int threads,
                       const CancelToken& cancel);

}  // namespace attnscope::cpu
