// Flags that `run` and `bench` share: the shape, the mask, each variant's knobs and the generated
// inputs' pattern and seed, with one parser and one set of help texts, so both commands accept
// and reject exactly the same values.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "attnscope/problem.hpp"
#include "attnscope/variant.hpp"

namespace attnscope::cli {

// A variant knob's flag, made from its ParamSpec. Variants that share a key share the flag.
struct KnobFlag {
  std::vector<std::pair<const VariantInfo*, const ParamSpec*>> owners;
  std::optional<int64_t> value;  // integer knobs
  bool on = false;               // boolean knobs
  const ParamSpec& spec() const { return *owners.front().second; }
  bool given() const { return value.has_value() || on; }
};

struct ProblemFlags {
  bool causal = false, non_causal = false;
  std::optional<double> scale;
  std::optional<int64_t> batch, heads, kv_heads, head_dim, v_head_dim;
  std::string precision = "fp32";  // element type the backend computes in
  // Every knob of the registry's variants, in --help order; CLI11 keeps pointers into it.
  std::deque<KnobFlag> knobs;
};

// Refuses an integer flag's value unless it is exactly one integer of T's range: CLI11 alone
// saturates 99999999999999999999 to INT64_MAX, so an error would name a value nobody typed.
template <class T>
CLI::Validator exact_integer();
extern template CLI::Validator exact_integer<int>();
extern template CLI::Validator exact_integer<int64_t>();
extern template CLI::Validator exact_integer<uint64_t>();

// Registers --causal, --non-causal (alias --no-causal), --scale, --precision, a flag for every
// variant knob (ParamSpec::flag(); a boolean knob takes no value) and --batch, --heads,
// --kv-heads, --head-dim, --v-head-dim. Knobs that are tensor widths (ParamSpec::shape) follow the
// dimensions. `f` must outlive the parse.
void add_problem_flags(CLI::App& cmd, ProblemFlags& f);

// The variants that run without a mask, for help texts: "dense and MLA".
std::string unmasked_variants();

// Registers --pattern and --seed (a negative seed is refused rather than wrapped around).
void add_input_flags(CLI::App& cmd, std::string& pattern, uint64_t& seed);

// Sets the mask, scale, precision and every variant's knobs on `p` (not the shape, nor the knobs
// that are tensor widths). Throws Error when --causal and --non-causal are both given or the
// precision is unknown.
void apply_knobs(const ProblemFlags& f, AttentionProblem& p);

// Applies a shape flag: sets it on generated inputs, checks it against loaded ones.
void apply_dim(const std::optional<int64_t>& flag, int64_t& field, const char* name, bool loaded);

// Applies batch, heads, kv_heads, head_dim, v_head_dim and the knobs that are tensor widths to p
// (whose variant is set); with loaded inputs each must agree with the tensors. For generated
// inputs, kv_heads follows --heads and v_head_dim follows --head-dim unless given, except for a
// variant whose knobs set its widths: there head_dim is what the knobs imply (normalize_shape).
void apply_shape_flags(const ProblemFlags& f, AttentionProblem& p, bool loaded);

// Notes on stderr, per variant, the knob flags that none of `chosen` uses
// ("--window/--sinks only applies to swa; ignored").
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
