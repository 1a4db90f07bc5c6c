// Flags that `run` and `bench` share: the shape, the mask, each variant's knobs and the generated
// inputs' pattern and seed, with one parser and one set of help texts, so both commands accept
// and reject exactly the same values.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attnscope/problem.hpp"

namespace attnscope::cli {

struct ProblemFlags {
  bool causal = false, non_causal = false;
  std::optional<double> scale;
  std::optional<int64_t> window, sinks, block_size, top_k, chunk_size;
  bool qk_l2norm = false, recurrent = false, absorbed = false;
  std::optional<int64_t> batch, heads, kv_heads, head_dim, v_head_dim;
  std::optional<int64_t> kv_lora_rank, rope_dim, nope_dim;
  std::string precision = "fp32";  // element type the backend computes in
};

// Refuses an integer flag's value unless it is exactly one integer of T's range: CLI11 alone
// saturates 99999999999999999999 to INT64_MAX, so an error would name a value nobody typed.
template <class T>
CLI::Validator exact_integer();
extern template CLI::Validator exact_integer<int>();
extern template CLI::Validator exact_integer<int64_t>();
extern template CLI::Validator exact_integer<uint64_t>();

// Registers --causal, --non-causal (alias --no-causal), --scale, --precision, the SWA/MoBA/Gated
// DeltaNet/MLA knobs and --batch, --heads, --kv-heads, --head-dim, --v-head-dim, --kv-lora-rank,
// --rope-dim, --nope-dim.
void add_problem_flags(CLI::App& cmd, ProblemFlags& f);

// Registers --pattern and --seed (a negative seed is refused rather than wrapped around).
void add_input_flags(CLI::App& cmd, std::string& pattern, uint64_t& seed);

// Sets the mask, scale, precision and every variant's knobs on `p` (not the shape). Throws Error
// when --causal and --non-causal are both given or the precision is unknown.
void apply_knobs(const ProblemFlags& f, AttentionProblem& p);

// Applies a shape flag: sets it on generated inputs, checks it against loaded ones.
void apply_dim(const std::optional<int64_t>& flag, int64_t& field, const char* name, bool loaded);

// Applies batch, heads, kv_heads, head_dim, v_head_dim and MLA's dims to p (whose variant is set).
// For generated inputs, kv_heads follows --heads and v_head_dim follows --head-dim unless given,
// and MLA's head_dim is nope_dim + rope_dim (its latent is shared: kv_heads stays 1).
void apply_shape_flags(const ProblemFlags& f, AttentionProblem& p, bool loaded);

// Notes on stderr each knob flag that none of `chosen` uses ("--window only applies to swa").
void note_ignored_flags(const ProblemFlags& f, const std::vector<VariantId>& chosen);

// Exactly `count` comma-separated integers ("256,256"); throws Error naming the flag.
std::vector<int64_t> parse_ints(const std::string& text, size_t count, const char* flag);
// One or more comma-separated integers ("512,1024,2048").
std::vector<int64_t> parse_int_list(const std::string& text, const char* flag);
// One or more comma-separated non-empty names ("dense,swa"); throws Error naming the flag.
std::vector<std::string> parse_name_list(const std::string& text, const char* flag);

// "cpu" when this build has it, else "reference".
std::string default_backend();

}  // namespace attnscope::cli
