// The seam every implementation sits behind: reference, fast CPU, CUDA.
// A backend says whether it supports a problem (and why not), then runs it to a RunResult value.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "attnscope/cancel.hpp"
#include "attnscope/inputs.hpp"
#include "attnscope/problem.hpp"
#include "attnscope/tensor.hpp"

namespace attnscope {

struct Counters {
  double flops = 0;           // from the cost model, for the work the backend actually does
  double bytes = 0;           // minimal bytes moved (cost model)
  int64_t visible_pairs = 0;  // (query, key) pairs that entered a softmax / the recurrence
};

struct RunResult {
  Tensor o;                              // [B, H, Lq, Dv]
  Tensor lse;                            // [B, H, Lq] natural log; empty for Gated DeltaNet
  std::optional<IndexTensor> selection;  // MoBA: [B, H, Lq, top_k] block ids, ascending, -1 pad
  std::optional<Tensor> final_state;     // Gated DeltaNet: [B, H, Dk, Dv]
  Counters counters;
  double seconds = 0;   // wall time of run() itself
  std::string backend;  // which backend produced it
};

struct Support {
  bool ok = true;
  std::string why_not;  // filled when !ok: what is unsupported and what would work
  static Support yes() { return {}; }
  static Support no(std::string why) { return {false, std::move(why)}; }
};

// What a run captures beyond o/lse. Attention maps are computed afterwards from lse (probes.hpp).
struct Probes {
  bool selection = true;  // MoBA's block selection
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;  // "reference", "cpu", "cuda"
  virtual std::string device() const = 0;     // human description of where it runs
  virtual Support supports(const AttentionProblem& problem) const = 0;
  // Validates problem and inputs first (Error on anything wrong), then computes.
  virtual RunResult run(const AttentionProblem& problem, const Inputs& inputs, const Probes& probes,
                        const CancelToken& cancel) = 0;
};

// Checks problem.validate(), then every input tensor against the variant's spec (presence, shape,
// finiteness). Throws Error naming the first problem found. Every backend calls this first.
void check_inputs(const AttentionProblem& problem, const Inputs& inputs);

}  // namespace attnscope
