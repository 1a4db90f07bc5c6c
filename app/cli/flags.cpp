// The flags `run` and `bench` share (see flags.hpp).
#include "flags.hpp"

#include <algorithm>
#include <charconv>
#include <iostream>
#include <limits>

#include "attnscope/error.hpp"
#include "attnscope/registry.hpp"

namespace attnscope::cli {

template <class T>
CLI::Validator exact_integer() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        T value{};
        const char* end = text.data() + text.size();
        const char* begin = text.data() + (!text.empty() && text[0] == '+');
        const auto [ptr, ec] = std::from_chars(begin, end, value);
        if (ec == std::errc() && ptr == end && begin != end) return {};
        return "must be an integer from " + std::to_string(std::numeric_limits<T>::min()) + " to " +
               std::to_string(std::numeric_limits<T>::max()) + " (got '" + text + "')";
      },
      "INT");
}
template CLI::Validator exact_integer<int>();
template CLI::Validator exact_integer<int64_t>();
template CLI::Validator exact_integer<uint64_t>();

void add_problem_flags(CLI::App& cmd, ProblemFlags& f) {
  cmd.add_flag("--causal", f.causal, "Causal mask (bottom-right aligned when q_len != kv_len)");
  cmd.add_flag("--non-causal,--no-causal", f.non_causal, "No mask (dense and MLA only)");
  cmd.add_option("--scale", f.scale, "Softmax scale (default 1/sqrt(head_dim))");
  cmd.add_option("--precision", f.precision,
                 "Element type computed in: " + precision_names() +
                     " (bf16/fp16: inputs rounded on the device, fp32 accumulation and outputs; "
                     "cuda backend, dense and swa)")
      ->capture_default_str();
  // Every knob and dimension is an int64 flag, refused unless typed as exactly one.
  auto integer = [&cmd](const char* name, std::optional<int64_t>& value, const char* help) {
    cmd.add_option(name, value, help)->check(exact_integer<int64_t>());
  };
  integer("--window", f.window, "SWA: keys a query sees, itself included");
  integer("--sinks", f.sinks, "SWA: first keys always visible (attention sinks)");
  integer("--block-size", f.block_size, "MoBA: keys per block");
  integer("--top-k", f.top_k, "MoBA: blocks per query, own block included");
  integer("--chunk-size", f.chunk_size, "Gated DeltaNet: chunk of the WY form");
  cmd.add_flag("--qk-l2norm", f.qk_l2norm, "Gated DeltaNet: L2-normalize q and k per token");
  cmd.add_flag("--recurrent", f.recurrent, "Gated DeltaNet: recurrent instead of chunked form");
  cmd.add_flag("--absorbed", f.absorbed, "MLA: absorbed (decode) form instead of naive");
  integer("--batch", f.batch, "Batch size B");
  integer("--heads", f.heads, "Query heads H");
  integer("--kv-heads", f.kv_heads, "Key/value heads Hkv (GQA/MQA)");
  integer("--head-dim", f.head_dim, "Query/key head dimension Dk");
  integer("--v-head-dim", f.v_head_dim, "Value head dimension Dv");
  integer("--kv-lora-rank", f.kv_lora_rank, "MLA: latent width Dc");
  integer("--rope-dim", f.rope_dim, "MLA: rotary dimension Dr");
  integer("--nope-dim", f.nope_dim, "MLA: position-free dimension Dn");
}

void add_input_flags(CLI::App& cmd, std::string& pattern, uint64_t& seed) {
  // A uint64 parse would silently wrap "-1" around or saturate 2^64; say so instead.
  cmd.add_option("--seed", seed, "Seed for generated inputs (0 or more)")
      ->check(exact_integer<uint64_t>())
      ->capture_default_str();
  cmd.add_option("--pattern", pattern,
                 "Generated input pattern: random, local, periodic, "
                 "sinks, needle")
      ->capture_default_str();
}

void apply_knobs(const ProblemFlags& f, AttentionProblem& p) {
  if (f.causal && f.non_causal) throw Error("--causal and --non-causal contradict each other");
  if (f.causal) p.causal = true;
  if (f.non_causal) p.causal = false;
  p.scale = f.scale;
  const std::optional<Precision> precision = parse_precision(f.precision);
  if (!precision) {
    throw Error("--precision must be one of " + precision_names() + " (got '" + f.precision + "')");
  }
  p.precision = *precision;
  if (f.window) p.swa.window = *f.window;
  if (f.sinks) p.swa.sinks = *f.sinks;
  if (f.block_size) p.moba.block_size = *f.block_size;
  if (f.top_k) p.moba.top_k = *f.top_k;
  if (f.chunk_size) p.gdn.chunk_size = *f.chunk_size;
  p.gdn.qk_l2norm = f.qk_l2norm;
  p.gdn.recurrent = f.recurrent;
  p.mla.absorbed = f.absorbed;
}

