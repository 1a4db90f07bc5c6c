// What a forward allocates, computed before it allocates anything: a text too long for the
// machine is refused up front with the numbers, never discovered by the OOM killer mid-run.
#pragma once

#include <cstdint>
#include <string>

#include "attnscope/checkpoint.hpp"
#include "attnscope/model.hpp"

namespace attnscope::forward_detail {

struct ForwardMemory {
  int64_t activations = 0;  // residual stream, per-layer buffers, RoPE tables, nll scratch
  int64_t logits = 0;       // [L, V] when kept
  int64_t captures = 0;     // every layer's q, k, v, o, lse when capturing
  int64_t weights = 0;      // widened weights (cache, or streaming scratch)
  int64_t total() const;
  // "activations 1.2 GiB, logits 384 MiB, captures 0 B, widened weights 540 MiB"
  std::string describe() const;
};

// Rows of logits the nll pass materializes at once when the logits are not kept.
int64_t nll_chunk_rows(int64_t tokens, int64_t vocab);

ForwardMemory forward_memory(const ModelConfig& config, int64_t weight_bytes, int64_t tokens,
                             const ForwardOptions& options);

// The budget a forward runs under: options.memory_budget, or memory_budget_bytes() when 0.
int64_t forward_budget(const ForwardOptions& options);

// Throws Error "a forward of N tokens needs X GiB (...); this machine allows Y GiB".
void check_budget(const ForwardMemory& memory, int64_t tokens, int64_t budget);

// "1.25 GiB", "512.0 MiB", "12.0 KiB", "64 B"
std::string format_bytes(int64_t bytes);

}  // namespace attnscope::forward_detail
