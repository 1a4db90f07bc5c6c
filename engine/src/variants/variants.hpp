// Per-variant descriptors: validation, input tensor specs and shape inference for each variant.
// Private to the engine; the registry assembles them (with the references) into VariantInfo rows.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "attnscope/inputs.hpp"
#include "attnscope/problem.hpp"
#include "attnscope/registry.hpp"

namespace attnscope::descriptor {

// Shape reading helpers shared by the descriptors: they throw Error naming the tensor.
const Tensor& require(const Inputs& in, const char* name, int rank, const char* layout);
void require_dim(const Tensor& t, const char* name, int axis, int64_t expected, const char* what);

#define ATTNSCOPE_DECLARE_VARIANT(v)                                \
  std::string v##_describe(const AttentionProblem&);                \
  std::optional<std::string> v##_validate(const AttentionProblem&); \
  std::vector<TensorSpec> v##_inputs(const AttentionProblem&);      \
  std::optional<std::string> v##_check_values(const Inputs&);       \
  void v##_infer(const Inputs&, AttentionProblem&);

ATTNSCOPE_DECLARE_VARIANT(dense)
ATTNSCOPE_DECLARE_VARIANT(swa)
ATTNSCOPE_DECLARE_VARIANT(mla)
ATTNSCOPE_DECLARE_VARIANT(moba)
ATTNSCOPE_DECLARE_VARIANT(gated_delta)
#undef ATTNSCOPE_DECLARE_VARIANT

}  // namespace attnscope::descriptor
