// The one table of variants and backends. The CLI's --variant values, the GUI's pickers and the
// benchmark sweeps all read it; nothing else enumerates variants or backends.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/inputs.hpp"
#include "attnscope/problem.hpp"

namespace attnscope {

struct TensorSpec {
  std::string name;
  Shape shape;
  bool optional = false;
  std::string_view doc;
};

struct VariantInfo {
  VariantId id;
  std::string_view name;                  // CLI/file name: "dense", "swa", …
  std::vector<std::string_view> aliases;  // also accepted: "mha", "gqa", "mqa" for dense
  std::string_view title;                 // "Sliding-window attention"
  std::string_view summary;               // one sentence for pickers and `info`
  bool causal_only;                       // the variant is defined only with the causal mask
  bool has_lse;                           // softmax variants; Gated DeltaNet has none
  // The variant's own knobs as text for describe(): " window=256 sinks=4".
  std::string (*describe_params)(const AttentionProblem&);
  // Variant-specific checks beyond the shared shape rules; nullopt when valid.
  std::optional<std::string> (*validate)(const AttentionProblem&);
  // Input tensors (names, shapes) the problem needs.
  std::vector<TensorSpec> (*inputs)(const AttentionProblem&);
  // Value rules beyond finiteness (Gated DeltaNet: g <= 0, beta in [0, 1]); nullopt when fine.
  std::optional<std::string> (*check_values)(const Inputs&);
  // Reads the shape (and implied params) from tensors into `problem`; throws Error if inconsistent.
  void (*infer_shape)(const Inputs&, AttentionProblem&);
  // The oracle: plain loops, float64 accumulation.
  RunResult (*reference)(const AttentionProblem&, const Inputs&, const CancelToken&);
  // Exact probabilities of one map tile (see probes.hpp).
  void (*map_tile)(const AttentionProblem&, const Inputs&, const RunResult&, int64_t b, int64_t h,
                   int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* out);
};

const std::vector<VariantInfo>& variants();
const VariantInfo& variant_info(VariantId id);
// By name or alias, case-sensitive; nullptr when unknown.
const VariantInfo* find_variant(std::string_view name);
std::string variant_names();  // "dense (mha, gqa, mqa), swa, mla, moba, gated_delta"

struct BackendInfo {
  std::string_view name;
  std::string_view summary;
  // Whether this build and machine can create it now, with the reason when not.
  std::function<Support()> available;
  std::function<std::unique_ptr<Backend>()> make;
};

// Backends compiled into this build (a CUDA build adds "cuda"), in preference order: a snapshot,
// safe to iterate while another thread registers a backend.
std::vector<BackendInfo> backends();
// The entry stays valid for the life of the process (entries are never moved or removed).
const BackendInfo* find_backend(std::string_view name);
// Throws Error naming the backends that exist when `name` is unknown or unavailable.
std::unique_ptr<Backend> make_backend(std::string_view name);

// Registration hook for backends living outside the engine library (the CUDA kernels).
void register_backend(BackendInfo info);

}  // namespace attnscope
