// Input checking shared by every backend: the problem is valid, every tensor the variant needs is
// present with the right shape, and nothing is NaN/Inf. One place, so every backend says the same.
#include "attnscope/backend.hpp"

#include "attnscope/error.hpp"
#include "attnscope/probes.hpp"
#include "attnscope/registry.hpp"

namespace attnscope {

void CancelToken::throw_if_cancelled() const {
  if (cancelled()) throw Cancelled();
}

void check_inputs(const AttentionProblem& problem, const Inputs& inputs) {
  problem.check();
  for (const TensorSpec& spec : variant_info(problem.variant).inputs(problem)) {
    if (!inputs.has(spec.name)) {
      if (spec.optional) continue;
      throw Error("missing input tensor '" + spec.name + "' (" + std::string(spec.doc) + ")");
    }
    const Tensor& t = inputs.at(spec.name);
    if (t.shape() != spec.shape) {
      throw Error("input tensor '" + spec.name + "' has shape " + shape_str(t.shape()) +
                  " but the problem needs " + shape_str(spec.shape) + " (" + std::string(spec.doc) +
                  ")");
    }
    if (const int64_t bad = first_non_finite(t); bad >= 0) {
      throw Error("input tensor '" + spec.name +
                  "' holds a non-finite value (NaN or Inf) at flat "
                  "index " +
                  std::to_string(bad));
    }
  }
  if (auto why = variant_info(problem.variant).check_values(inputs)) throw Error(*why);
}

}  // namespace attnscope

namespace attnscope {

RunResult Backend::decode(PagedKvCache&, const DecodeStep&, const Probes&, const CancelToken&) {
  throw Error("the " + std::string(name()) + " backend has no paged-KV decode path");
}

DevicePeak Backend::measure_peak(const CancelToken&) {
  throw Error("the " + std::string(name()) + " backend cannot measure its device's peak");
}

Tensor Backend::attention_map(const AttentionProblem& problem, const Inputs& inputs,
                              const RunResult& result, const MapRequest& request,
                              const CancelToken& cancel) {
  return attnscope::attention_map(problem, inputs, result, request, cancel);
}

}  // namespace attnscope
