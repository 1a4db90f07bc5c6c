// bf16/fp16 attention forward on tensor cores (FlashAttention-2 style) for the variants that allow
// it (VariantInfo::low_precision: q, k, v under a KeyMask with window and sinks, GQA/MQA): 16-bit
// inputs, fp32 accumulation, fp32 o and lse out.
// The block body lives in flash_tc_body.hpp so that a host emulation runs the same code on CPU.
//
// Versions (speed-ups to be measured on a GPU; none of these has run on one yet):
//   v1: one block of 4 warps per (64-row query tile, query head, batch), head dim D in {64, 128}
//       (template), Dk = Dv. K/V tiles of 64 keys stream through two shared-memory stages with
//       cp.async (the next tile loads while this one is computed); Q stays in registers as mma A
//       fragments. S = Q Kᵀ and O += P V are mma.sync.m16n8k16 with ldmatrix(.trans) operands and
//       fp32 accumulators; the online softmax runs on the accumulators in registers, in log2 units
//       (exp2 with scale·log2e folded in). P is rounded to the input type for the P V product,
//       as FlashAttention-2 does. Tiles the mask hides completely are never loaded; only edge
//       tiles are masked per element. Causal blocks are launched heaviest first. No split-KV yet:
//       decode-like shapes (few query rows) use one block per (tile, head, batch).
//   Inputs arrive as fp32 and are rounded to bf16/fp16 (RNE) on the device by to_lowp_kernel,
//   which also flags values that overflow (fp16 beyond 65504) so the backend can refuse them.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "attnscope/cuda/tensor_core.hpp"
#include "attnscope/registry.hpp"
#include "common.cuh"
#include "cuda_check.hpp"
#include "flash_tc_body.hpp"

namespace attnscope::cuda {
namespace {

using tc::kTcThreads;

struct Bf16 {};  // element tags of GpuOps and to_lowp_kernel
struct Fp16 {};

// The hardware side of flash_tc_body.hpp's Ops contract (PTX ISA: ldmatrix, mma.sync m16n8k16,
// cp.async). Every shared-memory access is asm volatile with a memory clobber, so the compiler
// keeps them ordered with the barriers around them.
template <class Elem>
struct GpuOps {
  __device__ __forceinline__ int thread() const { return int(threadIdx.x); }
  __device__ __forceinline__ void sync() const { __syncthreads(); }
  __device__ __forceinline__ float shfl_xor(float x, int mask) const {
    return __shfl_xor_sync(kFullMask, x, mask);
  }
  __device__ __forceinline__ void cp_async16(void* smem, const void* global, bool valid) const {
    const unsigned dst = unsigned(__cvta_generic_to_shared(smem));
    const int src_bytes = valid ? 16 : 0;  // 0: nothing is read, the 16 bytes are zero-filled
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(global),
                 "r"(src_bytes)
                 : "memory");
  }
  __device__ __forceinline__ void cp_commit() const {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
  }
  template <int N>
  __device__ __forceinline__ void cp_wait() const {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
  }
  __device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const uint16_t* row) const {
    const unsigned addr = unsigned(__cvta_generic_to_shared(row));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr)
                 : "memory");
  }
  __device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const uint16_t* row) const {
    const unsigned addr = unsigned(__cvta_generic_to_shared(row));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr)
                 : "memory");
  }
  __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                      uint32_t b1) const {
    if constexpr (std::is_same_v<Elem, Bf16>) {
      asm volatile(
          "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
          "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    } else {
      asm volatile(
          "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
          "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
  }
  // Round to nearest even; the first value goes to the low half (the lower column/key index in
  // every mma fragment).
  __device__ __forceinline__ uint32_t pack(float lo, float hi) const {
    if constexpr (std::is_same_v<Elem, Bf16>) {
      const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
      return uint32_t(__bfloat16_as_ushort(v.x)) | (uint32_t(__bfloat16_as_ushort(v.y)) << 16);
    } else {
      const __half2 v = __floats2half2_rn(lo, hi);
      return uint32_t(__half_as_ushort(v.x)) | (uint32_t(__half_as_ushort(v.y)) << 16);
    }
  }
};

template <int D, class Elem>
__global__ void __launch_bounds__(kTcThreads)
    flash_attention_tc_kernel(const tc::TcArgs a, int q_tiles) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // ldmatrix/mma bf16/cp.async need sm_80; the backend refuses older devices first
#else
  extern __shared__ __align__(16) unsigned char smem[];
  // Causal tiles further down see more keys: launch them first so the tail of the grid is short.
  const int q_tile = a.mask.causal ? q_tiles - 1 - int(blockIdx.x) : int(blockIdx.x);
  tc::flash_tc_block<D>(a, GpuOps<Elem>{}, q_tile, int(blockIdx.y), int(blockIdx.z), smem);
#endif
}

// fp32 -> bf16/fp16 bit patterns, round to nearest even (the same rounding as the host's
// round_inputs). A finite input that becomes infinite sets *overflow.
template <class Elem>
__global__ void to_lowp_kernel(const float* __restrict__ x, uint16_t* __restrict__ y, int64_t n,
                               int* overflow) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float f = x[i];
    uint16_t bits;
    bool inf;
    if constexpr (std::is_same_v<Elem, Bf16>) {
      bits = __bfloat16_as_ushort(__float2bfloat16_rn(f));
      inf = (bits & 0x7fffu) == 0x7f80u;
    } else {
      bits = __half_as_ushort(__float2half_rn(f));
      inf = (bits & 0x7fffu) == 0x7c00u;
    }
    if (inf && isfinite(f)) atomicOr(overflow, 1);
    y[i] = bits;
  }
}

