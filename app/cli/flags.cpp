// The flags `run` and `bench` share (see flags.hpp).
#include "flags.hpp"

#include <algorithm>
#include <cctype>
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

namespace {

// Variants whose knobs are tensor widths come last, so their flags sit next to the dimensions in
// --help and their note follows the others.
std::vector<const VariantInfo*> flag_order() {
  std::vector<const VariantInfo*> order;
  for (const VariantInfo& v : variants()) order.push_back(&v);
  std::stable_partition(order.begin(), order.end(),
                        [](const VariantInfo* v) { return !sets_widths(*v); });
  return order;
}

// "dense and MLA", "a, b and c".
std::string join_and(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) {
    s += (i == 0 ? "" : i + 1 == items.size() ? " and " : ", ") + items[i];
  }
  return s;
}

// A sentence continued after "Title: ": "Keys a query sees" -> "keys a query sees"; a first word
// with more capitals ("W_UK", "RoPE") stays.
std::string lower_first(std::string_view text) {
  std::string s(text);
  const size_t word_end = std::min(s.find(' '), s.size());
  const bool plain =
      std::none_of(s.begin() + std::min<size_t>(1, s.size()), s.begin() + word_end,
                   [](char c) { return std::isupper(static_cast<unsigned char>(c)); });
  if (plain && !s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

void add_knob(CLI::App& cmd, KnobFlag& knob) {
  // Owners that describe the knob alike share one sentence ("MoBA and NSA: ..."); a key that
  // means different things (MoBA's top_k counts blocks, DSA's keys) gets each owner's own.
  std::vector<std::pair<std::vector<std::string>, std::string_view>> groups;
  for (const auto& [info, spec] : knob.owners) {
    auto same = std::find_if(groups.begin(), groups.end(),
                             [&](const auto& g) { return g.second == spec->help; });
    if (same == groups.end()) same = groups.insert(groups.end(), {{}, spec->help});
    same->first.emplace_back(info->short_title);
  }
  const ParamSpec& spec = knob.spec();
  std::string help;
  for (const auto& [owners, text] : groups) {
    help += (help.empty() ? "" : " ") + join_and(owners) + ": " + lower_first(text);
  }
  if (spec.type == ParamSpec::Type::boolean) {
    cmd.add_flag(spec.flag(), knob.on, help);
  } else {
    cmd.add_option(spec.flag(), knob.value, help)->check(exact_integer<int64_t>());
  }
}

// The knob flags in --help order: non-width knobs first, then (after the dimensions) widths.
void collect_knobs(ProblemFlags& f) {
  for (bool widths : {false, true}) {
    for (const VariantInfo* info : flag_order()) {
      for (const ParamSpec& spec : info->params) {
        if (spec.shape != widths) continue;
        auto same = std::find_if(f.knobs.begin(), f.knobs.end(),
                                 [&](const KnobFlag& k) { return k.spec().key == spec.key; });
        if (same == f.knobs.end()) same = f.knobs.insert(f.knobs.end(), KnobFlag{});
        same->owners.emplace_back(info, &spec);
      }
    }
  }
}

}  // namespace

std::string unmasked_variants() {
  std::vector<std::string> names;
  for (const VariantInfo& v : variants()) {
    if (!v.causal_only) names.emplace_back(v.short_title);
  }
  return join_and(names);
}

void add_problem_flags(CLI::App& cmd, ProblemFlags& f) {
  std::vector<std::string> low_precision;
  for (const VariantInfo& v : variants()) {
    if (v.low_precision) low_precision.emplace_back(v.name);
  }
  cmd.add_flag("--causal", f.causal, "Causal mask (bottom-right aligned when q_len != kv_len)");
  cmd.add_flag("--non-causal,--no-causal", f.non_causal,
               "No mask (" + unmasked_variants() + " only)");
  cmd.add_option("--scale", f.scale, "Softmax scale (default 1/sqrt(head_dim))");
  cmd.add_option("--precision", f.precision,
                 "Element type computed in: " + precision_names() +
                     " (bf16/fp16: inputs rounded on the device, fp32 accumulation and outputs; "
                     "cuda backend, " +
                     join_and(low_precision) + ")")
      ->capture_default_str();
  f.knobs.clear();
  collect_knobs(f);
  for (KnobFlag& knob : f.knobs) {
    if (!knob.spec().shape) add_knob(cmd, knob);
  }
  // Every dimension is an int64 flag, refused unless typed as exactly one.
  auto integer = [&cmd](const char* name, std::optional<int64_t>& value, const char* help) {
    cmd.add_option(name, value, help)->check(exact_integer<int64_t>());
  };
  integer("--batch", f.batch, "Batch size B");
  integer("--heads", f.heads, "Query heads H");
  integer("--kv-heads", f.kv_heads, "Key/value heads Hkv (GQA/MQA)");
  integer("--head-dim", f.head_dim, "Query/key head dimension Dk");
  integer("--v-head-dim", f.v_head_dim, "Value head dimension Dv");
  for (KnobFlag& knob : f.knobs) {
    if (knob.spec().shape) add_knob(cmd, knob);
  }
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
  for (const KnobFlag& knob : f.knobs) {
    if (knob.spec().shape) continue;  // widths: apply_shape_flags
    for (const auto& [info, spec] : knob.owners) {
      if (spec->type == ParamSpec::Type::boolean) {
        spec->set(p, knob.on);
      } else if (knob.value) {
        spec->set(p, *knob.value);
      }
    }
  }
}

void apply_dim(const std::optional<int64_t>& flag, int64_t& field, const char* name, bool loaded) {
  if (!flag) return;
  if (loaded && *flag != field) {
    std::string spelled = name;  // the flag as typed: --q-len, --index-heads
    std::replace(spelled.begin(), spelled.end(), '_', '-');
    throw Error("--" + spelled + " " + std::to_string(*flag) +
                " contradicts the loaded tensors, which have " + name + " = " +
                std::to_string(field));
  }
  field = *flag;
}

void apply_shape_flags(const ProblemFlags& f, AttentionProblem& p, bool loaded) {
  // A variant whose knobs set its widths (a shared latent, say) has its own kv_heads and head_dim.
  const bool derived = sets_widths(variant_info(p.variant));
  if (!loaded && f.heads && !f.kv_heads && !derived) p.shape.kv_heads = *f.heads;
  apply_dim(f.batch, p.shape.batch, "batch", loaded);
  apply_dim(f.heads, p.shape.heads, "heads", loaded);
  apply_dim(f.kv_heads, p.shape.kv_heads, "kv_heads", loaded);
  for (const KnobFlag& knob : f.knobs) {
    if (!knob.spec().shape) continue;
    for (const auto& [info, spec] : knob.owners) {
      int64_t value = spec->get(p);
      apply_dim(knob.value, value, std::string(spec->key).c_str(), loaded);
      spec->set(p, value);
    }
  }
  if (derived && !loaded && !f.head_dim) {
    // Only the query width follows the knobs: a kv_heads given by flag stays for check() to judge.
    AttentionProblem implied = p;
    normalize_shape(implied);
    p.shape.head_dim = implied.shape.head_dim;
  }
  apply_dim(f.head_dim, p.shape.head_dim, "head_dim", loaded);
  if (!loaded && f.head_dim && !f.v_head_dim && !derived) p.shape.v_head_dim = *f.head_dim;
  apply_dim(f.v_head_dim, p.shape.v_head_dim, "v_head_dim", loaded);
}

// Flags that the chosen variants ignore: say so rather than silently doing nothing.
void note_ignored_flags(const ProblemFlags& f, const std::vector<VariantId>& chosen) {
  const auto is_chosen = [&](const VariantInfo* info) {
    return std::find(chosen.begin(), chosen.end(), info->id) != chosen.end();
  };
  for (const VariantInfo* info : flag_order()) {
    if (is_chosen(info)) continue;
    std::string flags;
    bool ignored = false;
    for (const KnobFlag& knob : f.knobs) {
      const auto& owners = knob.owners;
      const bool mine =
          std::any_of(owners.begin(), owners.end(), [&](const auto& o) { return o.first == info; });
      if (!mine) continue;
      flags += (flags.empty() ? "" : "/") + knob.spec().flag();
      const bool used = std::any_of(owners.begin(), owners.end(),
                                    [&](const auto& o) { return is_chosen(o.first); });
      ignored |= knob.given() && !used;
    }
    if (ignored) {
      std::cerr << "attnscope-cli: note: " << flags << " only applies to " << info->name
                << "; ignored\n";
    }
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
