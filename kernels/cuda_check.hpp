// Host-side CUDA plumbing shared by the kernel launchers and the backend: error checks that throw
// attnscope::Error (never abort), and RAII owners for device buffers, streams, events and cuBLAS
// handles.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "attnscope/error.hpp"

namespace attnscope::cuda {

// Every runtime call goes through this: a failure becomes an Error naming what was attempted.
inline void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw Error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err));
  }
}

// After each kernel launch: a bad configuration (grid, shared memory) shows up here.
inline void check_launch(const char* kernel) {
  check_cuda(cudaGetLastError(), kernel);
}

inline void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw Error(std::string("cuBLAS error in ") + what + ": " + cublasGetStatusString(status));
  }
}

// Owns count elements of device memory; moves, never copies. Freed in the destructor, where an
// error can no longer be reported, so cudaFree's status is ignored there on purpose.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(int64_t count) : count_(count) {
    if (count > 0) {
      check_cuda(cudaMalloc(reinterpret_cast<void**>(&ptr_), size_t(count) * sizeof(T)),
                 "cudaMalloc");
    }
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }
  ~DeviceBuffer() { reset(); }

  T* get() const { return ptr_; }
  int64_t size() const { return count_; }
  int64_t bytes() const { return count_ * int64_t(sizeof(T)); }

  void upload(const T* host, cudaStream_t stream) {
    if (count_ > 0) {
      check_cuda(cudaMemcpyAsync(ptr_, host, size_t(bytes()), cudaMemcpyHostToDevice, stream),
                 "cudaMemcpyAsync host->device");
    }
  }
  void download(T* host, cudaStream_t stream) const {
    if (count_ > 0) {
      check_cuda(cudaMemcpyAsync(host, ptr_, size_t(bytes()), cudaMemcpyDeviceToHost, stream),
                 "cudaMemcpyAsync device->host");
    }
  }

 private:
  void reset() {
    if (ptr_) (void)cudaFree(ptr_);
    ptr_ = nullptr;
    count_ = 0;
  }
  T* ptr_ = nullptr;
  int64_t count_ = 0;
};

// Temporary device memory ordered on a stream (cudaMallocAsync / cudaFreeAsync): kernels queued
// on that stream before the destructor runs may still use it, so launchers can return without
// synchronizing. For workspaces that live inside one launcher call.
template <class T>
class StreamScratch {
 public:
  StreamScratch(int64_t count, cudaStream_t stream) : stream_(stream) {
    if (count > 0) {
      check_cuda(
          cudaMallocAsync(reinterpret_cast<void**>(&ptr_), size_t(count) * sizeof(T), stream),
          "cudaMallocAsync");
    }
  }
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;
  ~StreamScratch() {
    if (ptr_) (void)cudaFreeAsync(ptr_, stream_);
  }
  T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
  cudaStream_t stream_;
};

// A non-blocking stream, destroyed with its owner.
class Stream {
 public:
  Stream() {
    check_cuda(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() { (void)cudaStreamDestroy(s_); }
  cudaStream_t get() const { return s_; }
  void synchronize() const { check_cuda(cudaStreamSynchronize(s_), "cudaStreamSynchronize"); }

 private:
  cudaStream_t s_ = nullptr;
};

// A CUDA event, destroyed with its owner.
class Event {
 public:
  Event() { check_cuda(cudaEventCreate(&e_), "cudaEventCreate"); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  Event(Event&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
  ~Event() {
    if (e_) (void)cudaEventDestroy(e_);
  }
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

// A cuBLAS handle bound to one stream, in pedantic fp32 math (no TF32), so that GEMM results stay
// within the project's fp32 tolerance of the float64 reference.
class CublasHandle {
 public:
  explicit CublasHandle(cudaStream_t stream) {
    check_cublas(cublasCreate(&h_), "cublasCreate");
    check_cublas(cublasSetStream(h_, stream), "cublasSetStream");
    check_cublas(cublasSetMathMode(h_, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");
  }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  ~CublasHandle() { (void)cublasDestroy(h_); }
  cublasHandle_t get() const { return h_; }

 private:
  cublasHandle_t h_ = nullptr;
};

}  // namespace attnscope::cuda
