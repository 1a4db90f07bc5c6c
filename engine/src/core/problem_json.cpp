// The one JSON schema of a problem (problem_json.hpp): the shared shape keys, then every variant's
// knobs from its ParamSpecs, so that no reader or writer lists a variant's keys by hand.
#include "attnscope/problem_json.hpp"

#include <cstdint>

#include "attnscope/error.hpp"
#include "attnscope/variant.hpp"

namespace attnscope {
namespace {

using nlohmann::json;

class Reader {
 public:
  Reader(std::string_view path, bool require_all, bool quote)
      : path_(path), require_(require_all), quote_(quote) {}

  std::string at(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  [[noreturn]] void fail(std::string_view key, const std::string& what) const {
    std::string message = quote_ ? "'" : "";
    message += at(key);
    message += quote_ ? "' " : " ";
    message += what;
    throw Error(message);
  }
  // The value, or nullptr when absent and not required.
  const json* find(const json& obj, std::string_view key) const {
    const auto it = obj.find(std::string(key));
    if (it != obj.end()) return &*it;
    if (require_) fail(key, "is missing");
    return nullptr;
  }
  void integer(const json& obj, std::string_view key, int64_t& out) const {
    const json* v = find(obj, key);
    if (!v) return;
    if (!v->is_number_integer()) fail(key, "must be an integer, got " + v->dump());
    // An unsigned value above INT64_MAX would wrap to a negative one in get<int64_t>().
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)) {
      fail(key, "is too large (" + v->dump() + ")");
    }
    out = v->get<int64_t>();
  }
  void boolean(const json& obj, std::string_view key, bool& out) const {
    const json* v = find(obj, key);
    if (!v) return;
    if (!v->is_boolean()) fail(key, "must be true or false, got " + v->dump());
    out = v->get<bool>();
  }
  std::optional<std::string> text(const json& obj, std::string_view key) const {
    const json* v = find(obj, key);
    if (!v) return std::nullopt;
    if (!v->is_string()) fail(key, "must be a string, got " + v->dump());
    return v->get<std::string>();
  }

 private:
  std::string path_;
  bool require_;
  bool quote_;
};

}  // namespace

nlohmann::ordered_json problem_to_json(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  nlohmann::ordered_json j = {{"variant", variant_info(p.variant).name},
                              {"batch", s.batch},
                              {"heads", s.heads},
                              {"kv_heads", s.kv_heads},
                              {"q_len", s.q_len},
                              {"kv_len", s.kv_len},
                              {"head_dim", s.head_dim},
                              {"v_head_dim", s.v_head_dim},
                              {"causal", p.causal},
                              {"scale", p.scale ? json(*p.scale) : json(nullptr)},
                              {"precision", std::string(precision_name(p.precision))}};
  for (const VariantInfo& info : variants()) {
    if (info.params.empty()) continue;
    nlohmann::ordered_json group = nlohmann::ordered_json::object();
    for (const ParamSpec& knob : info.params) {
      if (knob.shared) continue;  // written in its owner's object
      const int64_t v = knob.get(p);
      if (knob.type == ParamSpec::Type::boolean) {
        group[std::string(knob.key)] = v != 0;
      } else {
        group[std::string(knob.key)] = v;
      }
    }
    j[std::string(info.name)] = std::move(group);
  }
  return j;
}

namespace {

// Whether `owner`'s group holds a knob that `variant` lists as shared (ParamSpec::shared).
bool holds_shared_knobs(const VariantInfo& owner, VariantId variant) {
  if (owner.id == variant) return false;
  for (const ParamSpec& knob : variant_info(variant).params) {
    if (!knob.shared) continue;
    for (const ParamSpec& own : owner.params) {
      if (!own.shared && own.key == knob.key) return true;
    }
  }
  return false;
}

}  // namespace

void read_problem_json(const nlohmann::json& j, AttentionProblem& p, std::string_view path,
                       bool require_all, bool quote_paths) {
  const Reader r(path, require_all, quote_paths);
  if (!j.is_object()) {
    std::string message = path.empty() ? "a problem" : quote_paths ? "'" : "";
    if (!path.empty()) {
      message += path;
      if (quote_paths) message += "'";
    }
    message += " must be an object, got ";
    message += j.dump();
    throw Error(message);
  }
  if (auto name = r.text(j, "variant")) {
    const VariantInfo* info = find_variant(*name);
    if (!info)
      r.fail("variant",
             "names an unknown variant '" + *name + "' (known: " + variant_names() + ")");
    p.variant = info->id;
  }
  ProblemShape& s = p.shape;
  r.integer(j, "batch", s.batch);
  r.integer(j, "heads", s.heads);
  r.integer(j, "kv_heads", s.kv_heads);
  r.integer(j, "q_len", s.q_len);
  r.integer(j, "kv_len", s.kv_len);
  r.integer(j, "head_dim", s.head_dim);
  r.integer(j, "v_head_dim", s.v_head_dim);
  r.boolean(j, "causal", p.causal);
  // null (what problem_to_json writes for "no explicit scale") keeps the default 1/sqrt(d).
  if (const auto it = j.find("scale"); it != j.end() && !it->is_null()) {
    if (!it->is_number()) r.fail("scale", "must be a number or null, got " + it->dump());
    p.scale = it->get<double>();
  }
  // Files written before precision existed computed in fp32.
  if (const auto it = j.find("precision"); it != j.end()) {
    if (!it->is_string()) r.fail("precision", "must be a string, got " + it->dump());
    const std::string name = it->get<std::string>();
    const auto precision = parse_precision(name);
    if (!precision) {
      r.fail("precision", "must be one of " + precision_names() + " (got \"" + name + "\")");
    }
    p.precision = *precision;
  }
  for (const VariantInfo& info : variants()) {
    if (info.params.empty()) continue;
    std::string key(info.name);
    auto it = j.find(key);
    for (std::string_view alias : info.json_aliases) {
      if (it != j.end()) break;
      key = std::string(alias);
      it = j.find(key);
    }
    if (it == j.end()) {
      // The problem's own knobs must be there, and the groups that hold the knobs it shares
      // (DSA's latent widths sit in MLA's); another variant's group may be absent (a file written
      // before that variant existed): its defaults stand.
      if (require_all && (info.id == p.variant || holds_shared_knobs(info, p.variant))) {
        r.fail(info.name, "is missing");
      }
      continue;
    }
    if (!it->is_object()) r.fail(key, "must be an object, got " + it->dump());
    const Reader group(r.at(key), require_all, quote_paths);
    for (const ParamSpec& knob : info.params) {
      if (knob.shared) continue;  // read from its owner's object
      if (knob.type == ParamSpec::Type::boolean) {
        bool v = knob.get(p) != 0;
        group.boolean(*it, knob.key, v);
        knob.set(p, v);
      } else {
        int64_t v = knob.get(p);
        group.integer(*it, knob.key, v);
        knob.set(p, v);
      }
    }
  }
}

}  // namespace attnscope
