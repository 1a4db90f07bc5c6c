// Seeded synthetic inputs with visible structure, so that maps, MoBA routing and SWA's blind spot
// show something real: local, periodic (induction), sinks, needle, and plain noise.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "attnscope/inputs.hpp"
#include "attnscope/problem.hpp"

namespace attnscope {

struct PatternInfo {
  std::string_view name;
  std::string_view summary;  // one sentence for the CLI/GUI
};

// The patterns, in display order. "random" is i.i.d. normal noise.
const std::vector<PatternInfo>& patterns();

// Every tensor the problem's variant needs (see VariantInfo::inputs), deterministic in (problem
// shape, pattern, seed). Throws Error for an unknown pattern or an invalid problem.
Inputs make_inputs(const AttentionProblem& problem, std::string_view pattern, uint64_t seed);

}  // namespace attnscope
