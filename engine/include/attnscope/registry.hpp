// The one table of backends, next to the variants' (variant.hpp). The CLI's --backend values, the
// GUI's pickers and the benchmark sweeps all read it; nothing else enumerates backends.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/inputs.hpp"
#include "attnscope/problem.hpp"
#include "attnscope/variant.hpp"

namespace attnscope {

struct BackendInfo {
  std::string_view name;
  std::string_view summary;
  // Whether this build and machine can create it now, with the reason when not.
  std::function<Support()> available;
  std::function<std::unique_ptr<Backend>()> make;
};

// Backends compiled into this build (a CUDA build adds "cuda"), in preference order: a snapshot,
// safe to iterate while another thread registers a backend.
std::vector<BackendInfo> backends();
// The entry stays valid for the life of the process (entries are never moved or removed).
const BackendInfo* find_backend(std::string_view name);
// Throws Error naming the backends that exist when `name` is unknown or unavailable.
std::unique_ptr<Backend> make_backend(std::string_view name);

// Registration hook for backends living outside the engine library (the CUDA kernels).
void register_backend(BackendInfo info);

}  // namespace attnscope
