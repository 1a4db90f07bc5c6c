// The CUDA backend's attention-map probe (Backend::attention_map): the softmax variants' maps are
// recomputed and pooled on the device (map_probe.cu); what the device does not do goes to the host.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "attnscope/backend.hpp"
#include "cuda_check.hpp"

namespace attnscope::cuda {

// Whether the device computes this problem's maps: every softmax variant the backend runs (the
// scores of a variant's own form through its map_scores hook). An implicit map (a linear
// recurrence's) is a backwards walk through the state per query row: serial in the key index, in
// float64, and no lse to reuse, so it stays on the host.
bool map_on_device(const AttentionProblem& problem);

// attention_map (probes.hpp) on the device: the same request checks and Errors, the same bins and
// masks, entries within fp32 rounding of the host's. Queries go up in bands of row groups (the
// CancelToken is checked and progress reported between bands). When the region's keys and one
// band do not fit in free device memory, the host computes the map instead.
Tensor device_attention_map(const AttentionProblem& problem, const Inputs& inputs,
                            const RunResult& result, const MapRequest& request,
                            const CancelToken& cancel, cudaStream_t stream);

// ---- for MapScores implementations ---------------------------------------------------------

// An input the map reads directly, checked for presence and shape: reading a misshapen tensor
// would run past its end.
const Tensor& map_input(const AttentionProblem& p, const Inputs& in, const std::string& name);

template <class T>
void map_upload(T* dev, const T* host, int64_t count, cudaStream_t s) {
  if (count > 0) {
    check_cuda(cudaMemcpyAsync(dev, host, size_t(count) * sizeof(T), cudaMemcpyHostToDevice, s),
               "cudaMemcpyAsync host->device (attention map)");
  }
}

// rows x width floats from a host matrix with row stride src_stride into columns [0, width) of a
// device matrix with row stride dst_stride.
void upload_columns(float* dev, int64_t dst_stride, const float* host, int64_t src_stride,
                    int64_t width, int64_t rows, cudaStream_t s);

}  // namespace attnscope::cuda
