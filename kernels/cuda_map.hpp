// The CUDA backend's attention-map probe (Backend::attention_map): the softmax variants' maps are
// recomputed and pooled on the device (map_probe.cu); what the device does not do goes to the host.
#pragma once

#include <cuda_runtime.h>

#include "attnscope/backend.hpp"

namespace attnscope::cuda {

// Whether the device computes this problem's maps: every softmax variant (dense, GQA/MQA, SWA with
// sinks, MoBA, MLA in either form). Gated DeltaNet's implicit attention is a backwards walk through
// the state per query row (reference/gated_delta.cpp): serial in the key index, in float64, and
// no lse to reuse, so it stays on the host.
bool map_on_device(const AttentionProblem& problem);

// attention_map (probes.hpp) on the device: the same request checks and Errors, the same bins and
// masks, entries within fp32 rounding of the host's. Queries go up in bands of row groups (the
// CancelToken is checked and progress reported between bands). When the region's keys and one
// band do not fit in free device memory, the host computes the map instead.
Tensor device_attention_map(const AttentionProblem& problem, const Inputs& inputs,
                            const RunResult& result, const MapRequest& request,
                            const CancelToken& cancel, cudaStream_t stream);

}  // namespace attnscope::cuda
