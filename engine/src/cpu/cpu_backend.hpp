// Entry points of the CPU backend's per-variant fast paths, assembled by cpu_backend.cpp.
// Each validates nothing (the backend did) and writes a complete RunResult.
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
};

RunResult run_dense(const Context& c);  // dense and sliding-window
RunResult run_mla(const Context& c);
RunResult run_moba(const Context& c);
RunResult run_gated_delta(const Context& c);

BackendInfo backend_info();

}  // namespace attnscope::cpu
