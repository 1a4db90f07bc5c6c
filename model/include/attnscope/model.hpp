// A loaded model and its forward pass, as Hugging Face transformers computes it in float32
// (docs/models.md): embeddings, per layer norm -> q/k/v projections (+ qwen3's q/k norm) -> RoPE
// -> attention -> o projection -> residual -> norm -> MLP -> residual, then the final norm and the
// LM head. Every attention call goes through the engine's Backend seam (cpu, reference, cuda), so
// a layer's q, k, v can be captured for attention maps or handed to another variant (what-if).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/cancel.hpp"
#include "attnscope/checkpoint.hpp"
#include "attnscope/inputs.hpp"
#include "attnscope/problem.hpp"
#include "attnscope/tensor.hpp"
#include "attnscope/tokenizer.hpp"

namespace attnscope {

// What one layer's attention call was given and gave back: everything a map probe needs.
struct LayerAttention {
  AttentionProblem problem;  // batch 1, q_len = kv_len = L, causal (SWA for mistral)
  Inputs inputs;     // "q" [1, H, L, Dh] after RoPE (and q/k norm); "k", "v" [1, Hkv, L, Dh]
  RunResult result;  // o [1, H, L, Dh], lse [1, H, L]
};

struct ForwardOptions {
  std::string backend = "cpu";  // a registered backend name (registry.hpp)
  bool keep_logits = true;      // ForwardResult::logits [L, V]; nll is computed either way
  bool capture = false;         // keep every layer's LayerAttention (for maps); costs memory
  // What-if: the problem to run in `layer` instead of the model's own (nullopt keeps it). It must
  // take the same q, k, v (same shape); the forward checks and throws Error otherwise.
  std::function<std::optional<AttentionProblem>(int64_t layer, const AttentionProblem& own)>
      replace;
  // Called on the forward's thread after each layer's attention with what it ran and got
  // (the replacement's result when `replace` replaced it).
  std::function<void(int64_t layer, const LayerAttention&)> observe;
  CancelToken cancel;  // polled between layers (and inside attention); progress per layer
  // Bytes the forward may allocate beyond the mapped weights; 0 means host memory_budget_bytes().
  int64_t memory_budget = 0;
};

struct ForwardTimes {
  double total = 0;
  double attention = 0;  // inside Backend::run
  double gemm = 0;       // projections, MLP and LM head
  double other = 0;      // norms, RoPE, activations, weight widening, embedding lookup
};

struct ForwardResult {
  std::vector<int32_t> ids;
  Tensor hidden;                       // [L, d], after the final norm (input of the LM head)
  Tensor logits;                       // [L, V] when keep_logits, else empty
  std::vector<double> nll;             // [L - 1]: -log p(ids[i + 1] | ids[0..i])
  std::vector<LayerAttention> layers;  // when capture: one per layer
  ForwardTimes seconds;
  int64_t capture_bytes = 0;  // bytes held by `layers`
  int64_t weight_bytes = 0;   // fp32 bytes of weights widened for this forward
  // exp(mean nll); NaN when L < 2.
  double perplexity() const;
};

class Model {
 public:
  // Checkpoint::open(dir), plus tokenizer.json when the folder has one.
  static Model load(const std::string& dir);

  const ModelConfig& config() const;
  const Checkpoint& checkpoint() const;
  bool has_tokenizer() const;
  // Throws Error "DIR has no tokenizer.json" when absent.
  const Tokenizer& tokenizer() const;

  // Throws Error for an empty sequence, an id outside [0, vocab_size), or (GPT-2) more tokens
  // than n_positions.
  void check_ids(std::span<const int32_t> ids) const;
  // The attention problem every layer runs on a text of `tokens` tokens: dense causal GQA with
  // scale Dh^-1/2, or SWA for Mistral when its sliding window is shorter than the text.
  AttentionProblem attention_problem(int64_t tokens) const;
  // Bytes a forward of `tokens` tokens allocates with these options (activations, logits,
  // captures, widened weights): forward() refuses with this number when over the budget.
  int64_t forward_bytes(int64_t tokens, const ForwardOptions& options) const;

  // The forward pass. Throws Error (bad ids, over budget, a backend that cannot run the layer's
  // problem), Cancelled when options.cancel fires.
  ForwardResult forward(std::span<const int32_t> ids, const ForwardOptions& options = {}) const;

  // Logits [row1 - row0, V] of hidden rows [row0, row1) (hidden as in ForwardResult::hidden):
  // lets callers compare two forwards' distributions without holding [L, V] twice.
  Tensor lm_head(const Tensor& hidden, int64_t row0, int64_t row1) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace attnscope
