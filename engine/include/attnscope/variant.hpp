// What a variant is and what it can do: the descriptor every variant module fills in
// (engine/src/variants/<name>/) and the registry lists. Code outside a module asks these
// capabilities and calls these hooks; it never asks *which* variant a problem is.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attnscope/problem.hpp"
#include "attnscope/tensor.hpp"

namespace attnscope {

struct Inputs;
struct RunResult;
class CancelToken;
struct Cost;
struct KeyMask;
class PagedKvCache;
struct DecodeStep;
namespace cpu {
struct Context;
}

struct TensorSpec {
  std::string name;
  Shape shape;
  bool optional = false;
  std::string_view doc;
};

// One knob of a variant: the single source of its CLI flag, GUI field (with its range), JSON key
// and describe() text.
struct ParamSpec {
  enum class Type { integer, boolean };
  std::string_view key;    // JSON key and describe() name: "window"; the CLI flag is --window
  std::string_view label;  // GUI label: "Window"
  std::string_view help;   // one sentence for --help and tooltips
  Type type = Type::integer;
  // Integer range a GUI field offers. Flags and files are not clamped to it: validate() is the one
  // rule for what runs (and says why), so the CLI and files keep its messages.
  int64_t min = 0;
  int64_t max = 0;
  // A width of the problem's tensors (MLA's dims): a shape read from an input file wins over it.
  bool shape = false;
  // Chooses how the answer is computed, not what it is (MLA's absorbed form, a chunk size).
  bool form = false;
  // Another variant's knob that this one builds on (DSA lists MLA's latent widths): it has a flag
  // and a GUI field here too, but files keep it once, in the owning variant's JSON object.
  bool shared = false;
  int64_t (*get)(const AttentionProblem&) = nullptr;
  void (*set)(AttentionProblem&, int64_t) = nullptr;

  std::string flag() const;  // "--" + key with '-' for '_': "--block-size"
};

// What a run's map shows: softmax probabilities P (rows sum to 1, lse exists); the implicit
// mixing matrix of a linear-attention recurrence (signed, rows do not sum to 1); or a gated
// mixture of softmax branches (NSA: non-negative, rows sum to the gates' total, one lse per
// branch among the run's extra outputs instead of one lse).
enum class MapKind { softmax, implicit, mixture };

// What a paged KV cache keeps per token, or per sequence.
enum class CacheLayout {
  kv,      // K and V of every kv head
  latent,  // one latent row (and a rotary key) shared by all heads
  state,   // no pages: a constant-size recurrent state per sequence
};

struct CacheSpec {
  CacheLayout layout = CacheLayout::kv;
  // Step/prompt tensors appended as the two paged parts (part 0, part 1); empty for `state`.
  std::string_view key_tensor = "k";
  std::string_view value_tensor = "v";
  int64_t heads = 0;               // heads a page holds (kv_heads; 1 for a shared latent)
  int64_t key_width = 0;           // floats a token's part 0 holds per head
  int64_t value_width = 0;         // floats a token's part 1 holds per head
  int64_t mean_block = 0;          // > 0: the cache keeps the mean key of every complete block
  bool mean_values = false;        // with mean_block: the mean value of every block as well
  int64_t default_page_size = 16;  // tokens a page when the user does not say (vLLM's 16)
  // A per-token tensor kept per sequence beside the pages ([tokens, side_width], e.g. an index
  // key), appended with the paged parts; empty / 0 when there is none.
  std::string_view side_tensor;
  int64_t side_width = 0;
  // Applied in place to appended side rows ([rows, side_width]) when the model stores them rounded
  // (an FP8 cache); nullptr: stored as given.
  void (*side_transform)(float* rows, int64_t count, int64_t width) = nullptr;
};

// Sparse block selection: each query attends to top_k blocks of block_size keys, chosen per query.
struct BlockSelection {
  int64_t block_size = 0;
  int64_t top_k = 0;
};

// Which synthetic-input generator (workload.hpp) fits the variant's tensors: q/k/v; a latent cache
// (q, c_kv, k_rope and up-projections w_uk, w_uv); q/k/v with per-token log-gate g and beta; q/k/v
// with three per-head branch gates in [0, 1] (g_cmp, g_slc, g_swa); a latent cache with a
// lightning indexer's tensors (q_idx, k_idx, w_idx).
enum class InputFamily { qkv, latent, gated_qkv, qkv_branch_gates, latent_indexed };

struct VariantInfo {
  VariantId id;
  std::string_view name;                  // CLI/file name: "dense", "swa", …
  std::vector<std::string_view> aliases;  // also accepted: "mha", "gqa", "mqa" for dense
  std::string_view title;                 // "Sliding-window attention"
  std::string_view summary;               // one sentence for pickers and `info`
  std::string_view short_title;           // for tabs and chart legends: "MoBA", "sliding window"

  // Knobs: their JSON object is keyed `name` (old files may use one of `json_aliases`).
  std::vector<ParamSpec> params;
  std::vector<std::string_view> json_aliases;

  // Capabilities.
  bool causal_only = false;  // the variant is defined only with the causal mask
  MapKind map_kind = MapKind::softmax;
  bool has_state = false;      // returns a final recurrent state (and decodes from it)
  bool low_precision = false;  // devices may compute it in bf16/fp16 (the tensor-core path)
  InputFamily input_family = InputFamily::qkv;
  // The variant this one is a sparse version of, computed on a subset of this one's inputs with
  // the causal mask (NSA: dense attention; DSA: MLA). Compare views and speed-up benchmarks pair
  // them; nullopt for the others.
  std::optional<VariantId> sparse_of;
  // Sparse block selection; nullptr when every visible key is attended.
  BlockSelection (*selection)(const AttentionProblem&) = nullptr;
  bool has_selection() const { return selection != nullptr; }
  // A softmax variant returns the log-sum-exp of each query row.
  bool has_lse() const { return map_kind == MapKind::softmax; }

