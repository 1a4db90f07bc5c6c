// Gated DeltaNet's hooks in the CUDA backend (cuda_variant.hpp): the limits of gated_delta.cu's
// forms and its forward pass, which a decode step also runs (one token from the cached state).
#include <cmath>
#include <string>

#include "cuda_variant.hpp"
#include "gated_delta.hpp"

namespace attnscope::cuda {
namespace {

GatedDeltaArgs gated_delta_args_of(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  GatedDeltaArgs a;
  a.B = int(s.batch), a.H = int(s.heads), a.L = int(s.q_len);
  a.Dk = int(s.head_dim), a.Dv = int(s.v_head_dim);
  a.scale = float(p.effective_scale());
  a.qk_l2norm = p.gated_delta.qk_l2norm;
  a.recurrent = p.gated_delta.recurrent;
  a.chunk_size = int(p.gated_delta.chunk_size);
  return a;
}

Support supports(const AttentionProblem& p, size_t smem_max) {
  const ProblemShape& s = p.shape;
  const GatedDeltaParams& g = p.gated_delta;
  if (s.head_dim > kGatedDeltaMaxHeadDim) {
    return Support::no("Gated DeltaNet on CUDA handles head_dim up to 256 (got " + str(s.head_dim) +
                       ")");
  }
  if (!g.recurrent && g.chunk_size > kGatedDeltaMaxChunk) {
    return Support::no("Gated DeltaNet's chunked CUDA kernel handles chunk_size up to 64 (got " +
                       str(g.chunk_size) + "); use 64 or the recurrent form");
  }
  if (!g.recurrent && gated_delta_chunk_smem_bytes(int(s.head_dim), int(g.chunk_size)) > smem_max) {
    return Support::no("Gated DeltaNet chunk does not fit in the device's shared memory");
  }
  return Support::yes();
}

// The prepared queries and keys, and the final state.
double workspace_floats(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  const double rows = double(s.batch) * s.heads * s.q_len;
  return 2 * rows * s.head_dim + double(s.batch) * s.heads * s.head_dim * s.v_head_dim;
}

std::string launch(const DeviceRun& r) {
  GatedDeltaArgs a = gated_delta_args_of(r.problem);
  a.q = r.inputs.at("q"), a.k = r.inputs.at("k"), a.v = r.inputs.at("v");
  a.g = r.inputs.at("g"), a.beta = r.inputs.at("beta");
  a.initial_state = r.initial_state ? r.initial_state : r.inputs.find("initial_state");
  a.o = r.o, a.final_state = r.final_state;
  gated_delta_forward(a, r.stream, r.cancel);
  return r.problem.gated_delta.recurrent ? "gated_delta recurrent fp32"
                                         : "gated_delta chunked fp32";
}

// Keys N(0, 1/Dk), decays with exp(g) in 0.9..0.999 and beta in (0.05, 0.95), as the workload's
// "random" pattern draws them.
InputFill input_fill(const AttentionProblem& p, std::string_view name) {
  if (name == "k") return {true, float(1.0 / std::sqrt(double(p.shape.head_dim))), 0.0f};
  if (name == "g") return {false, -0.1f, -0.001f};
  if (name == "beta") return {false, 0.05f, 0.95f};
  return {};
}

Support decode_supports(const AttentionProblem& p, size_t) {
  if (p.shape.head_dim > kGatedDeltaMaxHeadDim) {
    return Support::no("Gated DeltaNet decode on CUDA handles head_dim up to " +
                       str(kGatedDeltaMaxHeadDim) + " (got " + str(p.shape.head_dim) + ")");
  }
  return Support::yes();
}

}  // namespace

CudaVariant gated_delta_cuda_variant() {
  return {.id = VariantId::gated_delta,
          .summary = "Gated DeltaNet recurrent and chunked",
          .supports = supports,
          .workspace_floats = workspace_floats,
          .launch = launch,
          .input_fill = input_fill,
          .decode_supports = decode_supports};
}

}  // namespace attnscope::cuda
