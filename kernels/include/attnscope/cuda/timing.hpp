// Device-resident timing of the cuda backend's kernels, for benchmarks (bench/cuda_bench.cpp):
// inputs live on the device in several sets rotated between repetitions (so the L2 cannot hold
// them), each repetition is timed with CUDA events around the kernels alone, after a warm-up.
// Host<->device copies, input generation and allocation stay out of every figure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attnscope/backend.hpp"
#include "attnscope/inputs.hpp"
#include "attnscope/problem.hpp"

namespace attnscope::cuda {

struct TimingOptions {
  int warmup = 2;                 // untimed repetitions first (module load, pools, clocks)
  int min_reps = 5;               // timed repetitions, at least ...
  int max_reps = 50;              // ... and at most;
  double target_seconds = 1.0;    // in between, as many as fit this much device time
  int min_sets = 3;               // input sets rotated between repetitions, at least
  double rotate_bytes = 0;        // ... and together at least this many bytes (0: twice the L2)
  double max_set_fraction = 0.5;  // all sets together use at most this share of free memory
  uint64_t seed = 1;              // of the generated inputs
  int kv_splits = 0;              // > 0 forces the attention core's key splits (as CudaOptions)
  // Validation: set 0 holds these host inputs (the problem's tensors; for paged decode the
  // problem with q_len = 1, kv_len = context) instead of generated ones, and the outputs of a run
  // on set 0 come back in Timing::output.
  const Inputs* inputs = nullptr;
};

struct Timing {
  std::vector<double> ms;  // one per timed repetition, CUDA-event elapsed milliseconds
  int sets = 0;            // input sets rotated
  double set_bytes = 0;    // device bytes of one input set
  std::string path;        // the kernels that ran: "flash fp32 (2 key splits)", "paged MLA", ...
  RunResult output;        // only with TimingOptions::inputs: o, lse, final_state (as run())
};

// Backend::run's device work for `problem` (every variant; bf16/fp16 on the tensor-core kernel
// where tensor_core_support says so): the same launchers with the same arguments as
// CudaBackend::run, on device-resident inputs. Throws Error when no device is usable or the shape
// is beyond the kernels (as CudaBackend::supports).
Timing time_run(const AttentionProblem& problem, const TimingOptions& options);

// One decode step through a paged KV cache: `batch` sequences of `context` tokens each (the query
// is token context - 1), pages of `page_size` tokens in the PagedKvCache layout, sequences'
// pages interleaved as a batch that grows together allocates them. Variants that attend over K/V
// or latent pages (in decode form, with a variant's projections around the paged attention), fp32:
// Backend::decode's kernels without the host cache and its mirror upload. A block selection or a
// recurrent state throws Error (not timed this way).
Timing time_paged_decode(const AttentionProblem& model, int64_t batch, int64_t context,
                         int64_t page_size, const TimingOptions& options);

}  // namespace attnscope::cuda