void apply_dim(const std::optional<int64_t>& flag, int64_t& field, const char* name, bool loaded) {
  if (!flag) return;
  if (loaded && *flag != field) {
    throw Error(std::string("--") + name + " " + std::to_string(*flag) +
                " contradicts the loaded tensors, which have " + name + " = " +
                std::to_string(field));
  }
  field = *flag;
}

void apply_shape_flags(const ProblemFlags& f, AttentionProblem& p, bool loaded) {
  const bool mla = p.variant == VariantId::mla;
  if (!loaded && f.heads && !f.kv_heads && !mla) p.shape.kv_heads = *f.heads;
  apply_dim(f.batch, p.shape.batch, "batch", loaded);
  apply_dim(f.heads, p.shape.heads, "heads", loaded);
  apply_dim(f.kv_heads, p.shape.kv_heads, "kv_heads", loaded);
  apply_dim(f.kv_lora_rank, p.mla.kv_lora_rank, "kv_lora_rank", loaded);
  apply_dim(f.rope_dim, p.mla.rope_dim, "rope_dim", loaded);
  apply_dim(f.nope_dim, p.mla.nope_dim, "nope_dim", loaded);
  if (mla && !loaded && !f.head_dim) p.shape.head_dim = p.mla.q_head_dim();
  apply_dim(f.head_dim, p.shape.head_dim, "head_dim", loaded);
  if (!loaded && f.head_dim && !f.v_head_dim && !mla) p.shape.v_head_dim = *f.head_dim;
  apply_dim(f.v_head_dim, p.shape.v_head_dim, "v_head_dim", loaded);
}

// Flags that the chosen variants ignore: say so rather than silently doing nothing.
void note_ignored_flags(const ProblemFlags& f, const std::vector<VariantId>& chosen) {
  auto unused = [&](VariantId owner) {
    return std::find(chosen.begin(), chosen.end(), owner) == chosen.end();
  };
  auto note = [](const char* flag, const char* owner) {
    std::cerr << "attnscope-cli: note: " << flag << " only applies to " << owner << "; ignored\n";
  };
  if (unused(VariantId::swa) && (f.window || f.sinks)) note("--window/--sinks", "swa");
  if (unused(VariantId::moba) && (f.block_size || f.top_k)) note("--block-size/--top-k", "moba");
  if (unused(VariantId::gated_delta) && (f.chunk_size || f.qk_l2norm || f.recurrent)) {
    note("--chunk-size/--qk-l2norm/--recurrent", "gated_delta");
  }
  if (unused(VariantId::mla) && (f.absorbed || f.kv_lora_rank || f.rope_dim || f.nope_dim)) {
    note("--absorbed/--kv-lora-rank/--rope-dim/--nope-dim", "mla");
  }
}

namespace {

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    parts.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return parts;
}

// The integers of `text`, or nullopt when any part is not exactly one integer.
std::optional<std::vector<int64_t>> ints_of(const std::string& text) {
  std::vector<int64_t> values;
  for (const std::string& part : split_commas(text)) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (part.empty() || used != part.size()) return std::nullopt;
    values.push_back(v);
  }
  return values;
}

}  // namespace

std::vector<int64_t> parse_ints(const std::string& text, size_t count, const char* flag) {
  const auto values = ints_of(text);
  if (!values || values->size() != count) {
    throw Error(std::string(flag) + " expects " + std::to_string(count) +
                " comma-separated integers, got '" + text + "'");
  }
  return *values;
}

std::vector<int64_t> parse_int_list(const std::string& text, const char* flag) {
  const auto values = ints_of(text);
  if (!values) {
    throw Error(std::string(flag) + " expects comma-separated integers, got '" + text + "'");
  }
  return *values;
}

std::vector<std::string> parse_name_list(const std::string& text, const char* flag) {
  std::vector<std::string> names = split_commas(text);
  for (const std::string& n : names) {
    if (n.empty()) {
      throw Error(std::string(flag) + " expects comma-separated names, got '" + text + "'");
    }
  }
  return names;
}

std::string default_backend() {
  return find_backend("cpu") ? "cpu" : "reference";
}

}  // namespace attnscope::cli
