#include "forward/memory.hpp"

#include <algorithm>
#include <cstdio>

#include "attnscope/error.hpp"
#include "attnscope/host_info.hpp"
#include "forward/gemm.hpp"

namespace attnscope::forward_detail {

namespace {

constexpr int64_t kF = 4;  // bytes per fp32

int64_t mul(int64_t a, int64_t b) {
  return checked_mul(a, b, "forward memory");
}
int64_t add(int64_t a, int64_t b) {
  return checked_add(a, b, "forward memory");
}

}  // namespace

int64_t ForwardMemory::total() const {
  return add(add(activations, logits), add(captures, weights));
}

std::string format_bytes(int64_t bytes) {
  char buf[64];
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1024.0 * 1024 * 1024));
  } else if (b >= 1024.0 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1024.0 * 1024));
  } else if (b >= 1024.0) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  } else {
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
  }
  return buf;
}

std::string ForwardMemory::describe() const {
  return "activations " + format_bytes(activations) + ", logits " + format_bytes(logits) +
         ", captures " + format_bytes(captures) + ", widened weights " + format_bytes(weights);
}

int64_t nll_chunk_rows(int64_t tokens, int64_t vocab) {
  // About 64 MiB of logits at a time: large enough for an efficient GEMM, small next to [L, V].
  constexpr int64_t kChunkBytes = int64_t(64) << 20;
  // Whole blocks of the logits grid (gemm.hpp), so every chunk's products are whole blocks.
  int64_t rows = std::max<int64_t>(16, kChunkBytes / std::max<int64_t>(1, vocab * kF));
  rows = (rows + kLogitRows - 1) / kLogitRows * kLogitRows;
  return std::min(rows, std::max<int64_t>(tokens, 1));
}

ForwardMemory forward_memory(const ModelConfig& c, int64_t weight_bytes, int64_t tokens,
                             const ForwardOptions& options) {
  const int64_t L = tokens, d = c.hidden_size, H = c.heads, Hkv = c.kv_heads, Dh = c.head_dim;
  const int64_t q_width = mul(H, Dh), kv_width = mul(Hkv, Dh);
  const bool gpt2 = c.family == ModelFamily::gpt2;
  ForwardMemory m;
  // x, the normed h and the final hidden: [L, d] each.
  int64_t act = mul(mul(3, L), d);
  // The projections' token-major output ([L, 3d] fused for GPT-2) and the attention output.
  act = add(act, mul(L, gpt2 ? mul(3, d) : add(q_width, mul(2, kv_width))));
  act = add(act, mul(L, q_width));
  // MLP: gate and up (llama family), c_fc (GPT-2).
  act = add(act, mul(L, gpt2 ? c.intermediate_size : mul(2, c.intermediate_size)));
  // RoPE tables [L, Dh / 2] twice, and the nll (double).
  if (!gpt2) act = add(act, mul(L, Dh));
  act = add(act, L * 2);
  // One layer's head-major q, k, v and the backend's o, lse: held per layer, or for every layer
  // when captured.
  const int64_t per_layer = mul(L, add(add(mul(2, q_width), mul(2, kv_width)), H));
  if (options.capture) {
    m.captures = mul(mul(per_layer, c.layers), kF);
  } else {
    act = add(act, per_layer);
  }
  if (options.keep_logits) {
    m.logits = mul(mul(L, c.vocab_size), kF);
  } else {
    act = add(act, mul(nll_chunk_rows(L, c.vocab_size), c.vocab_size));
  }
  m.activations = mul(act, kF);
  m.weights = weight_bytes;
  return m;
}

int64_t forward_budget(const ForwardOptions& options) {
  if (options.memory_budget < 0) {
    throw Error("the forward's memory budget must be 0 (the machine's) or positive (got " +
                std::to_string(options.memory_budget) + " bytes)");
  }
  return options.memory_budget > 0 ? options.memory_budget : memory_budget_bytes();
}

void check_budget(const ForwardMemory& memory, int64_t tokens, int64_t budget) {
  const int64_t need = memory.total();
  if (need <= budget) return;
  throw Error("a forward of " + std::to_string(tokens) + " tokens needs " + format_bytes(need) +
              " (" + std::to_string(need) + " bytes: " + memory.describe() +
              "); this machine allows " + format_bytes(budget) + " (" + std::to_string(budget) +
              " bytes)");
}

}  // namespace attnscope::forward_detail
