// A named set of tensors: a run's inputs ("q", "k", "v", …) or outputs ("o", "lse", …).
// Names and layouts per variant are listed by the registry (VariantInfo::inputs).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "attnscope/tensor.hpp"

namespace attnscope {

using TensorMap = std::map<std::string, Tensor, std::less<>>;

struct Inputs {
  TensorMap tensors;

  bool has(std::string_view name) const { return tensors.find(name) != tensors.end(); }
  // Throws Error("missing input tensor 'q'") when absent.
  const Tensor& at(std::string_view name) const;
  void set(std::string name, Tensor t) { tensors.insert_or_assign(std::move(name), std::move(t)); }
};

}  // namespace attnscope
