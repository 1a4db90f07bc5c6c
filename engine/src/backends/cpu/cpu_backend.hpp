// What the CPU backend hands a variant's fast path (VariantInfo::cpu_run). A fast path validates
// nothing (the backend did) and writes a complete RunResult.
#pragma once

#include "attnscope/backend.hpp"
#include "attnscope/cpu_backend.hpp"
#include "attnscope/registry.hpp"

namespace attnscope::cpu {

struct Context {
  const AttentionProblem& problem;
  const Inputs& inputs;
  const CpuOptions& options;
  int threads;
  const CancelToken& cancel;
  const Probes& probes;
};

// The masked-softmax flash path (dense, sliding window); each variant's own fast path lives in its
// module and is reached through VariantInfo::cpu_run.
RunResult run_dense(const Context& c);

BackendInfo backend_info();

}  // namespace attnscope::cpu