  // Problem hooks. nullptr where the variant has nothing to add.
  // AttentionProblem::defaults beyond the shared ones (MLA: DeepSeek-V3's dims).
  void (*defaults)(AttentionProblem&) = nullptr;
  // Tensor widths the knobs imply (MLA: one shared latent head, Dk = Dn + Dr; Gated DeltaNet: one
  // state per head). Called after knobs change; a no-op on a consistent problem.
  void (*normalize_shape)(AttentionProblem&) = nullptr;
  // The form a one-token decode step computes in (MLA absorbed, Gated DeltaNet recurrent).
  void (*decode_form)(AttentionProblem&) = nullptr;
  // Window and sinks beyond the plain causal mask.
  void (*mask)(const AttentionProblem&, KeyMask&) = nullptr;
  // Width the default softmax scale 1/sqrt(d) is taken over (MLA: Dn + Dr); nullptr: head_dim.
  double (*scale_dim)(const AttentionProblem&) = nullptr;

  std::optional<std::string> (*validate)(const AttentionProblem&) = nullptr;
  std::vector<TensorSpec> (*inputs)(const AttentionProblem&) = nullptr;
  // Value rules beyond finiteness (Gated DeltaNet: g <= 0, beta in [0, 1]); nullopt when fine.
  std::optional<std::string> (*check_values)(const Inputs&) = nullptr;
  // Bound on |score| the fp32 backends could reach (see check_score_range); nullptr: q·k·scale.
  std::optional<std::string> (*score_range)(const AttentionProblem&, const Inputs&) = nullptr;
  // describe()'s knob text when the ParamSpecs' "key=value" list does not say it best.
  std::string (*describe)(const AttentionProblem&) = nullptr;
  // Added to the error when an fp32 output overflows.
  std::string_view overflow_hint;
  // Reads the shape (and implied params) from tensors into `problem`; throws Error if inconsistent.
  void (*infer_shape)(const Inputs&, AttentionProblem&) = nullptr;
  // Which input tensors carry the token axis, and where (q/k/v: 2); -1 for weights.
  int (*token_axis)(std::string_view tensor) = nullptr;
  // Names of the variant's outputs beyond o, lse, selection and final_state
  // (RunResult::extra/extra_index): what a map needs from a run besides lse (probes.cpp checks).
  std::vector<std::string_view> extra_outputs;
  // Bytes those outputs take, for validate()'s memory check (throws Error on overflow); nullptr
  // when there are none.
  int64_t (*extra_output_bytes)(const AttentionProblem&) = nullptr;

  // Cost model (docs/cost-model.md): fills flops, bytes, visible_pairs and the cache sizes.
  void (*cost)(const AttentionProblem&, double element_bytes, Cost&) = nullptr;
  // A decode step's correction to cost() of its one-row problem at context length L.
  void (*decode_cost)(const AttentionProblem&, int64_t L, Cost&) = nullptr;
  CacheSpec (*cache)(const AttentionProblem&) = nullptr;
  // Why the variant cannot decode through the paged cache yet; empty when it can. A cache for it
  // (PagedKvCache) and decode_step refuse with this sentence.
  std::string_view no_decode;

  // Backends. The oracle: plain loops, float64 accumulation.
  RunResult (*reference)(const AttentionProblem&, const Inputs&, const CancelToken&) = nullptr;
  // Exact probabilities of one map tile (see probes.hpp).
  void (*map_tile)(const AttentionProblem&, const Inputs&, const RunResult&, int64_t b, int64_t h,
                   int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* out) = nullptr;
  // The cpu backend's fast path.
  RunResult (*cpu_run)(const cpu::Context&) = nullptr;
  // The cpu backend's decode step where the shared paged softmax decode does not serve (latent and
  // state caches); nullptr: the shared one.
  RunResult (*cpu_decode)(PagedKvCache&, const DecodeStep&, int threads,
                          const CancelToken&) = nullptr;
  // With a selection: the blocks one decode query (kv head g, context length L) attends to,
  // ascending, from the cache's pages and block means.
  std::vector<int64_t> (*route)(const PagedKvCache&, const AttentionProblem&,
                                std::span<const int32_t> pages, std::span<const float> means,
                                const float* q, int64_t g, int64_t L) = nullptr;
};

const std::vector<VariantInfo>& variants();
const VariantInfo& variant_info(VariantId id);
// By name or alias, case-sensitive; nullptr when unknown.
const VariantInfo* find_variant(std::string_view name);
std::string variant_names();  // "dense (mha, gqa, mqa), swa, mla, moba, gated_delta"

// The problem's block selection, nullopt when its variant attends every visible key.
std::optional<BlockSelection> block_selection(const AttentionProblem& problem);
// Whether some of the variant's knobs are tensor widths (ParamSpec::shape; MLA's dims).
bool sets_widths(const VariantInfo& info);
// " window=256 sinks=4": the variant's knobs for describe().
std::string describe_params(const AttentionProblem& problem);
// Applies normalize_shape of the problem's variant.
void normalize_shape(AttentionProblem& problem);
// The axis of input `tensor` that runs over tokens (-1 for weights): VariantInfo::token_axis, else
// 2 (q, k, v [B, heads, L, D] and per-token scalars [B, H, L]).
int token_axis(VariantId variant, std::string_view tensor);
// The problem as a one-token decode step computes it.
AttentionProblem decode_form(const AttentionProblem& problem);

}  // namespace attnscope
