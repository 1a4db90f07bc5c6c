// AttentionProblem defaults and validation: the shared shape rules live here, each variant's own
// rules in its module (variants/<name>/), reached through its VariantInfo.
#include "attnscope/problem.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <sstream>
#include <utility>

#include "attnscope/error.hpp"
#include "attnscope/host_info.hpp"
#include "attnscope/variant.hpp"

namespace attnscope {

AttentionProblem AttentionProblem::defaults(VariantId variant) {
  AttentionProblem p;
  p.variant = variant;
  const VariantInfo& info = variant_info(variant);
  p.causal = info.causal_only;
  if (info.defaults) info.defaults(p);
  return p;
}

// Memory the machine offers, overridable for tests and shared machines.
int64_t memory_budget_bytes() {
  if (const char* env = std::getenv("ATTNSCOPE_MEMORY_LIMIT_MB")) {
    const long long mb = std::atoll(env);
    // Past 2^43 MiB the shift would overflow; no machine has that much anyway.
    if (mb > 0) return std::min<long long>(mb, (1LL << 43) - 1) << 20;
  }
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return int64_t{1} << 40;
  return static_cast<int64_t>(pages) * page;
}

namespace {

constexpr std::pair<Precision, std::string_view> kPrecisions[] = {
    {Precision::fp32, "fp32"}, {Precision::bf16, "bf16"}, {Precision::fp16, "fp16"}};

// Bytes for people: "512 GiB", "1.98 TiB", "3.5 MiB" (never "2.03e+03 GiB").
std::string gib(int64_t bytes) {
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes) / 1024.0;
  int u = 0;
  while (v >= 1024.0 && u < 5) {
    v /= 1024.0;
    ++u;
  }
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(v < 10 ? 2 : v < 100 ? 1 : 0);
  s << v << ' ' << kUnits[u];
  return s.str();
}

}  // namespace

std::string_view precision_name(Precision precision) {
  for (auto [p, name] : kPrecisions) {
    if (p == precision) return name;
  }
  return "unknown";
}

std::optional<Precision> parse_precision(std::string_view name) {
  for (auto [p, n] : kPrecisions) {
    if (n == name) return p;
  }
  return std::nullopt;
}

std::string precision_names() {
  std::string s;
  for (auto [p, name] : kPrecisions) s += (s.empty() ? "" : ", ") + std::string(name);
  return s;
}

std::optional<std::string> AttentionProblem::validate() const {
  const ProblemShape& s = shape;
  const std::pair<const char*, int64_t> dims[] = {
      {"batch", s.batch},          {"heads", s.heads},   {"kv_heads", s.kv_heads},
      {"q_len", s.q_len},          {"kv_len", s.kv_len}, {"head_dim", s.head_dim},
      {"v_head_dim", s.v_head_dim}};
  for (auto [name, value] : dims) {
    if (value < 1) {
      return std::string(name) + " must be at least 1 (got " + std::to_string(value) + ")";
    }
  }
  if (s.heads % s.kv_heads != 0) {
    return "heads (" + std::to_string(s.heads) + ") must be divisible by kv_heads (" +
           std::to_string(s.kv_heads) + "): each kv head serves a whole group of query heads";
  }
  if (scale && (!std::isfinite(*scale) || *scale <= 0)) {
    return "scale must be a finite positive number (got " + std::to_string(*scale) + ")";
  }
  // An enum cast from a file or a GUI index may hold anything; name it rather than guess.
  if (precision_name(precision) == "unknown") {
    return "precision must be one of " + precision_names() + " (got enum value " +
           std::to_string(static_cast<int>(precision)) + ")";
  }
  const VariantInfo& info = variant_info(variant);
  if (info.causal_only && !causal) {
    return std::string(info.title) + " is defined only for causal attention (drop --non-causal)";
  }
  if (auto why = info.validate(*this)) return why;

  // Sizes: every tensor must be addressable, and inputs + outputs must fit in memory.
  try {
    int64_t total = 0;
    for (const TensorSpec& t : info.inputs(*this)) {
      total = checked_add(total, checked_mul(shape_numel(t.shape), 4, "input tensors"),
                          "input tensors");
    }
    const int64_t rows = checked_mul(checked_mul(s.batch, s.heads, "batch x heads"), s.q_len,
                                     "batch x heads x q_len");
    const int64_t per_row = checked_add(s.v_head_dim, 1, "v_head_dim");  // o and lse
    total = checked_add(
        total, checked_mul(checked_mul(rows, per_row, "output tensors"), 4, "output tensors"),
        "the total size of the inputs and outputs");
    if (info.has_selection()) {
      const int64_t top_k = info.selection(*this).top_k;
      total = checked_add(
          total, checked_mul(checked_mul(rows, top_k, "block selection"), 4, "block selection"),
          "the total size of the inputs and outputs");
    }
    if (info.extra_output_bytes) {
      total = checked_add(total, info.extra_output_bytes(*this),
                          "the total size of the inputs and outputs");
    }
    const int64_t budget = memory_budget_bytes();
    if (total > budget) {
      return "problem needs at least " + gib(total) +
             " for its inputs and outputs, more than the " + gib(budget) + " of memory available";
    }
  } catch (const Error& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

void AttentionProblem::check() const {
  if (auto why = validate()) throw Error(*why);
}

double AttentionProblem::effective_scale() const {
  if (scale) return *scale;
  // In double: this is also asked of problems that have not been validated (a GUI summary).
  const auto scale_dim = variant_info(variant).scale_dim;
  const double dk = scale_dim ? scale_dim(*this) : double(shape.head_dim);
  return 1.0 / std::sqrt(dk);
}

std::string AttentionProblem::describe() const {
  const ProblemShape& s = shape;
  std::ostringstream o;
  o << variant_info(variant).name << " B=" << s.batch << " H=" << s.heads << " Hkv=" << s.kv_heads
    << " Lq=" << s.q_len << " Lk=" << s.kv_len << " Dk=" << s.head_dim << " Dv=" << s.v_head_dim
    << (causal ? " causal" : " non-causal");
  o << describe_params(*this);
  if (precision != Precision::fp32) o << " " << precision_name(precision);
  return o.str();
}

}  // namespace attnscope
