// The CUDA device's roofline ceilings (Backend::measure_peak of the "cuda" backend): a large
// cuBLAS SGEMM and a large device-to-device copy, timed with CUDA events.
#pragma once

#include "attnscope/backend.hpp"
#include "attnscope/cancel.hpp"

namespace attnscope::cuda {

// Measures the current device. Fills every DevicePeak field except `device` (the backend's
// device() string, set by the caller). Throws Error when there is no usable device, Cancelled when
// cancelled between repetitions.
DevicePeak measure_cuda_peak(const CancelToken& cancel);

}  // namespace attnscope::cuda
