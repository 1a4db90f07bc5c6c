// Sliding-window attention with attention sinks (docs/variants/swa.md): dense attention whose
// causal mask also hides keys older than `window`, except the first `sinks` (StreamingLLM). All of
// it is the mask: the dense reference and flash path serve it unchanged.
#include <string>

#include "variants/dense/dense.hpp"
#include "variants/module.hpp"

namespace attnscope::variant_modules {

VariantInfo swa() {
  // Dense attention's tensors, oracle, cost, cache and flash path: only the mask differs.
  VariantInfo v = dense();
  v.id = VariantId::swa;
  v.name = "swa";
  v.aliases = {"sliding_window"};
  v.title = "Sliding-window attention";
  v.short_title = "Sliding window";
  v.summary = "each query sees its last `window` keys (itself included) plus `sinks` first keys";
  v.params = {
      {.key = "window",
       .label = "Window",
       .help = "Keys a query sees, itself included: j is visible iff p - window < j <= p.",
       .min = 1,
       .max = 1 << 20,
       ATTNSCOPE_PARAM_ACCESS(swa, window)},
      {.key = "sinks",
       .label = "Sinks",
       .help = "The first `sinks` keys stay visible to every query (StreamingLLM attention "
               "sinks), so the softmax keeps a place to put mass it has nowhere else to put.",
       .min = 0,
       .max = 1 << 16,
       ATTNSCOPE_PARAM_ACCESS(swa, sinks)},
  };
  v.causal_only = true;
  v.mask = [](const AttentionProblem& p, KeyMask& m) {
    m.window = p.swa.window;
    m.sinks = p.swa.sinks;
  };
  v.validate = [](const AttentionProblem& p) -> std::optional<std::string> {
    if (p.swa.window < 1) {
      return "window must be at least 1 (it counts the keys a query sees, itself included; got " +
             std::to_string(p.swa.window) + ")";
    }
    if (p.swa.sinks < 0) return "sinks must be 0 or more (got " + std::to_string(p.swa.sinks) + ")";
    return std::nullopt;
  };
  return v;
}

}  // namespace attnscope::variant_modules
