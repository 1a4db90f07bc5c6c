// CUDA device discovery: what the CUDA runtime sees on this machine, as text for `info` and the
// GUI, and as a Support for backends. Never throws: no driver / no device is an answer, not a
// crash.
#pragma once

#include <string>
#include <vector>

#include "attnscope/backend.hpp"

namespace attnscope::cuda {

// One line per device ("cuda:0: NVIDIA H100 80GB HBM3, sm_90, 79.1 GiB, 132 SMs"), or one line
// saying why there is none (no driver, no device, runtime error).
std::vector<std::string> describe_devices();

// ok when at least one device is usable; otherwise why not.
Support device_available();

}  // namespace attnscope::cuda
