// MoBA's hooks in the CUDA backend (cuda_variant.hpp): the limits of moba.cu's kernels, its
// forward pass, and the decode gate over the paged cache's block means.
#include <algorithm>
#include <string>
#include <vector>

#include "attnscope/error.hpp"
#include "cuda_variant.hpp"
#include "moba.hpp"

namespace attnscope::cuda {
namespace {

MobaArgs moba_args_of(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  MobaArgs a;
  a.B = int(s.batch), a.H = int(s.heads), a.Hkv = int(s.kv_heads);
  a.Lq = int(s.q_len), a.Lk = int(s.kv_len), a.Dk = int(s.head_dim), a.Dv = int(s.v_head_dim);
  a.block_size = int(p.moba.block_size), a.top_k = int(p.moba.top_k);
  a.scale = float(p.effective_scale());
  return a;
}

Support supports(const AttentionProblem& p, size_t) {
  const ProblemShape& s = p.shape;
  const int64_t blocks = (s.kv_len + p.moba.block_size - 1) / p.moba.block_size;
  if (s.v_head_dim > kMobaMaxDv) {
    return Support::no("MoBA on CUDA handles v_head_dim up to 256 (got " + str(s.v_head_dim) + ")");
  }
  if (p.moba.top_k - 1 > kMobaMaxRanked && p.moba.top_k < blocks) {
    return Support::no("MoBA on CUDA ranks at most 32 past blocks per query: use top_k <= " +
                       str(kMobaMaxRanked + 1) + " or top_k >= the number of blocks (" +
                       str(blocks) + ")");
  }
  return Support::yes();
}

// The keys' block means and the selection.
double workspace_floats(const AttentionProblem& p) {
  const ProblemShape& s = p.shape;
  const double rows = double(s.batch) * s.heads * s.q_len;
  return double(s.batch) * s.kv_heads * s.kv_len * s.head_dim + rows * p.moba.top_k;
}

std::string launch(const DeviceRun& r) {
  MobaArgs a = moba_args_of(r.problem);
  a.q = r.inputs.at("q"), a.k = r.inputs.at("k"), a.v = r.inputs.at("v");
  a.o = r.o, a.lse = r.lse, a.selection = r.selection;
  moba_forward(a, r.stream, r.cancel);
  return "moba fp32: block means, warp top-k gate, block attention";
}

// Gate and top-k of each row over its sequence's cached block means.
void decode_select(const PagedSelect& s) {
  const int64_t B = int64_t(s.lengths.size());
  const ProblemShape& sh = s.problem.shape;
  const int bs = int(s.selection.block_size), top_k = int(s.selection.top_k);
  std::vector<const float*> means(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const int own = (s.lengths[size_t(b)] - 1) / bs;
    if (top_k - 1 > kMobaMaxRanked && own > top_k - 1) {
      throw Error("cuda decode: MoBA on CUDA ranks at most " + str(kMobaMaxRanked) +
                  " past blocks per query; sequence " + str(s.step.sequences[size_t(b)]) + " has " +
                  str(own) + " past blocks and top_k - 1 = " + str(top_k - 1));
    }
    means[size_t(b)] = s.block_means(s.step.sequences[size_t(b)]);
  }
  launch_paged_moba_select(s.q, s.arena.upload(means, s.stream), s.device_lengths, int(B),
                           int(sh.heads), int(sh.kv_heads), int(sh.head_dim), bs, top_k, s.out,
                           s.stream);
}

}  // namespace

CudaVariant moba_cuda_variant() {
  return {.id = VariantId::moba,
          .summary = "MoBA gate/top-k and block attention",
          .supports = supports,
          .workspace_floats = workspace_floats,
          .launch = launch,
          .decode_select = decode_select};
}

}  // namespace attnscope::cuda
