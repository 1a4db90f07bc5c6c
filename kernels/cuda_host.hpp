// Host-side plumbing every CUDA entry point shares (run, decode step, map, timing): the device
// memory of one call, the guard that drains the stream before that memory goes, copies back to the
// host and the device queries behind the support checks.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "attnscope/tensor.hpp"
#include "cuda_check.hpp"

namespace attnscope::cuda {

inline std::string str(int64_t x) {
  return std::to_string(x);
}

// Every device allocation of one call. Declared before the SyncGuard of that call, so that on any
// exit (error, cancellation) the stream is drained before the memory its kernels use is freed.
struct Arena {
  std::deque<DeviceBuffer<float>> floats;
  std::deque<DeviceBuffer<int32_t>> ints;
  std::deque<DeviceBuffer<uint16_t>> halves;  // bf16/fp16 bit patterns
  std::deque<DeviceBuffer<const float*>> pointers;

  float* upload(const Tensor& t, cudaStream_t s) {
    floats.emplace_back(t.numel()).upload(t.data(), s);
    return floats.back().get();
  }
  float* upload(const std::vector<float>& x, cudaStream_t s) {
    floats.emplace_back(int64_t(x.size())).upload(x.data(), s);
    return floats.back().get();
  }
  int32_t* upload(const std::vector<int32_t>& x, cudaStream_t s) {
    ints.emplace_back(int64_t(x.size())).upload(x.data(), s);
    return ints.back().get();
  }
  const float* const* upload(const std::vector<const float*>& x, cudaStream_t s) {
    pointers.emplace_back(int64_t(x.size())).upload(x.data(), s);
    return pointers.back().get();
  }
  float* floats_of(int64_t n) { return floats.emplace_back(n).get(); }
  int32_t* ints_of(int64_t n) { return ints.emplace_back(n).get(); }
  uint16_t* halves_of(int64_t n) { return halves.emplace_back(n).get(); }
};

struct SyncGuard {
  cudaStream_t s;
  ~SyncGuard() { (void)cudaStreamSynchronize(s); }
};

inline void download(const float* dev, float* host, int64_t n, cudaStream_t s) {
  if (n > 0) {
    check_cuda(cudaMemcpyAsync(host, dev, size_t(n) * sizeof(float), cudaMemcpyDeviceToHost, s),
               "cudaMemcpyAsync device->host");
  }
}

inline void download(const float* dev, Tensor& host, cudaStream_t s) {
  download(dev, host.data(), host.numel(), s);
}

inline void download(const int32_t* dev, IndexTensor& host, cudaStream_t s) {
  if (host.numel() > 0) {
    check_cuda(cudaMemcpyAsync(host.data(), dev, size_t(host.bytes()), cudaMemcpyDeviceToHost, s),
               "cudaMemcpyAsync selection");
  }
}

inline int device_attribute(cudaDeviceAttr attr, const char* what) {
  int device = 0, value = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&value, attr, device), what);
  return value;
}

inline int sm_count() {
  return device_attribute(cudaDevAttrMultiProcessorCount, "cudaDevAttrMultiProcessorCount");
}

inline size_t free_device_bytes() {
  size_t free_bytes = 0, total_bytes = 0;
  check_cuda(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  return free_bytes;
}

}  // namespace attnscope::cuda
