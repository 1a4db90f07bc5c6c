// CUDA device discovery through the runtime API (see device.hpp). Every call is checked, and a
// machine without a driver or GPU is reported in words instead of failing.
#include <cuda_runtime.h>

#include <cstdio>

#include "attnscope/cuda/device.hpp"

namespace attnscope::cuda {

std::vector<std::string> describe_devices() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    return {std::string("cuda: no usable device (") + cudaGetErrorString(err) + ")"};
  }
  if (count == 0) return {"cuda: no device present"};
  std::vector<std::string> lines;
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) continue;
    char buf[640];  // room for the longest device name cudaDeviceProp holds
    std::snprintf(buf, sizeof buf, "cuda:%d: %s, sm_%d%d, %.1f GiB, %d SMs", d, prop.name,
                  prop.major, prop.minor, double(prop.totalGlobalMem) / double(1ull << 30),
                  prop.multiProcessorCount);
    lines.emplace_back(buf);
  }
  return lines;
}

Support device_available() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    return Support::no(std::string("no usable CUDA device (") + cudaGetErrorString(err) + ")");
  }
  if (count == 0) return Support::no("no CUDA device present");
  return Support::yes();
}

}  // namespace attnscope::cuda