template <int D, class Elem>
void launch_tc(const tc::TcArgs& a, cudaStream_t stream) {
  const int q_tiles = (a.Lq + tc::kTcRows - 1) / tc::kTcRows;
  const size_t smem = size_t(tc::tc_smem_bytes(D));
  // Beyond 48 KiB a kernel must opt in to its dynamic shared memory (D = 128 needs 85 KiB).
  check_cuda(cudaFuncSetAttribute(flash_attention_tc_kernel<D, Elem>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
             "cudaFuncSetAttribute(flash_attention_tc_kernel)");
  const dim3 grid(unsigned(q_tiles), unsigned(a.H), unsigned(a.B));
  flash_attention_tc_kernel<D, Elem><<<grid, kTcThreads, smem, stream>>>(a, q_tiles);
  check_launch("flash_attention_tc_kernel");
}

// "a, b and c".
std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " and " : ", ";
    out += names[i];
  }
  return out;
}

}  // namespace

Support tensor_core_support(const AttentionProblem& p) {
  const std::string prec(precision_name(p.precision));
  if (p.precision == Precision::fp32) {
    return Support::no("the tensor-core path computes in bf16/fp16; fp32 runs on the fp32 kernels");
  }
  const VariantInfo& info = variant_info(p.variant);
  if (!info.low_precision) {
    std::vector<std::string> lowp, fp32;
    for (const VariantInfo& v : variants()) (v.low_precision ? lowp : fp32).emplace_back(v.name);
    return Support::no(prec + " on CUDA covers " + join_names(lowp) + " only; " +
                       std::string(info.name) + " runs in fp32 only, like " + join_names(fp32) +
                       " (use --precision fp32)");
  }
  const ProblemShape& s = p.shape;
  if (s.head_dim != s.v_head_dim) {
    return Support::no("the " + prec +
                       " tensor-core kernel needs v_head_dim equal to head_dim (got head_dim " +
                       std::to_string(s.head_dim) + ", v_head_dim " + std::to_string(s.v_head_dim) +
                       "); use --precision fp32 for unequal widths");
  }
  bool built = false;
  for (int d : kTensorCoreHeadDims) built = built || s.head_dim == d;
  if (!built) {
    return Support::no("the " + prec +
                       " tensor-core kernel is built for head_dim 64 and 128 (got " +
                       std::to_string(s.head_dim) + "); use --precision fp32 for other widths");
  }
  return Support::yes();
}

size_t flash_tc_smem_bytes(int D) {
  return size_t(tc::tc_smem_bytes(D));
}

void launch_to_lowp(const float* x, uint16_t* y, int64_t n, Precision precision, int* overflow,
                    cudaStream_t stream) {
  if (n <= 0) return;
  constexpr int kThreads = 256;
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, int64_t(1) << 16);
  if (precision == Precision::bf16) {
    to_lowp_kernel<Bf16><<<unsigned(blocks), kThreads, 0, stream>>>(x, y, n, overflow);
  } else if (precision == Precision::fp16) {
    to_lowp_kernel<Fp16><<<unsigned(blocks), kThreads, 0, stream>>>(x, y, n, overflow);
  } else {
    throw Error("launch_to_lowp: precision must be bf16 or fp16");
  }
  check_launch("to_lowp_kernel");
}

void launch_flash_attention_tc(const FlashTcArgs& f, cudaStream_t stream) {
  if (f.B == 0 || f.H == 0 || f.Lq == 0) return;
  if (f.Hkv < 1 || f.H % f.Hkv != 0) {
    throw Error("flash_attention_tc: heads must be a multiple of kv_heads");
  }
  if (f.B > 65535 || f.H > 65535)
    throw Error("flash_attention_tc: batch and heads must be <= 65535");
  tc::TcArgs a;
  a.q = f.q, a.k = f.k, a.v = f.v, a.o = f.o, a.lse = f.lse;
  a.B = f.B, a.H = f.H, a.Hkv = f.Hkv, a.Lq = f.Lq, a.Lk = f.Lk;
  a.scale_log2 = tc::tc_scale_log2(f.scale);
  a.mask = {f.mask.causal, f.mask.offset, f.mask.window, f.mask.sinks};
  const bool bf16 = f.precision == Precision::bf16;
  if (f.precision != Precision::bf16 && f.precision != Precision::fp16) {
    throw Error("flash_attention_tc: precision must be bf16 or fp16");
  }
  switch (f.D) {
    case 64:
      bf16 ? launch_tc<64, Bf16>(a, stream) : launch_tc<64, Fp16>(a, stream);
      break;
    case 128:
      bf16 ? launch_tc<128, Bf16>(a, stream) : launch_tc<128, Fp16>(a, stream);
      break;
    default:
      throw Error("flash_attention_tc: head dim " + std::to_string(f.D) +
                  " is not built (64 and 128 are)");
  }
}

}  // namespace attnscope::cuda
