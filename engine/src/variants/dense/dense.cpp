// Dense attention (MHA / GQA / MQA): softmax over every visible key, kv_heads < heads sharing K/V
// across query-head groups (docs/variants/dense.md). The base the other softmax modules reuse.
#include "variants/dense/dense.hpp"

#include "variants/module.hpp"

namespace attnscope::variant_modules {

VariantInfo dense() {
  VariantInfo v;
  v.id = VariantId::dense;
  v.name = "dense";
  v.aliases = {"mha", "gqa", "mqa"};
  v.title = "Dense attention (MHA / GQA / MQA)";
  v.short_title = "dense";
  v.summary =
      "softmax over every visible key; kv_heads < heads shares K/V across query-head groups";
  v.low_precision = true;
  v.validate = [](const AttentionProblem&) -> std::optional<std::string> { return std::nullopt; };
  v.inputs = module::qkv_inputs;
  v.check_values = module::no_value_rules;
  v.infer_shape = module::qkv_infer;
  v.cost = module::masked_softmax_cost;
  v.cache = module::kv_cache;
  v.reference = reference::dense_run;
  v.map_tile = reference::dense_map_tile;
  v.cpu_run = cpu::run_dense;
  return v;
}

}  // namespace attnscope::variant_modules
