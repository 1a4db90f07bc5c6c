// Device peaks for the roofline (peak.hpp): fp32 GEMM throughput from cuBLAS SGEMM in plain fp32
// math, and memory bandwidth from a device-to-device cudaMemcpyAsync, each the best of several
// CUDA-event-timed repetitions after a warm-up. Sizes shrink on devices with little free memory.
//
// Versions (none has run on a GPU yet):
//   v1: SGEMM n^3 with n = 8192 (three 256 MiB matrices; 4096 or less when memory is short),
//       CUBLAS_DEFAULT_MATH: cuBLAS never lowers fp32 to TF32 or BF16x9 emulation in this mode,
//       so this is the FMA-pipe ceiling the v1 fp32 kernels live under. Copy: 1 GiB (less when
//       short), counted as read + write bytes.
#include "peak.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <string>

#include "attnscope/cuda/device.hpp"
#include "cuda_check.hpp"
#include "cuda_host.hpp"

namespace attnscope::cuda {
namespace {

constexpr int kRepeats = 5;

// Deterministic values in [-1, 1) so the GEMM does real arithmetic (not zeros).
__global__ void fill_pattern_kernel(float* x, int64_t n, uint32_t salt) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t h = uint32_t(i) * 2654435761u ^ salt;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    x[i] = float(h & 0xffffu) / 32768.0f - 1.0f;
  }
}

void fill(float* x, int64_t n, uint32_t salt, cudaStream_t s) {
  if (n <= 0) return;
  fill_pattern_kernel<<<1024, 256, 0, s>>>(x, n, salt);
  check_launch("fill_pattern_kernel");
}

// Best (shortest) time in seconds of `repeats` runs of op after one warm-up run.
template <class Op>
double best_seconds(Op op, cudaStream_t s, const CancelToken& cancel) {
  Event start, stop;
  op();  // warm-up: clocks up, cuBLAS heuristics and kernels loaded
  check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  double best = 1e30;
  for (int r = 0; r < kRepeats; ++r) {
    cancel.throw_if_cancelled();
    check_cuda(cudaEventRecord(start.get(), s), "cudaEventRecord");
    op();
    check_cuda(cudaEventRecord(stop.get(), s), "cudaEventRecord");
    check_cuda(cudaEventSynchronize(stop.get()), "cudaEventSynchronize");
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, start.get(), stop.get()), "cudaEventElapsedTime");
    best = std::min(best, double(ms) * 1e-3);
  }
  return best;
}

std::string iso8601_utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string mib(int64_t bytes) {
  return bytes >= (int64_t(1) << 30) && bytes % (int64_t(1) << 30) == 0
             ? std::to_string(bytes >> 30) + " GiB"
             : std::to_string(bytes >> 20) + " MiB";
}

}  // namespace

DevicePeak measure_cuda_peak(const CancelToken& cancel) {
  const Support dev = device_available();
  if (!dev.ok) throw Error("cuda backend: cannot measure the device's peak: " + dev.why_not);
  const auto t0 = std::chrono::steady_clock::now();
  cancel.throw_if_cancelled();
  const double budget =
      0.5 * double(free_device_bytes());  // leave room for other work on the device

  Stream stream;
  const cudaStream_t s = stream.get();
  DevicePeak peak;
  peak.backend = "cuda";

  {  // fp32 GEMM: C = A B, n x n, 2 n^3 flops.
    int64_t n = 8192;
    while (n > 512 && 3.0 * double(n * n) * sizeof(float) > budget) n /= 2;
    DeviceBuffer<float> a(n * n), b(n * n), c(n * n);
    fill(a.get(), n * n, 1u, s);
    fill(b.get(), n * n, 2u, s);
    CublasHandle blas(s);
    // Plain fp32 (the handle's default is pedantic): cuBLAS may pick any fp32 algorithm but never
    // TF32 tensor cores or BF16x9 emulation under CUBLAS_DEFAULT_MATH.
    check_cublas(cublasSetMathMode(blas.get(), CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    const float one = 1.0f, zero = 0.0f;
    const int ni = int(n);
    const double t = best_seconds(
        [&] {
          check_cublas(cublasSgemm(blas.get(), CUBLAS_OP_N, CUBLAS_OP_N, ni, ni, ni, &one, a.get(),
                                   ni, b.get(), ni, &zero, c.get(), ni),
                       "cublasSgemm");
        },
        s, cancel);
    peak.gflops = 2.0 * double(n) * double(n) * double(n) / t * 1e-9;
    peak.gemm = "cuBLAS SGEMM " + std::to_string(n) +
                "^3, plain fp32 (CUBLAS_DEFAULT_MATH: no TF32 tensor cores), best of " +
                std::to_string(kRepeats) + " after a warm-up";
  }
  cancel.throw_if_cancelled();
  {  // Bandwidth: device-to-device copy, counted as bytes read + bytes written.
    int64_t bytes = int64_t(1) << 30;
    while (bytes > (int64_t(16) << 20) && 2.0 * double(bytes) > budget) bytes /= 2;
    DeviceBuffer<float> src(bytes / int64_t(sizeof(float))), dst(bytes / int64_t(sizeof(float)));
    fill(src.get(), src.size(), 3u, s);
    const double t = best_seconds(
        [&] {
          check_cuda(
              cudaMemcpyAsync(dst.get(), src.get(), size_t(bytes), cudaMemcpyDeviceToDevice, s),
              "cudaMemcpyAsync device->device");
        },
        s, cancel);
    peak.gbps = 2.0 * double(bytes) / t * 1e-9;
    peak.copy = "cudaMemcpyAsync device-to-device, " + mib(bytes) +
                " (read + write bytes), best of " + std::to_string(kRepeats) + " after a warm-up";
  }
  peak.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  peak.measured_at = iso8601_utc_now();
  return peak;
}

}  // namespace attnscope::cuda
